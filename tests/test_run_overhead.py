"""What every DAG task pays before its work (issue 14's per-run overhead): the schema check is one
query on an up-to-date database, DAG files do not drag detection's libraries into ingest and
deliver tasks, Celery workers import the jobs' stages once (every one of them, and without the
core package needing Airflow), and the tail probabilities match scipy.stats without importing it."""
from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from siaga import spikes, store


def test_migrate_skips_alembic_when_the_database_is_at_the_newest_revision(db_url, monkeypatch):
    from alembic import command

    calls = []
    monkeypatch.setattr(command, "upgrade", lambda *a, **k: calls.append(a))
    store.migrate(db_url)  # the fixture migrated it already
    assert calls == []


def test_migrate_creates_a_new_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    store.migrate(url)
    with store.engine_for(url).connect() as conn:
        version = conn.exec_driver_sql("select version_num from alembic_version").scalars().all()
    assert frozenset(version) == store._head_revisions()
    store.migrate(url)  # and again: nothing to do, no error
    store.engine_for(url).dispose()


def test_dag_files_do_not_import_detection_libraries_for_ingest_and_deliver():
    code = ("import sys; import siaga.pipeline; "
            "print(sorted(m for m in ('pandas', 'scipy', 'siaga.detect', 'siaga.geotag', 'slack_sdk') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_workers_preload_every_stage_module_the_jobs_import():
    """`pipeline.STAGE_MODULES` is what `siaga.celery_config` has workers import before forking:
    a job importing a stage missing from it would pay that import in every task again."""
    from siaga import pipeline

    tree = ast.parse(open(pipeline.__file__, encoding="utf-8").read())
    imported = set()
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.module == "siaga":
                imported |= {f"siaga.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("siaga."):
                imported.add(node.module)
    assert imported == set(pipeline.STAGE_MODULES)


def test_celery_config_is_airflows_with_the_stages_added_and_needs_no_airflow_to_import():
    code = ("import sys; import siaga.celery_config; "
            "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"

    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    from siaga import celery_config, pipeline

    config = celery_config.CELERY_CONFIG
    assert {k: v for k, v in config.items() if k != "imports"} == {k: v for k, v in DEFAULT_CELERY_CONFIG.items() if k != "imports"}
    assert set(pipeline.STAGE_MODULES) <= set(config["imports"])


@hsettings(max_examples=200, deadline=None)
@given(
    observed=st.integers(min_value=0, max_value=500),
    expected=st.floats(min_value=0.0, max_value=300.0, allow_nan=False),
    dispersion=st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=5.0)),
)
def test_tail_equals_scipy_stats(observed, expected, dispersion):
    from scipy.stats import nbinom, poisson

    mean = max(expected, 1e-12)
    if dispersion > 0:
        size = 1.0 / dispersion
        want = nbinom.sf(observed - 1, size, size / (size + mean))
    else:
        want = poisson.sf(observed - 1, mean)
    got = spikes.tail(np.array([observed]), np.array([expected]), np.array([dispersion]))[0]
    assert got == pytest.approx(float(np.clip(want, 0, 1)), rel=1e-9, abs=1e-300)
