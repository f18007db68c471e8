"""What counts towards which area: the events table spike detection reads, and the stored
`area_counts` (per 5-minute bucket) that the timeline chart and the baseline read.

A post placed in Buleleng counts towards the regency, and towards each village (with its
kecamatan), kecamatan and road it is placed in with enough confidence; a low-confidence or
out-of-region place is shown on the post, never counted. The detect run (stored geotags) and the
backtest (fresh `Place`s) both build their events with `events_of`, so an operator's backtest
counts exactly as the DAG does. Each author and each reposted text count once per window or
bucket (`spikes.deduplicated`); a repost, forward, quote or near-identical copy counts as its
original (`copies`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from siaga.copies import PostText, copy_keys
from siaga.hazards import HazardSet
from siaga.incidents import AreaInfo
from siaga.spikes import EVENT_COLUMNS
from siaga.store import AreaCount, Geotag, HazardMatchRow, Post, PostTag, bulk_insert, in_slices, stored_time, stream_rows
from siaga.vocabulary import REGENCY_CODE, REGENCY_NAME

# Places below this confidence are kept and shown but do not count towards an area's spike.
MIN_COUNTING_CONFIDENCE = 0.5
# Rows per list when streaming the stored counts.
COUNT_ROWS = 5000


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


def longest_window(hazard_set: HazardSet) -> timedelta:
    """The longest spike window of any hazard: how far before the first window end posts must
    be read so that window is complete (one hour when the set is empty)."""
    return max((timedelta(minutes=h.window_minutes) for h in hazard_set.hazards.values()), default=timedelta(hours=1))


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


def load_events(
    session: Session, since: datetime, until: datetime, road_villages: dict[str, tuple[str, ...]] | None = None
) -> tuple[pd.DataFrame, dict[tuple[str, str], AreaInfo], dict[str, set[int]]]:
    """The stored hazard matches of in-region posts created in (since, until], through
    `events_of`: one row per post x hazard x area it counts towards (EVENT_COLUMNS and the
    matched `terms`), the areas' descriptions (a road's with its village codes), and per hazard
    the posts that carried severity cues."""
    rows = session.execute(
        select(Post.id, Post.created_at, Post.author, Post.text_hash, Post.text, Post.duplicate_of,
               HazardMatchRow.hazard, HazardMatchRow.severity_cues, HazardMatchRow.terms)
        .join(HazardMatchRow, HazardMatchRow.post_id == Post.id)
        .join(PostTag, PostTag.post_id == Post.id)
        .where(Post.created_at > since, Post.created_at <= until, PostTag.in_region.is_(True))
    ).all()
    keys = copy_keys_of(rows)
    matches = [
        HazardEvidence(r.id, r.created_at, r.author, keys[r.id], r.hazard, tuple(r.terms or ()), bool(r.severity_cues))
        for r in rows
    ]
    return events_of(matches, _places_by_post(session, {r.id for r in rows}), road_villages or {})


def copy_keys_of(rows: Any) -> dict[int, str]:
    """Each post's copy key (`copies.copy_keys`: reposts, forwards, quotes and near-identical
    copies share their original's), from rows with id, created_at, text, text_hash and
    duplicate_of; counting uses it where it used the exact text hash."""
    posts = {r.id: PostText(r.id, r.created_at, r.text, r.text_hash, r.duplicate_of) for r in rows}
    return copy_keys(list(posts.values()))


def events_of(
    matches: list[HazardEvidence], places: dict[int, list[Any]], road_villages: dict[str, tuple[str, ...]]
) -> tuple[pd.DataFrame, dict[tuple[str, str], AreaInfo], dict[str, set[int]]]:
    """The events table from matches and each post's counting places (stored geotags or fresh
    `Place`s alike): shared by the detect run and the backtest, so both count the same way."""
    areas: dict[tuple[str, str], AreaInfo] = {}
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
    frame = pd.DataFrame.from_records(records, columns=EVENT_COLUMNS + ["terms"])
    return frame, areas, cue_posts


def counts_towards_areas(place: Any) -> bool:
    """Low-confidence and out-of-region places are shown but never counted."""
    return bool(place.in_region) and place.confidence >= MIN_COUNTING_CONFIDENCE


def _places_by_post(session: Session, post_ids: set[int]) -> dict[int, list[Any]]:
    """The stored places of these posts that count towards areas (`counts_towards_areas`, in SQL),
    as plain rows (the attributes `_areas_of` reads), each post's in id order (`store.in_slices`)."""
    out: dict[int, list[Any]] = {}
    columns = [Geotag.post_id, Geotag.kind, Geotag.name, Geotag.village, Geotag.district, Geotag.code, Geotag.lon, Geotag.lat]
    for among in in_slices(session, Geotag.post_id, sorted(post_ids)):
        stmt = select(*columns).where(
            among, Geotag.in_region.is_(True), Geotag.confidence >= MIN_COUNTING_CONFIDENCE,
        ).order_by(Geotag.id)
        for tag in session.execute(stmt):
            out.setdefault(tag.post_id, []).append(tag)
    return out


