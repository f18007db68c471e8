"""Store what a source yields: posts once each, bad input in quarantine, then the cursor.

The cursor moves only after the posts it covers are committed, so a crash between the two
re-reads a little (harmless: posts are unique per source and id, and per canonical URL, text
and author across sources; quarantine is unique per source and content) and never skips
anything. One post the database refuses is quarantined, never the batch around it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, aliased

from siaga import collector
from siaga.redaction import redact_text
from siaga.sources import BadInput, IncomingPost, PollResult, Source, SourceError
from siaga.sources.base import same_post_key
from siaga.sources.records import Records, label
from siaga.sources.schema import MAX_RAW, check_post, storable
from siaga.store import Post, Quarantine, SourceCursor, bulk_insert, in_slices, session_scope, utcnow

log = logging.getLogger(__name__)
LOCATION_CHARS: int = Quarantine.__table__.c.location.type.length


@dataclass(frozen=True)
class IngestReport:
    source: str
    new_posts: int
    duplicates: int
    quarantined: int


CHUNK = 500  # rows a refused batch is re-tried in (then row by row)
# What the database says about one row it will not take (PostgreSQL: NUL in text, a string too
# long for its column, NaN in JSON; either: a string it cannot encode). A lost connection or a
# lock is an OperationalError, not about a row: that fails the task and is retried.
ROW_REFUSALS = (DataError, IntegrityError, ValueError, TypeError, OverflowError)


def _insert_ignoring_duplicates(session: Session, table: Any, rows: list[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on either backend, in bulk (`store.bulk_insert`: COPY on
    PostgreSQL); returns how many rows were new."""
    return bulk_insert(session, table, rows, ignore_duplicates=True)


def read_cursor(session: Session, source: str) -> dict[str, Any] | None:
    row = session.get(SourceCursor, source)
    return dict(row.cursor) if row else None


def ingest(source: Source, now: datetime, db_url: str | None = None, announced: Sequence[Any] = ()) -> IngestReport:
    """Poll one source and store what it found: posts, then bad input, then the cursor.

    `announced` are posts the source's push streams named by id (`push.Announced`): a source
    that can read a post by id (`read_announced`, a Mastodon search) reads them after its poll
    and they are stored beside the poll's posts, through the same checks and quarantine. They
    never move the cursor: the cursor says how far the poll has read, and a post read by id
    says nothing about what the poll has not seen yet.

    Each post is checked against the shared schema once more here, whatever source made it (a
    post still holding exactly what its connector checked is not walked again: its seal,
    `schema.check_post`), and a post the database still refuses is quarantined instead of
    failing the batch: the posts around it are stored and the cursor moves on."""
    with session_scope(db_url) as session:
        cursor = read_cursor(session, source.name)
    with collector.paused():
        stored = _poll_and_store(source, cursor, now, db_url, announced)
    quarantined = _store_bad(db_url, source.name, stored.bad)
    with session_scope(db_url) as session:
        session.merge(SourceCursor(source=source.name, cursor=stored.cursor, updated_at=utcnow()))
    report = IngestReport(source.name, stored.new, stored.duplicates, quarantined)
    log.info("ingest %s: %s", source.name, report)
    if stored.failed:  # what worked is stored and its cursor saved; fail so Airflow retries the rest
        raise SourceError(f"{source.name}: stored {stored.new} new posts, but failed: " + "; ".join(stored.failed))
    return report


@dataclass(frozen=True)
class _Stored:
    """What a poll whose posts are stored leaves to store and report: its bad input, its cursor
    and what failed, but not its posts and rows, which are freed as `_poll_and_store` returns
    (see `collector.paused`)."""

    new: int
    duplicates: int
    bad: list[BadInput]
    cursor: dict[str, Any]
    failed: list[str]


def _poll_and_store(source: Source, cursor: dict[str, Any] | None, now: datetime, db_url: str | None,
                    announced: Sequence[Any] = ()) -> _Stored:
    result: PollResult = source.poll(cursor, now)
    posts, read_bad = result.posts, result.bad
    read_announced = getattr(source, "read_announced", None)
    if announced and read_announced is not None:
        by_id, by_id_bad = read_announced(announced, now, skip={p.source_id for p in posts})
        posts, read_bad = posts + by_id, read_bad + by_id_bad
    rows, bad = _post_rows(posts, now)
    new, refused = _store_posts(db_url, rows)
    return _Stored(new, len(rows) - new - len(refused), read_bad + bad + refused, result.cursor, result.failed)


