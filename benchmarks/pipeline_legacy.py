"""The pipeline's data path as it was before issue 14 (per-row ORM), kept callable so
`bench_pipeline.py` can print it side by side with the code in force. Benchmarks only: nothing
in `plugins/` imports this.

`legacy_path()` swaps these functions in for the duration of a block: every job ran Alembic's
full upgrade first; ingest inserted posts as `INSERT ... VALUES (...), (...)` statements of 500
rows, each compiled anew; tagging loaded ORM posts and added one ORM object per geotag and
hazard match, then updated each post (one UPDATE per post; on today's schema, one `post_tags`
row added and one queue row deleted per post); counting loaded ORM geotags with an
IN list and made `area_counts` equal to the counts object by object.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterator
from unittest import mock

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from sqlalchemy.dialects import postgresql, sqlite

from siaga import counting, ingest, settings, store, tagging
from siaga.counting import MIN_COUNTING_CONFIDENCE
from siaga.geotag import Place
from siaga.store import AreaCount, Geotag, HazardMatchRow, Post, PostTag, PostToTag, session_scope, utcnow

TAG_BATCH = 500
CHUNK = 500


def migrate(url: str | None = None) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS_DIR))
    cfg.attributes["url"] = url or settings.database_url()
    command.upgrade(cfg, "head")


def _insert_ignoring_duplicates(session: Session, table: Any, rows: list[dict[str, Any]]) -> int:
    new = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        result = session.execute(insert(table).values(chunk).on_conflict_do_nothing())
        new += max(result.rowcount or 0, 0)
    return new


def tag_pending(tagger: Any, now: datetime, db_url: str | None = None) -> int:
    total = 0
    fingerprint = tagger.hazards.fingerprint()
    while True:
        with session_scope(db_url) as session:
            batch = session.execute(
                select(Post, PostToTag).join(PostToTag, PostToTag.post_id == Post.id)
                .where(Post.created_at <= now).order_by(Post.id).limit(TAG_BATCH)
            ).all()
            for post, queued in batch:
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
                session.add(PostTag(post_id=post.id, tagged_at=utcnow(), in_region=bool(result.geotag.in_region)))
                session.delete(queued)
        total += len(batch)
        if len(batch) < TAG_BATCH:
            return total


def _geotag_row(post_id: int, place: Place) -> Geotag:
    return Geotag(
        post_id=post_id, kind=place.kind, name=place.name, village=place.village, district=place.district,
        code=place.code, lon=place.lon, lat=place.lat, confidence=place.confidence,
        span_start=place.span[0] if place.span else None, span_end=place.span[1] if place.span else None,
        reason=place.reason, low_confidence=place.low_confidence, in_region=place.in_region,
    )


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


def write_area_counts(session: Session, counts: pd.DataFrame, first_bucket: datetime, until: datetime) -> int:
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


@contextmanager
def legacy_path() -> Iterator[None]:
    """Run the block with the per-row data path in place of the current one."""
    with mock.patch.object(store, "migrate", migrate), \
            mock.patch.object(ingest, "_insert_ignoring_duplicates", _insert_ignoring_duplicates), \
            mock.patch.object(tagging, "tag_pending", tag_pending), \
            mock.patch.object(counting, "_places_by_post", _places_by_post), \
            mock.patch.object(counting, "write_area_counts", write_area_counts):
        yield
