"""Spike detection on small counts: a real burst fires; noise, one loud author and reposts don't."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from siaga import spikes

T0 = datetime(2026, 1, 15, 0, 0, tzinfo=timezone.utc)
RULE = {"flood": spikes.Rule(window=timedelta(minutes=60), min_posts=4, min_authors=3, alpha=1e-3)}


def events(rows):
    return pd.DataFrame.from_records(
        [
            {"post_id": i, "created_at": T0 + timedelta(minutes=m), "author": a, "text_hash": h, "hazard": "flood", "level": "village", "area_code": "v1"}
            for i, (m, a, h) in enumerate(rows)
        ],
        columns=spikes.EVENT_COLUMNS,
    )


def ends():
    return spikes.window_ends(T0 + timedelta(hours=2), timedelta(hours=2))


def test_burst_of_distinct_people_fires():
    burst = events([(10 + i, f"a{i}", f"h{i}") for i in range(6)])
    found = spikes.detect(burst, RULE, ends(), baseline={})
    assert found, "six people in twenty minutes must fire"
    first = found[0]
    assert (first.hazard, first.level, first.area_code) == ("flood", "village", "v1")
    assert first.observed >= 4 and first.authors >= 3 and first.score > 3


def test_noise_below_the_minimum_does_not_fire():
    noise = events([(10, "a1", "h1"), (50, "a2", "h2"), (100, "a3", "h3")])
    assert spikes.detect(noise, RULE, ends(), baseline={}) == []


def test_one_author_shouting_does_not_fire():
    shouting = events([(10 + i, "loud", f"h{i}") for i in range(20)])
    assert spikes.detect(shouting, RULE, ends(), baseline={}) == []


def test_reposts_count_once():
    reposts = events([(10 + i, f"a{i}", "same-text") for i in range(10)])
    assert spikes.detect(reposts, RULE, ends(), baseline={}) == []


def test_usual_level_is_not_a_spike():
    burst = events([(10 + i, f"a{i}", f"h{i}") for i in range(6)])
    assert spikes.detect(burst, RULE, ends(), baseline={("flood", "village", "v1"): 6.0}) == []


def test_window_ends_are_bucket_boundaries():
    got = spikes.window_ends(T0 + timedelta(minutes=17), timedelta(minutes=15))
    assert got == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10), T0 + timedelta(minutes=15)]