def _areas_of(places: list[Any], road_villages: dict[str, tuple[str, ...]]) -> list[AreaInfo]:
    """Every area a post counts towards: its villages, their kecamatan, its roads, the regency."""
    found: dict[tuple[str, str], AreaInfo] = {}
    district_codes = {}
    for p in places:
        if p.kind in ("village", "landmark") and p.village and p.code and p.district:
            found[("village", p.code)] = AreaInfo("village", p.code, p.village, p.village, p.district, None, p.lon, p.lat)
            district_codes.setdefault(p.district, ".".join(p.code.split(".")[:3]))
        elif p.kind in ("district", "landmark") and p.district and not p.village and p.code:
            district_codes.setdefault(p.district, p.code)
        elif p.kind == "road" and p.code:
            found[("road", p.code)] = AreaInfo(
                "road", p.code, p.name, p.village, p.district, p.name, p.lon, p.lat, road_villages.get(p.code, ())
            )
    for name, code in district_codes.items():
        found[("district", code)] = AreaInfo("district", code, name, None, name)
    found[("regency", REGENCY_CODE)] = AreaInfo("regency", REGENCY_CODE, REGENCY_NAME)
    return list(found.values())


def write_area_counts(session: Session, counts: pd.DataFrame, first_bucket: datetime, until: datetime) -> int:
    """Make `area_counts` for buckets in [first_bucket, until] equal to `counts`: insert new
    rows, update changed ones, delete ones whose posts are gone. Idempotent: a second run over
    the same posts touches nothing. Returns the number of rows written or removed.

    On PostgreSQL the difference is taken by the database, in one statement
    (`_write_counts_in_sql`); elsewhere (SQLite: the demo and tests, small tables) the stored
    rows are read and diffed here (`_write_counts_diffed`). Both write the same rows
    (tests/test_bulk_paths.py runs both on both backends)."""
    wanted = _wanted_counts(counts, first_bucket, until)
    if session.get_bind().dialect.name == "postgresql":
        return _write_counts_in_sql(session, wanted, first_bucket, until)
    return _write_counts_diffed(session, wanted, first_bucket, until)


CountKey = tuple[str, str, str, datetime]  # hazard, level, area code, bucket start


def _wanted_counts(counts: pd.DataFrame, first_bucket: datetime, until: datetime) -> dict[CountKey, tuple[int, int]]:
    """The rows `counts` asks for in [first_bucket, until], in its order: key -> (posts, authors)."""
    if counts.empty:
        return {}
    starts = pd.to_datetime(counts["bucket_start"], utc=True)
    keep = ((starts >= pd.Timestamp(first_bucket)) & (starts <= pd.Timestamp(until))).to_numpy()
    columns = [counts[c].to_numpy()[keep].tolist() for c in ("hazard", "level", "area_code")]
    when = starts[keep].dt.to_pydatetime().tolist()
    figures = zip(counts["posts"].to_numpy()[keep].tolist(), counts["authors"].to_numpy()[keep].tolist())
    return dict(zip(zip(*columns, when), ((int(p), int(a)) for p, a in figures)))


