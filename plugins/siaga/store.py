"""Siaga's storage: the tables every stage reads and writes, and how to open them.

SQLite is the embedded default so a laptop runs the demo with nothing installed; PostgreSQL is
production. The schema is owned by Alembic migrations (`plugins/siaga/migrations/`); these models
are what the code uses and a test checks the two agree.

Idempotency lives here as unique constraints: re-running any task must not add a duplicate row,
so every natural key (a post per source and source id, a match per post and hazard, an alert per
series and window, an outbox message per dedup key) is enforced by the database, not by hope.
"""
from __future__ import annotations

import itertools
import json
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    ColumnElement,
    UniqueConstraint,
    any_,
    bindparam,
    create_engine,
    event,
    false,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from siaga import settings
from siaga.redaction import redact_db_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def stored_time(value: datetime) -> datetime:
    """A time as Siaga stores it: in UTC, a naive one refused (its zone would be a guess)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Siaga stores only timezone-aware times")
    return value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both backends (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else stored_time(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict: JSON, list: JSON}


def _partial(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both backends."""
    return {"postgresql_where": sql_text(condition), "sqlite_where": sql_text(condition)}


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("source", "source_id", name="uq_posts_source_id"),
        # The same post seen through two sources (a toot on two instances, one article in two
        # feeds) is stored once: same canonical URL, text and author. NULLs (no URL) never
        # collide. Different posts sharing a URL (a group link) are all kept.
        UniqueConstraint("same_post_key", name="uq_posts_same_post"),
        Index("ix_posts_canonical_url", "canonical_url"),
        Index("ix_posts_created_at", "created_at"),
        # Partial indexes (migration 0007): links only where set.
        Index("ix_posts_reposts_url", "reposts_url", **_partial("reposts_url IS NOT NULL")),
        Index("ix_posts_duplicate_of", "duplicate_of", **_partial("duplicate_of IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    author: Mapped[str | None] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Near-identical copies and reposts share this hash and count once.
    text_hash: Mapped[str] = mapped_column(String(64))
    raw: Mapped[dict] = mapped_column(JSON)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    canonical_url: Mapped[str | None] = mapped_column(Text)
    same_post_key: Mapped[str | None] = mapped_column(String(32))  # IncomingPost.same_post_key
    # A boost, repost, retweet or quote: the canonical URL of the post it copies, and once that
    # post is stored, its id (the root of the chain), so a chain of copies counts once.
    reposts_url: Mapped[str | None] = mapped_column(Text)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL", name="fk_posts_duplicate_of"))
    author_pseudonymised: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class PostToTag(Base):
    """A post still to tag: the tag stage's queue (migration 0008).

    Filled by the database itself, a trigger on every insert into `posts` (whoever inserts:
    ingest's COPY, an ORM object, a hand-written INSERT), and emptied by the tag stage in the
    transaction that stores the post's tags; a trigger on delete from `posts` (retention) drops
    a deleted post's row. Neither it nor `post_tags` has a foreign key to `posts`: the check
    would lock every post row once more as it is queued and as it is tagged, the cost these
    tables exist to avoid. The triggers (`migrations/versions/0008_post_tags_queue.py`) keep
    them consistent instead."""

    __tablename__ = "posts_to_tag"
    post_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class PostTag(Base):
    """A tagged post: when, and whether the geotagger put it in Buleleng (what counting reads).

    Its own narrow table rather than columns of `posts`: marking a post tagged by an UPDATE
    rewrote the whole wide row (text, raw JSON) with new entries in every index of `posts`;
    here it is one small row, written with COPY (issue 14). Every post is in exactly one of
    `posts_to_tag` (not tagged yet) and this table (the migration put each existing post in
    one; the tag stage moves a post from the queue to here in one transaction)."""

    __tablename__ = "post_tags"
    post_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tagged_at: Mapped[datetime]
    in_region: Mapped[bool] = mapped_column(Boolean)


class Geotag(Base):
    __tablename__ = "geotags"
    __table_args__ = (Index("ix_geotags_post", "post_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    village: Mapped[str | None] = mapped_column(String(128))
    district: Mapped[str | None] = mapped_column(String(128))
    code: Mapped[str | None] = mapped_column(String(64))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    span_start: Mapped[int | None] = mapped_column(Integer)
    span_end: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    low_confidence: Mapped[bool] = mapped_column(Boolean, default=False)
    in_region: Mapped[bool] = mapped_column(Boolean, default=True)


class HazardMatchRow(Base):
    __tablename__ = "hazard_matches"
    __table_args__ = (UniqueConstraint("post_id", "hazard", name="uq_hazard_matches_post_hazard"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    hazard: Mapped[str] = mapped_column(String(32))
    terms: Mapped[list] = mapped_column(JSON)
    severity_cues: Mapped[list] = mapped_column(JSON)
    via_road: Mapped[bool] = mapped_column(Boolean, default=False)
    lists_fingerprint: Mapped[str] = mapped_column(String(64))


class AreaCount(Base):
    """Posts per hazard, area and time bucket: what spike detection reads."""

    __tablename__ = "area_counts"
    __table_args__ = (
        UniqueConstraint("hazard", "level", "area_code", "bucket_start", name="uq_area_counts"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))  # village | district | road | regency
    area_code: Mapped[str] = mapped_column(String(64))
    bucket_start: Mapped[datetime]
    posts: Mapped[int] = mapped_column(Integer)
    authors: Mapped[int] = mapped_column(Integer)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_series", "hazard", "level", "area_code", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(64))
    area_name: Mapped[str] = mapped_column(String(128))
    village: Mapped[str | None] = mapped_column(String(128))
    district: Mapped[str | None] = mapped_column(String(128))
    road: Mapped[str | None] = mapped_column(String(128))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), default="open")
    severity: Mapped[str] = mapped_column(String(16), default="low")
    posts: Mapped[int] = mapped_column(Integer, default=0)
    authors: Mapped[int] = mapped_column(Integer, default=0)
    notified_posts: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # Who closed it: "siaga" for an automatic resolution (which a new spike may reopen), else the
    # person who pressed the button.
    closed_by: Mapped[str | None] = mapped_column(String(128))
    reopened: Mapped[int] = mapped_column(Integer, default=0)


class IncidentArea(Base):
    """An area an incident covers: the villages, road and villages along it that its alerts
    came from, so a spike next door joins the incident instead of opening another."""

    __tablename__ = "incident_areas"
    __table_args__ = (
        UniqueConstraint("incident_id", "level", "area_code", name="uq_incident_areas"),
        Index("ix_incident_areas_area", "level", "area_code"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    posts: Mapped[int] = mapped_column(Integer, default=0)  # largest window count seen here
    added_at: Mapped[datetime]


class IncidentEvent(Base):
    """One line of an incident's timeline: what managers review and exports read."""

    __tablename__ = "incident_events"
    __table_args__ = (Index("ix_incident_events_incident", "incident_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128), default="siaga")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Alert(Base):
    """A detected spike: one per series and window, whatever how often detection re-runs."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("hazard", "level", "area_code", "window_end", name="uq_alerts_window"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    observed: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float] = mapped_column(Float)
    authors: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    explanation: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IncidentThread(Base):
    """The Slack thread of an incident in one channel: updates reply here, not as new pings."""

    __tablename__ = "incident_threads"
    __table_args__ = (UniqueConstraint("incident_id", "channel", name="uq_incident_threads"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(128))
    ts: Mapped[str] = mapped_column(String(32))


class OutboxMessage(Base):
    """A Slack message to send, written in the same transaction as the incident change."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedup_key", name="uq_outbox_dedup"),
        Index("ix_outbox_state", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(256))
    # None for messages about no single incident (the managers' daily digest)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    receiver: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # new | update | escalation | resolved | digest
    payload: Mapped[dict] = mapped_column(JSON)
    # pending -> claimed -> sent; claimed -> pending (retry later) or dead (kept, reported)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None]  # wall-clock time of the latest claim
    # Fencing: every claim writes a fresh token; only the worker holding it may record an outcome.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    # Wall-clock time until which nobody else may take the row: a live claim's lease, or, after an
    # attempt with an unknown outcome, the time Slack may still need to store that post.
    held_until: Mapped[datetime | None]
    # An earlier attempt may have reached Slack (an expired claim, an unknown outcome, a dead
    # letter re-queued): look the message up in Slack before posting it again or giving it up.
    may_be_posted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_ts: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    worker: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))  # sent | found | failed | unknown | dead
    error: Mapped[str | None] = mapped_column(Text)
    ts: Mapped[str | None] = mapped_column(String(32))


class SilenceRow(Base):
    """A silence, as Alertmanager calls it: while it lasts, incident changes whose labels equal
    all its `matchers` (e.g. {"hazard": "flood", "district": "Sawan"}) are recorded on the
    timeline but not sent. Data, not config: duty officers create them from Slack ("Snooze")."""

    __tablename__ = "silences"
    __table_args__ = (
        # A Slack click delivered twice must not create two silences.
        UniqueConstraint("dedup_key", name="uq_silences_dedup"),
        Index("ix_silences_ends_at", "ends_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matchers: Mapped[dict] = mapped_column(JSON)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dedup_key: Mapped[str | None] = mapped_column(String(256))


class SourceCursor(Base):
    __tablename__ = "source_cursors"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Quarantine(Base):
    """Bad input kept with its reason and location: nothing is silently dropped."""

    __tablename__ = "quarantine"
    # One row per bad record (BadInput.identity): its content, and its place when that is fixed
    # (a file's line). Re-reading a file adds nothing; a new bad record at the same line of a
    # replaced file is kept, and so is the same bad line in another file.
    __table_args__ = (UniqueConstraint("source", "fingerprint", name="uq_quarantine_fingerprint"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(512))  # for people: e.g. "demo.jsonl:17"
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigState(Base):
    """The last good version of an operator config (hazard lists), kept in force when a new one
    is invalid."""

    __tablename__ = "config_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- engines and sessions -------------------------------------------------------------------


class UnusableDatabaseURL(ArgumentError):
    """A database URL Siaga cannot open, for a reason the URL itself shows; the message names
    the URL without its password (`redact_db_url`)."""


# The database kinds Siaga's migrations and bulk inserts are written for.
BACKENDS = ("sqlite", "postgresql")


def parse_url(url: str) -> URL:
    """`url` read as SQLAlchemy reads it, or UnusableDatabaseURL: a port that is not a number
    (`postgresql://u:pw@host:54x2/siaga`) was a ValueError traceback from deep in SQLAlchemy."""
    try:
        return make_url(url)
    except ArgumentError:
        raise
    except (ValueError, TypeError) as exc:
        raise UnusableDatabaseURL(f"cannot read the database URL {redact_db_url(str(url))}: {exc}") from None


def _usable(url: str) -> None:
    """Refuse, naming it, a URL of a database kind or a driver Siaga cannot use: a driver that
    is not installed (`mysql://`, `postgresql+pg8000://`) was a ModuleNotFoundError traceback,
    an asyncio one (`postgresql+asyncpg://`) a MissingGreenlet at the first query, and a
    connection option of the wrong type (`?timeout=abc`) a ValueError."""
    parsed = parse_url(url)
    shown = redact_db_url(url)
    if parsed.get_backend_name() not in BACKENDS:
        raise UnusableDatabaseURL(f"{shown}: Siaga runs on SQLite or PostgreSQL (sqlite:///path or postgresql://...), "
                                  f"not {parsed.get_backend_name()!r}")
    dialect = parsed.get_dialect()
    if getattr(dialect, "is_async", False):
        raise UnusableDatabaseURL(f"{shown}: {parsed.drivername} is an asyncio driver; use {parsed.get_backend_name()}:// "
                                  "(Siaga's code is synchronous)")
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise UnusableDatabaseURL(f"{shown}: the driver of {parsed.drivername} is not installed ({exc}); "
                                  f"use {parsed.get_backend_name()}://") from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername not in ("postgresql", PG_DRIVER):
        raise UnusableDatabaseURL(f"{shown}: Siaga's bulk paths (COPY) are written for psycopg2; use postgresql:// or "
                                  f"{PG_DRIVER}://, not {parsed.drivername}://")


# The PostgreSQL driver Siaga's COPY and mogrify calls are written for. SQLAlchemy 2.1 reads a
# bare postgresql:// as psycopg (3), which is installed beside it (Airflow's): with
# SIAGA_DB_URL=postgresql://... (as the README writes it) every ingest failed on its COPY with
# "'Cursor' object has no attribute 'copy_expert'".
PG_DRIVER = "postgresql+psycopg2"


def with_driver(url: str) -> str:
    """`url` with Siaga's PostgreSQL driver named when it names none (`postgresql://`)."""
    if url.startswith("postgresql://"):
        return PG_DRIVER + url[len("postgresql"):]
    return url


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process (pooling), SQLite tuned for concurrent readers."""
    _usable(url)
    url = with_driver(url)
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ValueError, TypeError) as exc:  # an option of the URL's query SQLAlchemy cannot convert
        raise UnusableDatabaseURL(f"{redact_db_url(url)}: {exc}") from None
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    import sqlite3

    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    try:
        cur.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        # a read-only file (a snapshot, a read-only mount): the commands that only read still
        # can; a write then fails with SQLite's own "attempt to write a readonly database"
        if "readonly" not in str(exc):
            raise
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def engine(url: str | None = None) -> Engine:
    return engine_for(url or settings.database_url())


class MissingDatabase(Exception):
    """A command that only reads was pointed at a SQLite file that does not exist."""


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names (absolute), or None for an in-memory database or another
    kind of database. A URI-style name (`sqlite:///file:x.db?uri=true`) gives its file part."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database or ""
    if parsed.query.get("uri") in ("true", "1") and name.startswith("file:"):
        name = name[len("file:"):].split("?", 1)[0]
    if not name or name == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    return Path(name).expanduser().absolute()


def require_existing(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist, naming it, before anything opens it.

    SQLite creates a missing file on connect, so a read-only command given a mistyped path
    (`siaga outbox --db sqlite:///var/siag.db`) used to leave an empty database there and report
    "no tables" or, after its migration, nothing at all, as if the real database were empty.
    A server database needs no check: connecting never creates one."""
    path = sqlite_path(url)
    if path is None or path.is_file():
        return
    what = "that is a folder, not a database file" if path.is_dir() else "no such file"
    raise MissingDatabase(f"no database at {path}: {what} (nothing was created); check --db or SIAGA_DB_URL, "
                          "or create a database there with `siaga db migrate`")


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: committed when the block ends, rolled back on any error."""
    factory = sessionmaker(bind=engine(url), expire_on_commit=False, future=True)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]], ignore_duplicates: bool = False) -> int:
    """Insert `rows` (dicts with the same keys) in the session's transaction, skipping rows that
    collide with a unique constraint when `ignore_duplicates`; returns how many were inserted.

    PostgreSQL: COPY straight into the table (about twice as fast as multi-row INSERTs for the
    pipeline's batches, and one statement, so the new rows are counted exactly); with
    `ignore_duplicates`, under a savepoint, and only if that COPY meets a row already stored,
    COPY into a temporary table and one INSERT ... SELECT ... ON CONFLICT DO NOTHING
    (`_copy_insert`). SQLite: one executemany, which SQLAlchemy's
    "insertmanyvalues" packs into multi-row INSERTs. A row the database refuses fails the whole
    call (as one INSERT would): callers that must isolate it re-try in smaller pieces."""
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _copy_insert(session, table, rows, ignore_duplicates)
    stmt = sqlite_insert(table)
    if not ignore_duplicates:
        session.execute(stmt, rows)
        return len(rows)
    key = next(iter(table.primary_key.columns))
    return len(session.execute(stmt.on_conflict_do_nothing().returning(key), rows).all())


def conflict_insert(session: Session, model: Any) -> Any:
    """An INSERT into `model` that can say what to do ON CONFLICT, in the session's dialect (both
    PostgreSQL's and SQLite's have `on_conflict_do_nothing` / `on_conflict_do_update`; the
    generic `insert` has neither). For rows that concurrent processes may create at once: a
    check-then-insert lets both see no row and one of them fail on the key."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(model)


# Values per IN list on SQLite: well within its bound-parameter limit (32,766 since 3.32, 999
# before), with room for a statement's other parameters.
IN_SLICE = 5000


def in_slices(session: Session, column: Any, values: list[Any], size: int | None = None) -> Iterator[ColumnElement[bool]]:
    """`column IN values` as conditions to run one statement each: on PostgreSQL one condition
    with `values` as a single array parameter (`column = ANY(:values)`); elsewhere one IN list
    per `size` (default `IN_SLICE`) values, within SQLite's bound-parameter limit. Every IN list whose length comes
    from the data (posts of an incident, a month of evidence) goes through here: one more than
    the limit and SQLite refuses the statement. An IN list of thousands of parameters is also
    compiled and bound one parameter at a time, which cost more than the statement itself when
    a run deleted or linked tens of thousands of rows."""
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
        return
    size = size or IN_SLICE
    for start in range(0, len(values), size):
        yield column.in_(values[start:start + size])


def stream_rows(session: Session, stmt: Any, chunk: int) -> Iterator[list[Any]]:
    """The rows of a Core `stmt` in lists of `chunk`, streamed (`yield_per`), for reading tens of
    thousands of rows without holding them all.

    On PostgreSQL straight from a psycopg2 server-side (named) cursor, as plain tuples of what
    the driver returns: SQLAlchemy's result rows and its per-value type processing
    (`UTCDateTime` re-zoning every time it reads) cost more than the query itself for the
    history a detect run reads. So the times come back timezone-aware in the zone the
    connection reports them in, not necessarily `timezone.utc`: the same instants (equal,
    and hashing alike, as dict keys) for callers that compare them or hand them to pandas."""
    if session.get_bind().dialect.name != "postgresql":
        yield from session.execute(stmt.execution_options(yield_per=chunk)).partitions()
        return
    compiled = stmt.compile(dialect=session.get_bind().dialect)
    dbapi = session.connection().connection.dbapi_connection
    with dbapi.cursor(name=f"siaga_stream_{next(_CURSORS)}") as cursor:
        cursor.itersize = chunk
        cursor.execute(str(compiled), compiled.params)
        while rows := cursor.fetchmany(chunk):
            yield rows


_CURSORS = itertools.count()  # names of server-side cursors, unique per process


class CopyRefused(ValueError):
    """PostgreSQL refused a value of a COPY (NUL, too long, not JSON, ...): like a refused INSERT."""


def _copy_insert(session: Session, table: Table, rows: list[dict[str, Any]], ignore_duplicates: bool) -> int:
    """`bulk_insert` on PostgreSQL. Most batches are all new posts (a poll's new page) or rows
    no constraint can refuse (places, matches, counts), so the COPY goes straight into the
    table: the temporary table and the INSERT ... SELECT that moved its rows on doubled the
    work of storing a poll. COPY has no ON CONFLICT, so when duplicates are to be skipped it
    runs under a savepoint; a unique violation (a poll re-reading posts it stored before) rolls
    back to it and takes the temporary-table way, which skips them. The COPY's text is made
    while PostgreSQL stores it (`_CopyStream`)."""
    import psycopg2

    columns = [table.c[name] for name in rows[0]]
    names = ", ".join(f'"{c.name}"' for c in columns)
    # In pieces on the main thread (ingest), so PostgreSQL stores one while Python formats the
    # next; in one piece from any other (the tag stage's writer thread): each piece takes the
    # GIL back, and beside a busy thread each waited a switch interval.
    data = _CopyStream(columns, rows, COPY_SLICE if threading.current_thread() is threading.main_thread() else len(rows))
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        if not ignore_duplicates:
            _copy(cursor, f'COPY "{table.name}" ({names}) FROM STDIN', data)
            return cursor.rowcount
        cursor.execute("SAVEPOINT siaga_copy")
        try:
            _copy(cursor, f'COPY "{table.name}" ({names}) FROM STDIN', data)
        except psycopg2.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT siaga_copy")
            data.rewind()
            _copy_skipping_duplicates(cursor, table.name, names, data)
        inserted = cursor.rowcount
        cursor.execute("RELEASE SAVEPOINT siaga_copy")
        return inserted
    except (psycopg2.DataError, psycopg2.IntegrityError) as exc:
        raise CopyRefused(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from exc
    finally:
        cursor.close()


def _copy(cursor: Any, sql: str, data: _CopyStream) -> None:
    """`COPY ... FROM STDIN` of `data`. A value `data` could not format or encode (a naive
    time, a lone surrogate) is raised as itself, a ValueError as the same value in an INSERT
    is, not as what psycopg2 makes of an exception inside `read`: a cancelled COPY, an
    OperationalError saying only "error in .read() call", which reads as a lost connection
    rather than a refused row. The transaction is then aborted, as a row PostgreSQL refuses
    leaves it, for the caller to roll back."""
    import psycopg2

    try:
        cursor.copy_expert(sql, data)
    except psycopg2.Error:
        if data.error is not None:
            raise data.error from None
        raise


COPY_SLICE = 500  # rows of COPY text made per piece that psycopg2 sends


class _CopyStream:
    """COPY's input, made `piece` rows at a time as psycopg2 reads it.

    psycopg2 sends each piece with the GIL released (libpq's `PQputCopyData`), so PostgreSQL
    parses, stores and indexes one piece on the other core while Python formats the next: the
    text of a poll of 20,000 posts (about 0.17 s of Python) was made in full before the COPY
    (about 0.28 s in PostgreSQL) began, and now nearly all of it is made while that runs.
    Pieces are kept as they are made, so `rewind` sends the same text again (the duplicate
    fallback's second COPY) without formatting it twice. The first exception formatting or
    encoding raises is kept in `error` for `_copy`."""

    def __init__(self, columns: list[Any], rows: list[dict[str, Any]], piece: int) -> None:
        self._columns, self._rows, self._piece = columns, rows, max(piece, 1)
        self._pieces: list[bytes] = []
        self._next = 0  # index in `_pieces` of the piece `read` returns next
        self.error: BaseException | None = None

    def read(self, _size: int = -1) -> bytes:
        """The next piece, whatever `_size` psycopg2 asks for (it sends what it is given, of any
        length); b"" at the end."""
        if self._next == len(self._pieces):
            start = self._next * self._piece
            if start >= len(self._rows):
                return b""
            try:
                # encoded here, so a string PostgreSQL cannot take (a lone surrogate) is a
                # ValueError, as the same string in an INSERT is
                self._pieces.append(copy_text(self._columns, self._rows[start:start + self._piece]).encode("utf-8"))
            except BaseException as exc:
                self.error = exc
                raise
        self._next += 1
        return self._pieces[self._next - 1]

    def rewind(self) -> None:
        self._next = 0


def _copy_skipping_duplicates(cursor: Any, table: str, names: str, data: _CopyStream) -> None:
    """COPY `data` into a temporary table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING
    into `table`; the cursor's rowcount is then the rows inserted."""
    temp = f"siaga_copy_{table}"
    cursor.execute(f'CREATE TEMP TABLE IF NOT EXISTS {temp} ON COMMIT DROP AS SELECT {names} FROM "{table}" WITH NO DATA')
    cursor.execute(f"TRUNCATE {temp}")
    _copy(cursor, f"COPY {temp} ({names}) FROM STDIN", data)
    cursor.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM {temp} ON CONFLICT DO NOTHING')


def copy_text(columns: list[Any], rows: list[dict[str, Any]]) -> str:
    """`rows` in COPY's text format (tab-separated, one line per row). Formatted a column at a
    time (`_copy_column`), then joined: a function call per value and a generator per row were
    most of the cost of storing a poll."""
    cells = [_copy_column(c, list(map(itemgetter(c.name), rows))) for c in columns]
    return "\n".join(map("\t".join, zip(*cells))) + "\n"


def _copy_column(column: Any, values: list[Any]) -> list[str]:
    """One column's values in COPY's text format, as SQLAlchemy would bind them: JSON columns as
    JSON (None is JSON null), times as UTC ISO 8601 (a naive time is refused, as UTCDateTime
    refuses it), booleans as t/f, NULL as \\N.

    Strings are escaped a column at a time: joined on NUL (which no value PostgreSQL takes can
    hold), escaped with one `str.translate` and split again, instead of one `translate` call per
    value (a column of 20,000 texts: one C call rather than 20,000 Python-level ones). NULLs among
    the strings are set aside first; a column holding another type or a NUL takes the per-value
    way. Whole numbers need no escaping (post ids: every row the tag stage writes); a time
    shared by the whole column (a batch's `tagged_at`, a poll's `ingested_at`) is formatted
    once."""
    if isinstance(column.type, JSON):
        return _escaped_strings(list(map(json.dumps, values)))
    if isinstance(column.type, Integer) and all(v is None or type(v) is int for v in values):
        return ["\\N" if v is None else str(v) for v in values]
    if isinstance(column.type, UTCDateTime):
        if values and values.count(values[0]) == len(values):  # C-level: identical objects compare at once
            return [_copy_time(values[0])] * len(values)
        if all(type(v) is datetime and v.tzinfo is timezone.utc for v in values):
            return [v.isoformat() for v in values]
        return list(map(_copy_time, values))
    if isinstance(column.type, Boolean):
        return ["\\N" if v is None else ("t" if v else "f") for v in values]
    if isinstance(column.type, Float):
        return ["\\N" if v is None else repr(float(v)) for v in values]
    if values.count(None) == len(values):
        return ["\\N"] * len(values)
    return _escaped_strings(values)


def _escaped_strings(values: list[Any]) -> list[str]:
    try:
        joined = "\x00".join(values)
    except TypeError:  # a None or a number among them
        present = [v for v in values if v is not None]
        if len(present) == len(values) or not all(type(v) is str for v in present):
            return list(map(_copy_str, values))
        escaped = iter(_escaped_strings(present))  # strings and NULLs (a place's village, code)
        return ["\\N" if v is None else next(escaped) for v in values]
    if joined.count("\x00") != len(values) - 1:  # a NUL inside a value: PostgreSQL refuses it, per row
        return list(map(_copy_str, values))
    return joined.translate(_COPY_ESCAPES).split("\x00")


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_str(value: Any) -> str:
    if value is None:
        return "\\N"
    return (value if type(value) is str else str(value)).translate(_COPY_ESCAPES)


def _copy_time(value: datetime | None) -> str:
    """UTC ISO 8601, as `UTCDateTime` binds it (`stored_time`)."""
    return "\\N" if value is None else stored_time(value).isoformat()


def migrate(url: str | None = None) -> None:
    """Bring the database to the newest schema (creates it on first use).

    Every DAG task calls this first, so the usual case, a database already at the newest
    revision, costs one query: Alembic's full upgrade (its environment, a second engine, the
    version table's reflection) runs only when the revision differs or cannot be read."""
    url = url or settings.database_url()
    if _at_head(url):
        return
    from alembic import command

    from alembic.util.exc import CommandError

    with _migration_lock(url):
        if not _at_head(url):  # another process may have upgraded while this one waited
            try:
                command.upgrade(_alembic_config(url), "head")
            except CommandError as exc:
                if "Can't locate revision" not in str(exc):
                    raise
                # a newer Siaga migrated it (or another program's Alembic): 72 lines of traceback before
                raise UnusableDatabaseURL(f"{redact_db_url(url)} is at a schema this Siaga does not know ({exc}): "
                                          "upgrade Siaga, or give it a database of its own") from None


# Any fixed number, shared by every Siaga process: the key of the PostgreSQL advisory lock.
_MIGRATION_LOCK_KEY = 0x51A6A


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """One migrating process at a time per database.

    On a fresh deployment the first ingest, detect and deliver tasks start together and each
    finds the database behind; without a lock their Alembic runs collide (on SQLite
    "_alembic_tmp_posts already exists") and every later task fails. PostgreSQL serialises them
    with an advisory lock; a SQLite file with an OS lock on a file beside it (fcntl, stdlib:
    the one lock that both a file database and POSIX processes honour; no library needed).
    """
    if url.startswith("sqlite"):
        path = make_url(url).database
        if not path or path == ":memory:":
            yield
            return
        import fcntl

        try:
            handle = open(f"{path}.migrate-lock", "a")
        except OSError:  # no such folder or not writable: SQLite itself then says what is wrong
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if not url.startswith("postgresql"):
        yield
        return
    from sqlalchemy import text

    with engine_for(url).connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            conn.commit()


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    return cfg


@lru_cache(maxsize=1)
def _head_revisions() -> frozenset[str]:
    """The revisions the migration scripts end in (read once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


def _at_head(url: str) -> bool:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine_for(url).connect() as conn:
            stored = frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:  # no version table yet: a new database
        return False
    return bool(stored) and stored == _head_revisions()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
