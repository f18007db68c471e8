"""A hazard reported only as the consequence of another (a queue behind an accident) is the
other's post: counted once, for the hazard that reaches the same agency."""
from __future__ import annotations

import shutil

from siaga import settings
from siaga.hazard_config import check_directory, default_hazard_dir
from siaga.hazards import HazardSet


def hazards_of(text: str) -> set[str]:
    return {m.hazard for m in HazardSet.load(default_hazard_dir()).classify(text)}


def test_queue_behind_an_accident_is_the_accident():
    assert hazards_of("Akibat kecelakaan ini, antrean kendaraan mencapai 4 KM") == {"traffic_accident"}


def test_a_jam_alone_or_behind_a_flood_is_still_a_jam():
    assert hazards_of("Macet total di Jalan Ahmad Yani Singaraja") == {"traffic_jam"}
    assert "traffic_jam" in hazards_of("Banjir di Sangsit menyebabkan kemacetan panjang")


def test_explain_says_what_subsumed_it():
    (jam,) = [m for m in HazardSet.load(default_hazard_dir()).explain("kecelakaan bikin macet parah") if m.hazard == "traffic_jam"]
    assert jam.terms == () and "subsumed by traffic_accident" in jam.vetoed_by


def test_subsuming_across_agencies_is_refused(tmp_path):
    target = tmp_path / "hazards"
    shutil.copytree(settings.config_dir() / "hazards", target)
    path = target / "traffic_jam.yaml"
    path.write_text(path.read_text().replace("subsumed_by: [traffic_accident]", "subsumed_by: [flood]"))
    report = check_directory(target)
    assert any("traffic_jam.yaml" in str(e) and "subsumed_by[0]" in str(e) and "bpbd" in str(e) for e in report.errors)
