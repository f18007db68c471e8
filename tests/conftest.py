"""Shared fixtures: a fresh Siaga database per test on SQLite and on the real PostgreSQL server.

PostgreSQL tests skip with a clear reason on a machine without the server; CI sets
SIAGA_REQUIRE_POSTGRES=1, which turns that skip into a failure.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings as hypothesis_settings

from siaga import settings, store
from siaga.hazard_config import default_hazard_dir
from siaga.hazards import HazardSet
from siaga.routing import Router

# Property tests judge their inputs, not the machine's speed: Hypothesis' timing checks (an
# example's deadline, "input generation is slow") failed a correct test in CI while other test
# processes loaded both cores. Tests that set their own settings keep this as the base.
hypothesis_settings.register_profile("siaga", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("siaga")

# Airflow reads its configuration once per process, at import: every test that runs Airflow
# shares this one home, set before any test module can import airflow.
AIRFLOW_TEST_HOME = Path(tempfile.mkdtemp(prefix="siaga-airflow-home-"))
atexit.register(shutil.rmtree, AIRFLOW_TEST_HOME, ignore_errors=True)
REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_TEST_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_TEST_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
)

PG_ADMIN_URL = os.environ.get("SIAGA_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
# Prefix of the databases tests create (several checkouts may share one server).
PG_DB_PREFIX = os.environ.get("SIAGA_TEST_PG_DB_PREFIX", "siaga_t_")


def _pg_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: no server here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


def require_postgres() -> None:
    reason = _pg_available()
    if reason is None:
        return
    message = f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({reason})"
    if os.environ.get("SIAGA_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + " and SIAGA_REQUIRE_POSTGRES=1")
    pytest.skip(message)


def _new_pg_database() -> tuple[str, sa.Engine, str]:
    name = f"{PG_DB_PREFIX}{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    return url, admin, name


def _drop_pg_database(admin: sa.Engine, name: str, url: str) -> None:
    store.engine_for(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    """A migrated, empty Siaga database, once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'siaga.db'}"
        store.migrate(url)
        yield url
        store.engine_for(url).dispose()
        return
    require_postgres()
    url, admin, name = _new_pg_database()
    try:
        store.migrate(url)
        yield url
    finally:
        _drop_pg_database(admin, name, url)


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    store.migrate(url)
    yield url
    store.engine_for(url).dispose()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (dag.test() needs one), made once per session."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
    return AIRFLOW_TEST_HOME


@pytest.fixture(scope="module")
def router() -> Router:
    """The repository's routing tree."""
    return Router.load(settings.config_dir() / "routing.yaml")


@pytest.fixture(scope="module")
def hazard_set() -> HazardSet:
    """The repository's hazard lists."""
    return HazardSet.load(default_hazard_dir())


@pytest.fixture
def own_config_and_cache(tmp_path, monkeypatch) -> Iterator[Path]:
    """A copy of the config folder and an empty matcher cache of this test's own, and no
    geotagger left over from another test (`default_geotagger` is one per process)."""
    from siaga.geotag import default_geotagger

    config = tmp_path / "config"
    shutil.copytree(settings.config_dir(), config)
    (tmp_path / "scenarios").symlink_to(settings.config_dir().parent / "scenarios")  # sources.yaml's replay names ../scenarios
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(config))
    monkeypatch.setenv("SIAGA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SIAGA_GAZETTEER", "buleleng")
    default_geotagger.cache_clear()
    yield config
    default_geotagger.cache_clear()


@pytest.fixture
def author_key(monkeypatch) -> None:
    """The key the real connectors pseudonymise authors with (they refuse to run without one)."""
    monkeypatch.setenv("SIAGA_AUTHOR_KEY", "test-key")


@pytest.fixture
def new_watchers() -> Iterator[None]:
    """Watched sources' readers (`siaga.sources.watch`) start knowing nothing, as a new
    triggerer's do, and leave nothing for the next test."""
    from siaga.sources import watch

    watch._seen.clear()
    yield
    watch._seen.clear()


@pytest.fixture
def api():
    """Fake Mastodon, Bluesky, X and RSS endpoints on 127.0.0.1 (tests/support/fakeapis.py)."""
    from support.fakeapis import FakeApis

    with FakeApis() as fake:
        yield fake


@pytest.fixture
def replay_to_fake_slack(monkeypatch):
    """A factory: point the jobs at `url` on the replay source's identity clock and at a fake
    Slack Web API on 127.0.0.1 that takes `token`; yields that FakeSlack (the demo scenario's
    end-to-end tests, through the DAGs or the jobs, share this setting)."""
    from contextlib import ExitStack

    from siaga_dev.fakeslack import FakeSlack

    with ExitStack() as stack:

        def start(url: str, token: str) -> FakeSlack:
            fake = stack.enter_context(FakeSlack(token=token))
            monkeypatch.setenv("SIAGA_DB_URL", url)
            monkeypatch.setenv("SIAGA_REPLAY_CLOCK", "identity")
            monkeypatch.setenv("SIAGA_SLACK_TOKEN", token)
            monkeypatch.setenv("SIAGA_SLACK_BASE_URL", fake.base_url)
            return fake

        yield start
