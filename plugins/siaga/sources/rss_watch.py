"""RSS and Atom feeds as a push reader (`push.READERS["rss"]`): a new item wakes ingest within
`watch_every` seconds instead of at the next poll.

A feed cannot stream. WebSub, the standard that pushes feeds, needs a callback address the hub
can reach from the internet, which a BPBD office's Airflow does not have. So the triggerer
watches each feed of a source with `push: true` (`watch.changes`): a conditional GET every
`watch_every` seconds, which an unchanged feed answers with a 304 and no body, and a run only
when the feed holds an item it did not hold before (`rss.item_ids`), never for a rewritten
`lastBuildDate`.

As for every push reader the item is only a wake-up: the run it starts polls the feed with the
source's cursor, checks and quarantine, and the poll stays the backstop. Refusals wait as the
server asks: `Retry-After` where it says one (capped at `RETRY_AFTER_MAX`), else
`push.listen`'s doubling backoff.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import httpx

from siaga.ratelimit import retry_after
from siaga.sources import push, rss, watch
from siaga.sources.http import USER_AGENT

LOOK_TIMEOUT = 30.0  # seconds for one look at a feed, from the request to the body's last byte
RETRY_AFTER_MAX = 3_600.0  # the longest `Retry-After` obeyed: a feed's site is not a rate-limited API


async def feed_announcements(stream: push.PushStream, client: httpx.AsyncClient, token: push.Token) -> AsyncIterator[str]:
    """A label for every item that appears in the feed at `stream.url`, forever. Raises
    `push.Backoff` for a refusal, httpx errors for a failed look, `push.EventTooLarge` for a
    body over `rss.MAX_FEED_BYTES`, ValueError for an answer that is no feed."""
    async def look(seen: watch.Seen) -> frozenset[str] | None:
        # One deadline for the whole look: a server that drips its headers or body a byte at a
        # time never trips a per-read timeout.
        answer = await asyncio.wait_for(_look(client, stream.url, seen.state), LOOK_TIMEOUT)
        if answer is None:
            return None
        body, validators = answer
        items = await asyncio.to_thread(rss.item_ids, body)  # parsing blocks: off the loop every watcher shares
        seen.state = validators  # only for a version read: a refused one is asked for again in full
        return items

    async for label in watch.changes(stream, look):
        yield label


async def _look(client: httpx.AsyncClient, url: str, validators: dict[str, str]) -> tuple[bytes, dict[str, str]] | None:
    """The feed's body and its new validators (`etag`, `last_modified`), or None when it has not
    changed since `validators` were given (a 304). Redirects are followed: a feed asks for no
    token, and sites move their feeds to https or a new path."""
    headers = {"User-Agent": USER_AGENT, **rss.conditional_headers(validators)}
    async with client.stream("GET", url, headers=headers, timeout=LOOK_TIMEOUT, follow_redirects=True) as response:
        if response.status_code == 304:
            return None
        _check(response)
        body = await push.read_at_most(response, rss.MAX_FEED_BYTES, "feed")
        return body, rss.validators(response.headers)


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
