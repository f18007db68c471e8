"""Where Siaga finds its configuration, gazetteer and database.

One place resolves every path and URL so the DAGs, the `siaga` command and the tests agree.
Environment variables win (they are how Airflow deployments and tests configure things); the
defaults point into the repository so a fresh checkout runs with no setup.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def config_dir() -> Path:
    return Path(os.environ.get("SIAGA_CONFIG_DIR", REPO_ROOT / "config"))


def geodata_dir() -> Path:
    return Path(os.environ.get("SIAGA_GEODATA_DIR", REPO_ROOT / "geodata"))


def data_dir() -> Path:
    """Runtime state (the embedded SQLite database); git-ignored."""
    path = Path(os.environ.get("SIAGA_DATA_DIR", REPO_ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """SIAGA_DB_URL, else the Airflow connection `siaga_db`, else a SQLite file in data_dir()."""
    url = os.environ.get("SIAGA_DB_URL")
    if url:
        return url
    url = _airflow_connection_url("siaga_db")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'siaga.db'}"


def _airflow_connection_url(conn_id: str) -> str | None:
    """The connection's SQLAlchemy URL when running under Airflow and the connection exists."""
    if not os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}") and not os.environ.get("AIRFLOW_HOME"):
        return None
    try:
        from airflow.sdk import Connection  # imported lazily: the core must not need Airflow

        conn = Connection.get(conn_id)
    except Exception:  # no Airflow, no such connection, or no API server to ask: fall back
        return None
    uri = conn.get_uri()
    # Airflow spells PostgreSQL "postgres://"; SQLAlchemy wants a driver name.
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix):]
    return uri
