"""Incidents: turn a stream of spikes into one story per event that opens, grows, escalates and
ends, with every change written to its timeline.

A duty officer wants one ping per flood, not one per detection run or per village: a spike for a
hazard in an area that an incident already covers, or in a village bordering one (polygon
adjacency from the gazetteer), within `gap` of its last activity (the hazard's own
`detection.incident_gap_minutes` for one that lasts days, `incident_gap`), joins that incident. A road
incident covers the road, the villages along it and the places its posts name, and so the
kecamatan they lie in. A kecamatan or regency spike is dropped when a finer spike of the same
hazard fired inside it in the same window, or a live finer incident already tells the story.

The timeline records changes, not re-detections. Detection re-runs every few minutes over
sliding windows, so the same posts are detected again and again; a spike that brings no new
post, area, severity or reopening adds no alert row, no timeline row and no message (its window
only widens the alert that covers it, so the baseline still leaves the event out). An incident's
posts are the distinct posts its detections counted (`incident_posts`: one definition, used by
the pages, Slack, the digest and every export) and its authors the distinct accounts among
them; its last activity is its newest post or a person's action. Only a new incident is a new
message; growth is an "update" in its thread when the posts grew by UPDATE_GROWTH since the last
message, a higher severity (`severity`) an "escalation"; each names what changed since the last
message (`WhatChanged`).

Lifecycle (`vocabulary.TRANSITIONS`): people acknowledge, resolve or mark a false alarm with the
alert's Slack buttons (`transition`); live incidents quiet for the quiet period resolve
themselves (`resolve_quiet`). A spike within the reopen window after an automatic resolution
reopens the same incident ("reopened" event) and is sent as an "escalation": it goes into the
same Slack thread and is broadcast to the channel, because an event that came back needs eyes
again. An incident a person closed is not reopened by the machine: the next spike opens a new
one.
"""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.orm import Session

from siaga import regional
from siaga.severity import area_severity, cue_counts
from siaga.spikes import Spike
from siaga.store import Alert, Geotag, Incident, IncidentArea, IncidentEvent, Post, in_slices
from siaga.vocabulary import (
    AUTO_ACTOR, LEVELS, LIVE_STATES, SEVERITIES, STATES, TRANSITIONS, district_code, higher_severity,
)

# An update is worth a message when the posts grew by this factor since the last one sent.
UPDATE_GROWTH = 1.5
# Places below this confidence are shown on a post, never used to place an incident (the same
# bar as counting.MIN_COUNTING_CONFIDENCE, which imports this module).
MIN_PLACE_CONFIDENCE = 0.5
# Timeline events that told Slack something carry this flag: "what changed" counts from the last.
TOLD = "told"

Adjacency = Callable[[str], Iterable[str]]
# A village code -> (village name, kecamatan name), None when unknown: names a road's villages.
PlaceOf = Callable[[str], "tuple[str, str] | None"]
_Row = TypeVar("_Row", Incident, Alert)  # what `_inserted` writes


class InvalidTransition(ValueError):
    """A state change the lifecycle does not allow (the message says which and why)."""


@dataclass(frozen=True)
class AreaInfo:
    level: str
    code: str
    name: str
    village: str | None = None
    district: str | None = None
    road: str | None = None
    lon: float | None = None
    lat: float | None = None
    villages: tuple[str, ...] = ()  # a road's village codes


@dataclass(frozen=True)
class IncidentPosts:
    """An incident's posts and authors, the one definition every page, message and export uses:
    the distinct posts its detections counted, and the distinct accounts among them (a post
    without a known author is an account of its own)."""

    post_ids: tuple[int, ...]  # oldest first
    authors: int
    last_post_at: datetime | None

    @property
    def posts(self) -> int:
        return len(self.post_ids)


@dataclass(frozen=True)
class WhatChanged:
    """What changed since the incident's last Slack message, from its timeline."""

    new_post_ids: tuple[int, ...] = ()
    posts_before: int | None = None
    posts: int | None = None
    authors_before: int | None = None
    authors: int | None = None
    areas: tuple[str, ...] = ()  # names of the areas added
    severity: tuple[str, str] | None = None  # (from, to)
    severity_why: dict[str, Any] | None = None
    states: tuple[tuple[str, str, str], ...] = ()  # (from, to, actor) of people's changes
    reopened: bool = False
    resolved: dict[str, Any] | None = None  # an automatic resolution's detail

    def any(self) -> bool:
        return bool(self.new_post_ids or self.areas or self.severity or self.states or self.reopened or self.resolved)


@dataclass
class Change:
    """What happened to an incident in this run; alerts turn it into Slack messages."""

    incident: Incident
    kind: str  # new | update | escalation | resolved
    alert: Alert | None = None
    evidence: list[int] = field(default_factory=list)  # posts to quote, the newest first
    what: WhatChanged | None = None  # since the last message (None for a new incident)


# --- the one definition of an incident's posts --------------------------------------------------
def cited_post_ids(explanations: Iterable[dict[str, Any] | None]) -> list[int]:
    """The post ids the detections' explanations cite, each once, first citation first."""
    seen: dict[int, None] = {}
    for detail in explanations:
        for pid in (detail or {}).get("post_ids") or []:
            if isinstance(pid, int) and not isinstance(pid, bool):
                seen.setdefault(pid, None)
            elif isinstance(pid, str) and pid.isdigit():
                seen.setdefault(int(pid), None)
    return list(seen)


def incident_post_ids(session: Session, incident_id: int) -> list[int]:
    """The posts an incident's detections counted (its alerts' `post_ids`). Inside
    `apply_spikes` from the alerts it holds (each inserted as it is made, `_inserted`, so each
    has its id to order by), else from the database."""
    held = _alerts_of(session, incident_id)
    if held is not None:
        return cited_post_ids(a.explanation for a in sorted(held, key=lambda a: (a.window_end, a.id)))
    return _stored_post_ids(session, [incident_id])[incident_id]


def _stored_post_ids(session: Session, incident_ids: Sequence[int]) -> dict[int, list[int]]:
    """`incident_post_ids` of these incidents from the database, in one query (per `store.in_slices` slice)."""
    session.flush()
    explanations: dict[int, list[dict[str, Any] | None]] = {i: [] for i in incident_ids}
    for among in in_slices(session, Alert.incident_id, list(incident_ids)):  # an incident's alerts in one slice
        for incident_id, explanation in session.execute(select(Alert.incident_id, Alert.explanation).where(
                among).order_by(Alert.window_end, Alert.id)):
            explanations[incident_id].append(explanation)
    return {i: cited_post_ids(e) for i, e in explanations.items()}


