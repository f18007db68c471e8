"""Siaga on Airflow's CeleryExecutor, proved on real services: PostgreSQL (Airflow's metadata,
Celery's results and Siaga's own database), Redis as the broker, and the real scheduler,
dag-processor, api-server and `airflow celery worker` processes on 127.0.0.1.

A shortened demo scenario (the Ahmad Yani jam, then the Sangsit flood) replays on the live clock
at high speed through the unpaused DAGs, and the alerts must reach the fake Slack server exactly
once. Two deployments run side by side, so the file pays for the wait until the next five-minute
spike window (`siaga.spikes.BUCKET`) once rather than twice:

- `single`: one worker.
- `chaos`: two workers, extra deliver runs triggered to overlap the scheduled ones and the
  detect task's own sending while Slack answers slowly, and one worker SIGKILLed (with its task processes) while it runs an ingest or
  detect task. Still every alert exactly once and every outbox row sent.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from siaga_dev import airflow_stack as st
from siaga import store
from siaga_dev.fakeslack import FakeSlack
from support.services import require_services

pytestmark = [pytest.mark.celery, pytest.mark.timeout(560)]

TOKEN = "xoxb-celery-stack"
SPEED = 120  # the slice below (07:00 to 09:20 of the demo day) plays in about 70 s
SLICE = ("2026-01-15T07:00", "2026-01-15T09:20")
# Redis databases only this file uses (the benchmark uses others), flushed before and after.
REDIS_DB = {"single": 13, "chaos": 14}
_MIGRATE_LOCK = threading.Lock()
ALERT_TIMEOUT = 420  # seconds from start-up to both alerts: start, first poll, bucket boundary


@dataclass
class Deployment:
    name: str
    stack: st.AirflowStack
    fake: FakeSlack
    siaga_db: str
    workers: list[str]
    started: float = field(default_factory=time.monotonic)
    chaos_log: list[str] = field(default_factory=list)
    killed_during: dict[str, Any] | None = None
    triggered: list[subprocess.Popen] = field(default_factory=list)

    def siaga_rows(self, sql: str) -> list[tuple[Any, ...]]:
        return st.query(self.siaga_db, sql)


def _config(root: Path) -> Path:
    """config/ with the shortened scenario as the only source, on the live clock, and no quiet
    hours (this test must not depend on the time of day it runs at)."""
    replay = st.scenario_slice(root / "replay.jsonl", *SLICE)
    return st.config_copy(root / "config", [{"name": "demo", "kind": "replay", "path": str(replay),
                                             "timezone": "Asia/Makassar", "clock": {"mode": "live", "speed": SPEED}}])


def _deploy(root: Path, name: str, workers: int, slack_delay: float = 0.0) -> Deployment:
    root.mkdir(parents=True, exist_ok=True)
    fake = FakeSlack(token=TOKEN).start()
    if slack_delay:
        fake.fail("chat.postMessage", "delay", times=1000, seconds=slack_delay)
    siaga_db = st.create_database(f"siaga_{name}")
    url = st.pg_url(siaga_db)
    stack = st.AirflowStack(root=root, redis_db=REDIS_DB[name], task_env={
        "SIAGA_DB_URL": url,
        "SIAGA_CONFIG_DIR": str(_config(root)),
        "SIAGA_SLACK_TOKEN": TOKEN,
        "SIAGA_SLACK_BASE_URL": fake.base_url,
    })
    dep = Deployment(name, stack, fake, siaga_db, [f"{name}-w{i + 1}" for i in range(workers)])
    try:
        with _MIGRATE_LOCK:  # Alembic's environment is process-global: one migration at a time
            store.migrate(url)  # as the compose file's init service does, before any task runs
            store.engine_for(url).dispose()
        stack.start()
        for worker in dep.workers:
            stack.start_worker(worker)
    except BaseException:
        _teardown(dep)
        raise
    dep.started = time.monotonic()
    return dep


def _teardown(dep: Deployment) -> None:
    for proc in dep.triggered:
        if proc.poll() is None:
            proc.kill()
    dep.stack.stop()
    dep.fake.close()
    st.drop_database(dep.siaga_db)


@pytest.fixture(scope="module")
def deployments(tmp_path_factory):
    require_services()
    root = tmp_path_factory.mktemp("celery-stack")
    with ThreadPoolExecutor(2) as pool:
        single = pool.submit(_deploy, root / "single", "single", 1)
        chaos = pool.submit(_deploy, root / "chaos", "chaos", 2, 1.5)
        deps: dict[str, Deployment] = {}
        errors = []
        for key, fut in (("single", single), ("chaos", chaos)):
            try:
                deps[key] = fut.result()
            except Exception as exc:  # start-up failed: tear down the other one too
                errors.append(exc)
    if errors:
        for dep in deps.values():
            _teardown(dep)
        raise errors[0]
    stop = threading.Event()
    chaos_thread = threading.Thread(target=_chaos, args=(deps["chaos"], stop), daemon=True, name="chaos")
    chaos_thread.start()
    try:
        yield deps
    finally:
        stop.set()
        chaos_thread.join(timeout=30)
        for dep in deps.values():
            _teardown(dep)


# --- the chaos: overlapping runs and a worker killed mid-task --------------------------------------


def _chaos(dep: Deployment, stop: threading.Event) -> None:
    """Once posts flow, SIGKILL the first worker while it runs an ingest or detect task; when the
    outbox fills, trigger two extra deliver runs to overlap the ones the scheduler starts."""
    victim = dep.workers[0]
    delivered_extra = False
    posts_seen_at = None
    try:
        while not stop.is_set():
            if posts_seen_at is None and dep.siaga_rows("select count(*) from posts")[0][0] > 0:
                posts_seen_at = time.monotonic()
                dep.chaos_log.append("posts are flowing")
            if posts_seen_at is not None and dep.killed_during is None:
                task = _running_task_of(dep, victim)
                if task is not None:
                    dep.stack.signal(victim, signal.SIGKILL)
                    dep.killed_during = task
                    dep.chaos_log.append(f"SIGKILLed {victim} during {task}")
                    dep.triggered.append(_trigger(dep, "siaga_ingest"))
            if not delivered_extra and dep.siaga_rows("select count(*) from outbox")[0][0] > 0:
                dep.triggered += [_trigger(dep, "siaga_deliver"), _trigger(dep, "siaga_deliver")]
                delivered_extra = True
                dep.chaos_log.append("triggered two extra deliver runs")
            if dep.killed_during is not None and delivered_extra:
                return
            stop.wait(0.2)
    except Exception as exc:  # the test reports what the chaos thread could not do
        dep.chaos_log.append(f"chaos thread failed: {type(exc).__name__}: {exc}")


def _running_task_of(dep: Deployment, worker: str) -> dict[str, Any] | None:
    """An ingest or detect task instance running under `worker`, if any."""
    under = set(st.descendants(dep.stack.procs[worker].popen.pid))
    rows = dep.stack.task_states(
        "select dag_id, task_id, run_id, map_index, pid from task_instance "
        "where state = 'running' and dag_id in ('siaga_ingest', 'siaga_detect') and pid is not null"
    )
    for dag_id, task_id, run_id, map_index, pid in rows:
        if pid in under:
            return {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "map_index": map_index}
    return None


def _trigger(dep: Deployment, dag_id: str) -> subprocess.Popen:
    log = open(dep.stack.root / "logs" / f"trigger-{dag_id}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "airflow", "dags", "trigger", dag_id], env=dep.stack.env(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


# --- waiting and checking -------------------------------------------------------------------------


def _top_level(fake: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [m for m in fake.messages(channel) if not m.get("thread_ts")]


def _settled(dep: Deployment) -> bool:
    """Both alerts out, and every outbox row sent (none pending, claimed or dead)."""
    if not (_top_level(dep.fake, "#bpbd-siaga") and _top_level(dep.fake, "#dishub-siaga")):
        return False
    states = dict(dep.siaga_rows("select state, count(*) from outbox group by state"))
    return set(states) == {"sent"}


def _wait_settled(dep: Deployment) -> None:
    remaining = ALERT_TIMEOUT - (time.monotonic() - dep.started)
    st.wait_for(lambda: _settled(dep), max(remaining, 30), f"{dep.name}: both alerts delivered", dep.stack)
    # a later detect run may still add updates, and a duplicate would show up late: settle again
    time.sleep(20)
    st.wait_for(lambda: _settled(dep), 90, f"{dep.name}: outbox settled", dep.stack)


def _assert_exactly_once(dep: Deployment) -> None:
    fake = dep.fake
    bpbd, dishub = _top_level(fake, "#bpbd-siaga"), _top_level(fake, "#dishub-siaga")
    report = "\n".join(f"{m['channel_name']} {m.get('thread_ts')} {m['text'][:80]!r}" for m in fake.messages())
    assert len(bpbd) == 1, f"flood top-level messages in #bpbd-siaga: {len(bpbd)}\n{report}"
    assert "banjir" in bpbd[0]["text"].lower() and "Sangsit" in bpbd[0]["text"], report
    assert len(dishub) == 1, f"jam top-level messages in #dishub-siaga: {len(dishub)}\n{report}"
    assert "macet" in dishub[0]["text"].lower() and "Ahmad Yani" in dishub[0]["text"], report

    messages = fake.messages()
    same_text = Counter((m["channel"], m.get("thread_ts"), m["text"]) for m in messages)
    assert max(same_text.values()) == 1, f"a message was posted twice:\n{report}"
    # every Slack message is one outbox row, and every outbox row reached Slack exactly once
    marked = Counter(m["metadata"]["event_payload"]["outbox_id"] for m in messages if m.get("metadata"))
    assert len(marked) == len(messages), f"messages without an outbox marker:\n{report}"
    rows = dep.siaga_rows("select id, state, sent_ts from outbox order by id")
    assert {str(r[0]) for r in rows} == set(marked), f"outbox rows {rows} vs Slack markers {dict(marked)}"
    assert all(n == 1 for n in marked.values()), f"outbox rows posted more than once: {dict(marked)}"
    assert all(state == "sent" for _, state, _ in rows), rows
    sent_ts = {ts for _, _, ts in rows}
    assert sent_ts == {m["ts"] for m in messages}, "each row's recorded ts is its one Slack message"
    # updates went into the incident's thread, not out as new pings
    for m in messages:
        if m.get("thread_ts"):
            assert m["thread_ts"] in (bpbd[0]["ts"], dishub[0]["ts"]), report


def _with_logs(dep: Deployment, check) -> None:
    try:
        check()
    except BaseException:
        print("\n".join(dep.chaos_log))
        print(dep.stack.dump_logs())
        raise


# --- the tests ------------------------------------------------------------------------------------


def test_one_worker_delivers_each_alert_once(deployments):
    dep = deployments["single"]

    def check() -> None:
        _wait_settled(dep)
        _assert_exactly_once(dep)
        runs = dict(dep.stack.task_states(
            "select dag_id, count(*) from dag_run where state = 'success' group by dag_id"))
        assert runs.get("siaga_ingest", 0) >= 2 and runs.get("siaga_detect", 0) >= 1 and runs.get("siaga_deliver", 0) >= 1
        # the detect run that alerted was started by the posts asset or the bucket schedule,
        # never by hand: the DAGs ran unattended
        assert dep.stack.task_states("select count(*) from dag_run where run_type = 'manual'")[0][0] == 0

    _with_logs(dep, check)


def test_two_workers_one_killed_mid_task_still_exactly_once(deployments):
    dep = deployments["chaos"]

    def check() -> None:
        st.wait_for(lambda: dep.killed_during is not None or any("failed" in line for line in dep.chaos_log),
                    ALERT_TIMEOUT, "chaos: a worker killed mid-task", dep.stack)
        assert dep.killed_during is not None, dep.chaos_log
        assert not dep.stack.procs[dep.workers[0]].alive()
        assert dep.stack.procs[dep.workers[1]].alive()
        _wait_settled(dep)
        _assert_exactly_once(dep)
        assert not any("failed" in line for line in dep.chaos_log), dep.chaos_log
        # the task the dead worker held was taken over: its run finished, by the survivor
        killed = dep.killed_during
        st.wait_for(lambda: dep.stack.task_states(
            f"select state from dag_run where dag_id = '{killed['dag_id']}' and run_id = '{killed['run_id']}'"
        )[0][0] in ("success", "failed"), 180, "the killed task's run to finish", dep.stack)
        state = dep.stack.task_states(
            f"select state from dag_run where dag_id = '{killed['dag_id']}' and run_id = '{killed['run_id']}'")[0][0]
        assert state == "success", f"run of the killed task ended {state}"
        # the extra runs come from `airflow dags trigger` commands: since the detect task sends its
        # own alerts, the outbox can settle before those commands (seconds each under load) are done
        st.wait_for(lambda: all(p.poll() is not None for p in dep.triggered), 180, "the trigger commands", dep.stack)
        overlapping = dep.stack.task_states(
            "select count(*) from dag_run where dag_id = 'siaga_deliver' and run_type = 'manual'")[0][0]
        assert overlapping >= 2, "the extra deliver runs were triggered"

    _with_logs(dep, check)
