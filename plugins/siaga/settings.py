"""Where Siaga finds its configuration, gazetteer, database and secrets.

One place resolves every path, URL, switch and credential so the DAGs, the `siaga` command and
the tests agree: no other module of `siaga` reads the environment. Paths and switches come from
environment variables. The database URL, the Socket Mode app token and the author key come from
the environment first, then from Airflow's connection or variable when Airflow is there. Slack's
bot token and the sources' credentials come from their Airflow connection first and fall back
to the environment, which stands in for them outside a deployment. The defaults point into the
repository so a fresh checkout runs with no setup. Secrets are returned, never logged.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(ValueError):
    """An environment setting (SIAGA_*, AIRFLOW_CONN_*) whose value cannot be used; the message
    names the variable (never a secret it holds). `siaga` prints it in one line."""


def config_dir() -> Path:
    return Path(os.environ.get("SIAGA_CONFIG_DIR", REPO_ROOT / "config"))


def geodata_dir() -> Path:
    return Path(os.environ.get("SIAGA_GEODATA_DIR", REPO_ROOT / "geodata"))


def data_dir() -> Path:
    """Runtime state (the embedded SQLite database, the demo's Airflow home); git-ignored."""
    path = Path(os.environ.get("SIAGA_DATA_DIR", REPO_ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """SIAGA_CACHE_DIR: where compiled matchers are cached (`matcher_cache`); default
    data_dir()/cache. Safe to delete: entries are rebuilt on next use."""
    value = os.environ.get("SIAGA_CACHE_DIR")
    return Path(value) if value else data_dir() / "cache"


def database_url() -> str:
    """SIAGA_DB_URL, else the Airflow connection `siaga_db`, else a SQLite file in data_dir()."""
    url = os.environ.get("SIAGA_DB_URL")
    if url:
        return url
    url = _airflow_connection_url("siaga_db")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'siaga.db'}"


# --- switches -------------------------------------------------------------------------------

GAZETTEER_SIZES = ("national", "buleleng")


def gazetteer_size() -> str:
    """SIAGA_GAZETTEER: "national" (default: all of Indonesia's admin names, so posts about
    elsewhere are recognised as elsewhere) or "buleleng" (faster start, less memory)."""
    size = os.environ.get("SIAGA_GAZETTEER", "national")
    if size not in GAZETTEER_SIZES:
        raise SettingsError(f"SIAGA_GAZETTEER: expected one of {GAZETTEER_SIZES}, got {size!r}")
    return size


def timeline_base_url() -> str | None:
    """Where the incident pages are, for the link in every alert: SIAGA_TIMELINE_BASE_URL, else
    Airflow's own address (`[api] base_url`, i.e. AIRFLOW__API__BASE_URL or airflow.cfg) with
    the pages' prefix (`vocabulary.PAGES_PREFIX`), else None (Airflow cannot guess its public
    name, and neither can Siaga)."""
    explicit = os.environ.get("SIAGA_TIMELINE_BASE_URL", "").strip()  # an .env file's stray space or newline
    if explicit:
        return explicit
    airflow = (os.environ.get(AIRFLOW_BASE_URL_ENV) or _airflow_option("api", "base_url", AIRFLOW_BASE_URL_ENV) or "").strip()
    if not airflow:
        return None
    from siaga.vocabulary import PAGES_PREFIX

    return airflow.rstrip("/") + PAGES_PREFIX


AIRFLOW_BASE_URL_ENV = "AIRFLOW__API__BASE_URL"


def _airflow_option(section: str, key: str, env_name: str) -> str | None:
    """An option of Airflow's configuration, or None when Airflow is not around or it is unset."""
    if not _airflow_around(env_name):
        return None
    try:
        from airflow.configuration import conf  # imported lazily: the core must not need Airflow

        return conf.get(section, key, fallback=None) or None
    except Exception:  # no Airflow, or a configuration it cannot read
        return None


PUBLIC_CAP_ENV = "SIAGA_PUBLIC_CAP"
PUBLIC_CAP_HAZARDS_ENV = "SIAGA_PUBLIC_CAP_HAZARDS"
PUBLIC_CAP_MIN_SEVERITY_ENV = "SIAGA_PUBLIC_CAP_MIN_SEVERITY"
PUBLIC_CAP_CONFIRMED_ENV = "SIAGA_PUBLIC_CAP_CONFIRMED_ONLY"


@dataclass(frozen=True)
class PublicCap:
    """What the agency publishes in the public CAP feed: these hazards (None: all), at this
    severity or above, and (`confirmed_only`) only incidents a duty officer acknowledged."""

    hazards: frozenset[str] | None = None
    min_severity: str = "medium"
    confirmed_only: bool = True


def public_cap() -> PublicCap | None:
    """SIAGA_PUBLIC_CAP=1 opens a public, read-only CAP 1.2 feed at /siaga/public/cap.atom for
    CAP aggregators (default: off, None). What it carries: SIAGA_PUBLIC_CAP_HAZARDS (hazard ids,
    comma-separated; default all), SIAGA_PUBLIC_CAP_MIN_SEVERITY (default medium) and
    SIAGA_PUBLIC_CAP_CONFIRMED_ONLY (default 1: only incidents a duty officer acknowledged,
    since a spike of posts is not verified). ValueError names a bad value."""
    if not _switch(PUBLIC_CAP_ENV, False):
        return None
    from siaga.vocabulary import SEVERITIES

    hazards = frozenset(h.strip() for h in os.environ.get(PUBLIC_CAP_HAZARDS_ENV, "").split(",") if h.strip()) or None
    severity = os.environ.get(PUBLIC_CAP_MIN_SEVERITY_ENV, "medium").strip()
    if severity not in SEVERITIES:
        raise SettingsError(f"{PUBLIC_CAP_MIN_SEVERITY_ENV}: expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    return PublicCap(hazards, severity, _switch(PUBLIC_CAP_CONFIRMED_ENV, True))


def _switch(name: str, default: bool) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off; ValueError otherwise."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}: expected 1 or 0 (true/false, yes/no, on/off), got {value!r}")


POLL_INTERVAL_ENV = "SIAGA_POLL_INTERVAL"
POLL_INTERVAL_DEFAULT = timedelta(minutes=1)
POLL_INTERVAL_MIN = timedelta(seconds=10)
POLL_INTERVAL_MAX = timedelta(days=1)  # a slower poll is no watch at all


def poll_interval() -> timedelta:
    """SIAGA_POLL_INTERVAL: seconds between polls of the sources (the ingest DAG's schedule),
    default 60. A post waits for the next poll, so this interval is the floor of post-to-Slack
    latency: at one minute an event's last post waits up to a minute before anything can run
    (benchmarks/README.md, "Post-to-Slack latency"). Poll faster only where the sources allow
    it (rate limits, terms of use); below 10 s the scheduler's own hops dominate and a poll can
    outlast the interval. Read by the DAG file, so the dag-processor's environment decides.
    ValueError names a bad value."""
    value = os.environ.get(POLL_INTERVAL_ENV, "").strip()
    if not value:
        return POLL_INTERVAL_DEFAULT
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{POLL_INTERVAL_ENV}: expected seconds between polls (e.g. 60 or 30), got {value!r}") from None
    if not POLL_INTERVAL_MIN.total_seconds() <= seconds <= POLL_INTERVAL_MAX.total_seconds():
        # 'inf' and '1e20' too: timedelta raised an OverflowError while the DAG file was parsed
        raise SettingsError(f"{POLL_INTERVAL_ENV}: from {POLL_INTERVAL_MIN.total_seconds():g} s to "
                            f"{POLL_INTERVAL_MAX.total_seconds():g} s (a day), got {value!r}")
    return timedelta(seconds=seconds)


def replay_clock_override() -> str | None:
    """SIAGA_REPLAY_CLOCK: force every replay source's clock ("identity" or "live")."""
    return os.environ.get("SIAGA_REPLAY_CLOCK") or None


# --- secrets -------------------------------------------------------------------------------


def _airflow_around(env_name: str) -> bool:
    """Is it worth asking Airflow? Inside a task it is already imported; elsewhere only when a
    deployment is configured (importing Airflow costs a command line a second or more)."""
    return bool(os.environ.get(env_name) or os.environ.get("AIRFLOW_HOME") or "airflow.sdk" in sys.modules)


def airflow_connection(conn_id: str) -> Any | None:
    """Airflow's connection `conn_id`, or None when Airflow, the connection or a way to ask for
    it is missing (outside a deployment every credential falls back to the environment)."""
    if not _airflow_around(f"AIRFLOW_CONN_{conn_id.upper()}"):
        return None
    try:
        from airflow.sdk import Connection  # imported lazily: the core must not need Airflow

        return Connection.get(conn_id)
    except Exception:  # no Airflow, no such connection, or no API server to ask
        return None


def airflow_variable(key: str) -> str | None:
    if not _airflow_around(f"AIRFLOW_VAR_{key.upper()}"):
        return None
    try:
        from airflow.sdk import Variable  # imported lazily: the core must not need Airflow

        return Variable.get(key, default=None)
    except Exception:  # no Airflow or no API server to ask
        return None


def env_token_name(conn_id: str) -> str:
    """The environment variable standing in for connection `conn_id` outside Airflow."""
    return "SIAGA_" + "".join(c if c.isalnum() else "_" for c in conn_id).upper() + "_TOKEN"


def connection_secret(conn_id: str, env_name: str | None = None) -> str | None:
    """The secret of connection `conn_id` (its password, else an extra `token`), else the
    environment variable `env_name` (default SIAGA_<CONN_ID>_TOKEN)."""
    conn = airflow_connection(conn_id)
    if conn is not None:
        extra = conn.extra_dejson or {}
        value = conn.password or extra.get("token") or extra.get("bearer_token") or extra.get("access_token")
        if value:
            return value
    return os.environ.get(env_name or env_token_name(conn_id)) or None


SLACK_CONN_ID = "slack_api_default"
SLACK_TOKEN_ENV = "SIAGA_SLACK_TOKEN"
SLACK_BASE_URL_ENV = "SIAGA_SLACK_BASE_URL"
SLACK_APP_CONN_ID = "slack_socket_mode"
SLACK_APP_TOKEN_ENV = "SIAGA_SLACK_APP_TOKEN"
AUTHOR_KEY_ENV = "SIAGA_AUTHOR_KEY"
AUTHOR_KEY_VARIABLE = "siaga_author_key"


def slack_credentials(conn_id: str | None = SLACK_CONN_ID) -> tuple[str | None, str | None, str]:
    """(bot token, Web API base URL, where they came from): the Airflow connection `conn_id`
    (token as password, `base_url` in extras) when it exists, else SIAGA_SLACK_TOKEN and
    SIAGA_SLACK_BASE_URL."""
    conn = airflow_connection(conn_id) if conn_id else None
    if conn is not None:
        extra = conn.extra_dejson or {}
        return conn.password, extra.get("base_url") or extra.get("extra__slack__base_url"), f"Airflow connection {conn_id}"
    return os.environ.get(SLACK_TOKEN_ENV), os.environ.get(SLACK_BASE_URL_ENV), "environment"


def slack_app_token(conn_id: str | None = SLACK_APP_CONN_ID) -> str | None:
    """The Socket Mode app-level token: SIAGA_SLACK_APP_TOKEN, else the Airflow connection."""
    token = os.environ.get(SLACK_APP_TOKEN_ENV)
    if not token and conn_id:
        conn = airflow_connection(conn_id)
        token = conn.password if conn is not None else None
    return token or None


def author_key() -> str | None:
    """The key that pseudonymises authors: SIAGA_AUTHOR_KEY, else the Airflow variable."""
    return os.environ.get(AUTHOR_KEY_ENV) or airflow_variable(AUTHOR_KEY_VARIABLE)


def _airflow_connection_url(conn_id: str) -> str | None:
    """The connection's SQLAlchemy URL: from `AIRFLOW_CONN_<ID>` (URI or JSON, read directly so
    `siaga db migrate` works outside a task), else from Airflow's connections inside a task."""
    env = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if env:
        return _sqlalchemy_url(_env_connection_uri(env, f"AIRFLOW_CONN_{conn_id.upper()}"))
    conn = airflow_connection(conn_id)
    return _sqlalchemy_url(conn.get_uri()) if conn is not None else None


def _env_connection_uri(value: str, name: str = "AIRFLOW_CONN_<ID>") -> str:
    value = value.strip()
    if not value.startswith("{"):
        return value
    try:
        doc = json.loads(value)
    except ValueError as exc:  # the value holds a password: its place, never the text
        raise SettingsError(f"{name}: not a connection URI nor a JSON object ({getattr(exc, 'msg', 'invalid JSON')} "
                            f"at character {getattr(exc, 'pos', '?')})") from None
    if not isinstance(doc, dict):
        raise SettingsError(f"{name}: not a connection URI nor a JSON object")
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
    if uri.startswith("postgres://"):
        uri = "postgresql://" + uri[len("postgres://"):]
    from siaga.store import with_driver

    return with_driver(uri)