def incident_posts(session: Session, incident_id: int) -> IncidentPosts:
    """The incident's posts and authors (see `IncidentPosts`); posts retention removed, or never
    stored (tests), count as posts of their own author.

    Inside `apply_spikes` the answer is kept until an alert of the incident cites a post it did
    not (`_forget_posts`): it depends only on the set of posts cited, and a run asked it twice
    for every spike that joined an incident (before and after), each walk over all the
    incident's alerts and posts, quadratic in a busy incident's spikes."""
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is not None and incident_id in rows.posts:
        return rows.posts[incident_id]
    found = posts_of(session, incident_post_ids(session, incident_id))
    if rows is not None:
        rows.posts[incident_id] = found
    return found


def posts_by_incident(session: Session, incident_ids: Iterable[int]) -> dict[int, IncidentPosts]:
    """`incident_posts` of several incidents, their alerts read in one query (outside
    `apply_spikes`): the outbox stage read them message by message."""
    ids = list(dict.fromkeys(incident_ids))
    if not ids or _ROWS in session.info:
        return {i: incident_posts(session, i) for i in ids}
    return {i: posts_of(session, post_ids) for i, post_ids in _stored_post_ids(session, ids).items()}


def posts_of(session: Session, post_ids: Sequence[int]) -> IncidentPosts:
    """`IncidentPosts` of given post ids, ordered oldest first."""
    if not post_ids:
        return IncidentPosts((), 0, None)
    rows = _post_facts(session, post_ids)
    authors = {(rows[p][0] if p in rows and rows[p][0] else f"post:{p}") for p in post_ids}
    known = [rows[p][1] for p in post_ids if p in rows]
    ordered = sorted(dict.fromkeys(post_ids), key=lambda p: (p not in rows, rows[p][1].timestamp() if p in rows else 0.0, p))
    return IncidentPosts(tuple(ordered), len(authors), max(known) if known else None)


def newest_first(session: Session, post_ids: Iterable[int]) -> list[int]:
    """Post ids ordered newest first (unknown posts last): what an alert quotes."""
    ids = list(dict.fromkeys(post_ids))
    created = {p: when for p, (_, when) in _post_facts(session, ids).items()} if ids else {}
    return sorted(ids, key=lambda p: (p not in created, -(created[p].timestamp()) if p in created else 0, -p))


_FACTS = "siaga.incidents.post_facts"  # the session.info key `remembering_posts` sets


@contextmanager
def remembering_posts(session: Session) -> Iterator[None]:
    """Within the block, each stored post's author and time are read once per session: a detect
    run read an incident's posts again at every spike that grew it and every message about it
    (hundreds of queries over the same ids). Both never change while a run holds its
    transaction; outside the block every call reads the database."""
    session.info[_FACTS] = {}
    try:
        yield
    finally:
        session.info.pop(_FACTS, None)


def _post_facts(session: Session, post_ids: Iterable[int]) -> dict[int, tuple[str | None, datetime]]:
    """(author, created_at) of those of `post_ids` that are stored."""
    ids = list(post_ids)
    known: dict[int, tuple[str | None, datetime]] | None = session.info.get(_FACTS)
    if known is None:
        return _read_post_facts(session, list(dict.fromkeys(ids)))
    missing = [p for p in dict.fromkeys(ids) if p not in known]
    if missing:
        known.update(_read_post_facts(session, missing))
    return {p: known[p] for p in ids if p in known}


def _read_post_facts(session: Session, post_ids: list[int]) -> dict[int, tuple[str | None, datetime]]:
    found: dict[int, tuple[str | None, datetime]] = {}
    for among in in_slices(session, Post.id, post_ids):  # a run's spikes can cite tens of thousands
        found.update((r.id, (r.author, r.created_at)) for r in session.execute(select(Post.id, Post.author, Post.created_at).where(among)))
    return found


_ROWS = "siaga.incidents.run_rows"  # the session.info key `_remembering_rows` sets
Series = tuple[str, str, str]  # (hazard, level, area code) of an alert or spike


class _RunRows:
    """The alert and area rows one `apply_spikes` call reads, held in memory. A run asked the
    database the same questions about one series' alerts and one incident's alerts and areas
    at every spike (about a dozen queries a spike); within the call only this module writes
    those rows and every row it adds goes through `_remember_alert` / `_add_area`, so the
    lists answer exactly what the queries did (rows loaded are the session's own objects, so
    a merged window or a raised count is seen as the query would have seen it)."""

    def __init__(self, series: dict[Series, dict[int, Alert]]) -> None:
        self.series = series  # every alert of the series with window_end >= the run's bound
        self.alerts: dict[int, list[Alert]] = {}  # incident id -> all its alerts
        self.areas: dict[int, list[IncidentArea]] = {}  # incident id -> all its areas
        # every incident of the spikes' hazards a spike may join: live, or resolved by itself
        # within the reopen window of the run's first window (and those the run opens)
        self.incidents: dict[int, Incident] = {}
        # the same by hazard: every spike looks only at its own hazard's, and filtering all of
        # them at every spike was most of the attribute reads of a run with many spikes
        self.by_hazard: dict[str, dict[int, Incident]] = {}
        self.posts: dict[int, IncidentPosts] = {}  # incident id -> `incident_posts`, until `_forget_posts`
        # incident id -> its stored timeline (nothing is flushed within the call, so it stays as read)
        self.stored_events: dict[int, list[IncidentEvent]] = {}
        # incident id -> its timeline rows pending in the session, in the order they were added
        # (`session.new`'s order), from the first read on (`_pending_events`): scanning all of
        # `session.new` for one incident's, at every change, was quadratic in a run's changes
        self.pending_events: dict[int, list[IncidentEvent]] | None = None

    def hold(self, incident: Incident) -> None:
        self.incidents[incident.id] = incident
        self.by_hazard.setdefault(incident.hazard, {})[incident.id] = incident

    def of_hazard(self, hazard: str) -> list[Incident]:
        return list(self.by_hazard.get(hazard, {}).values())


