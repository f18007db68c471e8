"""Replay a recorded feed (JSON Lines) on a clock, so a recorded day plays through the real DAGs.

The clock maps the time a poll runs at to a time in the recording. `identity` plays the file at
its own timestamps (a DAG run for 07:00 sees posts up to 07:00: how the demo and tests drive it);
`live` starts the recording at its first post when the source is first polled and plays it at
`speed` times real time, re-timing each post to when it is released, for a demo on a running
Airflow. `SIAGA_REPLAY_CLOCK` overrides the configured mode (the demo and tests use `identity`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from siaga import settings
from siaga.sources.base import BadInput, IncomingPost, PollResult, SourceConfigError
from siaga.vocabulary import LOCAL_TZ_NAME

REQUIRED = ("id", "created_at", "text")


@dataclass
class ReplayClock:
    mode: str = "identity"  # identity | live
    speed: float = 1.0

    def scenario_time(self, now: datetime, cursor: dict[str, Any], first_post: datetime | None) -> datetime:
        if self.mode == "identity" or first_post is None:
            return now
        return first_post + (now - self._started(cursor, now)) * self.speed

    def real_time(self, when: datetime, cursor: dict[str, Any], first_post: datetime | None, now: datetime) -> datetime:
        """When a post of the recording is played, in real time."""
        if self.mode == "identity" or first_post is None:
            return when
        return self._started(cursor, now) + (when - first_post) / self.speed

    @staticmethod
    def _started(cursor: dict[str, Any], now: datetime) -> datetime:
        return datetime.fromisoformat(cursor["started_at"]) if "started_at" in cursor else now


class ReplaySource:
    def __init__(self, name: str, path: Path, clock: ReplayClock | None = None, tz: str = LOCAL_TZ_NAME):
        self.name = name
        self.path = path
        self.clock = clock or ReplayClock()
        self.tz = ZoneInfo(tz)  # for timestamps written without a zone (WITA in Bali)

    @classmethod
    def from_config(cls, entry: dict[str, Any], base_dir: Path, where: str) -> "ReplaySource":
        if "path" not in entry:
            raise SourceConfigError(f"{where}.path: a replay source needs a path")
        path = Path(entry["path"])
        if not path.is_absolute():
            path = base_dir / path
        clock_cfg = entry.get("clock") or {}
        mode = settings.replay_clock_override() or clock_cfg.get("mode", "identity")
        if mode not in ("identity", "live"):
            raise SourceConfigError(f"{where}.clock.mode: expected 'identity' or 'live', got {mode!r}")
        return cls(entry["name"], path, ReplayClock(mode, float(clock_cfg.get("speed", 1.0))), entry.get("timezone", LOCAL_TZ_NAME))

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult:
        """Posts whose time has come and that the cursor has not passed, plus the bad lines."""
        cursor = dict(cursor or {})
        done_line = int(cursor.get("line", 0))
        rows, bad = self._read()
        first = min((p.created_at for _, p in rows), default=None)
        if self.clock.mode == "live":
            cursor.setdefault("started_at", now.isoformat())
        clock = self.scenario_time(now, cursor, first)
        posts = [
            replace(p, created_at=self.clock.real_time(p.created_at, cursor, first, now))
            for n, p in rows
            if n > done_line and p.created_at <= clock
        ]
        # The cursor is the last line such that every line up to it has been released, so a post
        # written out of order is still released when its time comes.
        # Bad lines are reported on every poll; quarantine is keyed by location, so once.
        pending = [n for n, p in rows if p.created_at > clock]
        cursor["line"] = (min(pending) - 1) if pending else max((n for n, _ in rows), default=0)
        cursor["clock"] = clock.isoformat()
        return PollResult(posts=posts, bad=bad, cursor=cursor)

    def scenario_time(self, now: datetime, cursor: dict[str, Any], first: datetime | None) -> datetime:
        return self.clock.scenario_time(now, cursor, first)

    def _read(self) -> tuple[list[tuple[int, IncomingPost]], list[BadInput]]:
        rows: list[tuple[int, IncomingPost]] = []
        bad: list[BadInput] = []
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append((line_no, self.parse(line)))
                except ValueError as exc:
                    bad.append(BadInput(f"{self.path.name}:{line_no}", str(exc), line.rstrip("\n")[:10_000]))
        return rows, bad

    def parse(self, line: str) -> IncomingPost:
        """One JSON line as a post; ValueError names the field that is wrong."""
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        for key in REQUIRED:
            if obj.get(key) in (None, ""):
                raise ValueError(f"field '{key}' is missing or empty")
        if not isinstance(obj["text"], str):
            raise ValueError("field 'text' must be a string")
        return IncomingPost(
            source=str(obj.get("source") or self.name),
            source_id=str(obj["id"]),
            created_at=self._time(obj["created_at"]),
            text=obj["text"],
            author=_opt_str(obj.get("author")),
            url=_opt_str(obj.get("url")),
            lat=_coord(obj, "lat", -90, 90),
            lon=_coord(obj, "lon", -180, 180),
            raw=obj,
        )

    def _time(self, value: Any) -> datetime:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"field 'created_at': not an ISO 8601 time: {value!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.tz)
        return when.astimezone(timezone.utc)


def _opt_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _coord(obj: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = obj.get(key)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"field '{key}': not a number: {value!r}") from None
    if not low <= number <= high:
        raise ValueError(f"field '{key}': {number} is outside [{low}, {high}]")
    return number
