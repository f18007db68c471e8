"""Push: sources that announce a new post the moment it is published, so ingest starts at once
instead of at the next poll.

At one-minute polling a post waits for the next poll, up to a minute: that wait alone puts the
post-to-Slack p95 near 57 s whatever the pipeline does (benchmarks/README.md, "Post-to-Slack
latency"). A Mastodon hashtag has a streaming endpoint (Server-Sent Events) that tells every
listener about a new status as it is published; Airflow's triggerer listens to it
(`siaga_push.SourcePushTrigger`, an asset watcher) and each announcement starts an ingest run for
that source. A Mastodon search has no stream: the instance's public timeline is read instead
and filtered in the triggerer to the search's words (`siaga.sources.mastodon_public`). X's
filtered stream is read the same way (`siaga.sources.x_stream`): JSON lines, filtered by rules
kept on X's side.

The announcement is a wake-up: its payload is never stored as a post. The ingest run polls the
source as every poll does, with its cursor, checks and quarantine, and a stream that drops an
announcement (a reconnect, a server restart) loses nothing: the one-minute poll stays as the
backstop and picks the post up. A reader that knows the id of the post it announces (Mastodon's
public timeline, `status_label`) names it, and the wake-up carries those ids (`WakeUp`, at most
`MAX_IDS`): the woken run of a Mastodon search reads them by id from the service itself, with
the same checks and quarantine, rather than waiting for the search index
(`MastodonSource.read_announced`). An id tells the run where to look, nothing more.

Announcements that come close together are folded into one wake-up (`GAP`): a busy hashtag must
not write an asset event per status, and one ingest run reads them all anyway.

httpx and httpx-sse rather than requests: the triggerer runs every watcher in one asyncio loop,
so a stream must be read without blocking a thread, and httpx-sse parses the event stream format
(fields split across chunks, comments used as heartbeats, multi-line data) that a hand-written
reader would get subtly wrong.
"""
from __future__ import annotations

import asyncio
import importlib
import json
import logging
import random
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from httpx_sse import EventSource, aconnect_sse

from siaga.redaction import redact_url, redact_urls_in
from siaga.sources.http import USER_AGENT

log = logging.getLogger(__name__)

GAP = 2.0  # seconds: announcements within this of a wake-up are folded into the next one
# Mastodon sends a heartbeat comment every 15 s or so; a stream silent for longer than this is
# dead (a half-open TCP connection never errors by itself) and is opened again.
IDLE_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
BACKOFF_FIRST = 1.0  # seconds before reconnecting after a failure; doubles up to BACKOFF_MAX
BACKOFF_MAX = 60.0
UPDATE_EVENTS = frozenset({"update", "status.update"})  # a new status; an edited one
# The most one event may hold: a status is a few kB of JSON. A stream that sends more without an
# event boundary (an endless line, endless data lines) is cut and opened again, so one bad
# stream cannot fill the triggerer's memory, which every watcher and deferred task shares.
MAX_EVENT_BYTES = 1_000_000
_BOUNDARIES = (b"\n\n", b"\r\r", b"\r\n\r\n")  # the three ways an event can end
# The most post ids one wake-up carries: its payload is stored in Airflow's database (the asset
# event's `extra`), once per wake-up. A matching status or two per wake-up is the normal case; a
# burst beyond this is left to the search poll, which reads every post anyway.
MAX_IDS = 20
_STATUS = "status "  # how a label names the post it announces (`status_label`)
_ID = re.compile(r"[0-9]{1,30}")  # a post id a wake-up may carry: Mastodon's ids are decimal numbers


@dataclass(frozen=True)
class PushStream:
    """One stream a source is announced on. `protocol` names the service's way of streaming
    (`READERS`); `terms` is what the stream is asked to match where the service filters on the
    listener's words rather than on the URL (empty for a Mastodon hashtag); `language`, where
    the reader itself must filter by language (Bluesky's Jetstream), the source's language;
    `every`, for a source that cannot stream and is watched instead (a feed), seconds between
    two looks."""

    source: str
    url: str
    conn_id: str | None = None  # the Airflow connection whose token the stream needs, if any
    protocol: str = "mastodon"
    terms: tuple[str, ...] = ()
    language: str | None = None
    every: float | None = None


def status_label(post_id: str) -> str:
    """The label of an announcement that names its post ("status <id>"): a reader that knows the
    id says so this way, and `wake_ups` passes the id on (`announced_id`)."""
    return f"{_STATUS}{post_id}"


def announced_id(label: str) -> str | None:
    """The post id a label names (`status_label`), or None: other readers' labels (an event name,
    a Bluesky URI) and an id that is no decimal number name none."""
    post_id = label[len(_STATUS):] if label.startswith(_STATUS) else ""
    return post_id if _ID.fullmatch(post_id) else None


