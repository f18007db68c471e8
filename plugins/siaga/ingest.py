"""Store what a source yields: posts once each, bad input in quarantine, then the cursor.

The cursor moves only after the posts it covers are committed, so a crash between the two
re-reads a little (harmless: posts are unique per source and id) and never skips anything.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from siaga.sources import PollResult, Source, SourceError
from siaga.store import Post, Quarantine, SourceCursor, session_scope, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestReport:
    source: str
    new_posts: int
    duplicates: int
    quarantined: int


def _insert_ignoring_duplicates(session: Session, table: Any, rows: list[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on either backend; returns how many rows were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(insert(table).values(rows).on_conflict_do_nothing())
    return max(result.rowcount or 0, 0)


def read_cursor(session: Session, source: str) -> dict[str, Any] | None:
    row = session.get(SourceCursor, source)
    return dict(row.cursor) if row else None


def ingest(source: Source, now: datetime, db_url: str | None = None) -> IngestReport:
    with session_scope(db_url) as session:
        cursor = read_cursor(session, source.name)
    result: PollResult = source.poll(cursor, now)
    with session_scope(db_url) as session:
        new = _insert_ignoring_duplicates(session, Post.__table__, [_post_row(p) for p in result.posts])
        if any(p.reposts or p.canonical_url for p in result.posts):
            link_copies(session)
        quarantined = _insert_ignoring_duplicates(
            session,
            Quarantine.__table__,
            [
                {"source": source.name, "location": b.location, "reason": b.reason, "raw": b.raw, "created_at": utcnow()}
                for b in result.bad
            ],
        )
    for bad in result.bad:
        log.warning("quarantined %s from %s: %s", bad.location, source.name, bad.reason)
    with session_scope(db_url) as session:
        session.merge(SourceCursor(source=source.name, cursor=result.cursor, updated_at=utcnow()))
    report = IngestReport(source.name, new, len(result.posts) - new, quarantined)
    log.info("ingest %s: %s", source.name, report)
    if result.failed:  # what worked is stored and its cursor saved; fail so Airflow retries the rest
        raise SourceError(f"{source.name}: stored {new} new posts, but failed: " + "; ".join(result.failed))
    return report


def link_copies(session: Session, max_depth: int = 10) -> int:
    """Point every boost, repost or quote at the root post of its chain once that is stored.

    Runs over the whole table, not only this batch, because the original may arrive after its
    copies (a later page, another source). Both steps only touch rows still to be linked."""
    parent = aliased(Post)
    linked = session.execute(
        update(Post)
        .where(Post.reposts_url.is_not(None), Post.duplicate_of.is_(None))
        .where(Post.reposts_url.in_(select(parent.canonical_url).where(parent.canonical_url.is_not(None))))
        .values(
            duplicate_of=select(parent.id)
            .where(parent.canonical_url == Post.reposts_url, parent.id != Post.id)
            .scalar_subquery()
        )
        .execution_options(synchronize_session=False)
    ).rowcount or 0
    for _ in range(max_depth):  # a copy of a copy: follow to the root (bounded, in case of a cycle)
        hop = session.execute(
            update(Post)
            .where(Post.duplicate_of.in_(select(parent.id).where(parent.duplicate_of.is_not(None))))
            .values(
                duplicate_of=select(parent.duplicate_of).where(parent.id == Post.duplicate_of).scalar_subquery()
            )
            .where(Post.id.not_in(select(parent.duplicate_of).where(parent.id == Post.duplicate_of)))
            .execution_options(synchronize_session=False)
        ).rowcount
        if not hop:
            break
    return linked


def _post_row(post: Any) -> dict[str, Any]:
    return {
        "source": post.source,
        "source_id": post.source_id,
        "created_at": post.created_at,
        "author": post.author,
        "text": post.text,
        "url": post.url,
        "lat": post.lat,
        "lon": post.lon,
        "text_hash": post.text_hash,
        "raw": post.raw,
        "ingested_at": utcnow(),
        "canonical_url": getattr(post, "canonical_url", None),
        "reposts_url": getattr(post, "reposts", None),
        "author_pseudonymised": bool(getattr(post, "author_pseudonymised", False)),
    }


def quarantine_summary(session: Session, latest: int = 10) -> dict[str, Any]:
    """Bad input kept so far: how many per source, and the most recent with where and why."""
    per_source = dict(session.execute(select(Quarantine.source, func.count()).group_by(Quarantine.source)).all())
    rows = session.scalars(select(Quarantine).order_by(Quarantine.id.desc()).limit(latest))
    return {
        "per_source": per_source,
        "latest": [{"source": q.source, "location": q.location, "reason": q.reason, "at": q.created_at.isoformat()} for q in rows],
    }
