"""Backtest candidate hazard lists on stored history before they go live, and say why.

An operator changes a keyword file; before it is in force they want to know which alerts it
would have added, removed or changed, and why. The backtest re-tags the stored posts of a period
with both the lists in force and the candidate lists, runs the same counting and spike detection
the detect DAG runs (`counting.events_of`, `spikes.score_windows`, the baseline fitted on stored
history, the settings in config/detection.yaml, or the candidate folder's own), and compares
the alert episodes. It explains itself:
- the config difference (`config_diff`): phrases added and removed per hazard, settings changed;
- for each added or removed term (and root, and exclusion), how many stored posts in the range
  it matches, how many of those it decides (the post's hazard flips with it), with examples;
- for each added, removed or changed alert, the reason in words: "peak 6 posts < min_posts 8",
  "term 'air bah' adds 3 posts in Sangsit";
- against the officers' verdicts (`verdicts`): confirmed incidents still alerted and false
  alarms no longer alerted, in force and candidate side by side.
Nothing is written: the database is only read.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, TextIO

import pandas as pd
from sqlalchemy import func, select
from tqdm import tqdm

from siaga import baseline, config_diff, counting, detection_config, hazard_lists, incidents, spikes, verdicts
from siaga.config_diff import ConfigDiff
from siaga.counting import HazardEvidence
from siaga.detection_config import DetectSettings
from siaga.geotag import Geotagger, default_geotagger
from siaga.hazard_config import hazards_dir_of
from siaga.hazards import HazardMatch, HazardSet
from siaga.messages import one_line, truncate
from siaga.normalise import squeeze, squeeze_fold, stem
from siaga.store import Post, session_scope
from siaga.verdicts import Verdict
from siaga.vocabulary import LOCAL_TZ, LOCAL_TZ_LABEL

MAX_EXAMPLES = 3
EXAMPLE_CHARS = 100


class BacktestRangeError(ValueError):
    """A period the backtest cannot run on (its end not after its start)."""


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
    peak_authors: int = 0
    post_ids: frozenset[int] = frozenset()  # every post its alerts cited

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


@dataclass(frozen=True)
class Example:
    post_id: int
    created_at: datetime
    text: str
    decides: bool  # the post's hazard flips with the phrase


@dataclass(frozen=True)
class TermEffect:
    """What one added or removed phrase does on the stored posts of the range. For a term or
    root: the posts it matches (on the side that lists it) and, of those, the posts no other
    phrase keeps in the hazard. For an exclusion: the posts the other side counts that it vetoes,
    and those it takes out of the hazard."""

    hazard: str
    phrase: str
    kind: str  # term | root | exclusion | hazard (a whole list added or removed)
    change: str  # added | removed
    matched: int
    decides: int
    in_region: int  # of `matched`, posts placed in Buleleng: only those count towards alerts
    examples: tuple[Example, ...] = ()


@dataclass
class VerdictScores:
    """Candidate and in-force lists against the officers' verdicts in the range."""

    verdicts: list[Verdict] = field(default_factory=list)
    alerted_in_force: set[int] = field(default_factory=set)  # incident ids an in-force episode covers
    alerted_candidate: set[int] = field(default_factory=set)
    # (post, hazard) labels: how many the lists still match, by verdict
    posts: dict[str, int] = field(default_factory=dict)  # verdict -> labelled posts among those read
    matched_in_force: dict[str, int] = field(default_factory=dict)
    matched_candidate: dict[str, int] = field(default_factory=dict)

    @property
    def confirmed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.confirmed]

    @property
    def false_alarms(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.confirmed]


@dataclass
class BacktestResult:
    posts: int  # stored posts in the range
    in_force: list[Episode]
    candidate: list[Episode]
    added: list[Episode] = field(default_factory=list)
    removed: list[Episode] = field(default_factory=list)
    changed: list[tuple[Episode, Episode]] = field(default_factory=list)
    labelled_posts: int = 0
    scores_in_force: dict[str, Scores] = field(default_factory=dict)
    scores_candidate: dict[str, Scores] = field(default_factory=dict)
    config: ConfigDiff = field(default_factory=ConfigDiff)
    term_effects: list[TermEffect] = field(default_factory=list)
    reasons: dict[tuple[str, str, str, datetime], list[str]] = field(default_factory=dict)
    verdicts: VerdictScores = field(default_factory=VerdictScores)
    # when the range holds no post: what the database holds (first, last, count)
    held: tuple[datetime | None, datetime | None, int] | None = None

    def why(self, episode: Episode) -> list[str]:
        return self.reasons.get((*episode.key, episode.first), [])


