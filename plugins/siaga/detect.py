"""The detect run: tag new posts, count them per hazard and area, find spikes, and open or update
incidents with their Slack messages in the same transaction.

Every step is idempotent: posts are tagged once, alerts are unique per series and window, and
outbox messages per incident change, so re-running a detect task instance changes nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siaga import alerts, baseline, hazard_lists, incidents, spikes
from siaga.geotag import Place
from siaga.hazards import HazardSet
from siaga.routing import Router
from siaga.store import Alert, AreaCount, Geotag, HazardMatchRow, Incident, Post, session_scope, utcnow
from siaga.tagging import Tagger
from siaga.vocabulary import REGENCY_CODE, REGENCY_NAME

log = logging.getLogger(__name__)

# Places below this confidence are kept and shown but do not count towards an area's spike.
MIN_COUNTING_CONFIDENCE = 0.5
TAG_BATCH = 500


@dataclass(frozen=True)
class DetectReport:
    tagged: int
    spikes: int
    changes: dict[str, int]
    lists_fingerprint: str


@dataclass(frozen=True)
class DetectSettings:
    lookback: timedelta = timedelta(hours=3)
    baseline_days: int = 28
    incident_gap: timedelta = timedelta(hours=2)
    quiet_period: timedelta = timedelta(hours=3)
    reopen_window: timedelta = timedelta(hours=6)


def run(now: datetime, router: Router, db_url: str | None = None, settings: DetectSettings | None = None) -> DetectReport:
    settings = settings or DetectSettings()
    with session_scope(db_url) as session:
        hazard_set = hazard_lists.in_force(session)
    tagger = Tagger(hazard_set)
    tagged = tag_pending(tagger, now, db_url)
    gazetteer = tagger.geotagger.gaz
    n_areas, road_villages = area_universe(gazetteer)
    since = now - settings.lookback - _longest_window(hazard_set)
    with session_scope(db_url) as session:
        events, areas, cue_posts = load_events(session, since, now, road_villages)
        write_area_counts(session, spikes.bucket_counts(events), spikes.bucket_floor(since) + spikes.BUCKET, now)
        ends = spikes.window_ends(now, settings.lookback)
        model = load_baseline(session, hazard_set, now - settings.lookback, settings.baseline_days, n_areas)
        rules = rules_of(hazard_set, model.dispersion)
        found = spikes.detect(events, rules, ends, model, n_areas)
        severities = severities_of(found, hazard_set, cue_posts)
        changes = incidents.apply_spikes(
            session, found, areas, severities, settings.incident_gap,
            adjacent=gazetteer.adjacent_villages, reopen_window=settings.reopen_window,
        )
        changes += incidents.resolve_quiet(session, now, settings.quiet_period)
        alerts.enqueue(session, changes, hazard_set, router, now)
        summary: dict[str, int] = {}
        for change in changes:
            summary[change.kind] = summary.get(change.kind, 0) + 1
    report = DetectReport(tagged, len(found), summary, hazard_set.fingerprint())
    log.info("detect at %s: %s", now.isoformat(), report)
    return report


def area_universe(gazetteer: Any) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
    """How many areas each level has (the multiple-testing correction needs it) and the
    villages along each road."""
    n_areas = {
        "village": len(gazetteer.villages), "road": max(len(gazetteer.roads), 1),
        "district": len(gazetteer.districts), "regency": 1,
    }
    return n_areas, {r.id: _villages_along(r, gazetteer) for r in gazetteer.roads}


def _villages_along(road: Any, gazetteer: Any) -> tuple[str, ...]:
    """The villages a road incident spans: the road's own list, else (roads known only by a
    point, like the town streets in roads.yaml) the village under its point."""
    if road.village_codes:
        return tuple(road.village_codes)
    point = road.point
    village = gazetteer.village_at(*point) if point else None
    return (village.code,) if village else ()


def _longest_window(hazard_set: HazardSet) -> timedelta:
    return max((timedelta(minutes=h.window_minutes) for h in hazard_set.hazards.values()), default=timedelta(hours=1))


def rules_of(hazard_set: HazardSet, dispersion: dict[str, float] | None = None) -> dict[str, spikes.Rule]:
    dispersion = dispersion or {}
    return {
        h.id: spikes.Rule(
            window=timedelta(minutes=h.window_minutes),
            min_posts=h.min_posts,
            min_authors=h.min_authors,
            alpha=_alpha(h.sensitivity),
            dispersion=dispersion.get(h.id, 0.0),
        )
        for h in hazard_set.hazards.values()
    }


def severities_of(found: list[spikes.Spike], hazard_set: HazardSet, cue_posts: dict[str, set[int]]) -> dict[tuple[str, str, str, datetime], str]:
    """Each spike's severity from its count against the hazard's minimum and its cue posts."""
    out = {}
    for s in found:
        hazard = hazard_set.hazards.get(s.hazard)
        min_posts = hazard.min_posts if hazard else 3
        cues = len(cue_posts.get(s.hazard, set()) & set(s.post_ids))
        out[(s.hazard, s.level, s.area_code, s.window_end)] = incidents.severity_of(s, min_posts, cues)
    return out


def _alpha(sensitivity: float) -> float:
    """Sensitivity 0..1 in config, as the false-discovery level of one tick's test over a
    level's areas: 0.5 -> 1e-3, 1 -> 1e-2, 0 -> 1e-4."""
    return 10 ** (-4 + 2 * min(max(sensitivity, 0.0), 1.0))


