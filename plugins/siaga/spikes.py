"""Spike detection: is this hazard being talked about in this area more than usual, right now?

One angry post is not an incident; many people in one place within a window is. A window's count
takes each author once and each repost once, so one account shouting or a chain of retweets
cannot raise an alarm alone.

The test is a tail probability of the window's count against the series' expected count (from
`baseline`): Poisson when the hazard's background is Poisson-like, negative binomial when the
baseline fit found overdispersion (traffic: rush-hour clumps). On small counts this is what
STA/LTA tries to be — short-term count over long-term rate — but calibrated: three posts where
0.01 were expected and thirty where ten were expected get honest, comparable scores, where a
plain ratio calls both "huge". Sudden-onset hazards (earthquake, tsunami) need no separate
method: their configured windows are 15 minutes, which is the short-term window of STA/LTA.

Testing ~150 villages every tick, a per-series level alpha would give ~150x the false alarms:
p-values are controlled with Benjamini–Hochberg per hazard, level and window end, over all the
areas of that level (not only those with posts), so the alarm rate does not grow with the map.

Each hazard's window, minimum posts and authors and sensitivity come from its keyword file
(`rules_of`). Everything here is vectorised over series (pandas/numpy): one tick over all of
Indonesia's villages stays well under two seconds (benchmarks/bench_detect_tick.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol

import numpy as np
import pandas as pd
from scipy.special import betainc, pdtrc

if TYPE_CHECKING:
    from siaga.hazards import HazardSet

BUCKET = timedelta(minutes=5)
# With no baseline at all (a test, a dict without the series): about one post per village per
# fifty days, so three people in an hour in a quiet village is plainly unusual.
DEFAULT_EXPECTED_PER_HOUR = 0.02 / 24
# How many areas a level has when the caller does not say (Buleleng: 148 villages, 9 kecamatan).
DEFAULT_AREAS = {"village": 148, "road": 148, "district": 9, "regency": 1}


@dataclass(frozen=True)
class Rule:
    """The detection settings of one hazard (from its keyword file)."""

    window: timedelta
    min_posts: int
    min_authors: int
    alpha: float  # false-discovery level per hazard, level and window end
    dispersion: float = 0.0  # negative-binomial 1/size; 0 = Poisson


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
    p_value: float = 0.0
    threshold: float = 0.0  # the Benjamini–Hochberg bound this p-value passed
    tested: int = 1  # areas tested together (the m of the correction)
    method: str = "poisson"
    terms: tuple[str, ...] = field(default_factory=tuple)

    def explanation(self) -> dict:
        """What an alert says about itself: enough for a duty officer to judge it."""
        return {
            "observed": self.observed,
            "expected": round(self.expected, 4),
            "authors": self.authors,
            "score": self.score,
            "p_value": float(f"{self.p_value:.3g}"),
            "threshold": float(f"{self.threshold:.3g}"),
            "areas_tested": self.tested,
            "method": self.method,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "window_minutes": int((self.window_end - self.window_start) / timedelta(minutes=1)),
            "terms": list(self.terms),
            "post_ids": list(self.post_ids),
        }


def rules_of(hazard_set: HazardSet, dispersion: Mapping[str, float] | None = None) -> dict[str, Rule]:
    """Each hazard's rule from its keyword file, with the overdispersion the baseline measured
    for it (none measured: Poisson)."""
    dispersion = dispersion or {}
    return {
        h.id: Rule(
            window=timedelta(minutes=h.window_minutes),
            min_posts=h.min_posts,
            min_authors=h.min_authors,
            alpha=_alpha(h.sensitivity),
            dispersion=dispersion.get(h.id, 0.0),
        )
        for h in hazard_set.hazards.values()
    }


def _alpha(sensitivity: float) -> float:
    """Sensitivity 0..1 in config, as the false-discovery level of one tick's test over a
    level's areas: 0.5 -> 1e-3, 1 -> 1e-2, 0 -> 1e-4."""
    return 10 ** (-4 + 2 * min(max(sensitivity, 0.0), 1.0))


class Baseline(Protocol):
    def expected(self, windows: pd.DataFrame) -> np.ndarray:
        """Expected counts for rows with hazard, level, area_code, window_start, window_end."""


EVENT_COLUMNS = ["post_id", "created_at", "author", "text_hash", "hazard", "level", "area_code"]
SERIES = ["hazard", "level", "area_code"]