@dataclass(frozen=True)
class WakeUp:
    """One wake-up: how many announcements it stands for, and the ids of the posts they named
    (each once, the latest `MAX_IDS`, oldest first): most readers name none."""

    count: int
    ids: tuple[str, ...] = ()

    def payload(self, stream: PushStream) -> dict[str, Any]:
        """The trigger event's payload (Airflow stores it as the asset event's `extra["payload"]`):
        the source, the count and, when there are ids, the ids and the stream that named them
        (its URL redacted: the payload is stored, and a URL may hold a secret)."""
        payload: dict[str, Any] = {"source": stream.source, "announced": self.count}
        if self.ids:
            payload.update(ids=list(self.ids), stream=redact_url(stream.url))
        return payload


@dataclass(frozen=True)
class Announced:
    """Post ids a pushed run was woken for: `stream` (redacted URL, `WakeUp.payload`) named them."""

    stream: str
    ids: tuple[str, ...]


def announced_in(payload: Any) -> Announced | None:
    """The ids a trigger event's payload carries, or None. The payload comes back from Airflow's
    database, so it is read as untrusted: anything that is not a stream URL and a list of decimal
    ids is ignored (the run then only polls, as before), and no more than `MAX_IDS` are taken."""
    if not isinstance(payload, dict) or not isinstance(payload.get("stream"), str) or not isinstance(payload.get("ids"), list):
        return None
    ids = tuple(dict.fromkeys(i for i in payload["ids"] if isinstance(i, str) and _ID.fullmatch(i)))[-MAX_IDS:]
    return Announced(payload["stream"], ids) if ids else None


def mastodon_hashtag_url(instance: str, tag: str) -> str:
    """Mastodon's streaming endpoint for one hashtag (`GET /api/v1/streaming/hashtag`), served on
    the instance's own host by Mastodon's standard proxy set-up."""
    return f"{instance.rstrip('/')}/api/v1/streaming/hashtag?tag={quote(tag, safe='')}"


def push_streams(sources: Iterable[Any]) -> list[PushStream]:
    """Every stream the given sources are announced on. Only connectors whose service streams
    (Mastodon's hashtags and public timelines, Bluesky's Jetstream, X's filtered stream) have a `push_streams` method;
    the others are polled only."""
    return [s for source in sources if hasattr(source, "push_streams") for s in source.push_streams()]


Token = Callable[[str], Awaitable[str]]

# protocol -> "module:function" of its reader (see `reader`)
READERS = {
    "mastodon": "siaga.sources.push:mastodon_announcements",
    "mastodon_public": "siaga.sources.mastodon_public:public_announcements",
    "bluesky": "siaga.sources.jetstream:bluesky_announcements",
    "x": "siaga.sources.x_stream:x_announcements",
    "rss": "siaga.sources.rss_watch:feed_announcements",
    "inbox": "siaga.sources.inbox:folder_announcements",
}


async def _token_in_thread(conn_id: str) -> str:
    """The connection's secret, looked up off the event loop: reading an Airflow connection is
    a blocking call (a secrets backend, the API server)."""
    from siaga.sources import auth

    return await asyncio.to_thread(auth.token, conn_id)


Reader = Callable[[PushStream, httpx.AsyncClient, Token], AsyncIterator[str]]


def reader(protocol: str) -> Reader:
    """The function that reads a stream of this protocol. Each service's reader lives with what
    it needs; they are looked up by name so this module (the shared listening loop) imports none
    of them and none imports it in a circle."""
    try:
        module, name = READERS[protocol].split(":")
    except KeyError:
        raise ValueError(f"push: no reader for protocol {protocol!r}; known: {', '.join(sorted(READERS))}") from None
    return getattr(importlib.import_module(module), name)


async def announcements(stream: PushStream, client: httpx.AsyncClient, token: Token = _token_in_thread) -> AsyncIterator[str]:
    """Every new post announced on `stream`, as a short label, until the server ends it."""
    async for name in reader(stream.protocol)(stream, client, token):
        yield name


async def mastodon_announcements(stream: PushStream, client: httpx.AsyncClient, token: Token = _token_in_thread) -> AsyncIterator[str]:
    """The event name of every new or edited status announced on `stream`, until the server ends
    the stream. Raises what `open_mastodon_stream` raises."""
    async with open_mastodon_stream(stream, client, token, "a hashtag stream") as source:
        async for event in source.aiter_sse():
            if event.event in UPDATE_EVENTS:
                yield event.event