@contextmanager
def _remembering_rows(session: Session, spikes: Sequence[Spike], gap: timedelta,
                      hazards: regional.Hazards, reopen_window: timedelta) -> Iterator[None]:
    """Within the block, the alerts of the spikes' series are read once (one query for all
    spikes: every window a spike is compared with ends after its start less its gap), the
    incidents a spike may join once (live ones, and those resolved by themselves since the
    reopen window before the first window end), with their areas and alerts, and any other
    incident's alerts and areas once, when first needed. The spikes' posts' authors and times
    are read in one query too when `remembering_posts` holds them."""
    if not spikes or _ROWS in session.info:
        yield
        return
    since = min(s.window_start - incident_gap(s.hazard, gap, hazards) for s in spikes)
    series: dict[Series, dict[int, Alert]] = {}
    for alert in session.scalars(select(Alert).where(Alert.hazard.in_(sorted({s.hazard for s in spikes})),
                                                     Alert.window_end >= since)):
        series.setdefault((alert.hazard, alert.level, alert.area_code), {})[alert.id] = alert
    rows = session.info[_ROWS] = _RunRows(series)
    first_end = min(s.window_end for s in spikes)
    for incident in session.scalars(select(Incident).where(
            Incident.hazard.in_(sorted({s.hazard for s in spikes})),
            or_(Incident.state.in_(LIVE_STATES),
                (Incident.state == "resolved") & (Incident.closed_by == AUTO_ACTOR)
                & (Incident.closed_at >= first_end - reopen_window)))):
        rows.hold(incident)
        rows.areas[incident.id], rows.alerts[incident.id] = [], []
    for among in in_slices(session, IncidentArea.incident_id, list(rows.incidents)):
        for area in session.scalars(select(IncidentArea).where(among)):
            rows.areas[area.incident_id].append(area)
    for among in in_slices(session, Alert.incident_id, list(rows.incidents)):
        for alert in session.scalars(select(Alert).where(among)):
            rows.alerts[alert.incident_id].append(alert)
            rows.series.setdefault((alert.hazard, alert.level, alert.area_code), {})[alert.id] = alert
    if _FACTS in session.info:
        _post_facts(session, {p: None for s in spikes for p in s.post_ids})
    try:
        yield
    finally:
        session.info.pop(_ROWS, None)


def _held_incidents(session: Session, hazard: str) -> list[Incident]:
    """The incidents of `hazard` `_remembering_rows` holds (every live one of the spikes'
    hazards among them)."""
    return _run_rows(session).of_hazard(hazard)


def _run_rows(session: Session) -> _RunRows:
    """The rows `apply_spikes` holds: the only way the spike-by-spike steps below read alerts
    and incidents, so there is one answer to each question, not a query and a copy of it."""
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is None:
        raise RuntimeError("incident rows are read only inside apply_spikes (_remembering_rows)")
    return rows


def _series_alerts(session: Session, spike: Spike) -> list[Alert]:
    """The alerts of the spike's series held by `_remembering_rows`."""
    return list(_run_rows(session).series.get((spike.hazard, spike.level, spike.area_code), {}).values())


def _alerts_of(session: Session, incident_id: int) -> list[Alert] | None:
    """All alerts of an incident held by `_remembering_rows` (None outside it)."""
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is None:
        return None
    held = rows.alerts.get(incident_id)
    if held is None:
        held = rows.alerts[incident_id] = list(session.scalars(select(Alert).where(Alert.incident_id == incident_id)))
        for alert in held:  # an old window of the series may be widened into the run's range
            rows.series.setdefault((alert.hazard, alert.level, alert.area_code), {})[alert.id] = alert
    return held


def _remember_alert(session: Session, alert: Alert) -> None:
    """A flushed new alert joins the rows `_remembering_rows` holds."""
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is None:
        return
    rows.series.setdefault((alert.hazard, alert.level, alert.area_code), {})[alert.id] = alert
    if alert.incident_id in rows.alerts:
        rows.alerts[alert.incident_id].append(alert)
    _forget_posts(session, alert.incident_id)


def _forget_posts(session: Session, incident_id: int | None) -> None:
    """An alert of the incident now cites posts it did not: `incident_posts` is read again."""
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is not None:
        rows.posts.pop(incident_id, None)


def _areas_of(session: Session, incident_id: int) -> list[IncidentArea]:
    """An incident's areas (read once per `_remembering_rows` block)."""
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is not None and incident_id in rows.areas:
        return rows.areas[incident_id]
    found = list(session.scalars(select(IncidentArea).where(IncidentArea.incident_id == incident_id)))
    if rows is not None:
        rows.areas[incident_id] = found
    return found


def _add_area(session: Session, area: IncidentArea) -> None:
    session.add(area)
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is not None and area.incident_id in rows.areas:
        rows.areas[area.incident_id].append(area)


def _new_incident_rows(session: Session, incident: Incident) -> None:
    """A just-opened incident has no alerts or areas yet: nothing to read."""
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is not None:
        rows.alerts.setdefault(incident.id, [])
        rows.areas.setdefault(incident.id, [])
        rows.hold(incident)


def in_kecamatan(name: str) -> ColumnElement[bool]:
    """SQL: the incident is in kecamatan `name` (any case): its own, or one its posts or road
    placed it in (a road through two kecamatan is in both)."""
    lowered = name.lower()
    return or_(
        func.lower(Incident.district) == lowered,
        select(IncidentArea.id).where(
            IncidentArea.incident_id == Incident.id, IncidentArea.level == "district", func.lower(IncidentArea.name) == lowered,
        ).exists(),
    )


def kecamatan_of(session: Session, incident: Incident) -> list[str]:
    """The names of the kecamatan an incident is in, its own first."""
    return kecamatan_by_incident(session, [incident])[incident.id]


def kecamatan_by_incident(session: Session, incidents: Sequence[Incident]) -> dict[int, list[str]]:
    """`kecamatan_of` several incidents, their areas read in one query (per `store.in_slices` slice)."""
    names = {i.id: [i.district] if i.district else [] for i in incidents}
    for among in in_slices(session, IncidentArea.incident_id, list(names)):  # an incident's areas in one slice
        for incident_id, name in session.execute(select(IncidentArea.incident_id, IncidentArea.name).where(
                among, IncidentArea.level == "district").order_by(IncidentArea.id)):
            names[incident_id].append(name)
    return {i: list(dict.fromkeys(n for n in found if n)) for i, found in names.items()}


# --- spikes into incidents -----------------------------------------------------------------------
def inhibited(spike: Spike, fired: list[Spike], areas: dict[tuple[str, str], AreaInfo]) -> bool:
    """A coarser spike is redundant when a finer one of the same hazard fired inside it."""
    if spike.level in ("village", "road"):
        return False
    mine = areas.get((spike.level, spike.area_code))
    for other in fired:
        if other.hazard != spike.hazard or LEVELS.index(other.level) >= LEVELS.index(spike.level):
            continue
        if spike.level == "regency":
            return True
        other_area = areas.get((other.level, other.area_code))
        if mine and other_area and _within_district(other_area, mine):
            return True
    return False


def _within_district(finer: AreaInfo, district: AreaInfo) -> bool:
    """Does a village or road lie in this kecamatan? A road through several villages has no
    single district name, so its villages' codes decide."""
    if finer.district and finer.district == district.district:
        return True
    codes = set(finer.villages) | ({finer.code} if finer.level == "village" else set())
    return any(district_code(c) == district.code for c in codes)