def _post_rows(posts: list[IncomingPost], now: datetime) -> tuple[list[dict[str, Any]], list[BadInput]]:
    """The rows to insert, and a BadInput for each post that does not fit the schema. One
    `ingested_at` for the whole poll: its posts are stored in one transaction, at one
    time (and the clock is read once, not once per post)."""
    rows: list[dict[str, Any]] = []
    bad: list[BadInput] = []
    ingested_at = utcnow()
    for post in posts:
        try:
            rows.append(_post_row(check_post(post, now), ingested_at))
        except Exception as exc:  # noqa: BLE001 -- one post never fails the batch
            bad.append(Records.refused(_where(post), lambda: _quoted(post), exc))
    return rows, bad


_QUOTED = ("source", "source_id", "created_at", "author", "text", "url", "lat", "lon", "raw")


def _where(post: IncomingPost | dict[str, Any]) -> str:
    ident = post.get("source_id") if isinstance(post, dict) else getattr(post, "source_id", None)
    return f"id {label(ident) or '?'}"


def _quoted(post: IncomingPost | dict[str, Any]) -> dict[str, Any]:
    """A refused post as quarantine quotes it: its fields as the source made them."""
    return {k: post.get(k) if isinstance(post, dict) else getattr(post, k, None) for k in _QUOTED}


def _store_posts(db_url: str | None, rows: list[dict[str, Any]]) -> tuple[int, list[BadInput]]:
    """Insert the posts in one transaction and link copies (the normal, fast way). If the
    database refuses a row, insert them again chunk by chunk, and a refused chunk row by row,
    so that row alone is quarantined."""
    if not rows:
        return 0, []
    try:
        with session_scope(db_url) as session:
            new = _insert_ignoring_duplicates(session, Post.__table__, rows)
            _link(session, rows)
        return new, []
    except ROW_REFUSALS as exc:
        log.warning("the database refused a post (%s); storing this batch row by row", _first_line(exc))
    new, refused = _insert_each(db_url, Post.__table__, rows)
    with session_scope(db_url) as session:
        _link(session, rows)
    bad = [Records.refused(_where(row), lambda row=row: _quoted(row), _Refused(exc)) for row, exc in refused]
    return new, bad


def _store_bad(db_url: str | None, source: str, bad: list[BadInput]) -> int:
    """Quarantine bad input once per content (see `BadInput.identity`); returns how many rows
    were new. Location, reason and raw are stored as escaped, bounded text, so the database
    takes them whatever the record held."""
    if not bad:
        return 0
    first: dict[str, dict[str, Any]] = {}
    for b in bad:  # one record read twice in a batch (two lines alike) is one row, at its first place
        first.setdefault(b.identity, _bad_row(source, b))
    rows = list(first.values())
    try:
        with session_scope(db_url) as session:
            new = _insert_ignoring_duplicates(session, Quarantine.__table__, rows)
    except ROW_REFUSALS as exc:
        log.warning("the database refused a quarantine row (%s); storing them row by row", _first_line(exc))
        new, refused = _insert_each(db_url, Quarantine.__table__, rows)
        if refused:  # cannot happen with escaped text; if it does, the cursor must not move
            raise RuntimeError(f"{source}: {len(refused)} quarantine rows refused: {_first_line(refused[0][1])}")
    for b in bad:  # quoted (repr): a location or reason may hold a line break, NUL or lone surrogate
        log.info("bad input from %s at %r: %r", source, b.location[:LOCATION_CHARS], b.reason[:MAX_RAW])
    if new:
        log.warning("%s: quarantined %d new bad records (of %d read this time); `siaga quarantine` lists them", source, new, len(bad))
    return new


def _bad_row(source: str, bad: BadInput) -> dict[str, Any]:
    return {
        "source": source,
        "fingerprint": bad.identity,
        "location": storable(bad.location)[:LOCATION_CHARS],
        "reason": storable(bad.reason)[:MAX_RAW],
        "raw": storable(bad.raw)[:MAX_RAW],
        "created_at": utcnow(),
    }


def _insert_each(db_url: str | None, table: Any, rows: list[dict[str, Any]]) -> tuple[int, list[tuple[dict[str, Any], BaseException]]]:
    new = 0
    refused: list[tuple[dict[str, Any], BaseException]] = []
    for chunk in _chunks(rows):
        try:
            with session_scope(db_url) as session:
                new += _insert_ignoring_duplicates(session, table, chunk)
            continue
        except ROW_REFUSALS:
            pass
        for row in chunk:
            try:
                with session_scope(db_url) as session:
                    new += _insert_ignoring_duplicates(session, table, [row])
            except ROW_REFUSALS as exc:
                refused.append((row, exc))
    return new, refused


