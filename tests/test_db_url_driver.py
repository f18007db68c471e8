"""`SIAGA_DB_URL=postgresql://...`, as the README writes it: SQLAlchemy 2.1 reads a URL without
a driver as psycopg (3), installed beside psycopg2, and Siaga's bulk paths (COPY, mogrify) are
psycopg2's: every ingest run failed on "'Cursor' object has no attribute 'copy_expert'"."""
from __future__ import annotations

import pytest

from conftest import _drop_pg_database, _new_pg_database, require_postgres
from siaga import cli, pipeline, store
from siaga_dev import demo


@pytest.fixture
def plain_pg_url(monkeypatch):
    """A new, empty PostgreSQL database, by a URL that names no driver."""
    require_postgres()
    url, admin, name = _new_pg_database()
    plain = "postgresql://" + url.split("://", 1)[1]
    try:
        yield plain
    finally:
        store.engine_for(plain).dispose()
        _drop_pg_database(admin, name, url)


def test_ingest_runs_on_a_postgresql_url_without_a_driver(plain_pg_url, monkeypatch):
    monkeypatch.setenv("SIAGA_DB_URL", plain_pg_url)
    monkeypatch.setenv("SIAGA_REPLAY_CLOCK", "identity")
    monkeypatch.setenv("SIAGA_GAZETTEER", "buleleng")
    when = demo.scenario_times(2)[-1]
    report = pipeline.ingest("demo", when)
    assert report["new_posts"] > 0
    assert store.engine_for(plain_pg_url).dialect.driver == "psycopg2"


def test_a_postgresql_driver_siaga_cannot_use_is_refused_in_one_line(capsys):
    url = "postgresql+psycopg://siaga:s3cret@127.0.0.1:1/siaga"
    assert cli.main(["outbox", "--db", url]) == 1
    err = capsys.readouterr().err
    assert "psycopg2" in err and "s3cret" not in err and len(err.strip().splitlines()) == 1
