"""Sources that cannot stream, watched by the triggerer instead: a feed (`rss_watch`) or an
inbox folder (`inbox.folder_announcements`) is looked at every `watch_every` seconds, and an
item it did not hold before wakes ingest, as a stream's announcement does (`push`).

The one-minute poll waits for a new post up to a minute, 57 s at p95, which alone is over the
45 s a duty officer was promised. A look costs far less than a DAG run (a 304 from a feed
that has not changed, a directory listing), so it can come every 15 s, and the pipeline runs
only when there is something new. The look's item keys are what the poll would store (a feed
item's id, a file's size and modification time), so a watcher wakes a run exactly when the poll
would find something.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from siaga.redaction import redact_url
from siaga.sources.base import SourceConfigError
from siaga.sources.push import PushStream

log = logging.getLogger(__name__)

# How often the triggerer looks, by default and at the least (`watch_every` in sources.yaml).
# Every 15 s keeps a new post's wait for its watcher under 15 s; looking more often than every
# 5 s would be rude to a small agency's site.
WATCH_EVERY, MIN_WATCH_EVERY, MAX_WATCH_EVERY = 15.0, 5.0, 3_600.0


@dataclass
class Seen:
    """What a watcher last saw: the item keys (None before the first look) and what its look
    keeps between looks (a feed's validators). Kept per stream for the triggerer's life
    (`_seen`), so an item that appears while a look fails is announced by the next look that
    succeeds."""

    items: frozenset[str] | None = None
    state: dict[str, Any] = field(default_factory=dict)


_seen: dict[PushStream, Seen] = {}

Look = Callable[[Seen], Awaitable["frozenset[str] | None"]]


async def changes(stream: PushStream, look: Look) -> AsyncIterator[str]:
    """A label for every item key `look` finds that the last successful look did not, looking
    every `stream.every` seconds, forever. `look` answers the keys now held, or None when it
    knows nothing changed; it raises to fail (`push.listen` looks again after its backoff). The
    first look after the triggerer starts only learns: the poll reads what was there before."""
    every = stream.every or WATCH_EVERY  # at least MIN_WATCH_EVERY: the sources file's schema says so
    seen = _seen.setdefault(stream, Seen())
    while True:
        items = await look(seen)
        if items is not None:
            if seen.items is None:
                log.info("push: watching %s for source %s every %.0f s (%d items now)", redact_url(stream.url), stream.source,
                         every, len(items))
            new = sorted(items - seen.items) if seen.items is not None else []
            seen.items = items
            for item in new:
                yield f"item {item}"
        await asyncio.sleep(every)


def check_watch(entry: dict[str, Any], where: str) -> tuple[bool, float]:
    """(push, watch_every) of a watched source's config entry: `watch_every` without `push`
    would be a setting that does nothing, so it is refused."""
    push = bool(entry.get("push", False))
    if "watch_every" in entry and not push:
        raise SourceConfigError(f"{where}.watch_every: a source is watched only with push: true; add it, or drop watch_every")
    return push, float(entry.get("watch_every", WATCH_EVERY))
