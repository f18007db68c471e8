"""Severity reflects reach: many authors, many villages or kecamatan, or the hazard's kind (an
earthquake felt by dozens is at least high)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from siaga.hazard_config import default_hazard_dir
from siaga.hazards import HazardSet
from siaga.severity import reach_severity, severities_of
from siaga.spikes import Spike
from siaga.vocabulary import SEVERITIES

T0 = datetime(2026, 1, 15, 20, 18, tzinfo=timezone.utc)


def villages(n, districts=1):
    return [("village", f"51.08.{(i % districts) + 1:02d}.{2001 + i}") for i in range(n)]


def test_a_quake_felt_by_dozens_is_at_least_high_even_from_one_village():
    assert reach_severity("earthquake", 34, villages(1)) == "high"
    assert reach_severity("earthquake", 3, villages(1)) == "low"


def test_many_kecamatan_or_villages_raise_severity():
    assert reach_severity("flood", 3, villages(3, districts=3)) == "high"
    assert reach_severity("flood", 3, villages(2, districts=2)) == "medium"
    assert reach_severity("flood", 3, villages(4)) == "medium"
    assert reach_severity("flood", 3, villages(1)) == "low"


def test_many_authors_raise_severity_for_any_hazard():
    assert reach_severity("fire", 25, []) == "high"
    assert reach_severity("fire", 10, []) == "medium"


@pytest.mark.parametrize("authors", [1, 5, 10, 20, 40])
def test_reach_never_lowers_a_spikes_severity(authors):
    hs = HazardSet.load(default_hazard_dir())
    ids = tuple(range(authors))
    s = Spike("earthquake", "regency", "51.08", T0 - timedelta(minutes=15), T0, authors, 0.01, authors, 9.0, ids)
    without = severities_of([s], hs, {"earthquake": set(ids)})
    posts = {i: {("village", f"51.08.0{1 + i % 3}.2001"): "x"} for i in ids}
    with_reach = severities_of([s], hs, {"earthquake": set(ids)}, posts)
    key = ("earthquake", "regency", "51.08", T0)
    assert SEVERITIES.index(with_reach[key]) >= SEVERITIES.index(without[key])
    if authors >= 10:
        assert SEVERITIES.index(with_reach[key]) >= SEVERITIES.index("high")
