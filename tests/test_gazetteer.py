"""The gazetteer loads the real Buleleng data and answers geometry and name questions."""
from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from siaga.gazetteer import load_gazetteer
from siaga.normalise import fast_fold, key
from siaga.normalise import fold

ROOT = Path(__file__).resolve().parents[1]
DEVDATA = ROOT.parent / "shared" / "devdata" / "traffic_tweets_twitmacet" / "traffic_vs_nontraffic.csv"


@pytest.fixture(scope="module")
def gaz():
    return load_gazetteer(ROOT / "geodata", ROOT / "config" / "aliases.yaml")


def test_counts_and_codes(gaz):
    assert len(gaz.villages) == 148 and len(gaz.districts) == 9
    assert sum(v.type == "kelurahan" for v in gaz.villages) == 19
    assert {v.district for v in gaz.villages if key(v.name) == "kayuputih"} == {"Banjar", "Sukasada"}


def test_point_in_polygon(gaz):
    assert gaz.village_at(115.036, -8.160).name == "Kalibukbuk"
    assert gaz.village_at(115.22, -8.65) is None  # Denpasar
    for v in gaz.villages:
        assert gaz.village_at(v.lon, v.lat) is v


def test_adjacent_villages_are_symmetric_and_local(gaz):
    pemuteran = gaz.villages_named("Pemuteran")[0]
    near = {gaz.village(c).name for c in gaz.adjacent_villages(pemuteran.code)}
    assert {"Sumberkima", "Banyupoh"} <= near and "Tembok" not in near
    for v in gaz.villages:
        for c in gaz.adjacent_villages(v.code):
            assert v.code in gaz.adjacent_villages(c)
    with pytest.raises(KeyError):
        gaz.adjacent_villages("99.99")


def test_namesakes_and_word_lists(gaz):
    assert any(o.regency == "Kabupaten Badung" for o in gaz.namesakes["kerobokan"])
    assert {"bila", "bukti", "tembok", "les", "galungan", "banjar"} <= gaz.common_words
    assert "kerobokan" in gaz.shared_names and "pemuteran" not in gaz.shared_names
    assert any(o.name == "Kota Denpasar" for o in gaz.outside)


def test_roads_have_approximate_lines_through_their_villages(gaz):
    road = next(r for r in gaz.roads if r.id == "singaraja-gilimanuk")
    assert road.approximate and not road.generic and road.line.length > 0.4
    assert gaz.regency_polygon.buffer(0.01).contains(road.line)
    assert next(r for r in gaz.roads if r.id == "jl-ahmad-yani-singaraja").generic


def test_bad_alias_file_names_the_entry(tmp_path):
    bad = tmp_path / "aliases.yaml"
    bad.write_text("landmarks:\n  - name: Nowhere\n    village: Atlantis\n")
    with pytest.raises(ValueError, match=r"landmarks\[0\].*Atlantis"):
        load_gazetteer(ROOT / "geodata", bad)


def test_fast_fold_equals_fold():
    texts = []
    if DEVDATA.exists():
        with open(DEVDATA, encoding="utf-8", newline="") as handle:
            texts = [row["text"] for row in csv.DictReader(handle)][:3000]
    rng = random.Random(7)
    alphabet = "aAbBrR '`.-,eé…\u200b😀1"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(5000)]
    texts += ["Banjirrrr di Tinga-tinga!!", "Jum'at", "BANJIRRR", "café", "a'a'a"]
    for t in texts:
        a, b = fast_fold(t), fold(t)
        assert (a.text, a.offsets) == (b.text, b.offsets), t


def test_quick_fold_equals_fold():
    from siaga.normalise import quick_fold

    texts = ["Banjir di Tinga-tinga… 😀 parah", "BANJIRRR", "Jum'at", "café", "", "  ", "a.b,c", "x\u200by"]
    if DEVDATA.exists():
        with open(DEVDATA, encoding="utf-8", newline="") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)][:3000]
    for t in texts:
        a, b = quick_fold(t), fold(t)
        assert (a.text, tuple(a.offsets)) == (b.text, b.offsets), t
        if b.text:
            assert a.span(0, len(b.text)) == b.span(0, len(b.text))


def test_outside_places_share_their_repeated_parent_names(gaz):
    """One string per province, regency and kecamatan name, not one per place: with the
    national list that is ~20 MB of a detect task that builds its matchers (issue 14)."""
    by_province: dict[str, str] = {}
    for place in gaz.outside:
        if place.province:
            assert by_province.setdefault(place.province, place.province) is place.province
    assert len(by_province) > 1