def apply_spikes(
    session: Session,
    spikes: list[Spike],
    areas: dict[tuple[str, str], AreaInfo],
    severities: dict[tuple[str, str, str, datetime], str],
    gap: timedelta,
    adjacent: Adjacency | None = None,
    reopen_window: timedelta = timedelta(hours=6),
    place_of: PlaceOf | None = None,
    posts: regional.PostAreas | None = None,
    hazards: regional.Hazards | None = None,
) -> list[Change]:
    """Open, join, grow or reopen incidents with each spike, recording what changed. Idempotent:
    a spike that brings nothing new (a re-run window, or the next sliding window over the same
    posts) changes nothing and writes nothing. `posts` (each post's finer areas,
    `regional.post_areas`) lets a regency spike of an areal hazard reported from several
    kecamatan open one regional incident that finer spikes join (`regional`). `hazards` (the
    lists in force, `HazardSet.hazards`) say which hazards are areal and which have an incident
    gap of their own instead of `gap`; without them none."""
    changes: list[Change] = []
    posts = posts or {}
    hazards = hazards or {}
    ordered = sorted(spikes, key=lambda s: regional.order_key(s, posts, hazards))
    # No flush inside: every read of a row this stage writes answers from the rows
    # `_remembering_rows` holds (alerts, incidents, areas) or from the session's pending rows
    # (the timeline, `what_changed_since_told`); the other tables read (posts, geotags, hazard
    # matches) are not written here. Flushing before each read wrote every change as it came,
    # several UPDATEs of one row a spike (about 600 statements a benchmark run, now about 250):
    # new incidents and alerts are inserted at once for their ids (`_inserted`), everything
    # else goes out together at the next flush after the block.
    with _remembering_rows(session, spikes, gap, hazards, reopen_window), session.no_autoflush:
        _apply_ordered(session, ordered, changes, areas, severities, gap, adjacent, reopen_window, place_of, posts, hazards)
    return _collapse(changes)


def _apply_ordered(session: Session, ordered: list[Spike], changes: list[Change], areas: dict[tuple[str, str], AreaInfo],
                   severities: dict[tuple[str, str, str, datetime], str], gap: timedelta, adjacent: Adjacency | None,
                   reopen_window: timedelta, place_of: PlaceOf | None, posts: regional.PostAreas,
                   hazards: regional.Hazards) -> None:
    # the spikes fired so far, by window end: `inhibited` compares a spike with those of its own
    # window only, and filtering the whole list for them at every spike was quadratic (0.6 s of
    # a 3,000-spike run under the profiler)
    fired: dict[datetime, list[Spike]] = {}
    for spike in ordered:
        gap_of_spike = incident_gap(spike.hazard, gap, hazards)
        broad = regional.regional_cover(spike, posts, hazards)
        if not broad and (inhibited(spike, fired.get(spike.window_end, []), areas)
                          or _inhibited_by_live(session, spike, areas)):
            _join_redundant(session, spike, areas, gap_of_spike, hazards)
            continue
        fired.setdefault(spike.window_end, []).append(spike)
        if _already_recorded(session, spike):
            continue
        area = areas.get((spike.level, spike.area_code)) or AreaInfo(spike.level, spike.area_code, spike.area_code)
        severity = severities.get((spike.hazard, spike.level, spike.area_code, spike.window_end), "low")
        change = _record(session, spike, area, severity, gap_of_spike, adjacent, reopen_window, place_of, broad, hazards)
        if change is not None:
            changes.append(change)


def incident_gap(hazard: str, gap: timedelta, hazards: regional.Hazards) -> timedelta:
    """How far apart two spikes of `hazard` may be and still be one incident: the hazard's own
    gap (a drought reported over a day is one event), else `gap`, config/detection.yaml's."""
    known = hazards.get(hazard)
    return known.incident_gap(gap) if known is not None else gap


def _collapse(changes: list[Change]) -> list[Change]:
    """One run that opens an incident and grows it (a catch-up over several windows) sends one
    message: the new alert, written after the run, already shows the incident as it is; it
    quotes the newest evidence of the later changes."""
    opened = {c.incident.id: c for c in changes if c.kind == "new"}
    out = []
    for change in changes:
        first = opened.get(change.incident.id)
        if first is not None and change is not first and change.kind in ("update", "escalation"):
            first.evidence = list(dict.fromkeys(change.evidence + first.evidence))
            continue
        out.append(change)
    return out


def footprint(area: AreaInfo, place_of: PlaceOf | None = None) -> dict[tuple[str, str], str]:
    """The (level, code) -> name an alert in `area` covers: a road covers its villages too."""
    cover = {(area.level, area.code): area.name}
    if area.level == "road":
        for code in area.villages:
            known = place_of(code) if place_of else None
            cover.setdefault(("village", code), known[0] if known else code)
    return cover


def neighbourhood(cover: Iterable[tuple[str, str]], adjacent: Adjacency | None) -> set[tuple[str, str]]:
    """The covered areas and the villages bordering any covered village."""
    out = set(cover)
    if adjacent is None:
        return out
    for level, code in list(out):
        if level != "village":
            continue
        try:
            out.update(("village", n) for n in adjacent(code))
        except KeyError:  # a code the gazetteer does not know borders nothing we know
            pass
    return out


def _join_redundant(session: Session, spike: Spike, areas: dict[tuple[str, str], AreaInfo], gap: timedelta,
                    hazards: regional.Hazards) -> None:
    """A coarser spike a live finer (or regional) incident already tells: stored with that
    incident, silently (`regional.joined_alert`), so its window is never re-checked as news after
    that one resolves."""
    if _already_recorded(session, spike) or _told_before(session, spike, gap):
        return  # a sliding window over posts this series already cited
    mine = areas.get((spike.level, spike.area_code))
    held = _held_incidents(session, spike.hazard)
    incident = (regional.finer_live_incident(spike, mine.district if mine else None, spike.area_code,
                                             covered=lambda i: [(a.level, a.area_code) for a in _areas_of(session, i)],
                                             held=held)
                or regional.live_regional_incident(spike, gap, hazards, held=held))
    if incident is None:
        return
    same_window = _same_window_alert(session, spike)
    if same_window is not None:  # the window was joined before, and late posts came: one row per window end
        _merge(session, same_window, spike)
        return
    _remember_alert(session, _inserted(session, Alert, regional.joined_alert(
        spike, incident, {**spike.explanation(), "area": mine.name if mine else spike.area_code, "level": spike.level})))