def candidate_lists(path: Path) -> HazardSet:
    """A config directory (with hazards/) or a hazards directory itself."""
    return HazardSet.load(hazards_dir_of(path))


def candidate_settings(path: Path, in_force: DetectSettings) -> DetectSettings:
    """The candidate folder's own detection.yaml, else the settings in force (a hazards folder,
    or a config folder without the file, changes no detection setting)."""
    own = Path(path) / detection_config.FILE_NAME
    # anything there is read, as `siaga check` reads it: a folder named so is refused, not skipped
    return detection_config.load(own) if own.exists() else in_force


def check_range(start: datetime, end: datetime) -> None:
    """Refuse a period that ends before it starts (BacktestRangeError, saying both times)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise BacktestRangeError("give times with a time zone (the command line reads times without one as WITA)")
    if end <= start:
        raise BacktestRangeError(f"--from {_local(start)} is not before --to {_local(end)}: nothing to replay")


def run_backtest(
    candidate: HazardSet,
    start: datetime,
    end: datetime,
    db_url: str | None = None,
    geotagger: Geotagger | None = None,
    progress: TextIO | None = sys.stderr,
    settings: DetectSettings | None = None,
    candidate_settings: DetectSettings | None = None,
) -> BacktestResult:
    """The episodes the lists in force and `candidate` would have alerted in [start, end], how
    they differ and why. `settings` default to those of config/detection.yaml, as in the DAG;
    `candidate_settings` to `settings`."""
    check_range(start, end)
    settings = settings or detection_config.load()
    candidate_settings = candidate_settings or settings
    with session_scope(db_url) as session:
        in_force = hazard_lists.in_force(session, remember=False)
        diff = config_diff.compare(in_force, candidate, settings, candidate_settings)
        in_range = session.scalar(select(func.count()).select_from(Post).where(Post.created_at >= start, Post.created_at <= end)) or 0
        if not in_range:
            first, last, total = session.execute(select(func.min(Post.created_at), func.max(Post.created_at), func.count(Post.id))).one()
            return BacktestResult(0, [], [], config=diff, held=(first, last, total))
        geotagger = geotagger or default_geotagger()
        n_areas, road_villages = counting.area_universe(geotagger.gaz)
        longest = max(counting.longest_window(in_force), counting.longest_window(candidate))
        posts = session.scalars(
            select(Post).where(Post.created_at > start - longest, Post.created_at <= end).order_by(Post.created_at, Post.id)
        ).all()
        # as the detect run: the baseline ends where the first window's posts begin
        models = {days: baseline.load_baseline(session, start - longest, days, n_areas)
                  for days in {settings.baseline_days, candidate_settings.baseline_days}}
        found_verdicts = verdicts.verdicts(session, start, end)
    places, now_by_post, new_by_post, labels = _tag_all(posts, geotagger, in_force, candidate, progress)
    ends = _ends(start, end)
    now = _side("in-force", in_force, settings, now_by_post, posts, places, road_villages, models[settings.baseline_days], ends, n_areas)
    new = _side("candidate", candidate, candidate_settings, new_by_post, posts, places, road_villages,
                models[candidate_settings.baseline_days], ends, n_areas)
    result = BacktestResult(posts=in_range, in_force=now.episodes, candidate=new.episodes, config=diff)
    _diff(result, settings.incident_gap)
    ranged = [p for p in posts if start <= p.created_at <= end]
    result.term_effects = _term_effects(diff, ranged, now, new, places)
    _explain_episodes(result, diff, now, new)
    result.verdicts = _score_verdicts(found_verdicts, now, new)
    result.labelled_posts = len(labels)
    result.scores_in_force = _scores(labels, _flat(now_by_post))
    result.scores_candidate = _scores(labels, _flat(new_by_post))
    return result


# ------------------------------------------------------------------------------------------
# The two sides
# ------------------------------------------------------------------------------------------


@dataclass
class _Side:
    """One side of the backtest: a set of lists and settings, replayed over the stored posts."""

    label: str  # "in-force" | "candidate"
    lists: HazardSet
    matches: dict[int, dict[str, HazardMatch]]  # post id -> hazard -> match
    scored: pd.DataFrame  # every series window tested (spikes.score_windows)
    episodes: list[Episode]
    posts: dict[int, Post]


def _side(label: str, lists: HazardSet, settings: DetectSettings, matches: dict[int, dict[str, HazardMatch]],
          posts: list[Post], places: dict[int, list[Any]], road_villages: dict[str, tuple[str, ...]], model: Any,
          ends: list[datetime], n_areas: dict[str, int]) -> _Side:
    by_id = {p.id: p for p in posts}
    keys = counting.copy_keys_of([by_id[pid] for pid in matches if pid in by_id])
    evidence = [
        HazardEvidence(pid, by_id[pid].created_at, by_id[pid].author, keys[pid], m.hazard, tuple(m.terms), bool(m.severity_cues))
        for pid, found in matches.items() if pid in places for m in found.values()
    ]
    events, areas, _ = counting.events_of(evidence, places, road_villages)
    rules = spikes.rules_of(lists, model.dispersion)
    scored = spikes.score_windows(events, rules, ends, model, n_areas)
    fired = spikes.spikes_of(scored[scored["fired"]], rules) if not scored.empty else []
    episodes = _episodes(fired, areas, settings.incident_gap, lists)
    return _Side(label, lists, matches, scored, episodes, by_id)


def _ends(start: datetime, end: datetime) -> list[datetime]:
    first = spikes.bucket_floor(start) + spikes.BUCKET
    out = []
    while first <= end:
        out.append(first)
        first += spikes.BUCKET
    return out


def _tag_all(
    posts: list[Post], geotagger: Geotagger, in_force: HazardSet, candidate: HazardSet, progress: TextIO | None
) -> tuple[dict[int, list[Any]], dict[int, dict[str, HazardMatch]], dict[int, dict[str, HazardMatch]], dict[int, set[str]]]:
    """Geotag each post once and classify it with both sets of lists. Only posts placed in the
    region get counting places; every post is classified, since labels measure the lists."""
    places: dict[int, list[Any]] = {}
    now: dict[int, dict[str, HazardMatch]] = {}
    new: dict[int, dict[str, HazardMatch]] = {}
    labels: dict[int, set[str]] = {}
    # on a terminal only (tqdm's disable=None): a log file or a script's stderr got a bar redrawn in it
    for post in tqdm(posts, desc="backtest", unit="post", file=progress, disable=True if progress is None else None):
        geo = geotagger.tag(post.text, lat=post.lat, lon=post.lon)
        if isinstance(post.raw, dict) and isinstance(post.raw.get("labels"), list):
            labels[post.id] = {str(x) for x in post.raw["labels"]}
        if geo.in_region:
            places[post.id] = [p for p in geo.places if counting.counts_towards_areas(p)]
        now[post.id] = {m.hazard: m for m in in_force.classify(post.text)}
        new[post.id] = {m.hazard: m for m in candidate.classify(post.text)}
    return places, now, new, labels


def _flat(matches: dict[int, dict[str, HazardMatch]]) -> dict[int, set[str]]:
    return {pid: set(found) for pid, found in matches.items()}


def _episodes(fired: list[spikes.Spike], areas: dict[tuple[str, str], Any], gap: timedelta,
              lists: HazardSet) -> list[Episode]:
    """Spikes (a coarser one dropped when a finer one of its hazard fired inside it, as the
    detect run does) grouped per series into episodes no more than `gap` apart (the hazard's
    own incident gap where its list sets one, as the detect run does)."""
    kept = [s for s in fired if not incidents.inhibited(s, [f for f in fired if f.window_end == s.window_end], areas)]
    episodes: list[Episode] = []
    open_by_key: dict[tuple[str, str, str], int] = {}
    for s in sorted(kept, key=lambda s: (s.window_end, s.hazard, s.level, s.area_code)):
        key = (s.hazard, s.level, s.area_code)
        index = open_by_key.get(key)
        current = episodes[index] if index is not None else None
        if current is not None and s.window_end - current.last <= incidents.incident_gap(s.hazard, gap, lists.hazards):
            peak = max((current.peak_observed, current.peak_authors), (s.observed, s.authors))
            episodes[index] = Episode(*key, current.area_name, current.first, s.window_end, peak[0], peak[1],
                                      current.post_ids | frozenset(s.post_ids))
            continue
        area = areas.get((s.level, s.area_code))
        episodes.append(Episode(*key, area.name if area else s.area_code, s.window_end, s.window_end, s.observed,
                                s.authors, frozenset(s.post_ids)))
        open_by_key[key] = len(episodes) - 1
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


# ------------------------------------------------------------------------------------------
# What each changed phrase does
# ------------------------------------------------------------------------------------------


def _credit(kind: str, phrase: str, hazard: Any) -> Callable[[HazardMatch], bool]:
    """Does a match owe something to `phrase`? A term is reported as written; a root as the
    word of the post it was found in (`HazardSet._hits`), recognised here by its stem."""
    if kind == "term":
        return lambda m: phrase in m.terms
    root = squeeze_fold(phrase)
    listed = set(hazard.terms) if hazard is not None else set()
    return lambda m: any(t not in listed and squeeze(stem(t)) == root for t in m.terms)


def _vetoes(lists: HazardSet, text: str, hazard: str) -> tuple[str, ...]:
    return next((m.vetoed_by for m in lists.explain(text) if m.hazard == hazard), ())


def _term_effects(diff: ConfigDiff, posts: list[Post], now: _Side, new: _Side, places: dict[int, list[Any]]) -> list[TermEffect]:
    effects = []
    for change, side, hazards in (("added", new, diff.hazards_added), ("removed", now, diff.hazards_removed)):
        for hazard in hazards:  # a whole list: its posts, not its every term
            matched = [p for p in posts if hazard in side.matches[p.id]]
            effects.append(_effect(hazard, hazard, "hazard", change, matched, {p.id for p in matched}, places))
    for change, side, other in (("added", new, now), ("removed", now, new)):
        for kind, name in (("term", "terms"), ("root", "roots")):
            for hazard, phrase in diff.phrases_of(name, change):
                credit = _credit(kind, phrase, side.lists.hazards.get(hazard))
                matched = [p for p in posts if hazard in side.matches[p.id] and credit(side.matches[p.id][hazard])]
                decided = {p.id for p in matched if hazard not in other.matches[p.id]}
                effects.append(_effect(hazard, phrase, kind, change, matched, decided, places))
        for hazard, phrase in diff.phrases_of("exclusions", change):
            counted = [p for p in posts if hazard in other.matches[p.id]]
            matched = [p for p in counted if phrase in _vetoes(side.lists, p.text, hazard)]
            decided = {p.id for p in matched if hazard not in side.matches[p.id]}
            effects.append(_effect(hazard, phrase, "exclusion", change, matched, decided, places))
    return effects


def _effect(hazard: str, phrase: str, kind: str, change: str, matched: list[Post], decided: set[int],
            places: dict[int, list[Any]]) -> TermEffect:
    chosen = sorted(matched, key=lambda p: (p.id not in decided, p.created_at, p.id))[:MAX_EXAMPLES]
    examples = tuple(Example(p.id, p.created_at, p.text, p.id in decided) for p in sorted(chosen, key=lambda p: (p.created_at, p.id)))
    return TermEffect(hazard, phrase, kind, change, len(matched), len(decided), sum(p.id in places for p in matched), examples)


# ------------------------------------------------------------------------------------------
# Why an alert was added, removed or changed
# ------------------------------------------------------------------------------------------


def _explain_episodes(result: BacktestResult, diff: ConfigDiff, now: _Side, new: _Side) -> None:
    for episode in result.removed:
        result.reasons[(*episode.key, episode.first)] = (
            _post_reasons(episode, diff, had=now, lacks=new) + [_threshold_reason(episode, new)])
    for episode in result.added:
        result.reasons[(*episode.key, episode.first)] = (
            _post_reasons(episode, diff, had=new, lacks=now) + [_threshold_reason(episode, now)])
    for old, twin in result.changed:
        reasons = []
        if twin.peak_observed != old.peak_observed:
            reasons.append(f"peak {old.peak_observed} -> {twin.peak_observed} posts")
        if twin.first != old.first:
            reasons.append(f"first alert {_local(old.first)} -> {_local(twin.first)}")
        reasons += _post_reasons(twin, diff, had=new, lacks=now) + _post_reasons(old, diff, had=now, lacks=new)
        result.reasons[(*twin.key, twin.first)] = reasons


def _post_reasons(episode: Episode, diff: ConfigDiff, had: _Side, lacks: _Side) -> list[str]:
    """The episode's posts that the other side does not count for its hazard, by the phrase
    that makes the difference: "term 'air bah' adds 3 posts in Sangsit"."""
    hazard, verb = episode.hazard, ("adds" if had.label == "candidate" else "no longer matches")
    change = "added" if had.label == "candidate" else "removed"
    lost = [pid for pid in sorted(episode.post_ids) if hazard not in lacks.matches.get(pid, {})]
    if not lost or hazard not in lacks.lists.hazards:
        return []  # no difference in posts, or the whole list is missing (_threshold_reason says so)
    reasons, explained = [], set()
    for kind, name in (("term", "terms"), ("root", "roots")):
        for hz, phrase in diff.phrases_of(name, change):
            if hz != hazard:
                continue
            credit = _credit(kind, phrase, had.lists.hazards.get(hazard))
            ids = [pid for pid in lost if credit(had.matches[pid][hazard])]
            if ids:
                explained.update(ids)
                reasons.append(f"{kind} {phrase!r} {verb} {len(ids)} post{'s' * (len(ids) != 1)} in {episode.area_name}")
    vetoed_change = "added" if lacks.label == "candidate" else "removed"
    for hz, phrase in diff.phrases_of("exclusions", vetoed_change):
        if hz != hazard:
            continue
        ids = [pid for pid in lost if phrase in _vetoes(lacks.lists, had.posts[pid].text, hazard)]
        if ids:
            explained.update(ids)
            reasons.append(f"exclusion {phrase!r} ({vetoed_change}) vetoes {len(ids)} post{'s' * (len(ids) != 1)} in {episode.area_name}")
    rest = len(lost) - len(explained)
    if rest:
        reasons.append(f"{rest} more post{'s' * (rest != 1)} in {episode.area_name} count only with the {had.label} lists")
    return reasons


def _threshold_reason(episode: Episode, lacks: _Side) -> str:
    """Why the other side's windows for this series did not alert, in its own numbers."""
    hazard = lacks.lists.hazards.get(episode.hazard)
    if hazard is None:
        return f"{episode.hazard} is not in the {lacks.label} lists"
    table = lacks.scored
    rows = table[(table["hazard"] == episode.hazard) & (table["level"] == episode.level)
                 & (table["area_code"] == episode.area_code)
                 & (table["window_end"] >= pd.Timestamp(episode.first)) & (table["window_end"] <= pd.Timestamp(episode.last))] \
        if not table.empty else table
    if rows.empty:
        return f"no post counts for {episode.hazard} in {episode.area_name} with the {lacks.label} lists"
    peak = rows.sort_values(["observed", "authors", "p_value"], ascending=[True, True, False]).iloc[-1]
    observed, authors = int(peak["observed"]), int(peak["authors"])
    if observed < hazard.min_posts:
        return f"peak {observed} posts < min_posts {hazard.min_posts} ({lacks.label})"
    if authors < hazard.min_authors:
        return f"peak {authors} authors < min_authors {hazard.min_authors} ({lacks.label})"
    if not rows["fired"].any():
        return (f"peak {observed} posts where {float(peak['expected']):.2g} were expected: p = {float(peak['p_value']):.2g} "
                f"is above the alarm threshold {float(peak['threshold']):.2g} (sensitivity {hazard.sensitivity}, {lacks.label})")
    return f"the {lacks.label} alert here is left to a finer alert of the same hazard inside {episode.area_name}"