@asynccontextmanager
async def open_mastodon_stream(stream: PushStream, client: httpx.AsyncClient, token: Token, what: str) -> AsyncIterator[EventSource]:
    """A Mastodon streaming endpoint, opened (every Mastodon reader's way in). Redirects are not
    followed (httpx's default): a token must not travel to another host, so the streaming
    server the instance declares is looked up first (`streaming_url`). The response is
    bounded (`bound`). Raises httpx errors (HTTPStatusError for a refusal, SSEError for an
    answer that is not an event stream) and StreamRefused, naming the fix, when a stream
    without a token is refused; `what` names the stream in that message."""
    headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream"}
    if stream.conn_id:
        headers["Authorization"] = f"Bearer {await token(stream.conn_id)}"
    url = await streaming_url(stream.url, client)
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        if source.response.status_code in (401, 403) and not stream.conn_id:
            raise StreamRefused(f"HTTP {source.response.status_code}: since Mastodon 4.2 {what} needs a user "
                                "token with read:statuses; give this instance a conn_id in sources.yaml")
        source.response.raise_for_status()
        bound(source.response)
        log.info("push: listening to %s for source %s", redact_url(url), stream.source)
        yield source


class StreamRefused(RuntimeError):
    """The server refused the stream for a reason the operator can fix; the message says how."""


# Where an instance declares its streaming server: Mastodon 4.0+ (`/api/v2/instance`), then older.
_INSTANCE_APIS = (("/api/v2/instance", ("configuration", "urls", "streaming")), ("/api/v1/instance", ("urls", "streaming_api")))
MAX_INSTANCE_BYTES = 256_000
_HOSTNAME = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")  # a name or an address, as urlsplit lowers it
_HTTP_SCHEME = {"wss": "https", "https": "https", "ws": "http", "http": "http"}


async def streaming_url(url: str, client: httpx.AsyncClient) -> str:
    """`url` moved to the streaming server its instance declares. An instance whose streaming
    server runs on another host (mastodon.social's does) answers its own streaming path with a
    redirect, which is never followed, so the stream would fail forever. Asked on every
    (re)connect, so a moved streaming server is found; without an answer, the instance's own
    host, which is where Mastodon's standard set-up serves it."""
    parts = urlsplit(url)
    for path, keys in _INSTANCE_APIS:
        try:
            declared: Any = await _small_json(client, f"{parts.scheme}://{parts.netloc}{path}")
            for key in keys:
                declared = declared.get(key) if isinstance(declared, dict) else None
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("push: %s did not say where it streams (%s)", redact_url(f"{parts.scheme}://{parts.netloc}{path}"), type(exc).__name__)
            continue
        if isinstance(declared, str) and declared:
            return on_streaming_host(url, declared)
    return url


async def _small_json(client: httpx.AsyncClient, url: str) -> Any:
    """The JSON answer of a 200, None for any other status. Read with a short deadline and at
    most MAX_INSTANCE_BYTES: an instance document is a few kB, and the triggerer's memory and
    loop are shared by every watcher."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    async with client.stream("GET", url, headers=headers, timeout=CONNECT_TIMEOUT) as response:
        if response.status_code != 200:
            return None
        return json.loads(await read_at_most(response, MAX_INSTANCE_BYTES, "instance document"))


async def read_at_most(response: httpx.Response, limit: int, what: str) -> bytes:
    """The body of `response` (opened as a stream), or EventTooLarge once it passes `limit`
    bytes: a small answer a stream reader needs (an instance document, X's rules) must not be
    able to fill the triggerer's memory either."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise EventTooLarge(f"{what} over {limit} bytes")
    return bytes(body)


def on_streaming_host(url: str, declared: str) -> str:
    """`url` with the scheme, host and port of the declared streaming server (`wss://` is read
    as `https://`: the same server speaks Server-Sent Events). Kept as it is where the declaration
    is not a plain server address, or would downgrade an HTTPS instance to plain HTTP."""
    parts = urlsplit(url)
    try:
        server = urlsplit(declared.strip())
        port = server.port
    except ValueError:  # "[::1", a port out of range
        return url
    scheme = _HTTP_SCHEME.get(server.scheme.lower())
    if (not scheme or not server.hostname or not _HOSTNAME.fullmatch(server.hostname) or server.username
            or server.password or (parts.scheme == "https" and scheme != "https")):
        return url
    netloc = server.hostname if ":" not in server.hostname else f"[{server.hostname}]"
    netloc += f":{port}" if port else ""
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


class EventTooLarge(ValueError):
    """A stream sent more than MAX_EVENT_BYTES without ending an event (or a line)."""


class _Bounded(httpx.AsyncByteStream):
    """The response's bytes, failing once more than `limit` of them come without one of
    `boundaries` (an event's end by default; b"\n" for a stream of JSON lines). Wrapped under
    the decoder (httpx-sse's, httpx's line splitter), which otherwise buffers a line or an event
    however long it grows."""

    def __init__(self, inner: httpx.AsyncByteStream, limit: int, boundaries: tuple[bytes, ...] = _BOUNDARIES) -> None:
        self.inner, self.limit, self.boundaries = inner, limit, boundaries
        self.keep = max(map(len, boundaries)) - 1  # bytes kept for a boundary split across chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pending, tail = 0, b""  # bytes since the last boundary; the last bytes seen, for a boundary split across chunks
        async for chunk in self.inner:
            seen = tail + chunk
            end = max((seen.rfind(b) + len(b) for b in self.boundaries if b in seen), default=-1)
            pending = len(seen) - end if end >= 0 else pending + len(chunk)
            if pending > self.limit:
                raise EventTooLarge(f"more than {self.limit} bytes without an event boundary")
            tail = seen[len(seen) - self.keep:]
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


def bound(response: httpx.Response, boundaries: tuple[bytes, ...] = _BOUNDARIES) -> None:
    """Make `response`, opened as a stream, fail (EventTooLarge) once more than MAX_EVENT_BYTES
    come without one of `boundaries`: every reader's guard for the triggerer's memory."""
    response.stream = _Bounded(response.stream, MAX_EVENT_BYTES, boundaries)


class Backoff(Exception):
    """A refusal whose service documents how long to wait before trying again (X: at least a
    minute after a 429, doubling while it repeats). `listen` waits at least `at_least` seconds,
    doubling up to `up_to` while such refusals continue, instead of its own shorter backoff:
    reconnecting sooner only earns longer refusals."""

    def __init__(self, reason: str, at_least: float, up_to: float = BACKOFF_MAX) -> None:
        super().__init__(reason)
        self.at_least, self.up_to = at_least, max(up_to, at_least)


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(IDLE_TIMEOUT, connect=CONNECT_TIMEOUT), follow_redirects=False)