def _grow_late(session: Session, alert: Alert, spike: Spike) -> None:
    """Late posts in a window that already belongs to an incident whose story no longer takes
    them (it resolved, or the window was joined to a finer one since resolved): they grow that
    window's row and its incident, as history. Opening a new incident there inserted a second
    row for the window, which failed on uq_alerts_window, and so did every later detect run."""
    owner = session.get(Incident, alert.incident_id)
    before = incident_posts(session, owner.id)
    new_ids = [p for p in spike.post_ids if p not in set(before.post_ids)]
    _merge(session, alert, spike)
    if new_ids:
        after = _refresh(session, owner)
        _event(session, owner, spike.window_end, "grew", _grew_detail(alert, spike, new_ids, before, after, late=True))


def _same_window_alert(session: Session, spike: Spike) -> Alert | None:
    """The series' alert already stored for this window end, if any (the oldest): the table
    holds one row per (hazard, area, window end), so a window evaluated again with late posts
    is merged into it, never inserted twice."""
    same = [a for a in _series_alerts(session, spike) if a.window_end == spike.window_end]
    return min(same, key=lambda a: a.id) if same else None


def _already_recorded(session: Session, spike: Spike) -> bool:
    """This window lies within the recorded alerts of its series and they cite all its posts:
    a re-run, or a past window the next run evaluates again."""
    explanations = [a.explanation for a in _series_alerts(session, spike)
                    if a.window_start <= spike.window_start and a.window_end >= spike.window_end]
    return bool(explanations) and set(spike.post_ids) <= set(cited_post_ids(explanations))


def _told_before(session: Session, spike: Spike, gap: timedelta) -> bool:
    """Every post of this window was counted by a recent alert of its series: no news, even if
    the incident they made is closed."""
    explanations = [a.explanation for a in _series_alerts(session, spike) if a.window_end >= spike.window_start - gap]
    return bool(explanations) and set(spike.post_ids) <= set(cited_post_ids(explanations))


def _inhibited_by_live(session: Session, spike: Spike, areas: dict[tuple[str, str], AreaInfo]) -> bool:
    """A live finer incident of the same hazard inside this area already tells the story."""
    if spike.level not in ("district", "regency"):
        return False
    mine = areas.get((spike.level, spike.area_code))
    finer = ("village", "road") if spike.level == "district" else ("village", "road", "district")
    live = [i for i in _held_incidents(session, spike.hazard) if i.state in LIVE_STATES and i.level in finer]
    for incident in live:
        if spike.level == "regency" or (mine and incident.district and incident.district == mine.district):
            return True
        if mine and spike.level == "district":
            covered = [a.area_code for a in _areas_of(session, incident.id) if a.level in ("village", "district")]
            if any(district_code(c) == mine.code for c in covered):
                return True
    return False


def _matching_incident(
    session: Session, spike: Spike, near: set[tuple[str, str]], gap: timedelta, reopen_window: timedelta
) -> Incident | None:
    """The live incident of this hazard covering or bordering the spike's area, else one that
    resolved itself within the reopen window; the most recently active first."""
    held = _run_rows(session)
    found = [i for i in held.of_hazard(spike.hazard) if (
        (i.state in LIVE_STATES and i.last_activity_at >= spike.window_end - gap)
        or (i.state == "resolved" and i.closed_by == AUTO_ACTOR and i.closed_at is not None
            and i.closed_at >= spike.window_end - reopen_window))]
    found.sort(key=lambda i: (i.last_activity_at, i.id), reverse=True)
    for incident in sorted(found, key=lambda i: i.state not in LIVE_STATES):
        if any((a.level, a.area_code) in near for a in held.areas[incident.id]):
            return incident
    return None


def _record(
    session: Session, spike: Spike, area: AreaInfo, severity: str, gap: timedelta,
    adjacent: Adjacency | None, reopen_window: timedelta, place_of: PlaceOf | None,
    broad: dict[tuple[str, str], str] | None = None, hazards: regional.Hazards | None = None,
) -> Change | None:
    cover = {**footprint(area, place_of), **(broad or {})}
    incident = regional.live_regional_incident(spike, gap, hazards or {}, held=_held_incidents(session, spike.hazard)) or _matching_incident(
        session, spike, neighbourhood(cover, adjacent), gap, reopen_window)
    if incident is None:
        if _told_before(session, spike, gap):
            return None  # e.g. the next window over the posts of an incident a person just closed
        same_window = _same_window_alert(session, spike)
        if same_window is not None:
            _grow_late(session, same_window, spike)
            return None
        return _open(session, spike, area, severity, cover, place_of)

    before = incident_posts(session, incident.id)
    new_ids = [p for p in spike.post_ids if p not in set(before.post_ids)]
    if incident.state == "resolved" and spike.window_end <= (incident.closed_at or spike.window_end):
        # a late-counted window from before the resolution: history, not news
        if new_ids:
            alert = _alert_for(session, incident, spike, area, new_row=False)
            after = _refresh(session, incident)
            _event(session, incident, spike.window_end, "grew", _grew_detail(alert, spike, new_ids, before, after, late=True))
        return None
    reopening = incident.state == "resolved"
    widened = regional.promote(incident, spike.level, spike.area_code, area.name)
    added = _cover(session, incident, cover, spike)
    added.update(_place_by_posts(session, incident, new_ids, place_of))
    spread = area_severity(session, incident, _areas_of(session, incident.id))
    target = higher_severity(severity, spread)
    escalated = SEVERITIES.index(target) > SEVERITIES.index(incident.severity)
    if not (new_ids or added or escalated or reopening or widened):
        _widen(session, incident, spike)
        return None
    posts_now = before.posts + len(new_ids)
    kind = "escalation" if escalated or reopening else (
        "update" if new_ids and posts_now >= incident.notified_posts * UPDATE_GROWTH else None)
    alert = _alert_for(session, incident, spike, area, new_row=kind is not None or bool(added))
    after = _refresh(session, incident)
    pending: list[tuple[str, dict[str, Any]]] = []
    if reopening:
        pending.append(("reopened", {
            "after_minutes": int((spike.window_end - incident.closed_at) / timedelta(minutes=1)),
            "closed_at": incident.closed_at.isoformat(), "alert_id": alert.id,
        }))
        incident.state, incident.closed_at, incident.closed_by = "open", None, None
        incident.reopened = (incident.reopened or 0) + 1
    if widened:
        pending.append(("widened", {"from": widened, "to": {
            "level": incident.level, "area_code": incident.area_code, "area_name": incident.area_name}}))
    if added:
        pending.append(("area_added", {"areas": [{"level": lv, "code": c, "name": n} for (lv, c), n in added.items()]}))
    if new_ids:
        pending.append(("grew", _grew_detail(alert, spike, new_ids, before, after)))
    if escalated:
        why = _severity_why(session, incident, severity, spread, target, after.post_ids)
        pending.append(("escalated", {"from": incident.severity, "to": target, "why": why}))
        incident.severity = target
    for i, (kind_of_event, detail) in enumerate(pending):
        told = kind is not None and i == len(pending) - 1
        _event(session, incident, spike.window_end, kind_of_event, {**detail, TOLD: True} if told else detail)
    if kind is None:
        return None
    incident.notified_posts = incident.posts
    what = what_changed_since_told(session, incident)
    evidence = newest_first(session, what.new_post_ids or spike.post_ids)
    return Change(incident, kind, alert, evidence, what)


