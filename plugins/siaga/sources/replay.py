"""Replay a recorded feed (JSON Lines) on a clock, so a recorded day plays through the real DAGs.

The clock maps the time a poll runs at to a time in the recording. `identity` plays the file at
its own timestamps (a DAG run for 07:00 sees posts up to 07:00: how the demo and tests drive it);
`live` starts the recording at its first post when the source is first polled and plays it at
`speed` times real time, re-timing each post to when it is released, for a demo on a running
Airflow. `SIAGA_REPLAY_CLOCK` overrides the configured mode (the demo and tests use `identity`).

Lines are split at "\n" only and decoded as strict UTF-8, each on its own: a bad line is
quarantined with its number and its neighbours are read.

A line ahead of the clock is not an error: a recording's future is its schedule, so it waits
and is released when its time comes. The cursor's `line` moves past every released line; lines
still waiting before it (written out of order) are kept in the cursor by the hash of their
content (`waiting`, at most MAX_WAITING), so no late line holds the cursor back. A line dated
more than SPAN (a year) ahead of the clock is a typo (2999) and is quarantined rather than
waited for. (Live sources have no schedule: there a post more than
`schema.FUTURE_SLACK` ahead of the poll is quarantined.) The cursor also keeps a digest of the
lines it passed: a file replaced under it is read again from the start.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from siaga import settings
from siaga.files import read_regular_file
from siaga.sources.base import BadInput, IncomingPost, PollResult, SourceConfigError
from siaga.sources.http import SourceError
from siaga.sources.parsing import json_text, opt_text, parse_time, record_id
from siaga.sources.records import Records, decode_line, without_bom
from siaga.sources.schema import check_number
from siaga.vocabulary import LOCAL_TZ_NAME, time_zone

log = logging.getLogger(__name__)
REQUIRED = ("id", "created_at", "text")
MAX_WAITING = 1_000  # out-of-order lines ahead of the clock the cursor remembers
SPAN = timedelta(days=366)  # how far ahead of the replay clock a line may be dated


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
    # Polled at the run's own time, not the real one (`pipeline.polled_at`): its clock maps the
    # run's time into the recording.
    plays_run_time = True

    def __init__(self, name: str, path: Path, clock: ReplayClock | None = None, tz: str = LOCAL_TZ_NAME):
        self.name = name
        self.path = path
        self.clock = clock or ReplayClock()
        self.tz = time_zone(tz)  # for timestamps written without a zone (WITA in Bali)

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
        zone = entry.get("timezone", LOCAL_TZ_NAME)
        try:  # a typo here was a traceback from `siaga check` and every ingest run's source listing
            time_zone(zone)
        except ValueError as exc:
            raise SourceConfigError(f"{where}.timezone: {exc}") from None
        return cls(entry["name"], path, ReplayClock(mode, float(clock_cfg.get("speed", 1.0))), zone)

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult:
        """Posts whose time has come and that the cursor has not passed, plus the bad lines."""
        cursor = dict(cursor or {})
        try:  # a folder, a device or a pipe in its place: one line naming it, not a traceback or a hang
            data = without_bom(read_regular_file(self.path))
        except OSError as exc:
            raise SourceError(f"{self.name}: cannot read the replay file {self.path}: {exc.strerror or exc}") from None
        lines, bad, ends = self._read(data)
        done = int(cursor.get("line", 0))
        waiting: dict[str, int] = dict(cursor.get("waiting") or {})
        if cursor.get("prefix") and _prefix(data, ends, done) != cursor["prefix"]:
            log.info("%s: %s changed before line %d: reading it again from the start", self.name, self.path, done)
            done, waiting = 0, {}
        first = min((line.post.created_at for line in lines), default=None)
        if self.clock.mode == "live":
            cursor.setdefault("started_at", now.isoformat())
        clock = self.scenario_time(now, cursor, first)
        lines, too_far = self._too_far(lines, clock)
        bad += too_far
        unread = [line for line in lines if line.number > done or line.digest in waiting]
        due = [line for line in unread if line.post.created_at <= clock]
        ahead = [line for line in unread if line.post.created_at > clock]
        posts = [_at(line.post, self.clock.real_time(line.post.created_at, cursor, first, now)) for line in due]
        cursor["line"], waiting = _advance(done, due, ahead)
        cursor["prefix"] = _prefix(data, ends, cursor["line"])
        if waiting:
            cursor["waiting"] = waiting
        else:
            cursor.pop("waiting", None)
        cursor["clock"] = clock.isoformat()
        return PollResult(posts=posts, bad=[b for number, b in bad if number > done], cursor=cursor)

    def scenario_time(self, now: datetime, cursor: dict[str, Any], first: datetime | None) -> datetime:
        return self.clock.scenario_time(now, cursor, first)

    def _read(self, data: bytes) -> tuple[list[_Line], list[tuple[int, BadInput]], list[int]]:
        """Every line parsed (split at "\\n" only), the bad ones with their numbers, and the byte
        offset where each line ends."""
        records = Records(now=None, by_place=True)  # a line ahead of the clock waits; it is not an error
        lines: list[_Line] = []
        bad: list[tuple[int, BadInput]] = []
        ends = [0]
        for number, line in enumerate(data.split(b"\n"), start=1):
            ends.append(ends[-1] + len(line) + 1)
            line = line.removesuffix(b"\r")
            if not line.strip():
                continue
            got = records.take(f"{self.path.name}:{number}", line, lambda: self.parse(line))
            if got:
                lines.append(_Line(number, hashlib.sha256(line).hexdigest()[:16], got[0]))
            else:
                bad.append((number, records.bad[-1]))
        return lines, bad, ends

    def _too_far(self, lines: list[_Line], clock: datetime) -> tuple[list[_Line], list[tuple[int, BadInput]]]:
        """Lines dated more than SPAN ahead of the replay clock are quarantined: a typo such as
        2999 would otherwise wait, unseen, for centuries."""
        kept, bad = [], []
        for line in lines:
            if line.post.created_at - clock <= SPAN:
                kept.append(line)
            else:
                reason = (f"field 'created_at': {line.post.created_at.isoformat()} is more than {SPAN.days} days ahead of "
                          f"the replay clock ({clock.isoformat()})")
                bad.append((line.number, BadInput(f"{self.path.name}:{line.number}", reason, json_text(line.post.raw), by_place=True)))
        return kept, bad

    def parse(self, line: str | bytes) -> IncomingPost:
        """One JSON line as a post; ValueError names the field that is wrong."""
        obj = decode_line(line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass"))
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        for key in REQUIRED:
            if obj.get(key) in (None, ""):
                raise ValueError(f"field '{key}' is missing or empty")
        if not isinstance(obj["text"], str):
            raise ValueError("field 'text' must be a string")
        return IncomingPost(
            source=opt_text(obj.get("source"), "source") or self.name,
            source_id=record_id(obj["id"]),
            created_at=parse_time(obj["created_at"], "created_at", self.tz),
            text=obj["text"],
            author=opt_text(obj.get("author"), "author"),
            url=opt_text(obj.get("url"), "url"),
            lat=check_number(obj.get("lat"), "lat", -90, 90),
            lon=check_number(obj.get("lon"), "lon", -180, 180),
            raw=obj,
        )


class _Line(NamedTuple):  # a tuple: made for every line read, at a third of a frozen dataclass's cost
    number: int
    digest: str  # of the line's bytes: how a waiting line is recognised, wherever it moves
    post: IncomingPost


def _at(post: IncomingPost, when: datetime) -> IncomingPost:
    """The post released at `when`: itself when the clock keeps its time (identity), so the
    schema check it passed holds (`IncomingPost.schema_checked`), else a copy re-timed."""
    return post if when == post.created_at else replace(post, created_at=when)


def _advance(done: int, due: list[_Line], ahead: list[_Line]) -> tuple[int, dict[str, int]]:
    """The new cursor line, past the last line released, and the lines before it still waiting
    (ahead of the clock, out of order), which are kept by content hash. At most MAX_WAITING
    wait: past that the cursor stops before the next one, and what follows is read again."""
    still = {line.digest: line.number for line in ahead if line.number <= done}
    last_due = max((line.number for line in due if line.number > done), default=done)
    blocking = sorted(line.number for line in ahead if done < line.number < last_due)
    room = max(MAX_WAITING - len(still), 0)
    new = last_due if len(blocking) <= room else blocking[room] - 1
    return new, still | {line.digest: line.number for line in ahead if done < line.number <= new}


def _prefix(data: bytes, ends: list[int], line: int) -> str:
    """A digest of the lines up to `line`: when it changes, the file was replaced or edited."""
    if line <= 0:
        return ""
    if line >= len(ends):
        return "gone"
    return hashlib.sha256(data[:ends[line]]).hexdigest()[:32]