class _Refused(ValueError):
    def __init__(self, exc: BaseException):
        super().__init__(f"the database refused it: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return storable(text.strip().splitlines()[0] if text.strip() else type(exc).__name__)[:300]


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]


def _link(session: Session, rows: list[dict[str, Any]]) -> None:
    urls = {row["canonical_url"] for row in rows if row["canonical_url"]}
    if urls or any(row["reposts_url"] for row in rows):
        link_copies(session, urls)


def link_copies(session: Session, urls: set[str] | None = None, max_depth: int = 10) -> int:
    """Point copies at the post they copy, so a chain of copies counts once:
    - every boost, repost or quote at the root post of its chain once that is stored; over the
      whole table, not only this batch, because the original may arrive after its copies (a
      later page, another source);
    - a post with the same text at the same URL as an earlier one (one message forwarded by
      several people, one article under two bylines) at the earliest; only for `urls`, the
      batch's URLs, since a copy always arrives after what it copies.
    Posts sharing a URL with different text (many people posting one group link) are all
    kept unlinked: the indexed canonical URL relates them. Both steps touch only rows still
    to be linked."""
    parent = aliased(Post)
    linked = session.execute(
        update(Post)
        .where(Post.reposts_url.is_not(None), Post.duplicate_of.is_(None))
        .where(Post.reposts_url.in_(select(parent.canonical_url).where(parent.canonical_url.is_not(None))))
        .values(
            duplicate_of=select(func.min(parent.id))
            .where(parent.canonical_url == Post.reposts_url, parent.id != Post.id)
            .scalar_subquery()
        )
        .execution_options(synchronize_session=False)
    ).rowcount or 0
    for among in in_slices(session, Post.canonical_url, sorted(_shared(session, urls or set()))):
        earliest = (
            select(func.min(parent.id))
            .where(parent.canonical_url == Post.canonical_url, parent.text_hash == Post.text_hash, parent.id < Post.id)
            .scalar_subquery()
        )
        linked += session.execute(
            update(Post)
            .where(among, Post.duplicate_of.is_(None), earliest.is_not(None))
            .values(duplicate_of=earliest)
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


def _shared(session: Session, urls: set[str]) -> set[str]:
    """Those of `urls` that more than one stored post has: only their posts can be copies of an
    earlier post at the same URL. Most URLs are one post's own page, and one grouped index scan
    over the batch's URLs finds the few shared ones, where the linking UPDATE evaluated its
    "earliest copy" subquery for every post of the batch."""
    shared: set[str] = set()
    for among in in_slices(session, Post.canonical_url, sorted(urls)):
        shared.update(session.scalars(
            select(Post.canonical_url).where(among).group_by(Post.canonical_url).having(func.count() > 1)))
    return shared


def _post_row(post: IncomingPost, ingested_at: datetime) -> dict[str, Any]:
    canonical, text_hash = post.canonical_url, post.text_hash  # each computed once, not per use
    return {
        "source": post.source,
        "source_id": post.source_id,
        "created_at": post.created_at,
        "author": post.author,
        "text": post.text,
        "url": post.url,
        "lat": post.lat,
        "lon": post.lon,
        "text_hash": text_hash,
        "raw": post.raw,
        "ingested_at": ingested_at,
        "canonical_url": canonical,
        "same_post_key": same_post_key(canonical, text_hash, post.author) if canonical is not None else None,
        "reposts_url": post.reposts,
        "author_pseudonymised": post.author_pseudonymised,
    }


def quarantine_summary(session: Session, latest: int = 10) -> dict[str, Any]:
    """Bad input kept so far: how many per source, and the most recent with where and why,
    redacted as they are shown (a place may be a feed's URL with its ?token=, stored before the
    sources redacted it, or a reason may quote a server's answer)."""
    per_source = dict(session.execute(select(Quarantine.source, func.count()).group_by(Quarantine.source)).all())
    rows = session.scalars(select(Quarantine).order_by(Quarantine.id.desc()).limit(latest))
    return {
        "per_source": per_source,
        "latest": [{"source": q.source, "location": redact_text(q.location), "reason": redact_text(q.reason),
                    "at": q.created_at.isoformat()} for q in rows],
    }
