"""Spike detection: is this hazard being talked about in this area more than usual, right now?

One angry post is not an incident; many people in one place within a window is. A window's count
takes each author once and each repost once, so one account shouting or a chain of retweets
cannot raise an alarm alone. The test is a Poisson tail against the series' baseline, guarded by
the hazard's minimum posts and minimum distinct authors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from scipy.stats import poisson

BUCKET = timedelta(minutes=5)
# A village with no history still has some chance of the word: never divide by zero, never
# call the first post of the year infinitely surprising.
EXPECTED_FLOOR = 0.2


@dataclass(frozen=True)
class Rule:
    """The detection settings of one hazard (from its keyword file)."""

    window: timedelta
    min_posts: int
    min_authors: int
    alpha: float  # the tail probability below which a count is a spike


@dataclass(frozen=True)
class Spike:
    hazard: str
    level: str
    area_code: str
    window_start: datetime
    window_end: datetime
    observed: int
    expected: float
    authors: int
    score: float  # -log10 of the tail probability
    post_ids: tuple[int, ...]


EVENT_COLUMNS = ["post_id", "created_at", "author", "text_hash", "hazard", "level", "area_code"]


def bucket_floor(when: datetime) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=when.tzinfo)
    return epoch + ((when - epoch) // BUCKET) * BUCKET


def window_ends(now: datetime, lookback: timedelta) -> list[datetime]:
    """Bucket boundaries in (now - lookback, now]: the windows detection evaluates."""
    last = bucket_floor(now)
    count = int(lookback / BUCKET)
    return [last - i * BUCKET for i in range(count)][::-1]


def deduplicated(window: pd.DataFrame) -> pd.DataFrame:
    """One post per author, then one per text: what a window's count is made of."""
    first_per_author = window.sort_values("created_at").drop_duplicates(["hazard", "level", "area_code", "author"])
    return first_per_author.drop_duplicates(["hazard", "level", "area_code", "text_hash"])


def detect(
    events: pd.DataFrame,
    rules: dict[str, Rule],
    ends: list[datetime],
    baseline: dict[tuple[str, str, str], float],
) -> list[Spike]:
    """Spikes among `events` (one row per post x hazard x area, EVENT_COLUMNS) for windows ending
    at `ends`. `baseline` gives the expected count per window of a series; missing is no history."""
    spikes: list[Spike] = []
    if events.empty:
        return spikes
    for hazard, rule in rules.items():
        of_hazard = events[events["hazard"] == hazard]
        if of_hazard.empty:
            continue
        for end in ends:
            start = end - rule.window
            window = of_hazard[(of_hazard["created_at"] > start) & (of_hazard["created_at"] <= end)]
            if window.empty:
                continue
            counted = deduplicated(window)
            for (level, area), group in counted.groupby(["level", "area_code"], sort=True):
                observed = len(group)
                authors = group["author"].nunique()
                if observed < rule.min_posts or authors < rule.min_authors:
                    continue
                expected = max(baseline.get((hazard, level, area), 0.0), EXPECTED_FLOOR)
                tail = float(poisson.sf(observed - 1, expected))
                if tail > rule.alpha:
                    continue
                spikes.append(
                    Spike(
                        hazard=hazard,
                        level=str(level),
                        area_code=str(area),
                        window_start=start,
                        window_end=end,
                        observed=observed,
                        expected=round(expected, 3),
                        authors=int(authors),
                        score=round(-math.log10(max(tail, 1e-300)), 2),
                        post_ids=tuple(int(i) for i in group.sort_values("created_at")["post_id"]),
                    )
                )
    return spikes

