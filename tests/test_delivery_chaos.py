"""Delivery under faults, with deliver runs as separate OS processes (tests/support/delivery_chaos.py):
a worker SIGKILLed after Slack stored its post, the database connection dropped at commit, a late
run beside an on-time one, Slack slower than the client's timeout plus backoff, and a random mix
of 429s, 5xx (some after Slack stored the post), hangs and resets under two concurrent workers.
On SQLite and PostgreSQL, every outbox row must reach Slack exactly once, in its incident's
thread, and be recorded as sent with the ts Slack gave it. The same scenarios run at volume in
benchmarks/delivery_chaos.py."""
from __future__ import annotations

import pytest

from siaga_dev.fakeslack import FakeSlack
from support import delivery_chaos as chaos


@pytest.fixture
def fake():
    with FakeSlack(token=chaos.TOKEN) as server:
        yield server


def assert_exactly_once(result: chaos.Tally, expected: int) -> None:
    assert result.problems == []
    assert (result.expected, result.received, result.duplicated, result.lost) == (expected, expected, 0, 0)
    assert result.outside_thread == 0 and result.misrecorded == 0


def test_a_worker_killed_after_slack_stored_its_post(db_url, fake):
    result = chaos.sigkill_after_store(fake, db_url, incidents=3, updates=1, kills=2)
    assert_exactly_once(result, 6)


def test_the_database_connection_dropped_at_commit(db_url, fake):
    result = chaos.dropped_at_commit(fake, db_url, incidents=3, updates=1, drops=2)
    assert_exactly_once(result, 6)


def test_a_late_run_beside_an_on_time_one(db_url, fake):
    result = chaos.late_beside_on_time(fake, db_url, incidents=8, updates=1)
    assert_exactly_once(result, 16)


def test_slack_slower_than_timeout_plus_backoff(db_url, fake):
    result = chaos.slower_than_timeout(fake, db_url, incidents=2, updates=1)
    assert_exactly_once(result, 4)
    # every first post timed out and was found later, not posted again
    assert fake.requests_count("chat.postMessage") == 4


def test_a_random_fault_mix_under_two_concurrent_workers(db_url, fake):
    result = chaos.fault_mix(fake, db_url, incidents=10, updates=1, seed=3)
    assert_exactly_once(result, 20)
    outcomes = {r.outcome for r in fake.requests("chat.postMessage")}
    assert {"ratelimit", "server_error", "stored_server_error"} <= outcomes  # the mix did misbehave
