"""Mastodon: public hashtag timelines and status search on configured instances, plain HTTP.

Plain `requests` rather than Mastodon.py: we need four endpoints' worth of reading, our own
bounded retry policy (see http.py) and exact control of paging, which Mastodon.py hides.

Paging goes forward in time with `min_id` ("the statuses immediately newer than this id"), so the
cursor per stream is simply the newest id stored: after an outage the next runs walk through the
gap oldest-first, `max_pages` at a time, and never skip anything. The `Link: rel="prev"` URL is
followed when the server gives one on the same host (never a foreign host: it would get our
token). `X-RateLimit-Remaining: 0` stops paging that instance for this run.

With `push: true` the source's hashtags are also listened to on Mastodon's streaming API
(`sources.push`), so a new status starts an ingest run at once; the poll above still reads it.
Mastodon streams no search: an instance's searches are pushed by its public timeline stream,
filtered in the triggerer to the searches' words (`sources.mastodon_public`, which also says
why a search finds a status only some seconds after it is streamed). Since Mastodon 4.2 both
streams need a user token with `read:statuses`: an instance with searches and `push` without a
`conn_id` is refused; a hashtag stream refused for want of one says so in the triggerer's log.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from siaga.redaction import redact_url
from siaga.sources import auth
from siaga.sources.base import AuthorPolicy, BadInput, IncomingPost, PollResult, SourceConfigError, canonical_url
from siaga.sources.connector import HttpConnector
from siaga.sources.http import SourceError, get_json, policy_from_config, rate_limit
from siaga.sources.parsing import html_text, iso_time, json_text, numeric_id, opt_str
from siaga.sources.mastodon_public import PROTOCOL as PUBLIC, mastodon_public_url, query_terms
from siaga.sources.push import PushStream, mastodon_hashtag_url
from siaga.sources.records import Records, label
from siaga.sources.schema import check_record


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
            url = inst["url"].rstrip("/")
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise SourceConfigError(f"{w}.url: not an http(s) URL: {redact_url(url)!r}")
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
        params: dict[str, Any] | None = self._params(stream, min_id)
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