# The difference in one round trip: `wanted` arrives as six array parameters; the rows of the
# range it lacks are deleted, those it holds with other figures updated, the new ones inserted
# in its order. Data-modifying CTEs all see the table as it was, so the three never interfere
# (they touch disjoint rows). The count is what `_write_counts_diffed` returns.
_DIFF_SQL = text("""
WITH wanted AS (
    SELECT * FROM unnest(CAST(:hazards AS text[]), CAST(:levels AS text[]), CAST(:codes AS text[]),
                         CAST(:starts AS timestamptz[]), CAST(:posts AS integer[]), CAST(:authors AS integer[]))
        WITH ORDINALITY AS w(hazard, level, area_code, bucket_start, posts, authors, ord)
), matched AS (
    SELECT w.*, s.id, s.posts AS stored_posts, s.authors AS stored_authors FROM wanted w
    LEFT JOIN LATERAL (SELECT a.id, a.posts, a.authors FROM area_counts a WHERE a.hazard = w.hazard AND a.level = w.level
                       AND a.area_code = w.area_code AND a.bucket_start = w.bucket_start LIMIT 1) s ON true
), gone AS (
    DELETE FROM area_counts a
    WHERE a.bucket_start >= :first AND a.bucket_start <= :until
      AND NOT EXISTS (SELECT 1 FROM matched m WHERE m.id = a.id)
    RETURNING 1
), changed AS (
    UPDATE area_counts a SET posts = m.posts, authors = m.authors FROM matched m
    WHERE a.id = m.id AND (m.stored_posts, m.stored_authors) <> (m.posts, m.authors)
    RETURNING 1
), added AS (
    INSERT INTO area_counts (hazard, level, area_code, bucket_start, posts, authors)
    SELECT hazard, level, area_code, bucket_start, posts, authors FROM matched WHERE id IS NULL ORDER BY ord
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM changed) + (SELECT count(*) FROM added)
""")


def _write_counts_in_sql(session: Session, wanted: dict[CountKey, tuple[int, int]], first_bucket: datetime, until: datetime) -> int:
    """PostgreSQL: `_DIFF_SQL`. Reading the range's stored rows back to diff them here cost more
    than the rest of the stage (the range is the lookback plus the longest window, a day for
    drought: tens of thousands of rows, each a Python tuple)."""
    keys = list(wanted)
    params = {
        "hazards": [k[0] for k in keys], "levels": [k[1] for k in keys], "codes": [k[2] for k in keys],
        "starts": [stored_time(k[3]) for k in keys], "posts": [v[0] for v in wanted.values()],
        "authors": [v[1] for v in wanted.values()], "first": stored_time(first_bucket), "until": stored_time(until),
    }
    return int(session.execute(_DIFF_SQL, params).scalar_one())


def _write_counts_diffed(session: Session, wanted: dict[CountKey, tuple[int, int]], first_bucket: datetime, until: datetime) -> int:
    """The portable way: the stored rows of the range read as plain tuples and the difference
    written in bulk (one executemany per kind of change), not object by object. The stored rows
    are streamed (`store.stream_rows`), not fetched as one list (a detect task's peak memory,
    issue 14)."""
    wanted = dict(wanted)
    table = AreaCount.__table__
    # plain tuples (`store.stream_rows`): the times compare equal to `wanted`'s whatever their zone
    existing = stream_rows(session, select(
        table.c.id, table.c.hazard, table.c.level, table.c.area_code, table.c.bucket_start, table.c.posts, table.c.authors,
    ).where(table.c.bucket_start >= first_bucket, table.c.bucket_start <= until), COUNT_ROWS)
    gone: list[int] = []
    changed: list[dict[str, Any]] = []
    for rows in existing:
        for row_id, hazard, level, code, start, posts, authors in rows:
            value = wanted.pop((hazard, level, code, start), None)
            if value is None:
                gone.append(row_id)
            elif (posts, authors) != value:
                changed.append({"row_id": row_id, "new_posts": value[0], "new_authors": value[1]})
    added = [
        {"hazard": hazard, "level": level, "area_code": code, "bucket_start": start, "posts": posts, "authors": authors}
        for (hazard, level, code, start), (posts, authors) in wanted.items()
    ]
    for among in in_slices(session, table.c.id, gone):
        session.execute(delete(table).where(among))
    if changed:
        session.execute(
            update(table).where(table.c.id == bindparam("row_id"))
            .values(posts=bindparam("new_posts"), authors=bindparam("new_authors")),
            changed,
        )
    bulk_insert(session, table, added)
    return len(gone) + len(changed) + len(added)
