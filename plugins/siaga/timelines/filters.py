"""What the incident list shows: incidents matching the managers' filters, how many opened per
hazard per week, and how much of the period's input could be placed on a map.

Dates are typed by people in Buleleng, so a date means a whole day in WITA, the end date
included. Every parameter arrives from a URL anyone can type, so each is checked before it
reaches the database (`Filters.check`): a bad one is a clear ValueError the routes answer with
400, never a database error.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siaga.incidents import in_kecamatan
from siaga.sources.schema import MIN_TIME, check_string
from siaga.store import Geotag, Incident, Post, PostTag
from siaga.timelines.places import Places
from siaga.timelines.report import alive_in
from siaga.vocabulary import LOCAL_TZ, STATES

# A filter is a name typed into a box: longer is a mistake or an attack (a 60,000-character
# LIKE pattern makes SQLite refuse the query), so it is refused before the database sees it.
MAX_FILTER_CHARS = 200
# Dates outside these bounds are typos ("0026" for 2026) or probes; beyond them datetime
# arithmetic and the databases' own date ranges overflow.
EARLIEST = MIN_TIME
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


def parse_day(value: str, end: bool = False) -> datetime:
    """A date (a whole WITA day: its start, or with `end` the next day's start, so the end date
    is included) or an ISO timestamp (WITA if no offset, as every time a person types: it was
    UTC here while `siaga backtest --from` and `siaga terms --until` read it as WITA, so the
    same "2026-12-05T10:00" meant two instants 8 hours apart). ValueError names the bad value."""
    shown = value if len(value) <= 40 else value[:40] + "…"
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            parsed = datetime.combine(d, time(), tzinfo=LOCAL_TZ)
        else:
            parsed = datetime.fromisoformat(value)
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL_TZ)
    except (ValueError, TypeError):
        raise ValueError(f"bad date {shown!r}: use YYYY-MM-DD or an ISO timestamp") from None
    # a date is a WITA day, compared as a day: 2000-01-01 begins 8 hours before EARLIEST (UTC)
    # and is the first day the message offers
    day = len(value) == 10
    if not (EARLIEST.date() <= parsed.date() < LATEST.date() if day else EARLIEST <= parsed < LATEST):
        raise ValueError(f"date {shown!r} is out of range: use a date from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return parsed + timedelta(days=1) if end and len(value) == 10 else parsed


PARAMETER_NAMES = {"date_from": "from", "date_to": "to"}  # the URL's names where they differ


@dataclass
class Filters:
    """The list's filters as typed; empty means no filter. Hazard and state are exact ids;
    kecamatan, village and road ignore case, and village and road match any part of the name."""

    hazard: str = ""
    kecamatan: str = ""
    village: str = ""
    road: str = ""
    state: str = ""
    date_from: str = ""
    date_to: str = ""

    def query(self, **extra: str) -> str:
        """The filters (and `extra`) as a URL query, for links that keep them."""
        params = {f.name: getattr(self, f.name) for f in fields(self)}
        return urlencode({k: v for k, v in {**params, **extra}.items() if v})

    def check(self) -> "Filters":
        """Itself, when every parameter is one the list can answer; else ValueError naming the
        parameter and what is wrong with it (too long, NUL or control characters, invalid
        Unicode, an unknown state, a bad or out-of-range date)."""
        for f in fields(self):
            try:
                check_string(getattr(self, f.name), PARAMETER_NAMES.get(f.name, f.name), MAX_FILTER_CHARS, single_line=True)
            except ValueError as exc:
                raise ValueError(f"bad query parameter: {exc}") from None
        if self.state and self.state not in STATES:
            raise ValueError(f"bad query parameter: field 'state': unknown state {self.state!r}; use one of {', '.join(STATES)}")
        for name, value in (("from", self.date_from), ("to", self.date_to)):
            try:
                parse_day(value, end=name == "to") if value else None
            except ValueError as exc:
                raise ValueError(f"bad query parameter: field '{name}': {exc}") from None
        try:
            self.period()
        except ValueError as exc:
            raise ValueError(f"bad query parameters: {exc}") from None
        return self

    def check_names(self, session: Session, hazards: Iterable[str], places: Places) -> "Filters":
        """Itself, when the hazard and kecamatan are ones the list knows: a hazard in force or
        one some incident has (a retired hazard's incidents stay findable), a kecamatan of the
        regency's map or one some incident is in. Else ValueError naming the parameter: a typo
        ("flod") listed no incidents, which read as "no floods", and its export was an empty file."""
        known = set(hazards)
        if self.hazard and self.hazard not in known and session.scalar(select(Incident.id).where(Incident.hazard == self.hazard).limit(1)) is None:
            shown = self.hazard if len(self.hazard) <= 40 else self.hazard[:40] + "…"
            raise ValueError(f"bad query parameter: field 'hazard': unknown hazard {shown!r}; use one of {', '.join(sorted(known))}")
        if self.kecamatan and places.district_named(self.kecamatan) is None \
                and session.scalar(select(Incident.id).where(in_kecamatan(self.kecamatan)).limit(1)) is None:
            shown = self.kecamatan if len(self.kecamatan) <= 40 else self.kecamatan[:40] + "…"
            names = sorted(d.name for d in places.districts.values())
            raise ValueError(f"bad query parameter: field 'kecamatan': unknown kecamatan {shown!r}; use one of {', '.join(names)}")
        return self

    def period(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) of the typed dates; ValueError when a date is bad or the end is not after
        the start."""
        start = parse_day(self.date_from) if self.date_from else None
        end = parse_day(self.date_to, end=True) if self.date_to else None
        if start and end and end <= start:
            raise ValueError("date 'to' is before 'from'")
        return start, end


def filtered_incidents(session: Session, filters: Filters) -> list[Incident]:
    """Incidents matching every filter and alive in the period, newest first."""
    stmt = select(Incident).where(*alive_in(*filters.period()))
    if filters.hazard:
        stmt = stmt.where(Incident.hazard == filters.hazard)
    if filters.kecamatan:
        stmt = stmt.where(in_kecamatan(filters.kecamatan))  # a road incident is in every kecamatan it passes
    if filters.village:
        stmt = stmt.where(func.lower(Incident.village).contains(filters.village.lower(), autoescape=True))
    if filters.road:
        stmt = stmt.where(func.lower(Incident.road).contains(filters.road.lower(), autoescape=True))
    if filters.state:
        stmt = stmt.where(Incident.state == filters.state)
    return list(session.scalars(stmt.order_by(Incident.opened_at.desc(), Incident.id.desc())))


def weekly_counts(incidents: list[Incident], max_weeks: int = 12) -> tuple[list[str], list[tuple[str, list[int], int]]]:
    """Incidents opened per hazard per ISO week (WITA): the latest `max_weeks` weeks that have
    any, as their Mondays, and per hazard its count in each of them and its total over all."""
    per: dict[str, dict[str, int]] = {}
    weeks: set[str] = set()
    for inc in incidents:
        local = inc.opened_at.astimezone(LOCAL_TZ)
        monday = (local - timedelta(days=local.weekday())).strftime("%Y-%m-%d")
        weeks.add(monday)
        per.setdefault(inc.hazard, {}).setdefault(monday, 0)
        per[inc.hazard][monday] += 1
    cols = sorted(weeks)[-max_weeks:]
    rows = [(h, [per[h].get(w, 0) for w in cols], sum(per[h].values())) for h in sorted(per)]
    return cols, rows


@dataclass(frozen=True)
class Placement:
    """How much of what came in could be placed: managers need to know what the map misses."""

    total: int
    in_region: int
    elsewhere: int
    unplaced: int
    untagged: int


def placement_counts(session: Session, start: datetime | None, end: datetime | None) -> Placement:
    """Posts created in [start, end) by where the geotagger put them: in Buleleng, only
    elsewhere, nowhere (no place found at all), or not tagged yet."""
    period = []
    if start is not None:
        period.append(Post.created_at >= start)
    if end is not None:
        period.append(Post.created_at < end)
    has_place = select(Geotag.post_id).where(Geotag.post_id == Post.id).exists()
    untagged = PostTag.post_id.is_(None)  # no `post_tags` row: not tagged yet
    rows = session.execute(
        select(untagged, PostTag.in_region, has_place, func.count())
        .outerjoin_from(Post, PostTag, PostTag.post_id == Post.id)
        .where(*period)
        .group_by(untagged, PostTag.in_region, has_place)
    ).all()
    counts = {"in_region": 0, "elsewhere": 0, "unplaced": 0, "untagged": 0}
    for untagged, in_region, placed, n in rows:
        key = "untagged" if untagged else "in_region" if in_region else "elsewhere" if placed else "unplaced"
        counts[key] += n
    return Placement(total=sum(counts.values()), **counts)
