"""RSS and Atom feeds as a push reader (`push.READERS["rss"]`): a new item wakes ingest within
`watch_every` seconds instead of at the next poll.

A feed cannot stream. WebSub, the standard that pushes feeds, needs a callback address the
hub can reach from the internet, which a BPBD office's Airflow does not have. So the triggerer
watches each feed of a source with `push: true`: a conditional GET every `PushStream.every`
seconds (15 by default, `rss.WATCH_EVERY`), which an unchanged feed answers with a 304 and no
body. The one-minute poll waits for a new item up to a minute, 57 s at p95, which alone is over
the 45 s a duty officer was promised; a watcher waits at most `every`, and wakes a DAG run only
when the feed holds an item it did not hold before (`rss.item_ids`), never for a rewritten
`lastBuildDate`.

As for every push reader the item is only a wake-up: the run it starts polls the feed with the
source's cursor, checks and quarantine, and the poll stays the backstop (the first look after
the triggerer starts only learns what the feed holds). Refusals wait as the
HTTP client of the poll does: `Retry-After` where the server says one (capped at
`RETRY_AFTER_MAX`), else `push.listen`'s doubling backoff.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import AsyncIterator

import httpx

from siaga.ratelimit import retry_after
from siaga.redaction import redact_url
from siaga.sources import push, rss
from siaga.sources.http import USER_AGENT

log = logging.getLogger(__name__)

LOOK_TIMEOUT = 30.0  # seconds for one look at a feed, its body included
RETRY_AFTER_MAX = 3_600.0  # the longest `Retry-After` obeyed: a feed's site is not a rate-limited API
_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"


async def feed_announcements(stream: push.PushStream, client: httpx.AsyncClient, token: push.Token) -> AsyncIterator[str]:
    """A label for every item that appears in the feed at `stream.url`, looking every
    `stream.every` seconds, forever. Raises `push.Backoff` for a refusal, httpx errors for a
    failed look, `push.EventTooLarge` for a body over `rss.MAX_FEED_BYTES`, ValueError for an
    answer that is no feed; `push.listen` looks again after its backoff."""
    every = stream.every or rss.WATCH_EVERY  # at least rss.MIN_WATCH_EVERY: the sources file's schema says so
    seen = _seen.setdefault(stream, Seen())
    log.info("push: watching feed %s for source %s every %.0f s", redact_url(stream.url), stream.source, every)
    while True:
        answer = await _look(client, stream.url, seen.validators)
        if answer is not None:
            body, validators = answer
            items = await asyncio.to_thread(rss.item_ids, body)  # parsing blocks: off the shared loop
            new = sorted(items - seen.items) if seen.items is not None else []
            seen.items, seen.validators = items, validators
            for item in new:
                yield f"item {item}"
        await asyncio.sleep(every)


@dataclass
class Seen:
    """What a watcher last saw of its feed: the items (None before the first look) and the
    validators to ask with. Kept per stream for the triggerer's life (`_seen`), so an item that
    appears while a look fails is announced by the next look that succeeds."""

    items: frozenset[str] | None = None
    validators: dict[str, str] = field(default_factory=dict)


_seen: dict[push.PushStream, Seen] = {}


async def _look(client: httpx.AsyncClient, url: str, validators: dict[str, str]) -> tuple[bytes, dict[str, str]] | None:
    """The feed's body and its new validators (`ETag`, `Last-Modified`), or None when it has not
    changed since `validators` were given (a 304). Redirects are followed: a feed asks for no
    token, and sites move their feeds to https or a new path."""
    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        headers["If-Modified-Since"] = validators["last_modified"]
    async with client.stream("GET", url, headers=headers, timeout=LOOK_TIMEOUT, follow_redirects=True) as response:
        if response.status_code == 304:
            return None
        _check(response)
        body = await asyncio.wait_for(push.read_at_most(response, rss.MAX_FEED_BYTES, "feed"), LOOK_TIMEOUT)
        fresh = {k: v for k, v in (("etag", response.headers.get("ETag")), ("last_modified", response.headers.get("Last-Modified"))) if v}
        return body, fresh


def _check(response: httpx.Response) -> None:
    """Nothing for a 200; a refusal the server says how long to wait after (429, or 503 with
    `Retry-After`) as `push.Backoff`; any other answer as httpx's HTTPStatusError."""
    status = response.status_code
    if status == 200:
        return
    wait = retry_after(response.headers) if status in (429, 503) else None
    if wait is not None or status == 429:
        wait = min(wait if wait is not None else push.BACKOFF_MAX, RETRY_AFTER_MAX)
        raise push.Backoff(f"HTTP {status}", wait, RETRY_AFTER_MAX)
    raise httpx.HTTPStatusError(f"HTTP {status}", request=response.request, response=response)
