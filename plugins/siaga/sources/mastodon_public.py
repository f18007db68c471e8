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
the two clocks' phases being random). A run woken at once would find it only on a server that
searches its database directly (Pleroma, Akkoma, GoToSocial; a Mastodon without Elasticsearch
finds no status by its words at all). So each announcement names its status
(`push.status_label`) and the woken run reads the status by id (`GET /api/v1/statuses/:id`,
`MastodonSource.read_announced`), checked against each search as the search itself would
(`search_matcher`, `searched_text`), instead of waiting for the index: the status is stored
seconds after it is published. The search poll finds it again later and the store keeps it
once (same source, same id).

Each match is announced once. Until the by-id read, it was announced again 30, 60 and 90 s
later (`SEARCH_LAGS`) so that a woken run would poll the search soon after the status became
searchable; with the status read by id those repeats find nothing new, and each cost a whole
ingest run (scheduler, worker slot, a search request) beside the detect runs the alert needs.
What the by-id read leaves (a failed read, a search with filters that cannot be checked here)
the one-minute poll finds, as for any source that does not push.

Mastodon's public search holds only the statuses of accounts that opted in to it (`indexable`,
Mastodon 4.2): a status whose account says `indexable: false` wakes nothing (the search will
never return it). One that does not say (an older Mastodon, another server) still wakes a run,
which polls the search; only `indexable: true` is stored by id.
"""
from __future__ import annotations

import html
import logging
import re
from typing import Any, AsyncIterator, Callable

import httpx
import msgspec

from siaga.redaction import redact_url
from siaga.sources import push, terms
from siaga.sources.terms import Terms, filters_pattern, fold_words, language_matches, query_tokens

log = logging.getLogger(__name__)

PROTOCOL = "mastodon_public"
MALFORMED_LOG_EVERY = 1000  # a malformed event is logged once, then every this many

# Filters of Mastodon's search syntax (4.2: SearchQueryTransformer's prefixes, and `in:`, the
# scope): they narrow by author, properties, language, scope or date, never by words.
FILTERS = filters_pattern(("from", "has", "is", "language", "in", "before", "after", "during"))


def query_terms(query: str) -> list[str]:
    """`terms.query_terms` for Mastodon's search syntax. Mastodon requires every word
    (`+word` too), excludes `-word`, matches a quoted phrase and has no OR: a query's one
    alternative is its words."""
    return terms.query_terms(query, FILTERS)


# Query tokens that make a search more than "all these words": Mastodon's search syntax has no OR
# or NOT, but a query written with them (or `-word`, a wildcard, a URL) is not checked here.
_NOT_WORDS = frozenset({"(", ")", "OR", "|", "||", "AND", "&&", "+", "NOT", "-", "!"})


def search_matcher(query: str) -> Callable[[str], bool] | None:
    """Would Mastodon's search for `query` return a status with this text (`status_text`)?
    Every word of the query, whole and folded (`terms.Terms`, the triggerer's own matching),
    and each quoted phrase's words side by side. None for a query this cannot decide: one
    with a filter (`from:`, `has:`, `is:`, `language:`, `in:`, dates: about the author, the
    media, the account's relations, which a status read by id would have to be checked against
    the instance's own notions of), an excluded word, a wildcard, a URL or an operator, or no
    word at all. Such a search is left to the poll: nothing is read by id for it.

    The fold is Siaga's (`normalise.quick_fold`): case, accents and repeated letters
    ("banjirrr") are ignored, where Mastodon's analyzer ignores case and accents and stems
    English words. A status stored by id is therefore one the search returns, but for a word
    written with repeated letters; a word the search would reach only by stemming is left to
    the poll."""
    words: list[str] = []
    phrases: list[str] = []
    for token in query_tokens(query):
        bare = token[1:] if token.startswith("+") and len(token) > 1 else token
        if (token in _NOT_WORDS or bare.startswith("-") or FILTERS.match(bare) or "://" in bare or "*" in bare
                or "?" in bare or (bare.startswith('"') and (len(bare) < 2 or not bare.endswith('"')))):
            return None
        folded = fold_words(bare.strip('"'))
        words += folded
        if bare.startswith('"') and len(folded) > 1:
            phrases.append(" ".join(folded))
    if not words:
        return None
    needed = Terms([" ".join(dict.fromkeys(words))])

    def matches(text: str) -> bool:
        if not needed.match(text):
            return False
        spaced = f" {' '.join(fold_words(text))} "
        return all(f" {phrase} " in spaced for phrase in phrases)

    return matches


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


class _Account(msgspec.Struct):
    indexable: bool | None = None  # Mastodon 4.2+: has the account opted in to public search?


class _Status(msgspec.Struct):
    id: str = ""
    content: str = ""
    spoiler_text: str = ""
    language: str | None = None
    visibility: str | None = None
    account: _Account | None = None
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


def _opted_out(status: _Status) -> bool:
    return status.account is not None and status.account.indexable is False


def searched_text(item: Any, language: str | None = None) -> str | None:
    """The text Mastodon's public search indexes of `item` (a status as the API gives it, read by
    id), when that search may return it at all, else None: a public status, not a boost, by an
    account that opted in to search (`indexable: true`; one that does not say is not taken, as
    an older Mastodon's search does not return other people's statuses), in `language` when
    both name one (`terms.language_matches`, as the triggerer filters). Raises ValueError for
    an item that is not a status (wrong types): bad input, quarantined by the caller."""
    try:
        status = msgspec.convert(item, _Status)
    except msgspec.ValidationError as exc:
        raise ValueError(f"not a Mastodon status: {exc}") from None
    if (status.visibility != "public" or item.get("reblog") is not None or status.account is None
            or status.account.indexable is not True
            or not language_matches(language, [status.language] if status.language else None)):
        return None
    return status_text(status)


class Matcher:
    """Does an `update` event's data announce a status the source's searches may find? A status
    that names no language is kept (`terms.language_matches`); one whose account opted out of
    search (`indexable: false`) is not. `malformed` counts data that is not a status."""

    def __init__(self, terms: Terms, language: str | None = None) -> None:
        self.terms, self.language, self.malformed = terms, language, 0

    def __call__(self, data: str) -> str | None:
        """The status's label (`push.status_label`: it names the status, so the woken run can
        read it by id) when it matches, else None."""
        try:
            status = _DECODER.decode(data)
        except msgspec.DecodeError as exc:  # not JSON, or not the shape of a status
            self.malformed += 1
            if self.malformed % MALFORMED_LOG_EVERY == 1:
                log.warning("push: skipped a malformed Mastodon status (%d so far): %s", self.malformed, str(exc)[:200])
            return None
        if _opted_out(status) or not language_matches(self.language, [status.language] if status.language else None):
            return None
        text = status_text(status)
        if self.terms.may_match(text) and self.terms.match_words(set(fold_words(text))):
            return push.status_label(status.id[:40])
        return None


async def public_announcements(stream: push.PushStream, client: httpx.AsyncClient,
                               token: push.Token = push._token_in_thread) -> AsyncIterator[str]:
    """A label ("status <id>", `push.status_label`) for every status of the public timeline that
    matches the stream's terms (and language), until the server ends the stream. Raises what
    `push.open_mastodon_stream` raises, and ValueError for a stream without terms."""
    accept = Matcher(Terms(stream.terms), stream.language)
    if not accept.terms:
        raise ValueError(f"push: stream of source {stream.source} has no terms to match")
    async with push.open_mastodon_stream(stream, client, token, "the public timeline stream") as source:
        try:
            async for event in source.aiter_sse():
                label = accept(event.data) if event.event in push.UPDATE_EVENTS else None
                if label is not None:
                    yield label
        finally:
            if accept.malformed:
                log.warning("push: %d malformed statuses skipped on %s for source %s",
                            accept.malformed, redact_url(stream.url), stream.source)
