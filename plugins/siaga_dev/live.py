"""`siaga live` (what `make live` runs): a live watch on this machine in one command.

It starts `airflow standalone` (scheduler, dag-processor, api-server, triggerer; SQLite,
LocalExecutor, the UI's simple login) reading this repository's DAGs and plugin, the fake Slack
(`siaga_dev.fakeslack`, printing each message here as it arrives) and the demo scenario on the
replay source's `live` clock, unpauses the Siaga DAGs and prints where to look. Ctrl-C stops
everything: Airflow's process group (SIGINT, the only signal it shuts down cleanly on, then
TERM, then KILL) and the task processes Airflow puts in groups of their own.

A live watch must show something within minutes, so it runs on a *live copy* of the config
folder (`var/live/config/`), written at each start, in which the recording is played faster
and every duration is shortened by the same factor (LIVE_SPEED):
- sources.yaml: one replay source, the demo scenario from LIVE_FROM (just before the jam is
  reported) at LIVE_SPEED times real time;
- hazards/*.yaml: each hazard's spike window divided by LIVE_SPEED (at least
  MIN_WINDOW_MINUTES), so a window holds about the same stretch of the recording as in the demo,
  and its own incident gap, if it has one, likewise (at least 5 minutes, as the schema wants);
- detection.yaml: the incident gap and reopen window divided likewise, and a quiet period of
  LIVE_QUIET_MINUTES (the shortest detection.yaml allows) so an incident resolves itself while
  someone watches;
- routing.yaml: without quiet hours (a live watch at night would otherwise hold its alerts
  until the morning).
The core reads that folder as it reads any other (SIAGA_CONFIG_DIR): nothing in `siaga` knows
it is a demo. The database (`var/live/siaga.db`) starts empty each time, so the scenario plays
from its start; Airflow's home (`var/live/airflow/`, with the generated admin password) is
kept between runs.

Why this timing: with the recording from 07:12 at 30x, the jam's reports reach the alert
threshold about 45 s after the first poll, so the first alert arrives within 2 minutes; the
jam's last reports are played at about 1 min, its spike window (2 min) empties about 2 minutes
later, and the 5-minute quiet period resolves it at about 8 minutes. A window is never shorter
than MIN_WINDOW_MINUTES: the detect runs come about once a minute (slower on a busy machine),
and a one-minute window between two of them could hold a whole burst that no run sees.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

import yaml

from siaga import settings, store
from siaga_dev.airflow_stack import descendants, free_port, scenario_slice, without_quiet_hours
from siaga_dev.fakeslack import FakeSlack, describe

LIVE_SPEED = 30.0  # recording minutes per real minute
LIVE_FROM = "2026-01-15T07:12"  # where the live recording starts (the file's own offset, +08:00)
LIVE_QUIET_MINUTES = 5  # detection.yaml's smallest quiet period
MIN_WINDOW_MINUTES = 2  # a spike window spans at least two detect runs
LIVE_TOKEN = "xoxb-siaga-live"
DAG_PREFIX = "siaga_"
READY_TIMEOUT = 240.0  # seconds for Airflow to answer and parse the DAGs (slower on a busy machine)


@dataclass(frozen=True)
class LivePaths:
    """Where a live session keeps its files (under SIAGA_DATA_DIR, default var/)."""

    root: Path

    @classmethod
    def default(cls) -> "LivePaths":
        return cls(settings.data_dir() / "live")

    @property
    def home(self) -> Path:
        return self.root / "airflow"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def scenario(self) -> Path:
        return self.root / "scenario.jsonl"

    @property
    def db(self) -> Path:
        return self.root / "siaga.db"

    @property
    def log(self) -> Path:
        return self.root / "airflow.log"

    @property
    def password_file(self) -> Path:
        """Where Airflow's simple auth manager writes the admin password it generates."""
        return self.home / "simple_auth_manager_passwords.json.generated"


# --- the live config ------------------------------------------------------------------------------


def write_live_config(dest: Path, scenario: Path, speed: float, source: Path | None = None) -> Path:
    """A copy of the config folder (`source`, default the one in force) for a recording played
    at `speed` times real time: see the module's docstring."""
    source = source or settings.config_dir()
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    _dump(dest / "sources.yaml", {"retention_days": _load(source / "sources.yaml").get("retention_days", 30), "sources": [
        {"name": "demo", "kind": "replay", "path": str(scenario), "timezone": "Asia/Makassar",
         "clock": {"mode": "live", "speed": speed}}]})
    for path in sorted((dest / "hazards").glob("*.yaml")):
        doc = _load(path)
        detection = doc.get("detection") if isinstance(doc, dict) else None
        if isinstance(detection, dict) and isinstance(detection.get("window_minutes"), int):
            detection["window_minutes"] = max(MIN_WINDOW_MINUTES, math.ceil(detection["window_minutes"] / speed))
            if isinstance(detection.get("incident_gap_minutes"), int):
                detection["incident_gap_minutes"] = max(5, math.ceil(detection["incident_gap_minutes"] / speed))
            _dump(path, doc)
    _dump(dest / "detection.yaml", live_detection(_load(dest / "detection.yaml") or {}, speed))
    return without_quiet_hours(dest)


