"""Backtest candidate hazard lists on stored history before they go live.

An operator changes a keyword file; before it is in force they want to know which alerts it
would have added, removed or changed. The backtest re-tags the stored posts of a period with both
the lists in force and the candidate lists, runs the same counting and spike detection the
detect DAG runs (`counting.events_of`, `spikes.find_spikes`, the baseline fitted on stored
history, the settings in config/detection.yaml), and compares the alert episodes. Nothing is
written: the database is only read.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from tqdm import tqdm

from siaga import baseline, counting, detection_config, hazard_lists, incidents, spikes
from siaga.counting import HazardEvidence
from siaga.detection_config import DetectSettings
from siaga.geotag import Geotagger, default_geotagger
from siaga.hazard_config import hazards_dir_of
from siaga.hazards import HazardSet
from siaga.store import Post, session_scope


@dataclass(frozen=True)
class Episode:
    """The alerts one series would have fired in a row, no further apart than the incident gap
    (as an incident would group them): what a duty officer would have seen."""

    hazard: str
    level: str
    area_code: str
    area_name: str
    first: datetime
    last: datetime
    peak_observed: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.hazard, self.level, self.area_code)


@dataclass
class Scores:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def precision(self) -> float | None:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else None

    @property
    def recall(self) -> float | None:
        wanted = self.true_positive + self.false_negative
        return self.true_positive / wanted if wanted else None


@dataclass
class BacktestResult:
    posts: int
    in_force: list[Episode]
    candidate: list[Episode]
    added: list[Episode] = field(default_factory=list)
    removed: list[Episode] = field(default_factory=list)
    changed: list[tuple[Episode, Episode]] = field(default_factory=list)
    labelled_posts: int = 0
    scores_in_force: dict[str, Scores] = field(default_factory=dict)
    scores_candidate: dict[str, Scores] = field(default_factory=dict)


def candidate_lists(path: Path) -> HazardSet:
    """A config directory (with hazards/) or a hazards directory itself."""
    return HazardSet.load(hazards_dir_of(path))


def run_backtest(
    candidate: HazardSet,
    start: datetime,
    end: datetime,
    db_url: str | None = None,
    geotagger: Geotagger | None = None,
    progress: TextIO | None = sys.stderr,
    settings: DetectSettings | None = None,
) -> BacktestResult:
    """The episodes the lists in force and `candidate` would have alerted in [start, end], and
    how they differ. `settings` default to those of config/detection.yaml, as in the DAG."""
    settings = settings or detection_config.load()
    geotagger = geotagger or default_geotagger()
    n_areas, road_villages = counting.area_universe(geotagger.gaz)
    with session_scope(db_url) as session:
        in_force = hazard_lists.in_force(session, remember=False)
        longest = max(counting.longest_window(in_force), counting.longest_window(candidate))
        posts = session.scalars(
            select(Post).where(Post.created_at > start - longest, Post.created_at <= end).order_by(Post.created_at, Post.id)
        ).all()
        model = baseline.load_baseline(session, start, settings.baseline_days, n_areas)
    places, matches_now, matches_new, labels = _tag_all(posts, geotagger, in_force, candidate, progress)
    ends = _ends(start, end)
    gap = settings.incident_gap
    result = BacktestResult(
        posts=len(posts),
        in_force=_episodes(matches_now, places, road_villages, in_force, model, ends, n_areas, gap),
        candidate=_episodes(matches_new, places, road_villages, candidate, model, ends, n_areas, gap),
    )
    _diff(result, gap)
    result.labelled_posts = len(labels)
    result.scores_in_force = _scores(labels, matches_now)
    result.scores_candidate = _scores(labels, matches_new)
    return result


def _ends(start: datetime, end: datetime) -> list[datetime]:
    first = spikes.bucket_floor(start) + spikes.BUCKET
    out = []
    while first <= end:
        out.append(first)
        first += spikes.BUCKET
    return out


def _tag_all(
    posts: list[Post], geotagger: Geotagger, in_force: HazardSet, candidate: HazardSet, progress: TextIO | None
) -> tuple[dict[int, list[Any]], list[HazardEvidence], list[HazardEvidence], dict[int, set[str]]]:
    """Geotag each post once and classify it with both sets of lists. Only posts placed in the
    region get counting places; every post is classified, since labels measure the lists."""
    places: dict[int, list[Any]] = {}
    now_matches: list[HazardEvidence] = []
    new_matches: list[HazardEvidence] = []
    labels: dict[int, set[str]] = {}
    for post in tqdm(posts, desc="backtest", unit="post", file=progress, disable=progress is None):
        geo = geotagger.tag(post.text, lat=post.lat, lon=post.lon)
        if isinstance(post.raw, dict) and isinstance(post.raw.get("labels"), list):
            labels[post.id] = {str(x) for x in post.raw["labels"]}
        if geo.in_region:
            places[post.id] = [p for p in geo.places if counting.counts_towards_areas(p)]
        now_matches += _evidence(post, in_force.classify(post.text))
        new_matches += _evidence(post, candidate.classify(post.text))
    return places, now_matches, new_matches, labels


def _evidence(post: Post, matches: Iterable[Any]) -> list[HazardEvidence]:
    return [
        HazardEvidence(post.id, post.created_at, post.author, post.text_hash, m.hazard, tuple(m.terms), bool(m.severity_cues))
        for m in matches
    ]


def _episodes(
    matches: list[HazardEvidence],
    places: dict[int, list[Any]],
    road_villages: dict[str, tuple[str, ...]],
    hazard_set: HazardSet,
    model: Any,
    ends: list[datetime],
    n_areas: dict[str, int],
    gap: timedelta,
) -> list[Episode]:
    counted = [m for m in matches if m.post_id in places]  # posts placed in the region
    events, areas, _ = counting.events_of(counted, places, road_villages)
    found = spikes.find_spikes(events, spikes.rules_of(hazard_set, model.dispersion), ends, model, n_areas)
    kept = [s for s in found if not incidents.inhibited(s, [f for f in found if f.window_end == s.window_end], areas)]
    episodes: list[Episode] = []
    open_by_key: dict[tuple[str, str, str], Episode] = {}
    for s in sorted(kept, key=lambda s: (s.window_end, s.hazard, s.level, s.area_code)):
        key = (s.hazard, s.level, s.area_code)
        current = open_by_key.get(key)
        if current is not None and s.window_end - current.last <= gap:
            grown = Episode(*key, current.area_name, current.first, s.window_end, max(current.peak_observed, s.observed))
            episodes[episodes.index(current)] = grown
            open_by_key[key] = grown
            continue
        area = areas.get((s.level, s.area_code))
        episode = Episode(*key, area.name if area else s.area_code, s.window_end, s.window_end, s.observed)
        episodes.append(episode)
        open_by_key[key] = episode
    return episodes


def _diff(result: BacktestResult, gap: timedelta) -> None:
    """Added, removed and changed episodes, matched by series and time (overlapping, or no
    more than `gap` apart)."""
    unmatched = list(result.candidate)
    for old in result.in_force:
        twin = next((new for new in unmatched if new.key == old.key and new.first <= old.last + gap and old.first <= new.last + gap), None)
        if twin is None:
            result.removed.append(old)
            continue
        unmatched.remove(twin)
        if (twin.first, twin.peak_observed) != (old.first, old.peak_observed):
            result.changed.append((old, twin))
    result.added = unmatched


def _scores(labels: dict[int, set[str]], matches: list[HazardEvidence]) -> dict[str, Scores]:
    """Post-level precision and recall per hazard, on posts that carry labels."""
    found: dict[int, set[str]] = {}
    for m in matches:
        found.setdefault(m.post_id, set()).add(m.hazard)
    scores: dict[str, Scores] = {}
    for post_id, wanted in labels.items():
        got = found.get(post_id, set())
        for hazard in wanted | got:
            s = scores.setdefault(hazard, Scores())
            if hazard in wanted and hazard in got:
                s.true_positive += 1
            elif hazard in got:
                s.false_positive += 1
            else:
                s.false_negative += 1
    return scores


def format_result(result: BacktestResult, start: datetime, end: datetime) -> str:
    lines = [f"backtest {start.isoformat()} .. {end.isoformat()}: {result.posts} stored posts"]
    lines.append(f"alerts with the lists in force: {len(result.in_force)}; with the candidate lists: {len(result.candidate)}")
    for title, episodes in (("ADDED (candidate only)", result.added), ("REMOVED (in force only)", result.removed)):
        lines.append(f"\n{title}: {len(episodes)}")
        lines += [f"  + {_describe(e)}" if title.startswith("ADDED") else f"  - {_describe(e)}" for e in episodes]
    lines.append(f"\nCHANGED: {len(result.changed)}")
    for old, new in result.changed:
        lines.append(f"  ~ {_describe(old)}\n      now {new.first.isoformat()} .. {new.last.isoformat()}, peak {new.peak_observed} posts")
    if result.labelled_posts:
        lines.append(f"\nOn {result.labelled_posts} labelled posts (precision / recall, in force -> candidate):")
        for hazard in sorted(set(result.scores_in_force) | set(result.scores_candidate)):
            a = result.scores_in_force.get(hazard, Scores())
            b = result.scores_candidate.get(hazard, Scores())
            lines.append(f"  {hazard:18} {_pct(a.precision)} / {_pct(a.recall)}  ->  {_pct(b.precision)} / {_pct(b.recall)}")
    return "\n".join(lines)


def _describe(e: Episode) -> str:
    return f"{e.hazard} in {e.level} {e.area_name} ({e.area_code}): {e.first.isoformat()} .. {e.last.isoformat()}, peak {e.peak_observed} posts"


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.1%}"