# ------------------------------------------------------------------------------------------
# Scores: officers' verdicts and labelled posts
# ------------------------------------------------------------------------------------------


def _score_verdicts(found: list[Verdict], now: _Side, new: _Side) -> VerdictScores:
    """Which incidents each side would still alert on (an episode of the incident's hazard that
    cites one of its evidence posts), and which labelled posts each side still matches."""
    scores = VerdictScores(verdicts=found)
    for verdict in found:
        for side, alerted in ((now, scores.alerted_in_force), (new, scores.alerted_candidate)):
            if any(e.hazard == verdict.hazard and e.post_ids & verdict.post_ids for e in side.episodes):
                alerted.add(verdict.incident_id)
    for (post_id, hazard), verdict in verdicts.post_labels(found).items():
        if post_id not in now.matches:
            continue  # cited by the incident but outside the posts read for this range
        scores.posts[verdict] = scores.posts.get(verdict, 0) + 1
        for side, counts in ((now, scores.matched_in_force), (new, scores.matched_candidate)):
            if hazard in side.matches[post_id]:
                counts[verdict] = counts.get(verdict, 0) + 1
    return scores


def _scores(labels: dict[int, set[str]], found: dict[int, set[str]]) -> dict[str, Scores]:
    """Post-level precision and recall per hazard, on posts that carry labels."""
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


