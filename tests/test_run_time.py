"""The moment a DAG run stands for (`pipeline.run_time`): its interval end or logical date
when it has one (a scheduled run, a replay driven through `dag.test`), else the time it runs,
never the time of the first asset event queued for it. A detect run deferred behind another
(max_active_runs=1) stood for that first event's time and left out the posts that the events
queued after it announced; they waited for the five-minute schedule."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pendulum
from hypothesis import given, strategies as st

from siaga import pipeline, store

TICK = datetime(2026, 1, 15, 0, 5, tzinfo=timezone.utc)


def test_a_scheduled_run_stands_for_its_interval_end_or_logical_date():
    run = SimpleNamespace(run_after=pendulum.instance(TICK + timedelta(minutes=3)))
    assert pipeline.run_time({"data_interval_end": pendulum.instance(TICK), "logical_date": pendulum.instance(TICK - timedelta(minutes=5)),
                              "dag_run": run}) == TICK
    assert pipeline.run_time({"data_interval_end": None, "logical_date": pendulum.instance(TICK), "dag_run": run}) == TICK


@given(queued_for=st.floats(min_value=0, max_value=3_600))
def test_an_asset_triggered_run_stands_for_the_time_it_runs(queued_for):
    """However long ago its first event was queued: posts stored since then are not in its
    future."""
    before = store.utcnow()
    run = SimpleNamespace(run_after=pendulum.instance(before - timedelta(seconds=queued_for)))
    stands_for = pipeline.run_time({"data_interval_end": None, "logical_date": None, "dag_run": run})
    assert before <= stands_for <= store.utcnow()
    assert type(stands_for) is datetime and stands_for.tzinfo is not None


def test_a_run_whose_time_is_ahead_of_this_clock_keeps_its_time():
    ahead = store.utcnow() + timedelta(minutes=2)  # another machine's clock
    run = SimpleNamespace(run_after=pendulum.instance(ahead))
    assert pipeline.run_time({"dag_run": run}) == ahead
