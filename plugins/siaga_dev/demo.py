"""`siaga demo` (what `make demo` runs): the whole pipeline end to end through Airflow's own
runner, on the embedded defaults.

It plays the synthetic scenario (`scenarios/demo.jsonl`, the demo source of config/sources.yaml)
through the real DAGs with `dag.test()` (ingest, then detect, then deliver, at a few points of
the replay clock), on SQLite, against the fake Slack (`siaga_dev.fakeslack`), and prints what
reached each channel. Nothing here stands in for a pipeline stage: it only gives the DAGs what a
deployment would (an Airflow metadata database, Siaga's database, Slack's address and token).
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from siaga import settings
from siaga_dev.fakeslack import FakeSlack, describe
from siaga_dev.scenario import HOURS, START

DEMO_TOKEN = "xoxb-siaga-demo"


def airflow_env(home: Path, db_url: str) -> dict[str, str]:
    """Environment for an in-process Airflow on SQLite, reading this repository's DAGs."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SIAGA_DB_URL": db_url,
        "SIAGA_REPLAY_CLOCK": "identity",
    }


def migrate_airflow_db(env: dict[str, str]) -> None:
    """`airflow db migrate` in a child process, so this process imports Airflow configured once."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)


def run_dags(times: list[datetime]) -> None:
    """Ingest, detect and deliver at each replay time, through Airflow's DAG runner."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    for when in times:
        for dag_id in ("siaga_ingest", "siaga_detect", "siaga_deliver"):
            run = bag.get_dag(dag_id).test(logical_date=when)
            if str(run.state) != "success":
                raise RuntimeError(f"{dag_id} run for {when.isoformat()} ended {run.state}: see the task log above")


def scenario_times(steps: int) -> list[datetime]:
    """`steps` evenly spaced replay times, the last at the end of the scenario."""
    step = timedelta(hours=HOURS) / steps
    return [START + step * (i + 1) for i in range(steps)]


def main(steps: int = 4) -> int:
    home = settings.data_dir() / "airflow-demo"
    home.mkdir(parents=True, exist_ok=True)
    db_path = settings.data_dir() / "siaga-demo.db"
    db_path.unlink(missing_ok=True)  # the demo starts from an empty history each time
    env = airflow_env(home, f"sqlite:///{db_path}")
    print(f"Setting up Airflow's metadata DB in {home} ...", flush=True)
    migrate_airflow_db(env)
    with FakeSlack(token=DEMO_TOKEN) as fake:
        os.environ.update(env)
        os.environ.update({"SIAGA_SLACK_TOKEN": DEMO_TOKEN, "SIAGA_SLACK_BASE_URL": fake.base_url})
        print(f"Fake Slack listening at {fake.base_url}; replaying the demo scenario in {steps} steps ...", flush=True)
        run_dags(scenario_times(steps))
        _print_arrivals(fake)
    return 0


def _print_arrivals(fake: FakeSlack) -> None:
    print("\n=== What reached Slack ===")
    by_channel: dict[str, list[dict]] = {}
    for message in fake.messages():
        by_channel.setdefault(message.get("channel_name") or message.get("channel"), []).append(message)
    if not by_channel:
        print("(nothing)")
    for channel, messages in sorted(by_channel.items()):
        print(f"\n#{str(channel).lstrip('#')}: {len(messages)} message(s)")
        for message in messages:
            print("  " + describe(message).replace("\n", "\n  "))
