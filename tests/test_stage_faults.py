"""Crash consistency of the pipeline's stages, by fault injection (tests/support/stage_faults.py).

Every Airflow task is retried after a failure, so each stage must be atomic and idempotent: a
failure at any database statement of ingest, detect (with the delivery it does itself),
deliver, digest or retention, followed by a rerun of that stage, must leave exactly the state a
fault-free run leaves: no post lost, no cursor past unstored posts, bad lines quarantined once,
no alert, incident event, outbox row or Slack message twice, no incident half-updated. The
fake Slack must hold each outbox row's message exactly once, in its incident's thread.

By default each stage's first, last and after-last statement (a task killed after it committed
everything, before it reported success) plus a seeded sample of the rest; SIAGA_FAULT_SWEEP=all
fails every statement of every stage (about 270 runs each way; killing a child at every one
takes about ten minutes).
"""
from __future__ import annotations

import logging
import os
import random

import pytest

from siaga import outbox
from siaga_dev.fakeslack import FakeSlack
from support import stage_faults as sf
from support.delivery_chaos import tally

TOKEN = "xoxb-stage-faults"
SAMPLE = {"sqlite": 45, "postgresql": 30}
KILLS = {"sqlite": 5, "postgresql": 4}  # each starts a Python process: seconds, not milliseconds


@pytest.fixture
def scenario(db_url, tmp_path, monkeypatch):
    """The environment the jobs read: `db_url`, a config/ whose demo feed holds bad lines, the
    identity replay clock, a wall clock that moves on after each fault, and a fake Slack."""
    monkeypatch.setenv("SIAGA_DB_URL", db_url)
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(sf.write_config(tmp_path)))
    monkeypatch.setenv("SIAGA_REPLAY_CLOCK", "identity")
    monkeypatch.setenv("SIAGA_SLACK_TOKEN", TOKEN)
    clock = sf.LaterWallClock()
    monkeypatch.setattr(outbox, "wall_clock", clock)
    logging.disable(logging.WARNING)  # hundreds of runs' quarantine and delivery warnings
    try:
        yield db_url, clock
    finally:
        logging.disable(logging.NOTSET)


def run(db_url, clock, monkeypatch, fault=None, kill=False):
    """One run of the schedule from an empty database against a new fake Slack."""
    sf.clear(db_url)
    with FakeSlack(token=TOKEN) as fake:
        monkeypatch.setenv("SIAGA_SLACK_BASE_URL", fake.base_url)
        counts = sf.run_schedule(db_url, sf.schedule(), clock, fault, kill=kill)
        messages = fake.messages()
    return counts, sf.snapshot(db_url), messages


def fault_free(db_url, clock, monkeypatch):
    counts, expected, messages = run(db_url, clock, monkeypatch)
    # the scenario exercises every concept compared
    for table in ("posts", "quarantine", "incidents", "incident_events", "alerts", "outbox"):
        assert expected[table], table
    assert sum(expected["quarantine"].values()) == len(sf.MALFORMED)
    assert tally(messages, db_url).problems == [] and messages
    return counts, expected, messages


def check(db_url, clock, monkeypatch, points, counts, expected, expected_messages, kill=False) -> list[str]:
    """Run the schedule once per fault point; what differs from the fault-free run."""
    stages = sf.schedule()
    failures = []
    for stage, n in points:
        _, got, messages = run(db_url, clock, monkeypatch, fault=(stage, n), kill=kill)
        where = f"{stages[stage].name} {'killed' if kill else 'failed'} at statement {n} of {counts[stage]}"
        problems = sf.differences(expected, got) + tally(messages, db_url).problems
        if sf.slack_state(messages) != sf.slack_state(expected_messages):
            problems.append(f"Slack got {sf.slack_state(messages)}, fault-free {sf.slack_state(expected_messages)}")
        failures += [f"{where}: {p}" for p in problems]
    return failures


def test_a_fault_at_any_statement_of_a_stage_then_its_retry_gives_the_fault_free_state(scenario, monkeypatch, request):
    db_url, clock = scenario
    counts, expected, expected_messages = fault_free(db_url, clock, monkeypatch)
    backend = request.node.callspec.params["db_url"]
    sample = None if os.environ.get("SIAGA_FAULT_SWEEP") == "all" else SAMPLE[backend]
    failures = check(db_url, clock, monkeypatch, sf.fault_points(counts, sample), counts, expected, expected_messages)
    assert not failures, "\n".join(failures)


def test_a_stage_killed_at_a_random_statement_then_retried_gives_the_fault_free_state(scenario, monkeypatch, request):
    db_url, clock = scenario
    counts, expected, expected_messages = fault_free(db_url, clock, monkeypatch)
    backend = request.node.callspec.params["db_url"]
    every = [(i, n) for i, count in enumerate(counts) for n in range(1, count + 1)]
    if os.environ.get("SIAGA_FAULT_SWEEP") != "all":
        every = sorted(random.Random(5).sample(every, KILLS[backend]))
    points = every
    failures = check(db_url, clock, monkeypatch, points, counts, expected, expected_messages, kill=True)
    assert not failures, "\n".join(failures)
