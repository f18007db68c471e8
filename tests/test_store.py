"""Storage: the migrations build what the models describe, and natural keys are unique."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from siaga import store
from siaga.ingest import _insert_ignoring_duplicates


def test_migrations_match_models(db_url):
    with store.engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), store.Base.metadata)
    assert diff == []


def test_migrate_twice_is_harmless(db_url):
    store.migrate(db_url)
    with store.engine(db_url).connect() as conn:
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    assert version == _head_revision()


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _post(source_id: str) -> dict:
    return {
        "source": "s", "source_id": source_id, "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "author": "a", "text": "t", "url": None, "lat": None, "lon": None, "text_hash": "h", "raw": {"id": source_id},
        "ingested_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
    }


def test_posts_unique_per_source_and_id(db_url):
    with store.session_scope(db_url) as session:
        assert _insert_ignoring_duplicates(session, store.Post.__table__, [_post("1"), _post("2")]) == 2
    with store.session_scope(db_url) as session:
        assert _insert_ignoring_duplicates(session, store.Post.__table__, [_post("2"), _post("3")]) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Post)) == 3
    with store.session_scope(db_url) as session:  # twice in one batch: stored once, and the transaction goes on
        assert _insert_ignoring_duplicates(session, store.Post.__table__, [_post("4"), _post("4")]) == 1
        assert _insert_ignoring_duplicates(session, store.Post.__table__, [_post("5")]) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Post)) == 5
        raw = session.scalar(sa.select(store.Post.raw).where(store.Post.source_id == "3"))
    assert raw == {"id": "3"}


def test_times_come_back_in_utc(db_url):
    wita = datetime(2026, 1, 15, 8, 0, tzinfo=timezone.utc).astimezone(timezone(__import__("datetime").timedelta(hours=8)))
    with store.session_scope(db_url) as session:
        session.add(store.SourceCursor(source="x", cursor={}, updated_at=wita))
    with store.session_scope(db_url) as session:
        got = session.get(store.SourceCursor, "x").updated_at
    assert got == wita and got.tzinfo is not None and got.utcoffset().total_seconds() == 0


def test_naive_times_are_refused(sqlite_url):
    with pytest.raises(Exception, match="naive datetime"):
        with store.session_scope(sqlite_url) as session:
            session.add(store.SourceCursor(source="x", cursor={}, updated_at=datetime(2026, 1, 1)))