def _grew_detail(alert: Alert, spike: Spike, new_ids: list[int], before: IncidentPosts, after: IncidentPosts,
                 late: bool = False) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "alert_id": alert.id, "post_ids": list(new_ids), "posts_before": before.posts, "posts": after.posts,
        "authors_before": before.authors, "authors": after.authors, "observed": spike.observed,
        "expected": round(spike.expected, 4), "window_authors": spike.authors,
        "window_minutes": int((spike.window_end - spike.window_start) / timedelta(minutes=1)),
    }
    if late:
        detail["late"] = True
    return detail


def _open(session: Session, spike: Spike, area: AreaInfo, severity: str, cover: dict[tuple[str, str], str],
          place_of: PlaceOf | None) -> Change:
    incident = _inserted(session, Incident, dict(
        hazard=spike.hazard,
        level=spike.level,
        area_code=spike.area_code,
        area_name=area.name,
        village=area.village,
        district=area.district,
        road=area.road,
        lon=area.lon,
        lat=area.lat,
        state="open",
        severity=severity,
        posts=spike.observed,
        authors=spike.authors,
        notified_posts=spike.observed,
        opened_at=spike.window_end,
        last_activity_at=spike.window_end,
        reopened=0,
    ))
    _new_incident_rows(session, incident)
    alert = _new_alert(session, incident, spike, area)
    _cover(session, incident, cover, spike)
    placed = _place_by_posts(session, incident, list(spike.post_ids), place_of)
    posts = _refresh(session, incident)
    incident.last_activity_at = posts.last_post_at or spike.window_end  # its newest post, not the detection
    incident.notified_posts = incident.posts
    why = _severity_why(session, incident, severity, "low", severity, posts.post_ids)
    areas = [{"level": lv, "code": c, "name": n} for (lv, c), n in {**cover, **placed}.items()]
    _event(session, incident, spike.window_end, "opened", {
        "severity": severity, "why": why, "alert_id": alert.id, "areas": areas, "post_ids": list(posts.post_ids),
        "posts": posts.posts, "authors": posts.authors, "observed": spike.observed, "expected": round(spike.expected, 4),
        "window_authors": spike.authors, "window_minutes": int((spike.window_end - spike.window_start) / timedelta(minutes=1)),
        TOLD: True,
    })
    return Change(incident, "new", alert, newest_first(session, spike.post_ids))


def _new_alert(session: Session, incident: Incident, spike: Spike, area: AreaInfo) -> Alert:
    alert = _inserted(session, Alert, dict(
        incident_id=incident.id,
        hazard=spike.hazard,
        level=spike.level,
        area_code=spike.area_code,
        window_start=spike.window_start,
        window_end=spike.window_end,
        observed=spike.observed,
        expected=spike.expected,
        authors=spike.authors,
        score=spike.score,
        explanation={**spike.explanation(), "area": area.name, "level": area.level},
    ))
    _remember_alert(session, alert)
    return alert


def _inserted(session: Session, model: type[_Row], values: dict[str, Any]) -> _Row:
    """A new row, inserted at once for its id (its areas and alerts point at an incident, the
    timeline cites an alert), as the session's own object: an ORM `INSERT ... RETURNING`. Adding
    an object and flushing for its id wrote every other pending change of the run with it, so a
    run wrote its incidents, alerts and areas again at every new alert; those now wait for the
    next flush and go out together."""
    return session.scalars(insert(model).returning(model), [values]).one()


def _alert_for(session: Session, incident: Incident, spike: Spike, area: AreaInfo, new_row: bool) -> Alert:
    """The alert row a changing spike is recorded in: a new one for a message or a new area,
    else the series' latest alert of this incident, widened (one row per window end: a re-run
    window with a late post merges into its own row)."""
    same_window = _same_window_alert(session, spike)
    if same_window is not None:
        _merge(session, same_window, spike)
        return same_window
    latest = _latest(session, incident, spike)
    if new_row or latest is None:
        return _new_alert(session, incident, spike, area)
    _merge(session, latest, spike)
    return latest


def _widen(session: Session, incident: Incident, spike: Spike) -> None:
    """A window that changed nothing widens the series' latest alert of the incident, so the
    baseline still leaves the whole event out; no row is added."""
    latest = _latest(session, incident, spike)
    if latest is not None and spike.window_end > latest.window_end:
        _merge(session, latest, spike)


def _latest(session: Session, incident: Incident, spike: Spike) -> Alert | None:
    """The series' latest alert of the incident."""
    _run_rows(session)  # only inside apply_spikes, where `_alerts_of` answers from the held rows
    mine = [a for a in _alerts_of(session, incident.id) or () if (a.hazard, a.level, a.area_code) == (spike.hazard, spike.level, spike.area_code)]
    return max(mine, key=lambda a: (a.window_end, a.id)) if mine else None


def _merge(session: Session, alert: Alert, spike: Spike) -> None:
    """Fold a later (or re-run) window into an alert: its window spans both, its figures are the
    peak's, its posts are both windows' posts."""
    explanation = dict(alert.explanation or {})
    if spike.observed > alert.observed:
        peak = spike.explanation()
        explanation.update({k: v for k, v in peak.items() if k not in ("post_ids", "window_start", "window_end", "terms")})
        alert.observed, alert.expected, alert.authors, alert.score = spike.observed, spike.expected, spike.authors, spike.score
    alert.window_start = min(alert.window_start, spike.window_start)
    alert.window_end = max(alert.window_end, spike.window_end)
    explanation["window_start"] = alert.window_start.isoformat()
    explanation["window_end"] = alert.window_end.isoformat()
    explanation["terms"] = sorted(set(explanation.get("terms") or []) | set(spike.terms))
    explanation["post_ids"] = cited_post_ids([alert.explanation, {"post_ids": list(spike.post_ids)}])
    if explanation["post_ids"] != cited_post_ids([alert.explanation]):
        _forget_posts(session, alert.incident_id)
    if explanation != alert.explanation:
        alert.explanation = explanation


