"""The DAG files: they import cleanly and stay thin (logic lives in the siaga package)."""
from __future__ import annotations

import ast

from siaga import settings

DAGS = settings.REPO_ROOT / "dags"


def test_dag_files_import_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"siaga_ingest", "siaga_detect", "siaga_deliver", "siaga_digest", "siaga_retention"}


def test_every_task_is_a_few_lines_calling_the_core():
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text())
        tasks = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and any("task" in ast.unparse(d) for d in n.decorator_list)]
        assert tasks, path.name
        for fn in tasks:
            body_lines = fn.end_lineno - fn.body[0].lineno + 1
            assert body_lines <= 5, f"{path.name}:{fn.name} has {body_lines} lines: move logic into plugins/siaga"


def test_ingest_polls_at_the_configured_interval(monkeypatch):
    """SIAGA_POLL_INTERVAL (`settings.poll_interval`) is the ingest DAG's schedule, read when the
    DAG file is parsed; one minute without it."""
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag

    for value, expected in ((None, timedelta(minutes=1)), ("30", timedelta(seconds=30))):
        if value is None:
            monkeypatch.delenv(settings.POLL_INTERVAL_ENV, raising=False)
        else:
            monkeypatch.setenv(settings.POLL_INTERVAL_ENV, value)
        dag = DagBag(dag_folder=str(DAGS / "siaga_ingest.py")).dags["siaga_ingest"]
        assert dag.timetable.delta == expected