def tag_pending(tagger: Tagger, now: datetime, db_url: str | None = None) -> int:
    """Geotag and classify posts not yet tagged, in batches, each batch its own transaction."""
    total = 0
    fingerprint = tagger.hazards.fingerprint()
    while True:
        with session_scope(db_url) as session:
            batch = session.scalars(
                select(Post).where(Post.tagged_at.is_(None), Post.created_at <= now).order_by(Post.id).limit(TAG_BATCH)
            ).all()
            for post in batch:
                result = tagger.tag(post.text, lat=post.lat, lon=post.lon)
                for place in result.geotag.places:
                    session.add(_geotag_row(post.id, place))
                for match in result.hazards:
                    session.add(
                        HazardMatchRow(
                            post_id=post.id,
                            hazard=match.hazard,
                            terms=list(match.terms),
                            severity_cues=list(match.severity_cues),
                            via_road=match.via_road,
                            lists_fingerprint=fingerprint,
                        )
                    )
                post.tagged_at = utcnow()
                post.in_region = result.geotag.in_region
        total += len(batch)
        if len(batch) < TAG_BATCH:
            return total


def _geotag_row(post_id: int, place: Place) -> Geotag:
    return Geotag(
        post_id=post_id,
        kind=place.kind,
        name=place.name,
        village=place.village,
        district=place.district,
        code=place.code,
        lon=place.lon,
        lat=place.lat,
        confidence=place.confidence,
        span_start=place.span[0] if place.span else None,
        span_end=place.span[1] if place.span else None,
        reason=place.reason,
        low_confidence=place.low_confidence,
        in_region=place.in_region,
    )


def load_events(
    session: Session, since: datetime, until: datetime, road_villages: dict[str, tuple[str, ...]] | None = None
) -> tuple[pd.DataFrame, dict[tuple[str, str], incidents.AreaInfo], dict[str, set[int]]]:
    """One row per post x hazard x area it counts towards (EVENT_COLUMNS and the matched
    `terms`), the areas' descriptions (a road's with its village codes), and per hazard the
    posts that carried severity cues."""
    rows = session.execute(
        select(Post.id, Post.created_at, Post.author, Post.text_hash, HazardMatchRow.hazard, HazardMatchRow.severity_cues, HazardMatchRow.terms)
        .join(HazardMatchRow, HazardMatchRow.post_id == Post.id)
        .where(Post.created_at > since, Post.created_at <= until, Post.in_region.is_(True))
    ).all()
    matches = [
        HazardEvidence(r.id, r.created_at, r.author, r.text_hash, r.hazard, tuple(r.terms or ()), bool(r.severity_cues))
        for r in rows
    ]
    return events_of(matches, _places_by_post(session, {r.id for r in rows}), road_villages or {})


@dataclass(frozen=True)
class HazardEvidence:
    """One post's match of one hazard, as spike detection needs it."""

    post_id: int
    created_at: datetime
    author: str | None
    text_hash: str
    hazard: str
    terms: tuple[str, ...]
    has_cues: bool


def events_of(
    matches: list[HazardEvidence], places: dict[int, list[Any]], road_villages: dict[str, tuple[str, ...]]
) -> tuple[pd.DataFrame, dict[tuple[str, str], incidents.AreaInfo], dict[str, set[int]]]:
    """The events table from matches and each post's counting places (stored geotags or fresh
    `Place`s alike): shared by the detect run and the backtest, so both count the same way."""
    areas: dict[tuple[str, str], incidents.AreaInfo] = {}
    records: list[dict[str, Any]] = []
    cue_posts: dict[str, set[int]] = {}
    for m in matches:
        if m.has_cues:
            cue_posts.setdefault(m.hazard, set()).add(m.post_id)
        for area in _areas_of(places.get(m.post_id, []), road_villages):
            areas.setdefault((area.level, area.code), area)
            records.append(
                {
                    "post_id": m.post_id,
                    "created_at": m.created_at,
                    "author": m.author or f"anonymous:{m.post_id}",
                    "text_hash": m.text_hash,
                    "hazard": m.hazard,
                    "level": area.level,
                    "area_code": area.code,
                    "terms": m.terms,
                }
            )
    frame = pd.DataFrame.from_records(records, columns=spikes.EVENT_COLUMNS + ["terms"])
    return frame, areas, cue_posts


