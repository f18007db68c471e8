"""Bluesky push: Jetstream, every post of the network as it is published, filtered here.

Bluesky has no keyword stream: its search is polled (`sources.bluesky`). Jetstream
(`wss://jetstream*.bsky.network/subscribe`) sends every record committed anywhere on the network
as one JSON message; with `wantedCollections=app.bsky.feed.post` that is every post created,
edited or deleted, plus the identity and account events every subscriber gets. The triggerer
reads it and announces each created post whose text holds every word of one of the source's
queries (`terms.Terms`, made by `query_terms`), and the ingest run that announcement starts polls the
search as always. Nothing from Jetstream is stored: the message is only a wake-up.

Why the filter is cheap enough for the triggerer's one event loop: msgspec decodes each message
into the few fields read here (kind, operation, collection, text, langs, tags) and skips the rest
without building it, and a post is folded (`normalise.quick_fold`, the project's one fold: case,
accents, invisible characters, elongation) and split into words once, then tested against the
terms with set operations. `benchmarks/bench_jetstream.py` measures it against the obvious way.

Compression: the websocket's own permessage-deflate is offered (websockets' default; a server
that does not take it sends plain JSON): inflating costs ~4 µs a message in the loop
(bench_jetstream.py), cheap beside the bandwidth of every post of the network, and the inflated
size is held to `push.MAX_EVENT_BYTES` like any message, so a small compressed message cannot
grow without bound.

What is not used, and why:
- `compress=true` (zstd with Jetstream's own dictionary, ~56 % smaller): it needs the dictionary
  file and a zstd binding that this project does not carry.
- record embeds (image alt text, link cards): the search may match a post through them; the
  poll still finds such a post, a minute later.

A match is announced `INDEX_LAG` seconds after it is read, not at once: the search index lags
Jetstream by a few seconds, and a run started by the announcement before the post is searchable
would find nothing and leave the post to the next poll. Matches within that time are announced
together. After a reconnect within `RESUME_WINDOW` the stream is resumed from the last event
read (Jetstream's `cursor`, unix microseconds), so a short drop misses nothing; after a longer
one it starts live and the poll covers the gap.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from siaga.redaction import redact_url
from siaga.sources.http import USER_AGENT
from siaga.sources import push, terms
from siaga.sources.terms import Terms, filters_pattern, fold_words, language_matches

log = logging.getLogger(__name__)

PUBLIC_JETSTREAM = "wss://jetstream2.us-east.bsky.network/subscribe"  # one of Bluesky's four public instances
POST = "app.bsky.feed.post"
INDEX_LAG = 5.0  # seconds between Jetstream showing a post and the search finding it (reported as 2-5 s)
RESUME_WINDOW = 60.0  # seconds: resume from the last event after a drop shorter than this (the poll interval)
PING_INTERVAL = 20.0  # a ping every 20 s, and no pong within 20 s closes the connection: a half-open
PING_TIMEOUT = 20.0  # TCP connection never errors by itself
MALFORMED_LOG_EVERY = 1000  # a malformed message is logged once, then every this many

# The websocket's own logger, never below INFO: at DEBUG websockets logs the handshake (the query,
# an Authorization header made of the URL's user:password) and every frame, which here is every
# post of the network.
_WS_LOG = logging.getLogger(__name__ + ".websocket")
_WS_LOG.setLevel(logging.INFO)


# --- the messages: only the fields read here ---------------------------------------------------


class _Record(msgspec.Struct):
    text: str = ""
    langs: list[str] | None = None
    tags: list[str] | None = None  # hashtags written outside the text


class _Commit(msgspec.Struct):
    operation: str = ""
    collection: str = ""
    rkey: str = ""
    record: _Record | None = None


class _Event(msgspec.Struct):
    did: str = ""
    kind: str = ""
    time_us: int = 0
    commit: _Commit | None = None


_DECODER = msgspec.json.Decoder(_Event)


# --- terms: what a source's queries need (`sources.terms`, shared with Mastodon's public stream)

# Filters of Bluesky's search syntax: they narrow by author, language, date, link or mention,
# never by words of the text.
FILTERS = filters_pattern(("from", "to", "mentions", "lang", "domain", "url", "since", "until", "did"))


def query_terms(query: str) -> list[str]:
    """`terms.query_terms` for Bluesky's search syntax."""
    return terms.query_terms(query, FILTERS)


