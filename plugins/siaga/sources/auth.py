"""Credentials for connectors: an Airflow connection, else an environment variable. Never logged.

Airflow connections are how operators manage secrets (UI, secrets backends, `AIRFLOW_CONN_*`).
Outside Airflow (tests, `siaga` on a laptop) the token comes from `SIAGA_<CONN_ID>_TOKEN`.
"""
from __future__ import annotations

import os

from siaga.sources.base import SourceConfigError


class MissingCredentials(SourceConfigError):
    """The connection named in config is not defined anywhere."""


def env_name(conn_id: str) -> str:
    return "SIAGA_" + "".join(c if c.isalnum() else "_" for c in conn_id).upper() + "_TOKEN"


def token(conn_id: str) -> str:
    """The secret of connection `conn_id`: its password, else its extra `token`, else the env
    variable. The error names where we looked, never a value."""
    value = _airflow_secret(conn_id) or os.environ.get(env_name(conn_id))
    if value:
        return value
    raise MissingCredentials(f"no credentials for connection {conn_id!r}: define the Airflow connection or set {env_name(conn_id)}")


def _airflow_secret(conn_id: str) -> str | None:
    if not os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}") and not os.environ.get("AIRFLOW_HOME"):
        return None
    try:
        from airflow.sdk import Connection  # imported lazily: the core must not need Airflow

        conn = Connection.get(conn_id)
    except Exception:  # no Airflow, no such connection, or no API server to ask
        return None
    if conn.password:
        return conn.password
    extra = conn.extra_dejson or {}
    return extra.get("token") or extra.get("bearer_token") or extra.get("access_token")
