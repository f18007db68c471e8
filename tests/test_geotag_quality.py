"""Precision/recall per place kind on the project's labelled Buleleng posts, with a floor.

The set (tests/data/geotag_cases.jsonl) covers every ambiguity the issue lists, both ways; the
scorer is the one benchmarks/geotag_quality.py prints."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from siaga.geotag import default_geotagger

ROOT = Path(__file__).resolve().parents[1]


def _quality_module():
    spec = importlib.util.spec_from_file_location("geotag_quality", ROOT / "benchmarks" / "geotag_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report():
    q = _quality_module()
    cases = q.load_cases()
    return q.score(default_geotagger(), cases), cases


def test_case_set_covers_the_issue(report):
    _, cases = report
    text = " ".join(c["text"].lower() for c in cases)
    for word in ("bila", "bukti", "tembok", "les", "telaga", "selat", "patas", "bengkel", "panji", "musi",
                 "galungan", "banjar", "banjir", "kerobokan", "penarukan", "beratan", "wanagiri", "kampung baru",
                 "gunungsari", "sepang", "kayuputih", "buleleng", "denpasar", "badung", "jembrana", "jakarta",
                 "tinga-tinga", "tingatinga", "busung biu", "desa ", "ds.", "kel.", "kec."):
        assert word in text, word
    assert sum(1 for c in cases if c["in_region"]) >= 20 and sum(1 for c in cases if not c["in_region"]) >= 20
    assert any("lat" in c for c in cases)


def test_village_level_f1_floor(report):
    (table, errors), _ = report
    assert table["village"]["f1"] >= 0.95, errors


@pytest.mark.parametrize("kind", ["district", "road", "landmark", "in_region"])
def test_other_kinds_floor(report, kind):
    (table, errors), _ = report
    assert table[kind]["precision"] >= 0.9 and table[kind]["recall"] >= 0.85, errors


def test_no_outside_post_placed_in_buleleng(report):
    (table, errors), _ = report
    assert table["in_region"]["precision"] == 1.0, [e for e in errors if "in_region" in e]