def _refresh(session: Session, incident: Incident) -> IncidentPosts:
    """The incident's posts, authors and last activity made equal to its detections' posts."""
    posts = incident_posts(session, incident.id)
    incident.posts, incident.authors = posts.posts, posts.authors
    if posts.last_post_at is not None:
        incident.last_activity_at = max(incident.last_activity_at, posts.last_post_at)
    return posts


def _severity_why(session: Session, incident: Incident, spike_severity: str, spread: str, target: str,
                  post_ids: Sequence[int]) -> dict[str, Any]:
    """Which cue raised the severity: the posts' severity cues, the spread over areas, or the
    number of reports."""
    if SEVERITIES.index(spread) >= SEVERITIES.index(target) and SEVERITIES.index(spike_severity) < SEVERITIES.index(target):
        areas = sum(1 for a in _areas_of(session, incident.id) if a.posts > 0)
        return {"spread": int(areas)}
    cues, with_cues = cue_counts(session, incident.hazard, post_ids)
    if cues:
        return {"cues": dict(cues.most_common(3)), "posts": with_cues}
    return {"count": incident.posts}


def _cover(session: Session, incident: Incident, cover: dict[tuple[str, str], str], spike: Spike) -> dict[tuple[str, str], str]:
    """Add the areas not yet covered; raise the spike's own area's count. Returns the new ones."""
    existing = {(a.level, a.area_code): a for a in _areas_of(session, incident.id)}
    added = {}
    for (level, code), name in cover.items():
        row = existing.get((level, code))
        own = (level, code) == (spike.level, spike.area_code)
        if row is None:
            _add_area(session, IncidentArea(incident_id=incident.id, level=level, area_code=code, name=name[:128],
                                            posts=spike.observed if own else 0, added_at=spike.window_end))
            added[(level, code)] = name
        elif own and spike.observed > row.posts:
            row.posts = spike.observed
    return added


def _place_by_posts(session: Session, incident: Incident, post_ids: list[int], place_of: PlaceOf | None) -> dict[tuple[str, str], str]:
    """A road (or regency) incident is also where its posts place it: the villages they name and
    the kecamatan of those and of the road's villages. Adds them as areas, sets the incident's
    own kecamatan to the one named most (the road's, when the posts name none) and returns the
    areas added."""
    if incident.level not in ("road", "regency"):
        return {}
    villages: dict[str, str] = {}
    districts: Counter[tuple[str, str]] = Counter()
    if post_ids:
        tags = (row for among in in_slices(session, Geotag.post_id, post_ids)
                for row in session.execute(select(Geotag.post_id, Geotag.code, Geotag.village, Geotag.district).where(
                    among, Geotag.in_region.is_(True), Geotag.confidence >= MIN_PLACE_CONFIDENCE,
                    Geotag.code.is_not(None), Geotag.district.is_not(None))))
        per_post: dict[int, set[tuple[str, str]]] = {}
        for post_id, code, village, district in tags:
            parts = code.split(".")
            if len(parts) == 4 and village:
                villages[code] = village
                per_post.setdefault(post_id, set()).add((district_code(code), district))
            elif len(parts) == 3:
                per_post.setdefault(post_id, set()).add((code, district))
        for found in per_post.values():
            districts.update(found)
    # by (level, code), the order the query behind `_areas_of` returned them in (PostgreSQL reads
    # them through the unique index): the road's kecamatan are named in that order
    covered = {(a.level, a.area_code): a for a in sorted(_areas_of(session, incident.id), key=lambda a: (a.level, a.area_code))}
    along = [c for (lv, c) in covered if lv == "village"]
    road_districts: dict[tuple[str, str], None] = {}
    for code in along:
        known = place_of(code) if place_of else None
        if known:
            road_districts[(district_code(code), known[1])] = None
    wanted: dict[tuple[str, str], str] = {("village", c): n for c, n in villages.items()}
    wanted.update({("district", c): n for c, n in list(districts) + list(road_districts)})
    added = {}
    for (level, code), name in wanted.items():
        if (level, code) not in covered:
            _add_area(session, IncidentArea(incident_id=incident.id, level=level, area_code=code, name=name[:128], posts=0,
                                            added_at=incident.last_activity_at))
            added[(level, code)] = name
    if not incident.district:
        named = [name for (_, name), _ in districts.most_common()] + [name for _, name in road_districts]
        incident.district = named[0] if named else None
    return added


# --- what changed since the last message ---------------------------------------------------------
def what_changed(events: Sequence[IncidentEvent]) -> WhatChanged:
    """What the timeline `events` (those since the last message) changed, as one summary."""
    new_posts: dict[int, None] = {}
    posts_before = posts = authors_before = authors = None
    areas: dict[str, None] = {}
    severity_from = severity_to = None
    why = None
    states: list[tuple[str, str, str]] = []
    reopened = False
    resolved = None
    for e in events:
        d = e.detail or {}
        if e.kind == "grew":
            new_posts.update(dict.fromkeys(cited_post_ids([d])))
            posts_before = d.get("posts_before") if posts_before is None else posts_before
            authors_before = d.get("authors_before") if authors_before is None else authors_before
            posts, authors = d.get("posts"), d.get("authors")
        elif e.kind == "area_added":
            areas.update(dict.fromkeys(str(a.get("name") or a.get("code")) for a in d.get("areas") or []))
        elif e.kind == "escalated":
            severity_from = d.get("from") if severity_from is None else severity_from
            severity_to, why = d.get("to"), d.get("why")
        elif e.kind == "reopened" and e.actor == AUTO_ACTOR:
            reopened = True
        elif e.kind in STATES or e.kind == "reopened":
            states.append((str(d.get("from", "")), str(d.get("to", e.kind)), e.actor))
        if e.kind == "resolved" and e.actor == AUTO_ACTOR:
            resolved = d
            states = [s for s in states if s[2] != AUTO_ACTOR]
    return WhatChanged(
        new_post_ids=tuple(new_posts), posts_before=posts_before, posts=posts, authors_before=authors_before,
        authors=authors, areas=tuple(areas), severity=(severity_from, severity_to) if severity_to else None,
        severity_why=why, states=tuple(states), reopened=reopened, resolved=resolved,
    )


