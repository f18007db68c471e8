"""The jobs the DAGs run (ingest, detect incidents, deliver, digest, purge), each one call with
plain arguments and a plain-dict result.

DAG files stay a few lines per task: they only turn Airflow's context into a time and call these.

Each job imports the stages it runs when it runs: every DAG file imports this module, so a
top-level import of detection (pandas, scipy, the matchers' code) would be paid again by every
ingest and deliver task process and by the DAG processor, every run.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from siaga import settings, store

log = logging.getLogger(__name__)

# Every module the jobs below import when they run. A Celery worker imports them once before it
# forks its task processes (`siaga.celery_config`), so a task does not pay them on every run;
# tests/test_run_overhead.py checks that the list matches the jobs' imports.
STAGE_MODULES = (
    "siaga.delivery", "siaga.detect", "siaga.detection_config", "siaga.digest", "siaga.hazard_lists",
    "siaga.ingest", "siaga.retention", "siaga.routing", "siaga.slackclient", "siaga.sources", "siaga.tagging",
)

# The Airflow assets that chain the DAGs: ingest updates POSTS (starting detect, which sends its
# own alerts); digest updates OUTBOX (starting deliver).
POSTS_URI = "siaga://posts"
OUTBOX_URI = "siaga://outbox"


def run_time(context: Any) -> datetime:
    """The moment a DAG run stands for: its interval end, else its logical date, else (a run
    triggered by an asset or by hand has neither) the time it runs.

    Not its `run_after` for such a run: Airflow gives an asset-triggered run the time its queue
    entry was made (one entry per asset, made at the asset's first event; the newest entry when
    the DAG waits on several assets), and while the DAG is at `max_active_runs` later events for
    the same asset only join that queue entry, which the run then deletes. A detect run deferred
    behind another one stood for a moment before the posts that the later events announced,
    so it left them out, and with no run left to come for them they waited for the five-minute
    schedule (the push stack test: a pushed fire alerted 4 minutes late). Its task runs after
    every event it stands for, so the time it runs covers all their posts."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if value is not None:
            return _plain(value)
    return max(_plain(context["dag_run"].run_after), store.utcnow())


def _plain(value: datetime) -> datetime:
    """A standard-library UTC datetime: Airflow hands out pendulum DateTimes, whose arithmetic
    with timedeltas differs from datetime's."""
    return datetime.fromtimestamp(value.timestamp(), tz=timezone.utc)


def source_names(only: Iterable[str] | None = None) -> list[str]:
    """The enabled sources to poll: all of them, or those of `only` still enabled (an ingest run
    a push started polls only the sources that announced something)."""
    from siaga.sources import sources_in_force

    wanted = None if only is None else set(only)
    store.migrate()
    with store.session_scope() as session:  # a refused edit leaves the last good sources.yaml in force
        sources = sources_in_force(session)
    return [s.name for s in sources if wanted is None or s.name in wanted]


def push_streams() -> list[Any]:
    """The streams the enabled sources announce new posts on (`sources.push`)."""
    from siaga.sources import load_sources, push_streams as streams_of

    return streams_of(load_sources())


def ingest(source_name: str, now: datetime, announced: Iterable[Any] = ()) -> dict[str, Any]:
    """Poll one source and store what it found; `announced` (`push.Announced`, from the push
    events that woke this run) are posts its streams named, read by id where the source can."""
    from siaga import ingest as ingest_stage
    from siaga.sources import sources_in_force

    store.migrate()
    with store.session_scope() as session:
        source = next(s for s in sources_in_force(session) if s.name == source_name)
    return asdict(ingest_stage.ingest(source, polled_at(source, now), announced=list(announced)))


def polled_at(source: Any, now: datetime) -> datetime:
    """The time a source is polled at: the run's time for a recording played on it (replay:
    the demo and tests drive its clock through the runs' times), else the real time when that is
    later. A run that started late (queued behind a slow one: max_active_runs=1) stands for its
    interval's end, minutes back; the posts published in between were "in the future" of it,
    quarantined as forged and, the cursor moved past them, never stored."""
    if getattr(source, "plays_run_time", False):
        return now
    return max(now, store.utcnow())


