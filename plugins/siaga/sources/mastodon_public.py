"""Mastodon push for searches: the instance's public timeline stream, filtered here to the words
of the source's searches.

Mastodon streams a hashtag (`push.mastodon_announcements`) but no search. It does stream the
public timeline, `GET /api/v1/streaming/public`: every public status the instance sees, local
or from the instances it federates with, as an `update` event holding the status. The triggerer
reads it and announces each status whose text holds every word of one of the source's searches
(`terms.Terms`, made by `query_terms` below), in the source's language when it names one; the
ingest run that announcement starts polls the search as always. Nothing from the stream is
stored: the status is only a wake-up.

Federated (`/public`) rather than local (`/public/local`): Mastodon's status search returns
statuses of every account the instance knows, not only its own users', so a local stream would
never announce most of what the search finds. The federated stream of a large instance is
tens of statuses a second; the filter below is cheap enough for that (benchmarks/README.md).
Since Mastodon 4.2 the stream needs a user token with `read:statuses`, so a source with
`push: true` and searches must give that instance a `conn_id` (refused at config load).

What a status offers the filter is what Mastodon's search indexes (`Status#searchable_text`):
the content warning, the text, the poll's options and the media descriptions. The text is
HTML; it is read by dropping every tag (a space in its place) and then unescaping entities,
with a regular expression rather than an HTML parser: Mastodon's sanitizer writes only simple
markup (p, br, a, span), and a fragment read wrong here can only cost a wake-up too many or
leave a status to the poll a minute later; nothing read here is stored or shown.

When the search finds a status: Mastodon (4.2 and later) queues a new status for its search
index and indexes the queue once a minute, and the index is refreshed every 30 s (mastodon
PR #26304), so a status becomes searchable 0-90 s after it is published (about 75 s at p95,
the two clocks' phases being random). A run woken at once finds it only on a server that
searches its database directly (Pleroma, Akkoma, GoToSocial; a Mastodon without Elasticsearch
finds no status by its words at all). So each match is announced at once and again
`SEARCH_LAGS` seconds later: the post is read within about 30 s of becoming searchable instead
of at the first poll after that (up to a minute), at the cost of a few more runs per matching
status (the announcements of close matches fold into one wake-up, `push.GAP`). The repeats
still due survive a reconnect; while the stream is down the poll covers. Mastodon's public
search also holds only the statuses of accounts that opted in to it (`indexable`): a match by
anyone else wakes runs that find nothing, a search request each.
"""
from __future__ import annotations

import asyncio
import heapq
import html
import logging
import re
import time
from typing import AsyncIterator

import httpx
import msgspec
from httpx_sse import ServerSentEvent

from siaga.redaction import redact_url
from siaga.sources import push, terms
from siaga.sources.terms import Terms, filters_pattern, fold_words, language_matches

log = logging.getLogger(__name__)

PROTOCOL = "mastodon_public"
SEARCH_LAGS = (0.0, 30.0, 60.0, 90.0)  # seconds after a match at which it is announced (see above)
MALFORMED_LOG_EVERY = 1000  # a malformed event is logged once, then every this many

# Filters of Mastodon's search syntax (4.2: SearchQueryTransformer's prefixes, and `in:`, the
# scope): they narrow by author, properties, language, scope or date, never by words.
FILTERS = filters_pattern(("from", "has", "is", "language", "in", "before", "after", "during"))


def query_terms(query: str) -> list[str]:
    """`terms.query_terms` for Mastodon's search syntax. Mastodon requires every word
    (`+word` too), excludes `-word`, matches a quoted phrase and has no OR: a query's one
    alternative is its words."""
    return terms.query_terms(query, FILTERS)


def mastodon_public_url(instance: str) -> str:
    """Mastodon's federated public timeline stream, served on the instance's own host by
    Mastodon's standard proxy set-up (`push.streaming_url` moves it to a declared server)."""
    return f"{instance.rstrip('/')}/api/v1/streaming/public"


# --- the statuses: only the fields read here -------------------------------------------------


class _Media(msgspec.Struct):
    description: str | None = None


class _Option(msgspec.Struct):
    title: str = ""


class _Poll(msgspec.Struct):
    options: list[_Option] = msgspec.field(default_factory=list)


class _Status(msgspec.Struct):
    id: str = ""
    content: str = ""
    spoiler_text: str = ""
    language: str | None = None
    media_attachments: list[_Media] = msgspec.field(default_factory=list)
    poll: _Poll | None = None