# ------------------------------------------------------------------------------------------
# For people
# ------------------------------------------------------------------------------------------


def format_result(result: BacktestResult, start: datetime, end: datetime) -> str:
    if result.held is not None:
        return _format_empty(result, start, end)
    lines = [f"backtest {_local(start)} .. {_local(end)} {LOCAL_TZ_LABEL}: {result.posts} stored posts"]
    lines += ["", *_format_config(result.config)]
    if result.term_effects:
        lines += ["", f"What each changed phrase matches in the {result.posts} stored posts of the range:"]
        for effect in result.term_effects:
            lines += _format_effect(effect)
    lines += ["", f"alerts with the lists in force: {len(result.in_force)}; with the candidate lists: {len(result.candidate)}"]
    for title, mark, episodes in (("ADDED (candidate only)", "+", result.added), ("REMOVED (in force only)", "-", result.removed)):
        lines.append(f"\n{title}: {len(episodes)}")
        for e in episodes:
            lines.append(f"  {mark} {_describe(e)}")
            lines += [f"      why: {reason}" for reason in result.why(e)]
    lines.append(f"\nCHANGED: {len(result.changed)}")
    for old, new in result.changed:
        lines.append(f"  ~ {_describe(old)}\n      now {_local(new.first)} .. {_local(new.last)}, peak {new.peak_observed} posts")
        lines += [f"      why: {reason}" for reason in result.why(new)]
    lines += _format_verdicts(result.verdicts)
    if result.labelled_posts:
        lines.append(f"\nOn {result.labelled_posts} labelled posts (precision / recall, in force -> candidate):")
        for hazard in sorted(set(result.scores_in_force) | set(result.scores_candidate)):
            a = result.scores_in_force.get(hazard, Scores())
            b = result.scores_candidate.get(hazard, Scores())
            lines.append(f"  {hazard:18} {_pct(a.precision)} / {_pct(a.recall)}  ->  {_pct(b.precision)} / {_pct(b.recall)}")
    return "\n".join(lines)


