"""Alembic environment: runs Siaga's migrations against the URL the caller chose."""
from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from siaga.store import Base

config = context.config
target_metadata = Base.metadata


def _transactional_sqlite(engine: Engine) -> None:
    """Make SQLite's DDL part of the migration's transaction, as it is on PostgreSQL.

    Python's sqlite3 opens a transaction only before a data change, so each CREATE or DROP
    before one was committed on its own, and Alembic (which takes SQLite for a database without
    transactional DDL) stamps each revision separately: a migration killed half-way left its
    first tables behind under the previous revision, and every later `migrate` then failed on
    "table posts_to_tag already exists". The driver's own BEGIN is switched off and SQLAlchemy's
    begin emits one, so the whole upgrade commits or rolls back as one (SQLAlchemy's documented
    recipe for pysqlite)."""

    @event.listens_for(engine, "connect")
    def _no_driver_begin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def run_migrations_online() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    connectable = create_engine(url)
    sqlite = connectable.dialect.name == "sqlite"
    if sqlite:
        _transactional_sqlite(connectable)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,  # SQLite cannot ALTER much
            transactional_ddl=True,  # on SQLite too, made so above; PostgreSQL's default
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


run_migrations_online()
