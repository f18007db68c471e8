"""`siaga demo` (what `make demo` runs): the whole pipeline end to end through Airflow's own
runner, on the embedded defaults.

It plays the synthetic scenario (`scenarios/demo.jsonl`, the demo source of config/sources.yaml)
through the real DAGs with `dag.test()` (ingest, then detect, then deliver, at a few points of
the replay clock), on SQLite, against the fake Slack (`siaga_dev.fakeslack`), and prints what
reached each channel. Airflow's own log lines go to a file (its path is printed), so the
terminal shows one line per step and the result. Nothing here stands in for a pipeline stage: it only gives the DAGs what a
deployment would (an Airflow metadata database, Siaga's database, Slack's address and token).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator, TextIO

from siaga import settings
from siaga_dev.fakeslack import FakeSlack, describe
from siaga.vocabulary import LOCAL_TZ
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


def migrate_airflow_db(env: dict[str, str], log: TextIO) -> None:
    """`airflow db migrate` in a child process, so this process imports Airflow configured once."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env={**os.environ, **env}, check=True,
                   stdout=log, stderr=subprocess.STDOUT)


class DemoFailed(RuntimeError):
    """A DAG run of the demo did not succeed (the task log says why)."""


def run_dags(times: list[datetime], progress: Callable[[int, datetime], None] = lambda i, when: None) -> None:
    """Ingest, detect and deliver at each replay time, through Airflow's DAG runner."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.REPO_ROOT / "dags"))
    if bag.import_errors:
        raise DemoFailed(f"DAG import errors: {bag.import_errors}")
    for i, when in enumerate(times, start=1):
        for dag_id in ("siaga_ingest", "siaga_detect", "siaga_deliver"):
            run = bag.get_dag(dag_id).test(logical_date=when)
            if str(run.state) != "success":
                raise DemoFailed(f"{dag_id} run for {when.isoformat()} ended {run.state}")
        progress(i, when)


def scenario_times(steps: int) -> list[datetime]:
    """`steps` evenly spaced replay times, the last at the end of the scenario."""
    step = timedelta(hours=HOURS) / steps
    return [START + step * (i + 1) for i in range(steps)]


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Everything written to file descriptors 1 and 2 (Airflow's structured task logs, from this
    process and its children) goes to `log_path`; yields a stream on the real stdout for the
    demo's own progress lines. At the descriptor level because Airflow's loggers hold on to the
    streams they found when it was imported."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    progress = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding="utf-8")
    try:
        yield progress
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        progress.close()


def main(steps: int = 4) -> int:
    home = settings.data_dir() / "airflow-demo"
    home.mkdir(parents=True, exist_ok=True)
    db_path = settings.data_dir() / "siaga-demo.db"
    db_path.unlink(missing_ok=True)  # the demo starts from an empty history each time
    log_path = settings.data_dir() / "demo-airflow.log"
    log_path.write_text("", encoding="utf-8")
    db_url = f"sqlite:///{db_path}"
    env = airflow_env(home, db_url)
    print(f"Siaga demo: the DAGs over scenarios/demo.jsonl ({HOURS} h of posts) in {steps} steps, against a fake Slack.")
    print(f"Airflow's task logs: {log_path}")
    started = time.monotonic()
    try:
        with output_to(log_path) as out, FakeSlack(token=DEMO_TOKEN) as fake:
            print("Setting up Airflow's metadata database ...", file=out)
            migrate_airflow_db(env, sys.stdout)
            os.environ.update(env)
            os.environ.update({"SIAGA_SLACK_TOKEN": DEMO_TOKEN, "SIAGA_SLACK_BASE_URL": fake.base_url})

            def progress(i: int, when: datetime) -> None:
                print(f"step {i}/{steps}: replay clock {when.astimezone(LOCAL_TZ):%H:%M} WITA: ingest, detect, deliver done; "
                      f"{_posts(db_url)} posts stored, {len(fake.messages())} Slack message(s) so far "
                      f"({time.monotonic() - started:.0f} s)", file=out)

            run_dags(scenario_times(steps), progress)
    except (DemoFailed, subprocess.CalledProcessError) as exc:
        print(f"siaga demo: {exc}; see the task log in {log_path}", file=sys.stderr)
        return 1
    _print_arrivals(fake)
    print(f"\nSiaga's database: {db_path} (try `siaga outbox --db sqlite:///{db_path}`).")
    print("Next: `make live` runs the same scenario through a running Airflow, with its UI and the incident pages.")
    return 0


def _posts(db_url: str) -> int:
    from sqlalchemy import func, select

    from siaga import store

    with store.session_scope(db_url) as session:
        return session.scalar(select(func.count()).select_from(store.Post)) or 0


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
