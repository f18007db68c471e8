"""A hazard reported only as the consequence of another (a queue behind an accident) is the
other's post: counted once, for the hazard that reaches the same agency."""
from __future__ import annotations

import shutil
from pathlib import Path

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


def test_a_loop_of_subsumptions_is_refused_where_it_closes(tmp_path):
    """traffic_jam subsumed by traffic_accident and the accident by the jam: a post naming both
    reported neither, and both checks said "ok"."""
    target = tmp_path / "hazards"
    shutil.copytree(settings.config_dir() / "hazards", target)
    path = target / "traffic_accident.yaml"
    path.write_text(path.read_text().replace("\nterms:\n", "\nsubsumed_by: [traffic_jam]\nterms:\n", 1))
    report = check_directory(target)
    loops = [str(e) for e in report.errors if "loop" in str(e)]
    assert any("traffic_accident.yaml" in e and "subsumed_by[0]" in e and "traffic_accident → traffic_jam → traffic_accident" in e
               for e in loops), report.errors
    assert any("traffic_jam.yaml" in e for e in loops), report.errors
    assert check_directory(settings.config_dir() / "hazards").errors == []  # a chain without a loop is fine


def test_a_folder_named_as_a_hazard_list_is_refused_not_skipped(tmp_path):
    """Docker makes a folder of a bind-mounted file missing on the host: flood.yaml a folder
    took flood out of the lists in force, and both checks passed."""
    target = tmp_path / "hazards"
    shutil.copytree(settings.config_dir() / "hazards", target)
    (target / "flood.yaml").unlink()
    (target / "flood.yaml").mkdir()
    report = check_directory(target)
    assert [(Path(e.file).name, e.line, e.field) for e in report.errors] == [("flood.yaml", 1, "(file)")], report.errors
    assert "directory" in report.errors[0].message
