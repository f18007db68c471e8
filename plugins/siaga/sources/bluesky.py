"""Bluesky: `app.bsky.feed.searchPosts` on the public AppView, one sweep per configured query.

Plain `requests` rather than the atproto SDK: one unauthenticated GET endpoint does not justify
a dependency with its own pinned pydantic. Results come newest-first with an opaque `cursor`;
the per-query cursor is a sweep (see paging.py) over the post's index time (`indexedAt`), which
the server sets, unlike `createdAt`, which the author's client writes and can forge.

With `push: true` the source also listens to Jetstream (`sources.jetstream`, at `jetstream:`,
by default Bluesky's public instance), every post of the network, for posts holding the words
of its queries, so a new one starts an ingest run at once; the poll above still reads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any


from siaga.redaction import redact_url
from siaga.sources import auth
from siaga.sources.base import AuthorPolicy, IncomingPost, PollResult, SourceConfigError, canonical_url
from siaga.sources.connector import HttpConnector, http_url, string_list
from siaga.sources.http import get_json, policy_from_config, rate_limit
from siaga.sources.jetstream import PUBLIC_JETSTREAM, check_url, query_terms
from siaga.sources.paging import Page, sweep_queries
from siaga.sources.push import PushStream
from siaga.sources.parsing import iso_time, opt_str, parse_time
from siaga.sources.records import Records, label
from siaga.sources.schema import MAX_TEXT, check_record, storable

PUBLIC_APPVIEW = "https://public.api.bsky.app"
# How far below its mark each sweep reads again. A guess, not a measurement of the AppView:
# longer than the few seconds a post reportedly takes to become searchable (jetstream.INDEX_LAG),
# and cheap, since the public AppView bills nothing and re-read posts are duplicates the store ignores.
LOOKBACK = timedelta(seconds=30)


def web_url(at_uri: str | None) -> str | None:
    """at://did:plc:x/app.bsky.feed.post/rkey -> https://bsky.app/profile/did:plc:x/post/rkey"""
    if not at_uri or not at_uri.startswith("at://"):
        return None
    parts = at_uri[5:].split("/")
    if len(parts) != 3 or parts[1] != "app.bsky.feed.post":
        return None
    return f"https://bsky.app/profile/{parts[0]}/post/{parts[2]}"


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _load(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class BlueskySource(HttpConnector):
    name: str
    queries: list[str]
    appview: str = PUBLIC_APPVIEW
    language: str | None = None
    limit: int = 100
    max_pages: int = 5
    conn_id: str | None = None  # the public AppView needs none
    push: bool = False
    jetstream: str = PUBLIC_JETSTREAM

    @classmethod
    def from_config(cls, entry: dict[str, Any], base_dir: Any, where: str) -> "BlueskySource":
        queries = string_list(entry, "queries", where, "a bluesky source needs a list of query strings")
        jetstream = str(entry.get("jetstream", PUBLIC_JETSTREAM))
        try:
            check_url(jetstream)
        except ValueError as exc:
            raise SourceConfigError(f"{where}.jetstream: {exc}") from None
        push = bool(entry.get("push", False))
        if push and not any(query_terms(q) for q in queries):
            raise SourceConfigError(f"{where}.push: no query has a word to listen for (filters such as from: or lang: "
                                    "alone cannot be told from the stream); add words or drop push")
        return cls(
            name=entry["name"],
            queries=queries,
            appview=http_url(entry.get("appview", PUBLIC_APPVIEW), f"{where}.appview").rstrip("/"),
            language=entry.get("language"),
            limit=int(entry.get("limit", 100)),
            max_pages=int(entry.get("max_pages", 5)),
            conn_id=entry.get("conn_id"),
            push=push,
            jetstream=jetstream,
            authors=AuthorPolicy.from_config(entry, where),
            policy=policy_from_config(entry, where),
        )

    def push_streams(self) -> list[PushStream]:
        """The Jetstream stream that announces this source's new posts (none without `push`):
        one for all its queries, since Jetstream sends every post to every listener. A query
        with no word to match (filters only) is polled only."""
        if not self.push:
            return []
        terms = tuple(dict.fromkeys(t for q in self.queries for t in query_terms(q)))
        return [PushStream(self.name, self.jetstream, None, "bluesky", terms, self.language)]

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult:
        return sweep_queries(self.queries, cursor, lambda q, high, until, token: self._page(q, high, until, token, now),
                             self.max_pages, _load, _iso, self.appview, lookback=lambda high: high - LOOKBACK)

    def _page(self, query: str, high: datetime | None, until: datetime | None, token: str | None, now: datetime) -> Page:
        params: dict[str, Any] = {"q": query, "sort": "latest", "limit": self.limit}
        if self.language:
            params["lang"] = self.language
        if high is not None:
            params["since"] = _iso(high)
        if until is not None:
            params["until"] = _iso(until)
        if token:
            params["cursor"] = token
        headers = {"Authorization": f"Bearer {auth.token(self.conn_id)}"} if self.conn_id else None
        where = f"{redact_url(self.appview)} q={query!r} until={params.get('until', 'now')}"
        body, resp = get_json(self.session, f"{self.appview}/xrpc/app.bsky.feed.searchPosts", params=params,
                              headers=headers, policy=self.policy, sleep=self.sleep, what=where)
        if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
            raise ValueError(f"{where}: expected an object with a 'posts' list")
        page = Page([], [], [], opt_str(body.get("cursor")), rate_limit(resp.headers).exhausted)
        records = Records(now)
        for i, item in enumerate(body["posts"]):
            records.take(lambda: self._where(item, where, i), item, lambda: self.parse(item, now)[0])
            mark = _index_time(item, now)
            if mark is not None:  # the sweep moves past every post it read, good or quarantined
                page.marks.append(mark)
        page.posts, page.bad = records.posts, records.bad
        return page

    @staticmethod
    def _where(item: Any, page: str, i: int) -> str:
        uri = label(item.get("uri")) if isinstance(item, dict) else None
        return f"bluesky:{uri}" if uri else f"{page} item {i}"

    def parse(self, item: Any, now: datetime) -> tuple[IncomingPost, datetime]:
        """A PostView as a post, and its index time (the sweep's mark)."""
        if not isinstance(item, dict):
            raise ValueError("expected a post object")
        check_record(item)
        uri = item.get("uri")
        url = web_url(uri if isinstance(uri, str) else None)
        if url is None:
            raise ValueError(f"field 'uri': not a post at-uri: {storable(str(uri)[:80])!r}")
        record = item.get("record")
        if not isinstance(record, dict):
            raise ValueError("field 'record' must be an object")
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("field 'record.text' is missing or empty")
        indexed = iso_time(item.get("indexedAt"), "indexedAt", now)
        # The author's client writes createdAt and may backdate it or run fast; a post cannot
        # have been written after the server indexed it, so a later createdAt counts as indexed.
        created = parse_time(record.get("createdAt"), "record.createdAt") if record.get("createdAt") else indexed
        author_obj = item.get("author") if isinstance(item.get("author"), dict) else {}
        handle = opt_str(author_obj.get("handle")) or opt_str(author_obj.get("did"))
        author, pseudonymised = self.authors.apply(handle, self.key)
        langs = record.get("langs") if isinstance(record.get("langs"), list) else []
        return IncomingPost(
            source=self.name,
            source_id=uri,
            created_at=min(created, indexed),
            text=text[:MAX_TEXT],
            author=author,
            url=url,
            lat=None,
            lon=None,
            raw={"uri": uri, "cid": opt_str(item.get("cid")), "indexedAt": item.get("indexedAt"),
                 "langs": [lang for lang in langs if isinstance(lang, str)][:5],
                 "repostCount": _count(item.get("repostCount")), "quoteCount": _count(item.get("quoteCount"))},
            reposts=canonical_url(web_url(_quoted_uri(item))),
            author_pseudonymised=pseudonymised,
        ), indexed


def _index_time(item: Any, now: datetime) -> datetime | None:
    """A post's index time when it is a valid one (never in the future: a mark ahead of now
    would make the next sweep skip everything indexed until then)."""
    try:
        return iso_time(item.get("indexedAt"), "indexedAt", now) if isinstance(item, dict) else None
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else None


def _quoted_uri(item: dict[str, Any]) -> str | None:
    """The post a quote-post embeds (record, or record-with-media), from the view or the record."""
    for embed in (item.get("embed"), (item.get("record") or {}).get("embed")):
        if not isinstance(embed, dict):
            continue
        rec = embed.get("record")
        if isinstance(rec, dict) and isinstance(rec.get("record"), dict):  # recordWithMedia
            rec = rec["record"]
        if isinstance(rec, dict) and isinstance(rec.get("uri"), str):
            return rec["uri"]
    return None
