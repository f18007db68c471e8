"""Credentials for connectors: an Airflow connection, else an environment variable. Never logged.

Airflow connections are how operators manage secrets (UI, secrets backends, `AIRFLOW_CONN_*`).
Outside Airflow (tests, `siaga` on a laptop) the token comes from `SIAGA_<CONN_ID>_TOKEN`.
"""
from __future__ import annotations

from siaga import settings
from siaga.sources.base import SourceConfigError


class MissingCredentials(SourceConfigError):
    """The connection named in config is not defined anywhere."""


def token(conn_id: str) -> str:
    """The secret of connection `conn_id`: its password, else its extra `token`, else the env
    variable. The error names where we looked, never a value."""
    value = settings.connection_secret(conn_id)
    if value:
        return value
    raise MissingCredentials(f"no credentials for connection {conn_id!r}: define the Airflow connection or set {settings.env_token_name(conn_id)}")
