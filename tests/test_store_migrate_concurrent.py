"""Migrating: the first tasks of a fresh deployment start together and all find the database
behind; each is a separate OS process, and all must succeed and leave one schema at head."""
from __future__ import annotations

import subprocess
import sys
from typing import Iterator

import pytest
import sqlalchemy as sa

from siaga import store
from conftest import _drop_pg_database, _new_pg_database, require_postgres

PROCESSES = 4
_MIGRATE = "import sys; from siaga import store; store.migrate(sys.argv[1])"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_url(request, tmp_path) -> Iterator[str]:
    """An empty database nobody has migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    require_postgres()
    url, admin, name = _new_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(admin, name, url)


def test_processes_migrating_one_fresh_database_at_once_all_succeed(fresh_url):
    workers = [
        subprocess.Popen([sys.executable, "-c", _MIGRATE, fresh_url], stderr=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    failures = [err for w in workers if (err := w.communicate(timeout=300)[1]) and w.returncode != 0]
    assert failures == []
    with store.engine_for(fresh_url).connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        tables = set(sa.inspect(conn).get_table_names())
    assert frozenset(versions) == store._head_revisions()
    assert {"posts", "outbox", "incidents"} <= tables