async def listen(stream: PushStream, queue: asyncio.Queue[str], *, token: Token = _token_in_thread,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, backoff_first: float = BACKOFF_FIRST) -> None:
    """Put every announcement on `queue`, forever: a stream that ends or fails is opened again,
    after a wait that doubles (with jitter) while it keeps failing and starts over once an
    announcement got through or the stream stayed open longer than the longest wait (a server
    that closes idle streams now and then is not failing). A `Backoff` refusal sets a floor
    under the wait and may raise its cap. Only cancellation stops it."""
    wait = backoff_first
    loop = asyncio.get_running_loop()
    while True:
        opened = loop.time()
        floor, ceiling = 0.0, BACKOFF_MAX
        failure: Exception | None = None
        try:
            async with _client() as client:
                async for name in announcements(stream, client, token):
                    queue.put_nowait(name)
                    wait = backoff_first
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of one stream is retried, never fatal to the triggerer
            failure = exc
            if isinstance(exc, Backoff):
                floor, ceiling = exc.at_least, exc.up_to
        if loop.time() - opened > BACKOFF_MAX:
            wait = backoff_first
        wait = max(wait, floor)
        pause = max(floor, wait * (0.5 + random.random() / 2))
        if failure is None:
            log.info("push: %s closed the stream for source %s; opening it again", redact_url(stream.url), stream.source)
        else:
            log.warning("push: stream %s for source %s failed (%s: %s); again in %.0f s",
                        redact_url(stream.url), stream.source, type(failure).__name__, _reason(failure), pause)
        await sleep(pause)
        wait = min(wait * 2, ceiling)


def _reason(exc: Exception) -> str:
    """A failure in a few words: an HTTP status, not the response body (a server's error page is
    not ours to log), and never the URL's secrets (httpx names the URL in its errors)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return redact_urls_in(str(exc))[:200]


async def wake_ups(stream: PushStream, *, gap: float = GAP, token: Token = _token_in_thread,
                   backoff_first: float = BACKOFF_FIRST) -> AsyncIterator[WakeUp]:
    """One wake-up (the number of announcements it stands for, the post ids they named) as soon
    as something is announced, then at most one per `gap` seconds while announcements keep
    coming; forever."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    reader = asyncio.create_task(listen(stream, queue, token=token, backoff_first=backoff_first))
    try:
        while True:
            got = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({got, reader}, return_when=asyncio.FIRST_COMPLETED)
            if got not in done:
                got.cancel()
                reader.result()  # `listen` ends only by failing: raise what it raised
                raise RuntimeError("push: the stream reader stopped")
            labels = [got.result()]
            while not queue.empty():
                labels.append(queue.get_nowait())
            ids = dict.fromkeys(i for i in map(announced_id, labels) if i is not None)
            yield WakeUp(len(labels), tuple(ids)[-MAX_IDS:])
            await asyncio.sleep(gap)
    finally:
        reader.cancel()
