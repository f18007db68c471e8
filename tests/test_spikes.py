"""Spike detection on small counts: a real burst fires; noise, one loud author and reposts don't."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

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
    found = spikes.find_spikes(burst, RULE, ends(), baseline={})
    assert found, "six people in twenty minutes must fire"
    first = found[0]
    assert (first.hazard, first.level, first.area_code) == ("flood", "village", "v1")
    assert first.observed >= 4 and first.authors >= 3 and first.score > 3


def test_noise_below_the_minimum_does_not_fire():
    noise = events([(10, "a1", "h1"), (50, "a2", "h2"), (100, "a3", "h3")])
    assert spikes.find_spikes(noise, RULE, ends(), baseline={}) == []


def test_one_author_shouting_does_not_fire():
    shouting = events([(10 + i, "loud", f"h{i}") for i in range(20)])
    assert spikes.find_spikes(shouting, RULE, ends(), baseline={}) == []


def test_reposts_count_once():
    reposts = events([(10 + i, f"a{i}", "same-text") for i in range(10)])
    assert spikes.find_spikes(reposts, RULE, ends(), baseline={}) == []


def test_usual_level_is_not_a_spike():
    burst = events([(10 + i, f"a{i}", f"h{i}") for i in range(6)])
    assert spikes.find_spikes(burst, RULE, ends(), baseline={("flood", "village", "v1"): 6.0}) == []


def test_window_ends_are_bucket_boundaries_and_now():
    got = spikes.window_ends(T0 + timedelta(minutes=17), timedelta(minutes=15))
    assert got == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10), T0 + timedelta(minutes=15), T0 + timedelta(minutes=17)]
    on_boundary = spikes.window_ends(T0 + timedelta(minutes=15), timedelta(minutes=10))
    assert on_boundary == [T0 + timedelta(minutes=10), T0 + timedelta(minutes=15)]


def test_a_burst_alerts_in_the_window_ending_now_not_a_bucket_later():
    burst = events([(61 + i / 2, f"a{i}", f"h{i}") for i in range(6)])  # 01:01 to 01:03:30
    now = T0 + timedelta(minutes=64)
    found = spikes.find_spikes(burst, RULE, spikes.window_ends(now, timedelta(hours=1)), baseline={})
    assert found and found[0].window_end == now


def test_each_author_once_per_window_and_windows_slide():
    # one author twice and a repost: 3 counted of 5 rows, in every window that holds them
    rows = events([(10, "a1", "h1"), (12, "a1", "h2"), (14, "a2", "h3"), (16, "a3", "h3"), (18, "a4", "h4")])
    table = spikes.window_counts(rows, RULE, ends())
    by_end = table.set_index("window_end")["observed"]
    assert by_end[T0 + timedelta(minutes=10)] == 1  # a post at the window's end is inside it
    assert by_end[T0 + timedelta(minutes=15)] == 2  # a1 once, a2
    full = table[table["window_end"] == T0 + timedelta(minutes=20)].iloc[0]
    assert (full["observed"], full["authors"], full["post_ids"]) == (3, 3, (0, 2, 4))
    assert table["window_end"].max() == T0 + timedelta(minutes=75)  # the 18-minute post leaves the 60-minute window


def test_bucket_counts_take_each_author_once_per_bucket():
    rows = events([(1, "a1", "h1"), (2, "a1", "h2"), (3, "a2", "h3"), (7, "a1", "h4")])
    got = spikes.bucket_counts(rows)
    assert got["posts"].tolist() == [2, 1] and got["authors"].tolist() == [2, 1]


def _table(p_observed, level_areas):
    return pd.DataFrame({
        "hazard": "flood", "level": "village", "area_code": [f"v{i}" for i in range(len(p_observed))],
        "window_end": T0, "observed": p_observed, "authors": p_observed, "expected": 0.05,
    })


def test_testing_many_villages_raises_the_bar():
    """Four posts where 0.05 were expected: alarming in a map of 5 villages, not in one of 5000."""
    table = _table([4], None)
    assert spikes.evaluate(table, RULE, {"village": 5})["fired"].all()
    assert not spikes.evaluate(table, RULE, {"village": 5000})["fired"].any()


def test_benjamini_hochberg_step_up_lets_a_second_village_through():
    """Two villages burning at once: the weaker one passes at rank 2 with twice the bound."""
    alone = spikes.evaluate(_table([6, 0], None).assign(observed=[4, 0], authors=[4, 0]), RULE, {"village": 5000})
    pair = spikes.evaluate(_table([9, 4], None), RULE, {"village": 5000})
    assert not alone["fired"].iloc[0]  # p(4 | 0.05) = 2.6e-7 > 1e-3/5000
    assert pair["fired"].tolist() == [True, True]
    assert pair["threshold"].iloc[1] == pytest.approx(2 * 1e-3 / 5000)


def test_overdispersion_makes_the_tail_heavier():
    poisson_p = spikes.tail([5], [1.0], 0.0)[0]
    negbin_p = spikes.tail([5], [1.0], 1.0)[0]
    assert negbin_p > 5 * poisson_p


def test_alert_explains_itself():
    burst = events([(10 + i, f"a{i}", f"h{i}") for i in range(6)])
    burst["terms"] = [("banjir",)] * 3 + [("bnjr", "banjir")] * 3
    (first, *_) = spikes.find_spikes(burst, RULE, ends(), baseline={})
    why = first.explanation()
    assert why["terms"] == ["banjir", "bnjr"] and why["post_ids"] == list(first.post_ids)
    assert why["p_value"] <= why["threshold"] and why["areas_tested"] == 148 and why["window_minutes"] == 60


def test_window_counts_collect_each_windows_posts_and_terms_as_groupby_would():
    """`window_counts` splits the sorted rows per window instead of a Python aggregation per
    group: the same posts (in row order) and the same union of terms as `groupby().agg`."""
    import random

    rng = random.Random(3)
    rows = [{"post_id": i, "created_at": T0 + timedelta(minutes=rng.uniform(0, 120)), "author": f"a{rng.randrange(30)}",
             "text_hash": f"h{rng.randrange(300)}", "hazard": rng.choice(["flood", "fire"]), "level": rng.choice(["village", "district"]),
             "area_code": f"v{rng.randrange(4)}", "terms": rng.choice([("banjir",), ["api", "banjir"], (), None, ("kebakaran",)])}
            for i in range(400)]
    frame = pd.DataFrame.from_records(rows, columns=spikes.EVENT_COLUMNS + ["terms"])
    rules = {**RULE, "fire": spikes.Rule(window=timedelta(minutes=15), min_posts=3, min_authors=3, alpha=1e-3)}
    got = spikes.window_counts(frame, rules, ends())
    counted = spikes.deduplicated(spikes.window_rows(frame, rules, ends()), spikes.SERIES + ["window_end"])
    grouped = counted.groupby(spikes.SERIES + ["window_end"], sort=True)
    want_posts = grouped["post_id"].agg(tuple).tolist()
    want_terms = grouped["terms"].agg(lambda v: tuple(sorted({t for x in v if isinstance(x, (list, tuple)) for t in x}))).tolist()
    assert len(got) == len(want_posts) > 20
    assert got["post_ids"].tolist() == want_posts
    assert got["terms"].tolist() == want_terms
    assert all(type(p) is int for ids in got["post_ids"] for p in ids)


def test_window_counts_numbering_the_text_columns_changes_no_row():
    """`window_counts` groups and de-duplicates by numbers standing for the series, author and
    text hash: every row and column equal to grouping the repeated rows by the text itself,
    missing authors (not counted as an author) and a series with a missing part (left out) too."""
    import random

    rng = random.Random(5)
    rows = [{"post_id": i, "created_at": T0 + timedelta(minutes=rng.uniform(0, 120)),
             "author": rng.choice([None, *(f"a{k}" for k in range(20))]), "text_hash": f"h{rng.randrange(200)}",
             "hazard": rng.choice(["flood", "fire"]), "level": rng.choice(["village", "district", "regency"]),
             "area_code": rng.choice([None, "v1", "v2", "51.08", "v10"]), "terms": rng.choice([("banjir",), (), None])}
            for i in range(500)]
    frame = pd.DataFrame.from_records(rows, columns=spikes.EVENT_COLUMNS + ["terms"])
    rules = {**RULE, "fire": spikes.Rule(window=timedelta(minutes=15), min_posts=3, min_authors=3, alpha=1e-3)}
    got = spikes.window_counts(frame, rules, ends())
    counted = spikes.deduplicated(spikes.window_rows(frame, rules, ends()), spikes.SERIES + ["window_end"])
    want = counted.groupby(spikes.SERIES + ["window_end"], sort=True).agg(
        observed=("post_id", "size"), authors=("author", "nunique"), minutes=("window_minutes", "first")).reset_index()
    assert len(got) == len(want) > 20 and got["area_code"].notna().all()
    for column in spikes.SERIES + ["window_end", "observed", "authors"]:
        assert got[column].tolist() == want[column].tolist(), column
    assert (got["window_start"] == want["window_end"] - pd.to_timedelta(want["minutes"], unit="min")).all()