def counts_towards_areas(place: Any) -> bool:
    """Low-confidence and out-of-region places are shown but never counted."""
    return bool(place.in_region) and place.confidence >= MIN_COUNTING_CONFIDENCE


def _places_by_post(session: Session, post_ids: set[int]) -> dict[int, list[Geotag]]:
    out: dict[int, list[Geotag]] = {}
    if not post_ids:
        return out
    stmt = select(Geotag).where(
        Geotag.post_id.in_(post_ids), Geotag.in_region.is_(True), Geotag.confidence >= MIN_COUNTING_CONFIDENCE
    )
    for tag in session.scalars(stmt):
        out.setdefault(tag.post_id, []).append(tag)
    return out


def _areas_of(places: list[Geotag], road_villages: dict[str, tuple[str, ...]]) -> list[incidents.AreaInfo]:
    """Every area a post counts towards: its villages, their kecamatan, its roads, the regency."""
    found: dict[tuple[str, str], incidents.AreaInfo] = {}
    district_codes = {}
    for p in places:
        if p.kind in ("village", "landmark") and p.village and p.code and p.district:
            found[("village", p.code)] = incidents.AreaInfo("village", p.code, p.village, p.village, p.district, None, p.lon, p.lat)
            district_codes.setdefault(p.district, ".".join(p.code.split(".")[:3]))
        elif p.kind in ("district", "landmark") and p.district and not p.village and p.code:
            district_codes.setdefault(p.district, p.code)
        elif p.kind == "road" and p.code:
            found[("road", p.code)] = incidents.AreaInfo(
                "road", p.code, p.name, p.village, p.district, p.name, p.lon, p.lat, road_villages.get(p.code, ())
            )
    for name, code in district_codes.items():
        found[("district", code)] = incidents.AreaInfo("district", code, name, None, name)
    found[("regency", REGENCY_CODE)] = incidents.AreaInfo("regency", REGENCY_CODE, REGENCY_NAME)
    return list(found.values())


def load_baseline(
    session: Session, hazard_set: HazardSet, before: datetime, days: int, n_areas: dict[str, int] | None = None
) -> baseline.BaselineModel:
    """The baseline fitted on `area_counts` in the `days` before `before` (the current lookback
    is left out so an event does not explain itself away), with past alerts' windows
    down-weighted unless a person marked their incident a false alarm."""
    start = before - timedelta(days=days)
    first = session.scalar(select(func.min(AreaCount.bucket_start)))
    since = max(first, start) if first is not None and first < before else None
    counts = pd.DataFrame(
        session.execute(
            select(AreaCount.hazard, AreaCount.level, AreaCount.area_code, AreaCount.bucket_start, AreaCount.posts)
            .where(AreaCount.bucket_start >= start, AreaCount.bucket_start < before)
        ).all(),
        columns=spikes.SERIES + ["bucket_start", "posts"],
    )
    alerted = pd.DataFrame(
        session.execute(
            select(Alert.hazard, Alert.level, Alert.area_code, Alert.window_start, Alert.window_end)
            .outerjoin(Incident, Incident.id == Alert.incident_id)
            .where(Alert.window_end >= start, Alert.window_start < before)
            .where((Incident.id.is_(None)) | (Incident.state != "false_alarm"))
        ).all(),
        columns=spikes.SERIES + ["window_start", "window_end"],
    )
    settings = baseline.BaselineSettings(history=timedelta(days=days))
    return baseline.fit(counts, alerted, before, since, settings, n_areas)


def write_area_counts(session: Session, counts: pd.DataFrame, first_bucket: datetime, until: datetime) -> int:
    """Make `area_counts` for buckets in [first_bucket, until] equal to `counts`: insert new
    rows, update changed ones, delete ones whose posts are gone. Portable (SQLite and
    PostgreSQL) and idempotent: a second run over the same posts touches nothing. Returns the
    number of rows written or removed."""
    wanted: dict[tuple[str, str, str, datetime], tuple[int, int]] = {}
    for row in counts.itertuples(index=False):
        start = pd.Timestamp(row.bucket_start).to_pydatetime()
        if first_bucket <= start <= until:
            wanted[(row.hazard, row.level, row.area_code, start)] = (int(row.posts), int(row.authors))
    existing = session.scalars(
        select(AreaCount).where(AreaCount.bucket_start >= first_bucket, AreaCount.bucket_start <= until)
    ).all()
    touched = 0
    for stored in existing:
        key = (stored.hazard, stored.level, stored.area_code, stored.bucket_start)
        value = wanted.pop(key, None)
        if value is None:
            session.delete(stored)
            touched += 1
        elif (stored.posts, stored.authors) != value:
            stored.posts, stored.authors = value
            touched += 1
    for (hazard, level, code, start), (posts, authors) in wanted.items():
        session.add(AreaCount(hazard=hazard, level=level, area_code=code, bucket_start=start, posts=posts, authors=authors))
        touched += 1
    session.flush()
    return touched