def what_changed_since_told(session: Session, incident: Incident) -> WhatChanged:
    """What changed since the message before the latest one (the latest being the one being
    written now, whose event carries TOLD). Reads without flushing: the Slack actions tell a
    click that changed something by the events it leaves pending."""
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is not None:
        # Inside `apply_spikes`, which does not flush for this read: the timeline as a flush would
        # have stored it, in (at, id) order. Pending rows would get their ids in the order they
        # were added (`session.new`'s order, which `_RunRows.pending_events` keeps), after every
        # stored one.
        stored = rows.stored_events.get(incident.id)
        if stored is None:
            stored = rows.stored_events[incident.id] = _stored_events(session, incident.id)
        events = sorted(stored + _pending_events(session, rows).get(incident.id, []), key=lambda e: e.at)
    else:
        stored = _stored_events(session, incident.id)
        pending = [o for o in session.new if isinstance(o, IncidentEvent) and o.incident_id == incident.id]
        events = stored + sorted(pending, key=lambda e: (e.at, bool((e.detail or {}).get(TOLD))))
    told = [i for i, e in enumerate(events) if (e.detail or {}).get(TOLD)]
    start = told[-2] + 1 if len(told) >= 2 else (1 if events and events[0].kind == "opened" else 0)
    return what_changed(events[start:])


def _pending_events(session: Session, rows: _RunRows) -> dict[int, list[IncidentEvent]]:
    """The timeline rows pending in the session by incident, read from `session.new` once; from
    then on `add_event` adds each new one (nothing is flushed inside `apply_spikes`)."""
    if rows.pending_events is None:
        rows.pending_events = {}
        for pending in session.new:
            if isinstance(pending, IncidentEvent):
                rows.pending_events.setdefault(pending.incident_id, []).append(pending)
    return rows.pending_events


def _stored_events(session: Session, incident_id: int) -> list[IncidentEvent]:
    """An incident's stored timeline in (at, id) order, read without flushing."""
    with session.no_autoflush:
        return list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                    .order_by(IncidentEvent.at, IncidentEvent.id)))


# --- lifecycle -------------------------------------------------------------------------------------
def resolve_quiet(session: Session, now: datetime, quiet: timedelta,
                  hazards: regional.Hazards | None = None) -> list[Change]:
    """Live incidents with no new post (or person's action) for `quiet` resolve themselves
    (and may reopen). An incident of a hazard with a longer incident gap of its own (`hazards`,
    a drought) stays open that long: resolved earlier, the next report within its gap would
    resolve-and-reopen it, or open a second incident for the same event."""
    changes = []
    hazards = hazards or {}
    stale = select(Incident).where(Incident.state.in_(LIVE_STATES), Incident.last_activity_at < now - quiet)
    for incident in session.scalars(stale):
        own_quiet = max(quiet, incident_gap(incident.hazard, quiet, hazards))
        if incident.last_activity_at >= now - own_quiet:
            continue
        incident.state = "resolved"
        incident.closed_at = now
        incident.closed_by = AUTO_ACTOR
        _event(session, incident, now, "resolved", {
            "quiet_minutes": int(own_quiet / timedelta(minutes=1)), "last_activity_at": incident.last_activity_at.isoformat(),
            "automatic": True, TOLD: True,
        })
        changes.append(Change(incident, "resolved", _cycle_alert(session, incident), what=what_changed_since_told(session, incident)))
    return changes


def transition(session: Session, incident_id: int, to_state: str, actor: str, at: datetime, note: str | None = None) -> Change | None:
    """A person moves an incident through its lifecycle (today: the alert's Slack buttons
    Acknowledge, Resolve and False alarm).

    Raises LookupError for an unknown incident, InvalidTransition for an unknown state, a missing
    actor or a move the lifecycle forbids. Pressing the same button twice is harmless (None).
    Closing returns a "resolved" change so the thread hears it; reopening (which the lifecycle
    allows but no button offers yet) an "escalation". A person's action is activity: the
    incident's last activity moves to it."""
    if to_state not in STATES:
        raise InvalidTransition(f"unknown incident state {to_state!r}; expected one of {', '.join(STATES)}")
    if not actor or not actor.strip():
        raise InvalidTransition("a state change needs the actor who made it")
    if at.tzinfo is None:
        raise InvalidTransition(f"naive time {at!r}: give a timezone-aware time")
    _lock_for_update(session, incident_id)
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise LookupError(f"no incident {incident_id}")
    if incident.state == to_state:
        return None
    if to_state not in TRANSITIONS[incident.state]:
        allowed = ", ".join(TRANSITIONS[incident.state])
        raise InvalidTransition(f"incident {incident_id} is {incident.state}: cannot become {to_state} (allowed: {allowed})")
    detail: dict[str, Any] = {"from": incident.state, "to": to_state}
    if note:
        detail["note"] = note[:1000]
    incident.state = to_state
    incident.last_activity_at = max(incident.last_activity_at, at)
    if to_state in ("resolved", "false_alarm"):
        incident.closed_at, incident.closed_by = at, actor
        _event(session, incident, at, to_state, {**detail, TOLD: True}, actor=actor)
        return Change(incident, "resolved", _cycle_alert(session, incident), what=what_changed_since_told(session, incident))
    if to_state == "open":
        incident.closed_at, incident.closed_by = None, None
        incident.reopened = (incident.reopened or 0) + 1
        _event(session, incident, at, "reopened", {**detail, TOLD: True}, actor=actor)
        return Change(incident, "escalation", _cycle_alert(session, incident), what=what_changed_since_told(session, incident))
    _event(session, incident, at, to_state, detail, actor=actor)
    return None


def _lock_for_update(session: Session, incident_id: int) -> None:
    """On SQLite, take the database's write lock before reading the incident: SQLite ignores FOR
    UPDATE, so two clicks at once both read "open" and both closed it (two "resolved" events,
    the thread's "resolved" reply queued twice, and a False alarm recorded after a Resolve). A
    no-op write makes the second wait for the first to commit, then read its state. PostgreSQL
    locks the row with FOR UPDATE."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Incident).where(Incident.id == incident_id).values(state=Incident.state))


def _cycle_alert(session: Session, incident: Incident) -> Alert | None:
    """The outbox de-duplicates on (incident, receiver, kind, alert): a reopened incident's
    second "resolved" must carry a different alert than its first, or it would never be sent.
    Never reopened: None, as before."""
    if not incident.reopened:
        return None
    return session.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.window_end.desc(), Alert.id.desc())).first()


def add_event(session: Session, incident: Incident, at: datetime, kind: str, detail: dict[str, Any], actor: str = AUTO_ACTOR) -> None:
    """One timeline row. `detail` is structured data for programs; people read it through
    `timelines.story`, which says it in a sentence."""
    event = IncidentEvent(incident_id=incident.id, at=at, kind=kind, actor=actor, detail=detail)
    session.add(event)
    rows: _RunRows | None = session.info.get(_ROWS)
    if rows is not None and rows.pending_events is not None:
        rows.pending_events.setdefault(incident.id, []).append(event)


_event = add_event
