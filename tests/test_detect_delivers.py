"""The detect task sends the alerts it wrote itself (`pipeline.detect_and_deliver`), so an alert
needs no separate deliver run; what it cannot send stays in the outbox for the deliver DAG, and
a failure to send never fails detection. The deliver run's time budget leaves the rest due."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from siaga import delivery, pipeline, store
from siaga.slackclient import make_client
from siaga.store import OutboxMessage
from siaga_dev import demo

TOKEN = "xoxb-detect-delivers"


@pytest.fixture
def scenario_env(sqlite_url, replay_to_fake_slack):
    return replay_to_fake_slack(sqlite_url, TOKEN)


def states(url: str) -> list[str]:
    with store.session_scope(url) as session:
        return list(session.scalars(select(OutboxMessage.state).order_by(OutboxMessage.id)))


def replay(run_detect) -> list[dict]:
    """The demo scenario through the jobs the DAG tasks run, without a deliver run."""
    reports = []
    for when in demo.scenario_times(3):
        for name in pipeline.source_names():
            pipeline.ingest(name, when)
        reports.append(run_detect(when))
    return reports


def test_detect_sends_what_it_wrote_without_a_deliver_run(scenario_env, sqlite_url):
    fake = scenario_env
    reports = replay(pipeline.detect_and_deliver)

    assert states(sqlite_url) and set(states(sqlite_url)) == {"sent"}
    assert sum(r["delivered"]["sent"] for r in reports if "delivered" in r) == len(states(sqlite_url))
    assert any("Sangsit" in m["text"] for m in fake.messages("#bpbd-siaga"))
    # runs that changed no incident do not touch Slack
    assert all("delivered" not in r for r in reports if not r["changes"])


def test_a_failed_send_is_left_to_the_deliver_dag_and_detection_still_succeeds(scenario_env, sqlite_url, monkeypatch):
    fake = scenario_env
    monkeypatch.delenv("SIAGA_SLACK_TOKEN")
    reports = replay(pipeline.detect_and_deliver)

    assert any("no Slack token" in r["delivered"]["error"] for r in reports if "delivered" in r)
    assert states(sqlite_url) and set(states(sqlite_url)) == {"pending"}
    assert fake.messages("#bpbd-siaga") == []

    monkeypatch.setenv("SIAGA_SLACK_TOKEN", TOKEN)
    report = pipeline.deliver(demo.scenario_times(3)[-1])  # what the deliver DAG runs
    assert report["sent"] == len(states(sqlite_url)) and set(states(sqlite_url)) == {"sent"}


def test_a_spent_budget_takes_no_further_row(scenario_env, sqlite_url):
    fake = scenario_env
    replay(pipeline.detect_incidents)  # the outbox written, nothing sent
    pending = len(states(sqlite_url))
    assert pending

    report = delivery.deliver(make_client(), demo.scenario_times(3)[-1], sqlite_url, budget=0)
    assert (report.sent, report.left) == (0, pending)
    assert set(states(sqlite_url)) == {"pending"} and fake.messages("#bpbd-siaga") == []
