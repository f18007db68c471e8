"""Airflow's side of push sources (`siaga.sources.push`): the trigger that listens to a source's
stream in the triggerer, and the ingest DAG's schedule built from it.

Each source with `push: true` becomes an asset, `siaga://push/<source>`, watched by one
`SourcePushTrigger` per stream (Airflow's event-driven scheduling: `AssetWatcher`). The ingest
DAG runs on its one-minute timetable *or* when such an asset is updated
(`AssetOrTimeSchedule`), and a run started by a push polls only the sources that announced
something (`pushed_sources`).

This file lives beside the plugin file, not in the core package: the trigger class must subclass
Airflow's `BaseEventTrigger` when it is defined, and the core imports Airflow only inside the
few functions that need it. The triggerer finds the class by its path, `siaga_push.SourcePushTrigger`
(Airflow puts the plugins folder on every component's import path); plugins/.airflowignore keeps
the plugins manager from loading this file as a plugin.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, AsyncIterator

from airflow.sdk import Asset, AssetAny, AssetOrTimeSchedule, AssetWatcher, DeltaTriggerTimetable
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from siaga import pipeline
from siaga.sources import push

log = logging.getLogger(__name__)

URI_PREFIX = "siaga://push/"


class SourcePushTrigger(BaseEventTrigger):
    """Fires each time `url` announces a new post of `source` (announcements close together are
    one event: `push.GAP`). Runs forever; a failing stream is reopened with backoff inside
    `push.listen`, so one bad stream never stops the others or the triggerer."""

    def __init__(self, source: str, url: str, conn_id: str | None = None, protocol: str = "mastodon",
                 terms: list[str] | tuple[str, ...] = (), language: str | None = None, every: float | None = None) -> None:
        super().__init__()
        self.stream = push.PushStream(source, url, conn_id, protocol, tuple(terms), language, every)

    @classmethod
    def of(cls, stream: push.PushStream) -> "SourcePushTrigger":
        return cls(stream.source, stream.url, stream.conn_id, stream.protocol, stream.terms, stream.language, stream.every)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        s = self.stream
        kwargs: dict[str, Any] = {"source": s.source, "url": s.url, "conn_id": s.conn_id, "protocol": s.protocol,
                                  "terms": list(s.terms), "language": s.language}
        if s.every is not None:  # only a watched feed's: a stream's trigger stays as deployed triggers have it
            kwargs["every"] = s.every
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        stream = self.stream
        async for wake_up in push.wake_ups(stream):
            yield TriggerEvent(wake_up.payload(stream))


def push_assets() -> list[Asset]:
    """One asset per source that pushes, watched on each of its streams. A sources file that
    does not load gives none: the DAG keeps its timetable and the ingest task reports the
    problem (a DAG that fails to parse would stop polling altogether)."""
    try:
        streams = pipeline.push_streams()
    except Exception as exc:  # noqa: BLE001 - any config error is the ingest task's to report
        log.warning("push: no push sources this parse, the sources file did not load: %s", exc)
        return []
    by_source: dict[str, list[push.PushStream]] = {}
    for stream in streams:
        by_source.setdefault(stream.source, []).append(stream)
    return [
        Asset(uri=URI_PREFIX + source, name=f"siaga_push_{source}", watchers=[
            AssetWatcher(name=f"siaga_push_{source}_{i}", trigger=SourcePushTrigger.of(s))
            for i, s in enumerate(streams)])
        for source, streams in sorted(by_source.items())
    ]


def ingest_schedule(interval: timedelta) -> Any:
    """Every `interval`, and also whenever a push source announces a post. Without push sources,
    the plain interval (Airflow's DeltaTriggerTimetable for a timedelta), as before."""
    assets = push_assets()
    if not assets:
        return interval
    return AssetOrTimeSchedule(timetable=DeltaTriggerTimetable(interval), assets=AssetAny(*assets))


def _pushed_payloads(context: Any) -> list[tuple[str, Any]]:
    """(source, payload) of every push event that started this run: the source the payload
    names, else the one its asset's URI names."""
    events = context.get("triggering_asset_events") or {}
    found: list[tuple[str, Any]] = []
    for asset, asset_events in events.items():
        if not str(getattr(asset, "uri", "")).startswith(URI_PREFIX):
            continue
        for event in asset_events:
            payload = (event.extra or {}).get("payload") or {}
            name = payload.get("source") if isinstance(payload, dict) else None
            found.append((name if isinstance(name, str) else str(asset.uri)[len(URI_PREFIX):], payload))
    return found


def pushed_sources(context: Any) -> set[str] | None:
    """The sources whose announcements started this run; None for a run of the timetable (or by
    hand), which polls every source."""
    return {name for name, _ in _pushed_payloads(context)} or None


def announced_posts(context: Any, source: str) -> list[push.Announced]:
    """The post ids `source`'s streams announced for this run (`push.announced_in`), for its
    ingest to read by id; empty for a run of the timetable and for streams that name no ids."""
    found = [push.announced_in(payload) for name, payload in _pushed_payloads(context) if name == source]
    return [a for a in found if a is not None]
