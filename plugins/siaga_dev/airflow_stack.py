"""A real Airflow 3 deployment on 127.0.0.1 for tests and benchmarks: PostgreSQL metadata, Redis
broker, scheduler, dag-processor, api-server (which hosts the execution API Celery workers talk
to) and `airflow celery worker` processes, all as plain child processes.

Docker is not available on these machines, so this is the production shape (docker-compose.yml)
minus the containers. Every service runs in its own session (process group) and teardown also
finds the task processes Airflow puts in groups of their own (through /proc), so nothing
outlives the stack; logs go to files in the stack's directory, and `dump_logs()` tails them for
a failing test. Used by tests/test_celery_stack.py and benchmarks/bench_latency.py.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from siaga.settings import REPO_ROOT as REPO

PG_ADMIN_DSN = os.environ.get("SIAGA_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
PG_HOST_URL = os.environ.get("SIAGA_TEST_PG_HOST_URL", "postgres@127.0.0.1:5432")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
DAG_IDS = ("siaga_ingest", "siaga_detect", "siaga_deliver")
# As docker-compose.yml's airflow-worker: load Airflow's plugins (Siaga's pages) once when the
# worker starts, not in every task process it forks (about 5 s of CPU per task otherwise).
WORKER_ENV = {"AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False"}


# --- services -------------------------------------------------------------------------------------


def services_unreachable() -> str | None:
    """Why PostgreSQL or Redis on 127.0.0.1 cannot be used, or None when both answer."""
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN_DSN, connect_timeout=3).close()
    except Exception as exc:  # any failure to connect means: no usable server here
        return f"PostgreSQL ({PG_ADMIN_DSN}): {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    try:
        import redis

        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"Redis ({REDIS_HOST}:{REDIS_PORT}): {type(exc).__name__}: {exc}"
    return None


def create_database(prefix: str) -> str:
    """A fresh PostgreSQL database; returns its name."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(PG_ADMIN_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def drop_database(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def query(database: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one read-only query against a database on the test server."""
    import psycopg2

    conn = psycopg2.connect(pg_url(database, "postgresql"))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def pg_url(database: str, driver: str = "postgresql+psycopg2") -> str:
    return f"{driver}://{PG_HOST_URL}/{database}"


def flush_redis(db: int) -> None:
    import redis

    redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).flushdb()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- scenario and config --------------------------------------------------------------------------


