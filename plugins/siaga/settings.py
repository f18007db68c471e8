"""Where Siaga finds its configuration, gazetteer and database.

One place resolves every path and URL so the DAGs, the `siaga` command and the tests agree.
Environment variables win (they are how Airflow deployments and tests configure things); the
defaults point into the repository so a fresh checkout runs with no setup.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

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
    """The connection's SQLAlchemy URL: from `AIRFLOW_CONN_<ID>` (URI or JSON, read directly so
    `siaga db migrate` works outside a task), else from Airflow's connections inside a task."""
    env = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if env:
        return _sqlalchemy_url(_env_connection_uri(env))
    if not os.environ.get("AIRFLOW_HOME"):
        return None
    try:
        from airflow.sdk import Connection  # imported lazily: the core must not need Airflow

        return _sqlalchemy_url(Connection.get(conn_id).get_uri())
    except Exception:  # no such connection, or not inside a task: fall back to the default
        return None


def _env_connection_uri(value: str) -> str:
    value = value.strip()
    if not value.startswith("{"):
        return value
    doc = json.loads(value)
    auth = ""
    if doc.get("login"):
        auth = quote(str(doc["login"]), safe="")
        if doc.get("password"):
            auth += ":" + quote(str(doc["password"]), safe="")
        auth += "@"
    port = f":{doc['port']}" if doc.get("port") else ""
    return f"{doc.get('conn_type', 'postgres')}://{auth}{doc.get('host', '')}{port}/{doc.get('schema', '')}"


def _sqlalchemy_url(uri: str) -> str:
    """Airflow spells PostgreSQL "postgres://"; SQLAlchemy wants a driver name."""
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix):]
    return uri