def _format_empty(result: BacktestResult, start: datetime, end: datetime) -> str:
    assert result.held is not None
    first, last, total = result.held
    held = (f"the database holds {total} posts, from {_local(first)} to {_local(last)} {LOCAL_TZ_LABEL}"
            if total and first and last else "the database holds no posts")
    return f"no posts between {_local(start)} and {_local(end)} {LOCAL_TZ_LABEL}; {held}"


def _format_config(diff: ConfigDiff) -> list[str]:
    if diff.empty:
        return ["Config difference: none (the candidate lists and settings equal those in force)"]
    lines = ["Config difference (candidate against the lists in force):"]
    lines += [f"  {h}: hazard added" for h in diff.hazards_added]
    lines += [f"  {h}: hazard removed" for h in diff.hazards_removed]
    for change in diff.phrases:
        if change.added:
            lines.append(f"  {change.hazard}: {change.field} added: {', '.join(map(repr, change.added))}")
        if change.removed:
            lines.append(f"  {change.hazard}: {change.field} removed: {', '.join(map(repr, change.removed))}")
    lines += [f"  {s}" for s in diff.settings]
    lines += [f"  {o}" for o in diff.other]
    return lines


def _format_effect(effect: TermEffect) -> list[str]:
    posts = f"{effect.matched} stored post{'s' * (effect.matched != 1)}"
    where = f" ({effect.in_region} in Buleleng)" if effect.matched else ""
    if effect.kind == "hazard":
        verb = "would report it" if effect.change == "added" else "reported it"
        head = f"  {effect.hazard} (hazard {effect.change}): {posts}{where} {verb}"
    elif effect.kind == "exclusion":
        side = "the lists in force" if effect.change == "added" else "the candidate lists"
        head = (f"  {effect.hazard} exclusion {effect.phrase!r} ({effect.change}): vetoes {posts}{where} that {side} count; "
                f"{effect.decides} of them {'leave' if effect.change == 'added' else 'join'} {effect.hazard}")
    else:
        verb = "would join" if effect.change == "added" else "would leave"
        head = (f"  {effect.hazard} {effect.kind} {effect.phrase!r} ({effect.change}): matches {posts}{where}; "
                f"{effect.decides} of them {verb} {effect.hazard}"
                + (f" ({effect.matched - effect.decides} still matched by other phrases)" if effect.matched > effect.decides else ""))
    return [head] + [f"      #{x.post_id} {_local(x.created_at)}{' *' if x.decides else ''} {_quoted(x.text)}" for x in effect.examples]