def config_copy(dest: Path, sources: list[dict[str, Any]]) -> Path:
    """A copy of config/ at `dest` whose only sources are `sources`, without quiet hours
    (`without_quiet_hours`): what the tests and benchmarks that run the DAGs deploy."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(REPO / "config", dest)
    (dest / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False), encoding="utf-8")
    return without_quiet_hours(dest)


def without_quiet_hours(config: Path) -> Path:
    """The config folder's routing.yaml without the receivers' quiet hours: a run must not depend
    on the time of day it happens at."""
    path = config / "routing.yaml"
    routing = yaml.safe_load(path.read_text(encoding="utf-8"))
    for receiver in routing.get("receivers", []):
        receiver.pop("quiet_hours", None)
    path.write_text(yaml.safe_dump(routing, sort_keys=False), encoding="utf-8")
    return config


def scenario_slice(dest: Path, start: str, end: str, source: Path = REPO / "scenarios" / "demo.jsonl") -> Path:
    """The posts of `source` created in [start, end) (ISO times compared as written in the file,
    which uses one offset throughout), kept in order: a shorter replay of the same events."""
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in lines if start <= json.loads(line)["created_at"] < end]
    dest.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return dest


# --- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class AirflowStack:
    """One Airflow deployment. `start()` migrates a fresh metadata database and starts the
    services; `start_worker()` adds Celery workers; `stop()` tears everything down and drops the
    database. Siaga's own settings for the workers go in `task_env`."""

    root: Path
    redis_db: int
    task_env: dict[str, str] = field(default_factory=dict)
    worker_concurrency: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)  # services the test killed on purpose
    database: str | None = None
    api_port: int = 0

    # -- environment --
    def env(self, **more: str) -> dict[str, str]:
        assert self.database, "start() first"
        home = self.root / "airflow"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SIAGA_"))}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url(self.database),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + pg_url(self.database, "postgresql"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            # as docker-compose.yml: workers import Siaga's stages once (siaga.celery_config)
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "siaga.celery_config.CELERY_CONFIG",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # a worker killed mid-task stops heartbeating: notice it in 30 s, not 5 min
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.task_env)
        env.update(self.extra_env)
        env.update(more)
        return env

    _jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))

    def airflow(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        """One `airflow ...` CLI command against this deployment."""
        result = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env(), capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def spawn(self, name: str, args: list[str], **env: str) -> Proc:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log, "ab")
        popen = subprocess.Popen([sys.executable, "-m", "airflow", *args], env=self.env(**env), stdout=fh,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                 cwd=self.root)
        fh.close()
        proc = Proc(name, popen, log)
        self.procs[name] = proc
        return proc

    # -- lifecycle --
    def start(self) -> "AirflowStack":
        self.root.mkdir(parents=True, exist_ok=True)
        self.api_port = free_port()
        self.database = create_database("siaga_af")
        flush_redis(self.redis_db)
        self.airflow("db", "migrate", timeout=300)
        self.spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"])
        self.spawn("dag-processor", ["dag-processor"])
        self.spawn("scheduler", ["scheduler"])
        self.spawn("triggerer", ["triggerer"])  # asset watchers: push sources (siaga_push)
        self.wait_api()
        return self

    def start_worker(self, name: str, **env: str) -> Proc:
        """An `airflow celery worker` with its own Celery hostname and log-server port."""
        return self.spawn(name, ["celery", "worker", "--celery-hostname", f"{name}@%h", "--without-mingle",
                                 "--without-gossip", "--concurrency", str(self.worker_concurrency)],
                          AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
                          **{**WORKER_ENV, **env})

    def signal(self, name: str, sig: int) -> None:
        """Send `sig` to a service and every process under it. Airflow's task supervisor puts each
        task process in a process group of its own, so signalling the service's group alone
        would leave a running task behind: a SIGKILL here is a lost machine, tasks and all."""
        leader = self.procs[name].popen.pid
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self.killed.add(name)
        for pid in [leader, *descendants(leader)]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop_proc(self, name: str, grace: float = 20) -> None:
        """SIGTERM the process group (Celery's warm shutdown), then SIGKILL what is left."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        tree = descendants(proc.popen.pid)  # task processes sit in groups of their own
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.popen.wait(wait)
                # the leader is gone; sweep any children left in its group
                os.killpg(proc.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
            break
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        for name in [n for n in self.procs if n not in ("api-server", "scheduler", "dag-processor")]:
            self.stop_proc(name)
        for name in ("scheduler", "dag-processor", "api-server"):
            self.stop_proc(name, grace=10)
        if self.database:
            try:
                drop_database(self.database)
            except Exception as exc:  # teardown must go on; say why the database stays
                print(f"airflow_stack: could not drop {self.database}: {exc}", file=sys.stderr)
        try:
            flush_redis(self.redis_db)
        except Exception:
            pass

    # -- waiting and inspection --
    def wait_api(self, timeout: float = 120) -> None:
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        wait_for(lambda: _http_ok(url), timeout, "api-server health", self)

    def dump_logs(self, lines: int = 60) -> str:
        """The tail of every service log and of the task logs, for a failing test."""
        out = []
        for log in sorted((self.root / "logs").glob("*.log")):
            out.append(f"===== {log.name} (last {lines} lines) =====")
            out.extend(log.read_text(errors="replace").splitlines()[-lines:])
        task_logs = sorted((self.root / "airflow" / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
        for log in task_logs[-6:]:
            out.append(f"===== task log {log.relative_to(self.root)} (last 30 lines) =====")
            out.extend(log.read_text(errors="replace").splitlines()[-30:])
        return "\n".join(out)

    def check_alive(self) -> None:
        dead = [p.name for p in self.procs.values() if not p.alive() and p.name not in self.killed]
        if dead:
            raise RuntimeError(f"service(s) exited: {dead}\n{self.dump_logs()}")

    def task_states(self, database_sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query against the Airflow metadata database (read-only checks)."""
        return query(self.database, database_sql)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200
    except Exception:
        return False


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, stack: AirflowStack | None = None,
             interval: float = 1.0) -> Any:
    """Poll until `predicate()` is truthy; on timeout raise with the stack's logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if stack is not None:
            stack.check_alive()
        if time.monotonic() > deadline:
            logs = stack.dump_logs() if stack is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(interval)