@dataclass
class Filter:
    """Which Jetstream messages announce a post of the source: a created post whose text (or
    hashtags given beside it) matches `terms`, in `language` when the source has one. A post
    that names no language is kept: the search may still return it, and an extra wake-up only
    costs a poll. Called with a message, it answers the post's at-uri, or None.
    `malformed` counts messages that are not a Jetstream event."""

    terms: Terms
    language: str | None = None
    malformed: int = 0
    last_time_us: int = 0  # of the last event read

    def __call__(self, message: bytes | str) -> str | None:
        try:
            event = _DECODER.decode(message)
        except msgspec.DecodeError as exc:  # not JSON, or not the shape of an event
            self.malformed += 1
            if self.malformed % MALFORMED_LOG_EVERY == 1:
                log.warning("push: skipped a malformed Jetstream message (%d so far): %s", self.malformed, str(exc)[:200])
            return None
        if event.time_us > self.last_time_us:
            self.last_time_us = event.time_us
        commit = event.commit
        if event.kind != "commit" or commit is None or commit.operation != "create" or commit.collection != POST:
            return None
        record = commit.record
        if record is None or not record.text and not record.tags:
            return None
        if not language_matches(self.language, record.langs):
            return None
        text = record.text if not record.tags else " ".join([record.text, *record.tags[:20]])
        if not self.terms.may_match(text):
            return None
        words = set(fold_words(text))
        return f"at://{event.did}/{POST}/{commit.rkey}" if self.terms.match_words(words) else None


# --- the stream --------------------------------------------------------------------------------


class _Resume:
    """Where each stream got to, so a reconnect soon after a drop resumes instead of skipping
    what was published meanwhile: (the last event's time_us, the monotonic time it was read)."""

    def __init__(self) -> None:
        self.at: dict[push.PushStream, tuple[int, float]] = {}

    def cursor(self, stream: push.PushStream) -> int | None:
        seen = self.at.get(stream)
        if seen is None or time.monotonic() - seen[1] > RESUME_WINDOW:
            return None
        return seen[0] + 1  # Jetstream replays from the cursor inclusive: the event after the last one read

    def mark(self, stream: push.PushStream, time_us: int) -> None:
        if time_us:
            self.at[stream] = (time_us, time.monotonic())


RESUME = _Resume()


def subscribe_url(url: str, cursor: int | None = None) -> str:
    """The configured Jetstream endpoint asking for posts only, no message larger than we
    accept, and from `cursor` on when resuming; parameters already in it are kept."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if k not in ("wantedCollections", "maxMessageSizeBytes", "cursor", "compress")]
    params += [("wantedCollections", POST), ("maxMessageSizeBytes", str(push.MAX_EVENT_BYTES))]
    if cursor is not None:
        params.append(("cursor", str(cursor)))
    return urlunsplit(parts._replace(query=urlencode(params)))


def check_url(url: str) -> None:
    """A Jetstream endpoint must be a ws:// or wss:// URL with a host; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {redact_url(url)!r}")


async def bluesky_announcements(stream: push.PushStream, client: Any = None, token: Any = None) -> AsyncIterator[str]:
    """The at-uri of every created post on Jetstream that matches the stream's terms (and the
    language the source asks for), `INDEX_LAG` seconds after it was read, until the server
    closes the stream. `client` and `token` are unused: Jetstream is a websocket and public.
    Raises websockets' errors (a refusal, a message over `push.MAX_EVENT_BYTES`, a ping
    unanswered) and TimeoutError when nothing came for `push.IDLE_TIMEOUT` seconds."""
    check_url(stream.url)
    accept = Filter(Terms(stream.terms), stream.language)
    if not accept.terms:
        raise ValueError(f"push: stream of source {stream.source} has no terms to match")
    loop = asyncio.get_running_loop()
    async with connect(subscribe_url(stream.url, RESUME.cursor(stream)), max_size=push.MAX_EVENT_BYTES,
                       ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT, open_timeout=push.CONNECT_TIMEOUT,
                       close_timeout=5, compression="deflate", user_agent_header=USER_AGENT, logger=_WS_LOG) as ws:
        log.info("push: listening to %s for source %s (%d terms)", redact_url(stream.url), stream.source, len(stream.terms))
        due: float | None = None  # when the matches read so far are to be announced
        pending: list[str] = []
        try:
            while True:
                wait = push.IDLE_TIMEOUT if due is None else max(0.0, due - loop.time())
                try:
                    async with asyncio.timeout(wait):
                        message = await ws.recv(decode=False)
                except TimeoutError:
                    if due is None:
                        raise TimeoutError(f"nothing from Jetstream for {push.IDLE_TIMEOUT:.0f} s") from None
                    message = None
                except ConnectionClosed as closed:
                    if pending:  # what was read before the end is still announced, when it is due
                        await asyncio.sleep(max(0.0, due - loop.time()) if due is not None else 0.0)
                        for uri in pending:
                            yield uri
                    if isinstance(closed, ConnectionClosedOK):
                        return
                    raise
                uri = accept(message) if message is not None else None
                if uri is not None:
                    pending.append(uri)
                    due = due if due is not None else loop.time() + INDEX_LAG
                if due is not None and loop.time() >= due:
                    for uri in pending:
                        yield uri
                    due, pending = None, []
        finally:
            RESUME.mark(stream, accept.last_time_us)
            if accept.malformed:
                log.warning("push: %d malformed Jetstream messages skipped on %s for source %s",
                            accept.malformed, redact_url(stream.url), stream.source)