def _format_verdicts(scores: VerdictScores) -> list[str]:
    if not scores.verdicts:
        return ["\nOfficers' verdicts in this range: none (no incident was resolved or called a false alarm by a person)"]
    confirmed, false_alarms = scores.confirmed, scores.false_alarms
    lines = [f"\nOfficers' verdicts in this range: {len(confirmed)} confirmed (resolved by a person), {len(false_alarms)} false alarm(s)"
             f"; their {sum(scores.posts.values())} evidence posts are labels"]

    def kept(side: set[int], group: list[Verdict]) -> int:
        return sum(v.incident_id in side for v in group)

    if confirmed:
        lines.append(f"  confirmed incidents still alerted:  in force {kept(scores.alerted_in_force, confirmed)}/{len(confirmed)}, "
                     f"candidate {kept(scores.alerted_candidate, confirmed)}/{len(confirmed)}")
    if false_alarms:
        lines.append(f"  false alarms no longer alerted:     in force {len(false_alarms) - kept(scores.alerted_in_force, false_alarms)}/{len(false_alarms)}, "
                     f"candidate {len(false_alarms) - kept(scores.alerted_candidate, false_alarms)}/{len(false_alarms)}")
    for verdict, title, wanted in ((verdicts.CONFIRMED, "posts of confirmed incidents still matched", True),
                                   (verdicts.FALSE_ALARM, "posts of false alarms no longer matched", False)):
        n = scores.posts.get(verdict, 0)
        if n:
            a, b = scores.matched_in_force.get(verdict, 0), scores.matched_candidate.get(verdict, 0)
            a, b = (a, b) if wanted else (n - a, n - b)
            lines.append(f"  {title + ':':35} in force {a}/{n}, candidate {b}/{n}")
    for v in scores.verdicts:
        now, new = v.incident_id in scores.alerted_in_force, v.incident_id in scores.alerted_candidate
        if now != new:
            what = ("no longer alerted" if now else "now alerted") + (" (confirmed)" if v.confirmed else " (a false alarm)")
            lines.append(f"  incident #{v.incident_id} {v.hazard} in {v.area_name}: {what}; "
                         f"{'resolved' if v.confirmed else 'false alarm'} by {v.actor} at {_local(v.at)} {LOCAL_TZ_LABEL}")
    return lines


def _describe(e: Episode) -> str:
    return (f"{e.hazard} in {e.level} {e.area_name} ({e.area_code}): {_local(e.first)} .. {_local(e.last)} {LOCAL_TZ_LABEL}, "
            f"peak {e.peak_observed} posts")


def _local(when: datetime | None) -> str:
    return "?" if when is None else when.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _quoted(text: str) -> str:
    """A post on one line, control and invisible characters removed, quoted so its end shows."""
    return json.dumps(truncate(one_line(text), EXAMPLE_CHARS), ensure_ascii=False)


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.1%}"