_DECODER = msgspec.json.Decoder(_Status)
_TAG = re.compile(r"<[^>]*>")


def html_words(content: str) -> str:
    """The text of a status's HTML as the filter reads it: tags dropped (a space in each one's
    place, so paragraphs and line breaks still part words), entities unescaped."""
    return html.unescape(_TAG.sub(" ", content)) if "<" in content or "&" in content else content


def status_text(status: _Status) -> str:
    """What Mastodon's search indexes of a status: content warning, text, poll options, media
    descriptions."""
    parts = [status.spoiler_text, html_words(status.content)]
    if status.poll is not None:
        parts += [option.title for option in status.poll.options]
    parts += [media.description for media in status.media_attachments if media.description]
    return "\n".join(parts)


class Matcher:
    """Does an `update` event's data announce a status the source's searches may find? A status
    that names no language is kept (`terms.language_matches`). `malformed` counts data that is
    not a status."""

    def __init__(self, terms: Terms, language: str | None = None) -> None:
        self.terms, self.language, self.malformed = terms, language, 0

    def __call__(self, data: str) -> str | None:
        """The status's label ("status <id>") when it matches, else None."""
        try:
            status = _DECODER.decode(data)
        except msgspec.DecodeError as exc:  # not JSON, or not the shape of a status
            self.malformed += 1
            if self.malformed % MALFORMED_LOG_EVERY == 1:
                log.warning("push: skipped a malformed Mastodon status (%d so far): %s", self.malformed, str(exc)[:200])
            return None
        if not language_matches(self.language, [status.language] if status.language else None):
            return None
        text = status_text(status)
        if self.terms.may_match(text) and self.terms.match_words(set(fold_words(text))):
            return f"status {status.id[:40]}"
        return None


class _Schedule:
    """The announcements still due on one stream: (monotonic time, label), a heap. Every match
    is announced at once; its repeats are skipped when the last match's were scheduled less
    than `push.GAP` before (they would fold into the same wake-ups), so a busy search keeps at
    most a few per `GAP` pending."""

    def __init__(self) -> None:
        self.due: list[tuple[float, str]] = []
        self.last = float("-inf")  # when the last repeats were scheduled

    def add(self, now: float, label: str) -> None:
        repeat = now - self.last >= push.GAP
        for lag in SEARCH_LAGS:
            if lag <= 0 or repeat:
                heapq.heappush(self.due, (now + lag, label))
        if repeat:
            self.last = now

    def wait(self) -> float | None:
        """Seconds until the next announcement is due; None when none is."""
        return max(0.0, self.due[0][0] - time.monotonic()) if self.due else None

    def take(self) -> list[str]:
        """The labels due now (removed), in the order due."""
        now, labels = time.monotonic(), []
        while self.due and self.due[0][0] <= now:
            labels.append(heapq.heappop(self.due)[1])
        return labels


# Kept across reconnects: the repeats of a match read before a drop are still announced.
_SCHEDULES: dict[push.PushStream, _Schedule] = {}


async def _next(events: AsyncIterator[ServerSentEvent]) -> ServerSentEvent | None:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def public_announcements(stream: push.PushStream, client: httpx.AsyncClient,
                               token: push.Token = push._token_in_thread) -> AsyncIterator[str]:
    """A label ("status <id>") for every status of the public timeline that matches the stream's terms (and
    language), at once and `SEARCH_LAGS` later, until the server ends the stream. Raises what
    `push.open_mastodon_stream` raises, and ValueError for a stream without terms."""
    accept = Matcher(Terms(stream.terms), stream.language)
    if not accept.terms:
        raise ValueError(f"push: stream of source {stream.source} has no terms to match")
    schedule = _SCHEDULES.setdefault(stream, _Schedule())
    async with push.open_mastodon_stream(stream, client, token, "the public timeline stream") as source:
        events = source.aiter_sse()
        pending = asyncio.ensure_future(_next(events))
        try:
            while True:
                done, _ = await asyncio.wait({pending}, timeout=schedule.wait())
                if pending in done:
                    event = pending.result()
                    if event is None:
                        return
                    pending = asyncio.ensure_future(_next(events))
                    label = accept(event.data) if event.event in push.UPDATE_EVENTS else None
                    if label is not None:
                        schedule.add(time.monotonic(), label)
                for label in schedule.take():
                    yield label
        finally:
            pending.cancel()
            if accept.malformed:
                log.warning("push: %d malformed statuses skipped on %s for source %s",
                            accept.malformed, redact_url(stream.url), stream.source)