def live_detection(doc: dict[str, Any], speed: float) -> dict[str, Any]:
    """detection.yaml for the faster clock: durations divided by `speed` within the schema's
    bounds, and the short quiet period. The lookback stays: it only says how far back each run
    looks again, and a long one keeps the live posts out of the baseline."""
    from siaga.detection_config import DetectSettings

    defaults = DetectSettings()
    out = dict(doc)
    gap = doc.get("incident_gap_minutes", int(defaults.incident_gap.total_seconds() // 60))
    reopen = doc.get("reopen_window_minutes", int(defaults.reopen_window.total_seconds() // 60))
    out["incident_gap_minutes"] = max(5, math.ceil(gap / speed))
    out["reopen_window_minutes"] = math.ceil(reopen / speed)
    out["quiet_period_minutes"] = LIVE_QUIET_MINUTES
    return out


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None


def _dump(path: Path, doc: Any) -> None:
    header = "# Written by `siaga live` for a recording played faster than real time: edit config/, not this copy.\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")


# --- Airflow --------------------------------------------------------------------------------------


def airflow_env(paths: LivePaths, port: int, slack_base_url: str) -> dict[str, str]:
    """The environment of `airflow standalone` and everything it starts. The virtual
    environment's bin comes first on PATH: standalone starts its components as `airflow ...`
    found on PATH, and without it each fails with FileNotFoundError while the parent runs on."""
    keep = ("SIAGA_GAZETTEER", "SIAGA_GEODATA_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SIAGA_")) or k in keep}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update({
        "AIRFLOW_HOME": str(paths.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        # one secret for every component this session starts (never written anywhere)
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # other people's Airflows on this machine may hold the default log-server ports
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        "SIAGA_CONFIG_DIR": str(paths.config),
        "SIAGA_DB_URL": f"sqlite:///{paths.db}",
        "SIAGA_SLACK_TOKEN": LIVE_TOKEN,
        "SIAGA_SLACK_BASE_URL": slack_base_url,
        "SIAGA_TIMELINE_BASE_URL": f"http://127.0.0.1:{port}/siaga",
    })
    # The scenario's posts are all about Buleleng: the smaller gazetteer loads in half the time,
    # and every detect task loads it again in a process of its own (unless one was chosen).
    env.setdefault("SIAGA_GAZETTEER", "buleleng")
    return env


def start_airflow(env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    """`airflow standalone` in a session (process group) of its own, its output in `log`."""
    with open(log, "ab") as fh:
        return subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"], env=env, cwd=cwd,
                                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def stop_airflow(proc: subprocess.Popen, known: set[int]) -> None:
    """SIGINT to the process group (standalone then stops its components), TERM, then KILL;
    then any process that was below it (task processes sit in groups of their own)."""
    known |= set(descendants(proc.pid))
    for sig, grace in ((signal.SIGINT, 40.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the leader is gone: sweep what is left in its group
    except ProcessLookupError:
        pass
    for pid in known:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def admin_password(paths: LivePaths) -> str | None:
    """The admin password Airflow generated, read from its file at every start (standalone
    prints it only the first time)."""
    try:
        return json.loads(paths.password_file.read_text(encoding="utf-8")).get("admin")
    except (OSError, ValueError, AttributeError):
        return None


def api_token(port: int, password: str) -> str:
    """A Bearer token for the REST API, as the UI's login gets one."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/auth/token", method="POST",
                                     data=json.dumps({"username": "admin", "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)["access_token"]


def _api(port: int, token: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="PATCH" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def siaga_dags(port: int, token: str) -> list[str]:
    doc = _api(port, token, f"/api/v2/dags?dag_id_pattern={DAG_PREFIX}&limit=100")
    return sorted(d["dag_id"] for d in doc.get("dags", []) if d["dag_id"].startswith(DAG_PREFIX))


def unpause(port: int, token: str, dag_ids: list[str]) -> None:
    for dag_id in dag_ids:
        _api(port, token, f"/api/v2/dags/{dag_id}", {"is_paused": False})


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# --- the session ----------------------------------------------------------------------------------


class LiveError(RuntimeError):
    """The live watch could not start; the message says why and where to look."""


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) while waiting for Airflow: stop without an error."""


def wait_until(what: str, predicate: Callable[[], Any], proc: subprocess.Popen, log: Path, stop: threading.Event,
               timeout: float = READY_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            raise LiveError(f"Airflow exited ({proc.returncode}) before {what}; see {log}")
        if time.monotonic() > deadline:
            raise LiveError(f"no {what} after {timeout:.0f} s; see {log}")
        if stop.wait(1.0):
            raise Interrupted()


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return None


def main(port: int = 8080, slack_port: int = 8089, speed: float | None = None, out: TextIO = sys.stdout) -> int:
    speed = speed or LIVE_SPEED
    paths = LivePaths.default()
    for what, p in (("the Airflow UI", port), ("the fake Slack", slack_port)):
        if port_in_use(p):
            print(f"siaga live: port {p} for {what} is in use (another Airflow or `siaga live`?); "
                  f"choose another: siaga live --port N --slack-port M", file=sys.stderr)
            return 1
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.home.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # the scenario plays from its start each time
        Path(f"{paths.db}{suffix}").unlink(missing_ok=True)
    # Migrated here, once: the first ingest, detect and deliver tasks start together, and three
    # Alembic upgrades of one fresh SQLite file at once collide (seen: "_alembic_tmp_posts
    # already exists", every later task failing).
    store.migrate(f"sqlite:///{paths.db}")
    scenario_slice(paths.scenario, LIVE_FROM, "9999")
    write_live_config(paths.config, paths.scenario, speed)
    paths.log.write_text("", encoding="utf-8")

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    started: list[float] = []
    firsts: dict[str, float] = {}

    def show(message: dict[str, Any]) -> None:
        elapsed = time.monotonic() - started[0] if started else 0.0
        say(f"[+{int(elapsed // 60)}:{int(elapsed % 60):02d}] " + describe(message))
        text = message.get("text") or ""
        for kind, marker in (("alert", "Peringatan baru"), ("resolved", "Selesai")):
            if marker in text and kind not in firsts:
                firsts[kind] = elapsed

    # Explicit handlers: a shell that starts `make live &` hands it SIGINT ignored, and Python
    # would keep it so; Ctrl-C must stop the watch however it was started.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    known: set[int] = set()
    say(f"Siaga live: Airflow standalone with the Siaga DAGs, a fake Slack and the demo scenario at {speed:g}x real time.")
    say(f"Airflow's own logs: {paths.log}")
    with FakeSlack(token=LIVE_TOKEN, port=slack_port, on_message=show) as fake:
        env = airflow_env(paths, port, fake.base_url)
        proc = start_airflow(env, paths.log, paths.root)
        try:
            say("Starting Airflow (about 30 s; a minute on a busy machine) ...")
            wait_until("an answer from the API server", lambda: _try(lambda: _api_health(port)), proc, paths.log, stop)
            password = wait_until("the admin password file", lambda: admin_password(paths), proc, paths.log, stop, 60)
            token = api_token(port, password)
            dags = wait_until("the Siaga DAGs parsed", lambda: _try(lambda: _all_dags(port, token)), proc, paths.log, stop)
            unpause(port, token, dags)
            started.append(time.monotonic())
            known |= set(descendants(proc.pid))
            say()
            say(f"Airflow UI:      http://127.0.0.1:{port}/   login: admin / {password}")
            say(f"                 (the password is kept in {paths.password_file})")
            say(f"Incident pages:  http://127.0.0.1:{port}/siaga/   (in the UI's menu: Browse > Siaga incidents)")
            say(f"Slack messages:  printed below as they arrive at the fake Slack ({fake.base_url})")
            say(f"Unpaused: {', '.join(dags)}.")
            say("The scenario plays now: the first alert within about 2 minutes (a jam on Jalan Ahmad Yani, #dishub-siaga),")
            say("a flood in Desa Sangsit (#bpbd-siaga) a few minutes later, and the jam resolves itself within about 10 minutes.")
            say("Ctrl-C stops everything.")
            say()
            while not stop.wait(2.0):
                if proc.poll() is not None:
                    raise LiveError(f"Airflow exited ({proc.returncode}); see {paths.log}")
                known |= set(descendants(proc.pid))
        except (Interrupted, KeyboardInterrupt):
            pass
        except LiveError as exc:
            print(f"siaga live: {exc}", file=sys.stderr)
            return 1
        finally:
            say("\nStopping Airflow and the fake Slack ...")
            stop_airflow(proc, known)
            for kind, at in sorted(firsts.items(), key=lambda kv: kv[1]):
                say(f"  first {kind} {int(at // 60)} min {int(at % 60)} s after the DAGs were unpaused")
            say(f"Stopped. {len(fake.messages())} Slack message(s) this session; Siaga's database: {paths.db}")
    return 0


def _api_health(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as resp:
        return resp.status == 200


def _all_dags(port: int, token: str) -> list[str] | None:
    """The Siaga DAGs once every DAG file in dags/ has been parsed."""
    expected = {p.stem for p in (settings.REPO_ROOT / "dags").glob(f"{DAG_PREFIX}*.py")}
    found = siaga_dags(port, token)
    return found if expected <= set(found) else None
