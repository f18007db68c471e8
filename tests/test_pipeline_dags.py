"""End to end through the real DAGs with dag.test(): the demo scenario is replayed, the flood
alert reaches the BPBD channel and the jam alert the Dishub channel, once each; replaying the
same window again sends nothing new."""
from __future__ import annotations

import pytest

from siaga_dev import demo

pytestmark = pytest.mark.airflow
TOKEN = "xoxb-e2e"


@pytest.fixture
def pipeline_env(db_url, airflow_db, replay_to_fake_slack):
    return replay_to_fake_slack(db_url, TOKEN)


def top_level(fake, channel):
    return [m for m in fake.messages(channel) if not m.get("thread_ts") or m.get("thread_ts") == m["ts"]]


def test_demo_scenario_alerts_each_agency_once(pipeline_env):
    fake = pipeline_env
    times = demo.scenario_times(3)
    demo.run_dags(times)

    bpbd = top_level(fake, "#bpbd-siaga")
    dishub = top_level(fake, "#dishub-siaga")
    assert len(bpbd) == 1 and "Banjir" in bpbd[0]["text"] and "Sangsit" in bpbd[0]["text"]
    assert len(dishub) == 1 and "macet" in dishub[0]["text"].lower() and "Ahmad Yani" in dishub[0]["text"]
    # updates to the flood went into its thread, not as new pings
    for reply in fake.messages("#bpbd-siaga"):
        if reply not in bpbd:
            assert reply["thread_ts"] == bpbd[0]["ts"]

    before = fake.requests_count("chat.postMessage")
    demo.run_dags(times)  # the same windows again: re-runs add nothing
    assert fake.requests_count("chat.postMessage") == before
