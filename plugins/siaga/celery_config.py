"""The Celery configuration of Siaga's Airflow workers: Airflow's own, plus the stage modules
the DAG tasks run (`pipeline.STAGE_MODULES`) imported once when the worker starts.

Why: on Linux an Airflow Celery worker runs each task in a process forked from its pool process
(`airflow.sdk.execution_time.supervisor`), and Siaga's jobs import their stages when they run
(`siaga.pipeline`), so every detect task imported pandas, scipy, numpy and the tagger again:
about 3 to 5 s of CPU on the 2-core benchmark machine before its first query, on the path of
every alert (benchmarks/README.md, "Post-to-Slack latency"). Modules the worker imported before
forking are inherited by every task process, so they are paid once per worker. Airflow does the
same for its own operators (`celery_executor_utils.on_celery_import_modules`); this adds ours
through Celery's standard `imports` setting, which only a worker acts on (the scheduler builds
the same Celery app but never imports them).

Enable it with `AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=siaga.celery_config.CELERY_CONFIG`
(docker-compose.yml does). The attribute is built on first access (PEP 562), so importing this
module needs no Airflow: the core package stands without it. The price: a worker runs the stage
code it started with, so workers are restarted after Siaga's code changes (a new image does).
"""
from __future__ import annotations

from typing import Any

from siaga.pipeline import STAGE_MODULES


def celery_config() -> dict[str, Any]:
    """Airflow's default Celery configuration with STAGE_MODULES added to `imports`."""
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    return {**DEFAULT_CELERY_CONFIG, "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *STAGE_MODULES)}


def __getattr__(name: str) -> Any:
    if name == "CELERY_CONFIG":
        return celery_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
