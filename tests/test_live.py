"""`make live` as a newcomer runs it: the command behind it (`siaga live`) in the background, on
free ports and a data folder of its own; the first alert reaches the fake Slack, the incident
page answers behind Airflow's login (401 without it, the incident with the printed password),
and Ctrl-C (SIGINT) stops it, Airflow's processes and their task processes included.

Slow (Airflow standalone starts in about 30 s, the first alert follows within minutes): it is
the one test of the whole live path, from a fresh data folder to a page."""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from siaga_dev.airflow_stack import descendants, free_port

REPO = Path(__file__).resolve().parents[1]


def _reader(stream, lines: "queue.Queue[str]") -> None:
    for line in stream:
        lines.put(line)
    lines.put("")  # end of output


def _wait_line(lines: "queue.Queue[str]", pattern: str, seen: list[str], timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line == "":
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r}; output so far:\n{''.join(seen)}")


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _token(port: int, password: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/auth/token", method="POST",
                                     data=json.dumps({"username": "admin", "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.load(resp)["access_token"]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


@pytest.mark.slow
@pytest.mark.airflow
def test_make_live_alerts_shows_the_incident_page_and_stops_on_ctrl_c(tmp_path):
    port, slack_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SIAGA_"))}
    env.update({"SIAGA_DATA_DIR": str(tmp_path), "SIAGA_GAZETTEER": "buleleng", "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen([sys.executable, "-m", "siaga.cli", "live", "--port", str(port), "--slack-port", str(slack_port)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    tree: set[int] = set()
    try:
        login = _wait_line(lines, r"login: admin / (\S+)", seen, timeout=300)
        _wait_line(lines, r"Incident pages: +" + re.escape(f"http://127.0.0.1:{port}/siaga/"), seen, timeout=10)
        _wait_line(lines, r"Slack messages: ", seen, timeout=10)
        _wait_line(lines, r"#(dishub|bpbd)-siaga new message", seen, timeout=420)
        alert = _wait_line(lines, r"Peringatan baru .*[Ii]nsiden #(\d+)", seen, timeout=10)
        tree = {proc.pid, *descendants(proc.pid)}

        status, _ = _get(f"http://127.0.0.1:{port}/siaga/incidents/{alert.group(1)}")
        assert status == 401  # behind Airflow's login
        token = _token(port, login.group(1))
        status, page = _get(f"http://127.0.0.1:{port}/siaga/incidents/{alert.group(1)}", token)
        assert status == 200 and ("Ahmad Yani" in page or "Sangsit" in page)
        status, listing = _get(f"http://127.0.0.1:{port}/siaga/", token)
        assert status == 200 and f"/incidents/{alert.group(1)}" in listing
    finally:
        tree |= {proc.pid, *descendants(proc.pid)}
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    rest = "".join(seen)
    while not lines.empty():
        rest += lines.get()
    assert proc.returncode == 0, rest
    assert "Stopped." in rest
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = sorted(pid for pid in tree if _alive(pid))
    assert not left, f"processes still running after Ctrl-C: {left}"


def test_the_live_config_is_valid_and_plays_the_same_windows_faster(tmp_path):
    """The copy `siaga live` writes passes `siaga check`, plays the scenario on the live clock and
    shortens every duration by the speed, with no quiet hours."""
    import yaml

    from siaga import config_check, detection_config, settings
    from siaga_dev import live

    scenario = tmp_path / "scenario.jsonl"
    scenario.write_text("", encoding="utf-8")
    config = live.write_live_config(tmp_path / "config", scenario, speed=30)
    report = config_check.check_folder(config)
    assert report.ok, [str(e) for e in report.errors]
    (source,) = yaml.safe_load((config / "sources.yaml").read_text())["sources"]
    assert source["clock"] == {"mode": "live", "speed": 30} and source["path"] == str(scenario)
    for name, minutes in (("earthquake", 15), ("traffic_jam", 30), ("flood", 60), ("drought", 1440)):
        window = yaml.safe_load((config / "hazards" / f"{name}.yaml").read_text())["detection"]["window_minutes"]
        original = yaml.safe_load((settings.config_dir() / "hazards" / f"{name}.yaml").read_text())["detection"]["window_minutes"]
        assert original == minutes and window == max(live.MIN_WINDOW_MINUTES, -(-minutes // 30))
    drought = yaml.safe_load((config / "hazards" / "drought.yaml").read_text())["detection"]
    assert drought["incident_gap_minutes"] == 1440 // 30  # a hazard's own incident gap, likewise
    detection = detection_config.load(config / "detection.yaml")
    assert detection.quiet_period.total_seconds() == live.LIVE_QUIET_MINUTES * 60
    assert detection.reopen_window.total_seconds() == 12 * 60 and detection.incident_gap.total_seconds() == 5 * 60
    routing = yaml.safe_load((config / "routing.yaml").read_text())
    assert routing["receivers"] and not any("quiet_hours" in r for r in routing["receivers"])