def detect_incidents(now: datetime) -> dict[str, Any]:
    """Tag new posts, find spikes and open, update or resolve incidents with their outbox
    messages (`detect.run`), under the configured routing and detection settings."""
    from siaga import tagging

    store.migrate()
    # The place matcher before detection's libraries (pandas, scipy, datasketch): on a cold
    # matcher cache, building it frees tens of MB of intermediates that those imports then
    # reuse, instead of stacking on top of them (issue 14: a detect task's peak RSS). On a warm
    # cache it is only loaded, at the same cost either way. `detect.run` gets this same object.
    tagging.default_geotagger()
    from siaga import detect, detection_config
    from siaga.routing import Router

    with store.session_scope() as session:  # a refused file leaves its last good version in force
        router = Router.in_force(session, settings.config_dir() / "routing.yaml")
        detect_settings = detection_config.in_force(session)
    return asdict(detect.run(now, router, settings=detect_settings))


# How long a detect task may spend sending what it wrote before leaving the rest to the deliver
# DAG: at Slack's one message per second per channel, a few dozen alerts. Detect runs one at a
# time, so a long send would hold back the next run's detection.
DELIVER_AFTER_DETECT_BUDGET = 30.0


def detect_and_deliver(now: datetime) -> dict[str, Any]:
    """`detect_incidents`, then, when it changed incidents, send the outbox at once from the same
    task process (`deliver` with a time budget).

    Why here and not only in the deliver DAG: the outbox is the durable hand-over either way,
    but a separate deliver run costs the path to Slack a scheduler hop and a task start for
    every alert (6 s at p50 on the benchmark machine before this change, benchmarks/README.md). The deliver
    DAG still sends whatever is left (the budget ran out, Slack failed, quiet hours ended) on
    its schedule; claims make the two never post a row twice. A failure to deliver here is
    logged and does not fail detection, whose incidents and outbox rows are already committed."""
    report = detect_incidents(now)
    if not report["changes"]:
        return report
    try:
        report["delivered"] = deliver(now, budget=DELIVER_AFTER_DETECT_BUDGET)
    except Exception as exc:  # the deliver DAG retries these rows; detection itself succeeded
        log.warning("detect: delivery left to the deliver DAG: %s: %s", type(exc).__name__, exc)
        report["delivered"] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


def tag_posts(now: datetime, partition: int = 0, partitions: int = 1) -> dict[str, Any]:
    """Tag one partition of the untagged posts (ids % partitions == partition) with the lists in
    force: what mapped tasks run side by side on a backlog too large for one process, before
    `detect_incidents` (which tags whatever is left, so without them nothing changes)."""
    from siaga import hazard_lists, tagging

    if not 0 <= partition < partitions:
        raise ValueError(f"partition {partition} is not one of 0..{partitions - 1}")
    store.migrate()
    with store.session_scope() as session:
        hazard_set = hazard_lists.in_force(session)
    tagged = tagging.tag_pending(tagging.Tagger(hazard_set), now, partition=(partition, partitions))
    return {"tagged": tagged, "partition": partition, "partitions": partitions}


def deliver(now: datetime, budget: float | None = None) -> dict[str, Any]:
    from siaga import delivery
    from siaga.slackclient import make_client

    store.migrate()
    return asdict(delivery.deliver(make_client(), now, budget=budget))


def purge(now: datetime) -> dict[str, Any]:
    """Delete raw posts older than the configured retention, keeping alerts' evidence."""
    from siaga import retention

    store.migrate()
    with store.session_scope() as session:
        keep_for = retention.retention_in_force(session)
    with store.session_scope() as session:
        purged = retention.purge_old_posts(session, now - keep_for)
    return {"purged": purged, "older_than": (now - keep_for).isoformat()}


def digest(now: datetime, period: timedelta = timedelta(days=1)) -> dict[str, Any]:
    """Queue the managers' digest of the `period` ending at the last 07:00 WITA at or before
    `now` (`digest.day_end`: a run triggered by hand covers the same day as the scheduled one);
    the deliver DAG sends it."""
    from siaga import digest as digest_stage
    from siaga.routing import Router

    store.migrate()
    end = digest_stage.day_end(now)
    with store.session_scope() as session:
        router = Router.in_force(session, settings.config_dir() / "routing.yaml")
        written = digest_stage.enqueue_digest(session, router, end - period, end, now)
    return {"written": written, "period_start": (end - period).isoformat(), "period_end": end.isoformat()}