def bucket_floor(when: datetime) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=when.tzinfo)
    return epoch + ((when - epoch) // BUCKET) * BUCKET


def window_ends(now: datetime, lookback: timedelta) -> list[datetime]:
    """Bucket boundaries in (now - lookback, now], and `now` itself: the windows detection
    evaluates. The window ending now lets a burst alert on the run that sees it, not up to a
    bucket later (boundaries alone cost a median minutes of delay under a real scheduler)."""
    last = bucket_floor(now)
    count = int(lookback / BUCKET)
    ends = [last - i * BUCKET for i in range(count)][::-1]
    return ends + [now] if now > last else ends


# --- counting ---------------------------------------------------------------------------------


def deduplicated(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One post per author, then one per text, within each group of `keys`: what a count is
    made of. A repost chain by many accounts shares one text_hash and counts once."""
    ordered = rows.sort_values(["created_at", "post_id"], kind="stable")
    first_per_author = ordered.drop_duplicates(keys + ["author"])
    return first_per_author.drop_duplicates(keys + ["text_hash"])


def window_rows(events: pd.DataFrame, rules: Mapping[str, Rule], ends: list[datetime]) -> pd.DataFrame:
    """Each event repeated once per window end whose window (end - window, end] holds it.

    Vectorised: for each event the window ends that contain it form a contiguous run of the
    sorted `ends`, found by two binary searches; no loop over series or windows."""
    if events.empty or not ends:
        return events.assign(window_end=pd.Series(dtype="datetime64[ns, UTC]"), window_minutes=pd.Series(dtype=float)).iloc[0:0]
    known = events[events["hazard"].isin(list(rules))]
    if known.empty:
        return known.assign(window_end=pd.Series(dtype="datetime64[ns, UTC]"), window_minutes=pd.Series(dtype=float))
    minutes = known["hazard"].map({h: r.window / timedelta(minutes=1) for h, r in rules.items()}).to_numpy(float)
    created = pd.to_datetime(known["created_at"], utc=True)
    end_index = pd.DatetimeIndex(pd.to_datetime(ends, utc=True)).as_unit("ns")
    end_ns = end_index.asi8
    created_ns = created.dt.as_unit("ns").astype("int64").to_numpy()
    lo = np.searchsorted(end_ns, created_ns, side="left")  # first end >= created
    hi = np.searchsorted(end_ns, created_ns + (minutes * 60e9).astype(np.int64), side="left")  # ends < created + window
    n = np.clip(hi - lo, 0, None)
    rep = np.repeat(np.arange(len(known)), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    out = known.iloc[rep].reset_index(drop=True)
    out["window_end"] = end_index[lo[rep] + offsets]
    out["window_minutes"] = minutes[rep]
    return out


def window_counts(events: pd.DataFrame, rules: Mapping[str, Rule], ends: list[datetime]) -> pd.DataFrame:
    """Deduplicated count, distinct authors and evidence posts per series and window end.

    The text columns are numbered once per event (`_coded`), before `window_rows` repeats each
    event for every window holding it: de-duplicating and grouping the repeated rows by their
    text hashed every string of them again, and did so twice (the benchmark's 6,000 events
    make 33,000 window rows: two thirds of this function's time)."""
    coded, series = _coded(events)
    rows = window_rows(coded, rules, ends)
    columns = SERIES + ["window_end", "window_start", "observed", "authors", "post_ids", "terms"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    counted = deduplicated(rows, [_SERIES_CODE, "window_end"])
    grouped = counted.groupby([_SERIES_CODE, "window_end"], sort=True)
    table = grouped.agg(observed=("post_id", "size"), authors=("author", "nunique"), window_minutes=("window_minutes", "first"))
    group = grouped.ngroup().to_numpy()
    table["post_ids"] = [tuple(ids) for ids in _per_group(counted["post_id"], group, len(table))]
    if "terms" in counted.columns:
        table["terms"] = [_union_terms(terms) for terms in _per_group(counted["terms"], group, len(table))]
    else:
        table["terms"] = [()] * len(table)
    table = table.reset_index()
    codes = table.pop(_SERIES_CODE).to_numpy()
    for i, name in enumerate(SERIES):
        table.insert(i, name, series.get_level_values(name).take(codes))
    table["window_start"] = table["window_end"] - pd.to_timedelta(table["window_minutes"], unit="min")
    return table[columns]


_SERIES_CODE = "series_code"  # `_coded`'s number of a row's series


def _coded(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.MultiIndex]:
    """The columns `window_counts` reads, its text ones as numbers: the series (SERIES) numbered
    in their sorted order, so grouping by the number orders groups as grouping by the text
    did, and author and text hash numbered as they come (equal text, equal number; a missing
    author stays missing, so `nunique` still leaves it out). Rows of a series with a missing
    part are left out, as grouping by the text left them out."""
    by_series = events.groupby(SERIES, sort=True)
    number = by_series.ngroup().to_numpy()
    series = pd.MultiIndex.from_frame(by_series.size().reset_index()[SERIES])
    keep = number >= 0
    author, _ = pd.factorize(events["author"])
    text_hash, _ = pd.factorize(events["text_hash"])
    coded = pd.DataFrame({
        "post_id": events["post_id"].array[keep], "created_at": events["created_at"].array[keep],
        "author": np.where(author < 0, np.nan, author)[keep], "text_hash": text_hash[keep],
        "hazard": events["hazard"].array[keep], _SERIES_CODE: number[keep],
    })
    if "terms" in events.columns:
        coded["terms"] = events["terms"].array[keep]
    return coded, series


def _per_group(values: pd.Series, group: np.ndarray, n_groups: int) -> list[list[Any]]:
    """Each group's values (`group`: the `ngroup` number of each row), in row order within a
    group: what `groupby(...).agg(tuple)` collects, without the Series pandas builds for every
    group to call a Python function on it (those were most of `window_counts`' time: thousands
    of windows). Python objects, as iterating the Series gives them."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1), side="left").tolist()
    ordered = values.to_numpy()[order].tolist()
    return [ordered[bounds[g]:bounds[g + 1]] for g in range(n_groups)]


def _union_terms(values: Iterable[object]) -> tuple[str, ...]:
    seen: set[str] = set()
    for v in values:
        if isinstance(v, (list, tuple)):
            seen.update(map(str, v))
    return tuple(sorted(seen))


def bucket_counts(events: pd.DataFrame) -> pd.DataFrame:
    """Posts and distinct authors per series and 5-minute bucket (each author and each text
    once per bucket): the `area_counts` rows the timeline charts and the baseline learns from."""
    columns = SERIES + ["bucket_start", "posts", "authors"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    created = pd.to_datetime(events["created_at"], utc=True)
    rows = events.assign(bucket_start=created.dt.floor(BUCKET))
    counted = deduplicated(rows, SERIES + ["bucket_start"])
    table = counted.groupby(SERIES + ["bucket_start"], sort=True).agg(posts=("post_id", "size"), authors=("author", "nunique"))
    return table.reset_index()[columns]


# --- testing ----------------------------------------------------------------------------------


def tail(observed: np.ndarray, expected: np.ndarray, dispersion: np.ndarray | float = 0.0) -> np.ndarray:
    """P(X >= observed) under Poisson(expected), or a negative binomial with the same mean and
    variance mean + dispersion * mean^2 where dispersion > 0.

    Computed with the survival functions scipy.stats itself uses (Poisson: `pdtrc`; negative
    binomial with real size n and success probability q: the regularised incomplete beta
    I_{1-q}(k + 1, n)), from scipy.special: importing scipy.stats would add about 45 MB to every
    detect task's memory for two one-line functions."""
    observed = np.asarray(observed, dtype=float)
    expected = np.maximum(np.asarray(expected, dtype=float), 1e-12)
    dispersion = np.broadcast_to(np.asarray(dispersion, dtype=float), observed.shape)
    k = np.floor(observed - 1)
    below = k < 0  # observed <= 0: certain
    p = np.where(below, 1.0, pdtrc(np.maximum(k, 0.0), expected))
    over = dispersion > 0
    if over.any():
        size = 1.0 / dispersion[over]
        q = size / (size + expected[over])
        p[over] = np.where(below[over], 1.0, betainc(np.maximum(k[over], 0.0) + 1, size, 1 - q))
    return np.clip(p, 0.0, 1.0)


def evaluate(table: pd.DataFrame, rules: Mapping[str, Rule], n_areas: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Add p_value, threshold, tested and fired to a table of series windows (hazard, level,
    area_code, window_end, observed, authors, expected).

    Series below the hazard's minimum posts or distinct authors are not testable and get p = 1;
    they still count among the areas tested. Benjamini–Hochberg step-up per hazard, level and
    window end with m = the level's number of areas (or more, if more series came in)."""
    out = table.copy()
    if out.empty:
        for name in ("p_value", "threshold", "tested", "fired"):
            out[name] = pd.Series(dtype=float if name != "fired" else bool)
        return out
    n_areas = {**DEFAULT_AREAS, **(n_areas or {})}
    # factorize once and index small per-hazard arrays: Series.map over a million strings is
    # the slowest thing one could do here
    hazard_code, hazards = pd.factorize(out["hazard"])
    level_code, levels = pd.factorize(out["level"])
    end_code, _ = pd.factorize(out["window_end"])
    per_hazard = np.array([[rules[h].min_posts, rules[h].min_authors, rules[h].alpha, rules[h].dispersion] for h in hazards], dtype=float)
    min_posts, min_authors, alpha, dispersion = (per_hazard[hazard_code, i] for i in range(4))
    observed = out["observed"].to_numpy(float)
    guard = (observed >= min_posts) & (out["authors"].to_numpy(float) >= min_authors)
    p = np.ones(len(out))
    if guard.any():
        p[guard] = tail(observed[guard], out["expected"].to_numpy(float)[guard], dispersion[guard])
    # Benjamini–Hochberg step-up within each (hazard, level, window end) group, in numpy
    group = (hazard_code * len(levels) + level_code) * (end_code.max() + 1) + end_code
    order = np.lexsort((p, group))
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(out))
    rank[order] = np.arange(len(order)) - np.repeat(starts, sizes) + 1
    group_id = np.empty(len(out), dtype=np.int64)
    group_id[order] = np.repeat(np.arange(len(starts)), sizes)
    level_areas = np.array([n_areas.get(lv, 1) for lv in levels], dtype=float)[level_code]
    m = np.maximum(level_areas, sizes[group_id])
    passing = np.where(p <= alpha * rank / m, rank, 0.0)
    k = np.zeros(len(starts))
    np.maximum.at(k, group_id, passing)
    k = k[group_id]
    out["p_value"] = p
    out["threshold"] = alpha * np.maximum(k, 1) / m
    out["tested"] = m.astype(int)
    out["fired"] = guard & (rank <= k) & (k > 0)
    return out


def find_spikes(
    events: pd.DataFrame,
    rules: Mapping[str, Rule],
    ends: list[datetime],
    baseline: Baseline | Mapping[tuple[str, str, str], float],
    n_areas: Mapping[str, int] | None = None,
) -> list[Spike]:
    """Spikes among `events` (one row per post x hazard x area, EVENT_COLUMNS, optionally
    `terms`) for windows ending at `ends`. `baseline` is a fitted model or a mapping of expected
    counts per window by series (missing: DEFAULT_EXPECTED_PER_HOUR over the window)."""
    scored = score_windows(events, rules, ends, baseline, n_areas)
    if scored.empty:
        return []
    return spikes_of(scored[scored["fired"]], rules)


def score_windows(
    events: pd.DataFrame,
    rules: Mapping[str, Rule],
    ends: list[datetime],
    baseline: Baseline | Mapping[tuple[str, str, str], float],
    n_areas: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Every series window with posts, counted, expected and tested (`evaluate`'s columns), the
    ones that did not fire too: what the backtest reads to say why an alert did not fire."""
    table = window_counts(events, rules, ends)
    if table.empty:
        return table
    table["expected"] = expected_counts(baseline, table)
    return evaluate(table, rules, n_areas)


def expected_counts(baseline: Baseline | Mapping[tuple[str, str, str], float], table: pd.DataFrame) -> np.ndarray:
    if hasattr(baseline, "expected"):
        return np.asarray(baseline.expected(table), dtype=float)  # type: ignore[union-attr]
    hours = (pd.to_datetime(table["window_end"], utc=True) - pd.to_datetime(table["window_start"], utc=True)).dt.total_seconds() / 3600
    default = hours.to_numpy() * DEFAULT_EXPECTED_PER_HOUR
    keys = list(zip(table["hazard"], table["level"], table["area_code"]))
    return np.array([baseline.get(k, d) for k, d in zip(keys, default)], dtype=float)  # type: ignore[union-attr]


def spikes_of(fired: pd.DataFrame, rules: Mapping[str, Rule]) -> list[Spike]:
    """Fired rows as Spike records (few: this loop is over alarms, not series)."""
    out = []
    for row in fired.sort_values(["window_end", "hazard", "level", "area_code"]).itertuples(index=False):
        rule = rules[row.hazard]
        out.append(
            Spike(
                hazard=row.hazard,
                level=str(row.level),
                area_code=str(row.area_code),
                window_start=pd.Timestamp(row.window_start).to_pydatetime(),
                window_end=pd.Timestamp(row.window_end).to_pydatetime(),
                observed=int(row.observed),
                expected=round(float(row.expected), 4),
                authors=int(row.authors),
                score=round(-math.log10(max(float(row.p_value), 1e-300)), 2),
                post_ids=tuple(int(i) for i in row.post_ids),
                p_value=float(row.p_value),
                threshold=float(row.threshold),
                tested=int(row.tested),
                method="negative binomial" if rule.dispersion > 0 else "poisson",
                terms=tuple(row.terms) if isinstance(row.terms, (list, tuple)) else (),
            )
        )
    return out
