"""Mastodon: public hashtag timelines and status search on configured instances, plain HTTP.

Plain `requests` rather than Mastodon.py: we need four endpoints' worth of reading, our own
bounded retry policy (see http.py) and exact control of paging, which Mastodon.py hides.

Paging goes forward in time with `min_id` ("the statuses immediately newer than this id"), so the
cursor per stream is simply the newest id stored: after an outage the next runs walk through the
gap oldest-first, `max_pages` at a time, and never skip anything. The `Link: rel="prev"` URL is
followed when the server gives one on the same host (never a foreign host: it would get our
token). `X-RateLimit-Remaining: 0` stops paging that instance for this run.

A search is the exception: its index is not in id order. Mastodon indexes a new status 0-90 s
after it is published (`mastodon_public`), so a status with a lower id can become searchable
after one with a higher id, and a cursor at the newest id found would step over it for good
(A, id 100, indexed at 80 s; B, id 110, at 20 s; a poll at 30 s finds B, and `min_id=110` never
returns A). So a search is asked from `LOOK_BACK` before its cursor: Mastodon's ids are the
status's creation time in milliseconds shifted left 16 bits (plus a sequence), so lowering the
id by `LOOK_BACK` of milliseconds asks again for everything published in those minutes. The
statuses read again are stored once (the store keeps one post per source and id; quarantine
one row per content), so they count as duplicates, never as new posts. The cursor itself stays
the newest id read. Only the first page looks back (the oldest `limit` statuses of those
minutes); the next page goes on from the cursor, so a search busier than a page per
`LOOK_BACK` still moves forward every run, at the cost of looking back over part of the window
only. A hashtag timeline is in id order: no look-back.

With `push: true` the source's hashtags are also listened to on Mastodon's streaming API
(`sources.push`), so a new status starts an ingest run at once; the poll above still reads it.
Mastodon streams no search: an instance's searches are pushed by its public timeline stream,
filtered in the triggerer to the searches' words (`sources.mastodon_public`, which also says
why a search finds a status only some seconds after it is streamed). Since Mastodon 4.2 both
streams need a user token with `read:statuses`: an instance with searches and `push` without a
`conn_id` is refused; a hashtag stream refused for want of one says so in the triggerer's log.

The public timeline stream names the statuses it announces, and the run it wakes reads them by
id (`read_announced`) rather than waiting for the search index to catch up.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Collection, Iterable
from urllib.parse import quote, urlsplit

import requests

from siaga.redaction import redact_url
from siaga.sources import auth
from siaga.sources.base import AuthorPolicy, BadInput, IncomingPost, PollResult, SourceConfigError, canonical_url
from siaga.sources.connector import HttpConnector, http_url
from siaga.sources.http import SourceError, get_json, json_body, policy_from_config, rate_limit, request
from siaga.sources.parsing import html_text, iso_time, json_text, numeric_id, opt_str
from siaga.sources.mastodon_public import PROTOCOL as PUBLIC, mastodon_public_url, query_terms, search_matcher, searched_text
from siaga.sources.push import Announced, PushStream, mastodon_hashtag_url
from siaga.sources.records import Records, label
from siaga.sources.schema import check_record

log = logging.getLogger(__name__)

# How far before its cursor a search is asked again (see above): more than the index's lag
# (90 s at most on Mastodon 4.2), with a margin for a slow indexing queue.
LOOK_BACK = timedelta(minutes=2)
# The most statuses one run reads by id (the newest announced): each is a request, made after the
# poll; more than this at once is a burst the search poll reads anyway.
MAX_READ_BY_ID = 10
# Reading by id is a shortcut, never a wait: one retry, short waits, whatever the source's own
# `http:` policy allows its poll.
BY_ID_ATTEMPTS = 2
BY_ID_MAX_WAIT = 2.0
_GONE_OR_FOUND = (200, 404, 410)  # a status deleted since it was streamed is no failure


@dataclass(frozen=True)
class Stream:
    instance: str  # https://host
    kind: str  # tag | search
    term: str
    conn_id: str | None = None

    @property
    def key(self) -> str:
        return f"{urlsplit(redact_url(self.instance)).netloc}/{self.kind}:{self.term}"

    @property
    def url(self) -> str:
        if self.kind == "tag":
            return f"{self.instance}/api/v1/timelines/tag/{quote(self.term, safe='')}"
        return f"{self.instance}/api/v2/search"


@dataclass
class MastodonSource(HttpConnector):
    name: str
    streams: list[Stream]
    limit: int = 40
    max_pages: int = 5
    language: str | None = None
    push: bool = False

    @classmethod
    def from_config(cls, entry: dict[str, Any], base_dir: Any, where: str) -> "MastodonSource":
        instances = entry.get("instances")
        if not isinstance(instances, list) or not instances:
            raise SourceConfigError(f"{where}.instances: a mastodon source needs a list of instances")
        streams: list[Stream] = []
        for i, inst in enumerate(instances):
            w = f"{where}.instances[{i}]"
            if not isinstance(inst, dict) or not isinstance(inst.get("url"), str):
                raise SourceConfigError(f"{w}.url: expected the instance URL")
            url = http_url(inst["url"].rstrip("/"), f"{w}.url")
            for kind, key in (("tag", "hashtags"), ("search", "searches")):
                terms = inst.get(key) or []
                if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
                    raise SourceConfigError(f"{w}.{key}: expected a list of strings")
                streams += [Stream(url, kind, t.strip().lstrip("#") if kind == "tag" else t.strip(), inst.get("conn_id")) for t in terms]
        if not streams:
            raise SourceConfigError(f"{where}.instances: no hashtags or searches configured")
        push = entry.get("push", False)
        if push:
            _check_push(streams, f"{where}.push")
        return cls(
            name=entry["name"],
            streams=streams,
            limit=int(entry.get("limit", 40)),
            max_pages=int(entry.get("max_pages", 5)),
            language=entry.get("language"),
            push=bool(push),
            authors=AuthorPolicy.from_config(entry, where),
            policy=policy_from_config(entry, where),
        )

    def push_streams(self) -> list[PushStream]:
        """The streams that announce this source's new statuses (none without `push`): one per
        hashtag, and one public timeline per instance whose searches hold words, filtered to
        them (`mastodon_public`)."""
        if not self.push:
            return []
        pushed = [PushStream(self.name, mastodon_hashtag_url(s.instance, s.term), s.conn_id) for s in self.streams if s.kind == "tag"]
        for instance, (conn_id, terms) in _search_terms(self.streams).items():
            if terms:
                pushed.append(PushStream(self.name, mastodon_public_url(instance), conn_id, PUBLIC, terms, self.language))
        return pushed

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult:
        state: dict[str, Any] = dict((cursor or {}).get("streams") or {})
        posts: list[IncomingPost] = []
        bad: list[BadInput] = []
        failed: list[str] = []
        exhausted: set[str] = set()  # instances whose rate limit ran out this run
        for stream in self.streams:
            if stream.instance in exhausted:
                continue
            try:
                got, got_bad, newest, out_of_quota = self._poll_stream(stream, state.get(stream.key) or {}, now)
            except SourceError as exc:
                failed.append(f"{stream.key}: {exc}")
                continue
            except _PartialFailure as part:  # keep what came before the bad page
                got, got_bad, newest, out_of_quota = part.posts, part.bad, part.newest, False
                failed.append(f"{stream.key}: {part.reason}")
            posts += got
            bad += got_bad
            if newest is not None:
                state[stream.key] = {"min_id": str(newest)}
            if out_of_quota:
                exhausted.add(stream.instance)
        return PollResult(posts=posts, bad=bad, cursor={"streams": state}, failed=failed)

    def _poll_stream(self, stream: Stream, state: dict[str, Any], now: datetime) -> tuple[list[IncomingPost], list[BadInput], int | None, bool]:
        headers = {}
        if stream.conn_id:
            headers["Authorization"] = f"Bearer {auth.token(stream.conn_id)}"
        min_id = state.get("min_id")
        newest: int | None = int(min_id) if min_id else None
        posts: list[IncomingPost] = []
        bad: list[BadInput] = []
        url: str | None = stream.url
        params: dict[str, Any] | None = self._params(stream, looked_back(min_id) if stream.kind == "search" else min_id)
        for page in range(self.max_pages):
            where = f"{stream.key} after {newest or 'start'}"
            try:
                body, resp = get_json(self.session, url, params=params, headers=headers, policy=self.policy, sleep=self.sleep, what=where)
            except ValueError as exc:  # malformed page: quarantine it, stop, and fail so it is retried
                bad.append(BadInput(where, str(exc), ""))
                raise _PartialFailure(posts, bad, newest, str(exc)) from None
            items = body.get("statuses") if stream.kind == "search" and isinstance(body, dict) else body
            if not isinstance(items, list):
                bad.append(BadInput(where, "expected a list of statuses", json_text(body)))
                raise _PartialFailure(posts, bad, newest, "expected a list of statuses")
            records = Records(now)
            for i, item in enumerate(items):
                records.take(lambda: self._where(stream, item, where, i), item, lambda: self.parse(item, stream, now))
            posts += records.posts
            bad += records.bad
            # Past every status of the page, good or bad: a bad status is quarantined, not re-read.
            ids = [sid for sid in map(_status_id, items) if sid is not None]
            if ids:
                newest = max([newest or 0, *ids])
            if not items or min_id is None:
                break  # caught up, or the first run: start from the newest page, no deep history
            if rate_limit(resp.headers).exhausted:
                return posts, bad, newest, True
            url, params = self._next(resp, stream, newest)
        return posts, bad, newest, False

    def read_announced(self, announced: Iterable[Announced], now: datetime,
                       skip: Collection[str] = ()) -> tuple[list[IncomingPost], list[BadInput]]:
        """The statuses a public timeline stream announced (`push.Announced`), read by id
        (`GET /api/v1/statuses/:id`, with the instance's token), stored as posts of the first of
        the instance's searches that returns them: `parse` with that search's stream, so each
        post is the one the search finds later (same id; the store keeps one). Only what the
        search would return is kept (`searched_text`, `search_matcher`); searches that cannot
        be checked here are not read for. `skip`: source ids the poll already read.

        Never fails the run and never moves a cursor (the search's cursor is how far the
        search has been read; see the module's docstring). At most `MAX_READ_BY_ID` reads,
        each with a short retry (`BY_ID_ATTEMPTS`, `BY_ID_MAX_WAIT`): a status gone (404) is
        skipped, a server failing (5xx, a timeout, a refusal) ends the reads on that instance
        for this run, a body that is not a status is quarantined; the search poll still
        finds every one of them once indexed."""
        by_url = {redact_url(mastodon_public_url(s.instance)): s.instance for s in self.streams if s.kind == "search"}
        wanted: dict[str, dict[str, None]] = {}  # instance -> ids, oldest first
        for a in announced:
            instance = by_url.get(a.stream)
            if instance is not None:
                wanted.setdefault(instance, {}).update(dict.fromkeys(a.ids))
        records = Records(now)
        budget = MAX_READ_BY_ID
        for instance, ids in wanted.items():
            searches = [(s, m) for s in self.streams if s.instance == instance and s.kind == "search"
                        for m in [search_matcher(s.term)] if m is not None]
            host = urlsplit(instance).netloc
            unread = [i for i in ids if f"{host}:{i}" not in skip] if searches else []
            todo = unread[max(len(unread) - budget, 0):]  # the newest `budget` (none once it is spent)
            budget -= len(todo)
            for sid in reversed(todo):  # newest first: the latest report matters most
                if not self._read_one(instance, sid, searches, records, now):
                    break
        return records.posts, records.bad

    def _read_one(self, instance: str, sid: str, searches: list[tuple[Stream, Any]], records: Records, now: datetime) -> bool:
        """Read status `sid` into `records` when one of `searches` would return it. False when
        the instance failed (stop reading it this run)."""
        stream = searches[0][0]
        where = f"{stream.key.split('/', 1)[0]}/statuses/{sid}"
        headers = {"Authorization": f"Bearer {auth.token(stream.conn_id)}"} if stream.conn_id else {}
        policy = replace(self.policy, attempts=min(self.policy.attempts, BY_ID_ATTEMPTS),
                         max_wait=min(self.policy.max_wait, BY_ID_MAX_WAIT))
        what = f"{where} (read by id)"
        try:
            resp = request(self.session, f"{instance}/api/v1/statuses/{sid}", headers=headers, policy=policy,
                           ok=_GONE_OR_FOUND, sleep=self.sleep, what=what)
        except SourceError as exc:  # the message names the status, never the token
            log.warning("%s: %s; not read by id, the search poll will find it", self.name, exc)
            return False
        if resp.status_code != 200:  # deleted (or made private) since it was streamed
            log.info("%s: %s: HTTP %d, not read", self.name, where, resp.status_code)
            return True
        try:
            item = json_body(resp, what)
        except ValueError as exc:  # a body that is not JSON: quarantined like a bad page
            records.bad.append(BadInput(where, str(exc), ""))
            return True

        def parse() -> list[IncomingPost]:
            if not isinstance(item, dict) or str(item.get("id")) != sid:
                raise ValueError(f"expected the status {sid}")
            text = searched_text(item, self.language)
            found = next((s for s, matches in searches if text is not None and matches(text)), None)
            return self.parse(item, found, now) if found is not None else []

        records.take(where, item, parse)
        return True

    def _params(self, stream: Stream, min_id: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": self.limit}
        if stream.kind == "search":
            params.update(q=stream.term, type="statuses", resolve="false")
        if min_id:
            params["min_id"] = min_id
        return params

    def _next(self, resp: requests.Response, stream: Stream, newest: int | None) -> tuple[str, dict[str, Any] | None]:
        prev = (resp.links.get("prev") or {}).get("url")
        try:
            same_host = bool(prev) and urlsplit(prev)[:2] == urlsplit(stream.instance)[:2]
        except ValueError:  # a Link header that is no URL: page by min_id instead
            same_host = False
        if same_host:
            return prev, None
        return stream.url, self._params(stream, str(newest) if newest else None)

    @staticmethod
    def _where(stream: Stream, item: Any, page: str, i: int) -> str:
        sid = label(item.get("id")) if isinstance(item, dict) else None
        return f"{stream.key}:status {sid}" if sid else f"{page} item {i}"

    def parse(self, item: Any, stream: Stream, now: datetime) -> list[IncomingPost]:
        """One status as posts: a boost yields the boosted status and the boost linked to it."""
        if not isinstance(item, dict):
            raise ValueError("expected a status object")
        check_record(item)
        numeric_id(item.get("id"), "id")
        reblog = item.get("reblog")
        if isinstance(reblog, dict):
            original = self._post(reblog, stream, now, field_prefix="reblog.")
            boost = self._post({**reblog, "id": item["id"], "account": item.get("account"), "created_at": item.get("created_at"),
                                "url": item.get("uri") or item.get("url"), "uri": item.get("uri")}, stream, now)
            return [original, replace(boost, reposts=original.canonical_url)]
        post = self._post(item, stream, now)
        quote = item.get("quote") if isinstance(item.get("quote"), dict) else {}
        quoted = quote.get("quoted_status") if isinstance(quote.get("quoted_status"), dict) else {}
        quoted_url = canonical_url(opt_str(quoted.get("url")) or opt_str(quoted.get("uri")))
        return [replace(post, reposts=quoted_url)] if quoted_url else [post]

    def _post(self, item: dict[str, Any], stream: Stream, now: datetime, field_prefix: str = "") -> IncomingPost:
        sid = numeric_id(item.get("id"), field_prefix + "id")
        created = iso_time(item.get("created_at"), field_prefix + "created_at", now)
        content = item.get("content")
        if not isinstance(content, str):
            raise ValueError(f"field '{field_prefix}content' must be a string")
        text = html_text(content)
        spoiler = item.get("spoiler_text")
        if isinstance(spoiler, str) and spoiler.strip():
            text = f"{spoiler.strip()}\n{text}"
        if not text:
            raise ValueError(f"field '{field_prefix}content' is empty")
        account = item.get("account") if isinstance(item.get("account"), dict) else {}
        acct = opt_str(account.get("acct"))
        host = urlsplit(stream.instance).netloc
        if acct and "@" not in acct:
            acct = f"{acct}@{host}"  # local accounts are written without their instance
        author, pseudonymised = self.authors.apply(acct, self.key)
        url = opt_str(item.get("url")) or opt_str(item.get("uri"))
        lang = opt_str(item.get("language"))
        return IncomingPost(
            source=self.name,
            source_id=f"{host}:{sid}",
            created_at=created,
            text=text,
            author=author,
            url=url,
            lat=None,
            lon=None,
            # Only what later stages need: no account object (names, avatars, bios). The post's
            # URL (its own column) still names the account: staff need the link to the evidence.
            raw={"instance": host, "id": str(sid), "language": lang,
                 "tags": [t.get("name") for t in _list(item.get("tags")) if isinstance(t, dict) and isinstance(t.get("name"), str)][:50],
                 "visibility": opt_str(item.get("visibility")), "stream": stream.key,
                 "language_matches": None if not (self.language and lang) else lang == self.language},
            author_pseudonymised=pseudonymised,
        )



def _search_terms(streams: list[Stream]) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """Per instance with searches (in the order configured): its conn_id and the words its
    public timeline is filtered to (`mastodon_public.query_terms` of every search)."""
    found: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    for s in streams:
        if s.kind == "search":
            conn_id, terms = found.get(s.instance, (s.conn_id, ()))
            found[s.instance] = (conn_id, tuple(dict.fromkeys([*terms, *query_terms(s.term)])))
    return found


def _check_push(streams: list[Stream], where: str) -> None:
    """`push: true` must have something to listen to, and every public timeline it would open
    a token: since Mastodon 4.2 the public stream refuses anonymous listeners."""
    searched = _search_terms(streams)
    for instance, (conn_id, terms) in searched.items():
        if terms and not conn_id:
            raise SourceConfigError(
                f"{where}: the searches of {redact_url(instance)} are pushed by its public timeline stream, which since "
                "Mastodon 4.2 needs a user token with read:statuses; give that instance a conn_id or drop push")
    if not any(s.kind == "tag" for s in streams) and not any(terms for _, terms in searched.values()):
        raise SourceConfigError(f"{where}: nothing to listen to: hashtags are streamed, and searches once they hold a "
                                "word (a search of filters only, such as from:, is polled only); add hashtags or drop push")


def looked_back(min_id: str | None) -> str | None:
    """A search's cursor lowered by `LOOK_BACK` of Mastodon's id space (milliseconds << 16),
    never below 0; None (the first run) stays None."""
    if not min_id:
        return min_id
    return str(max(int(min_id) - (int(LOOK_BACK.total_seconds() * 1000) << 16), 0))


def _status_id(item: Any) -> int | None:
    try:
        return numeric_id(item.get("id"), "id") if isinstance(item, dict) else None
    except ValueError:
        return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _PartialFailure(Exception):
    def __init__(self, posts: list[IncomingPost], bad: list[BadInput], newest: int | None, reason: str):
        super().__init__(reason)
        self.posts, self.bad, self.newest, self.reason = posts, bad, newest, reason
