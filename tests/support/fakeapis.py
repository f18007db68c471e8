"""Fake Mastodon, Bluesky AppView, X API v2 and RSS endpoints on 127.0.0.1 for connector tests.

The responses have the real APIs' shapes (field names, paging parameters, Link and rate-limit
headers) and hand-made Indonesian content about Buleleng. Paging is computed from the data like
the real servers do (`min_id`/`max_id` on Mastodon, `since`/`until`/`cursor` on Bluesky,
`since_id`/`until_id`/`next_token` on X), so tests exercise the connectors' cursors rather than
canned page sequences. A Mastodon status can also be read by id (`/api/v1/statuses/:id`), and
the search returns only statuses of accounts that did not opt out of it (`indexable`). Mastodon's hashtag streaming endpoint (Server-Sent Events) announces each
status added after a listener connected, with heartbeats in between, and its public timeline
stream every status of every hashtag (to a listener with a token, as Mastodon 4.2 requires); `drop_streams` hangs up on
every listener, as a server restart does. X's filtered stream likewise delivers each tweet added
after a listener connected that matches one of the app's rules (kept, listed, added and deleted
through the rules endpoint, every call recorded in `rule_calls`), as a JSON line carrying its
`matching_rules`, with `\r\n` keep-alives in between. Failures are programmed per path prefix for the next N requests: 429 with
Retry-After, 500, a hang longer than the client's timeout, malformed JSON, a body of the wrong
shape, a body without end, the real response dripped a byte at a time. An item may also be `Raw` bytes served exactly (hostile JSON no encoder writes: deep
nesting, NaN, huge integers, lone surrogates, bytes that are not UTF-8) among the ordinary ones,
and a feed may be bytes. Standard library only, like `siaga_dev.fakeslack`, for the same
reasons.
"""
from __future__ import annotations

import json
import math
import queue
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from siaga.sources.http import HttpPolicy

T0 = datetime(2026, 1, 15, 0, 0, tzinfo=timezone.utc)  # 08:00 WITA
X_TOKEN = "x-fake-bearer"
# Retry policy for tests: real retries, no real waiting.
FAST = HttpPolicy(connect_timeout=1, read_timeout=0.5, attempts=3, backoff=0.01, max_wait=5)


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Raw:
    """JSON served exactly as these bytes, wherever it stands in a response: what an encoder
    would refuse to write (nesting deeper than Python recurses, NaN, integers of thousands of
    digits, broken escapes, bytes that are not UTF-8). As an item, `key` places it among the
    others: a Mastodon or X id (int), a Bluesky indexedAt (ISO string); a raw item matches every
    query."""

    body: bytes
    key: Any = None


def dumps(value: Any) -> bytes:
    """`json.dumps` that splices `Raw` values in as their bytes."""
    raws: list[bytes] = []

    def hold(obj: Any) -> str:
        if isinstance(obj, Raw):
            raws.append(obj.body)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(f"{type(obj).__name__} is not JSON")

    text = json.dumps(value, default=hold, ensure_ascii=False).encode("utf-8", "surrogatepass")
    for i, body in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{i}\x00").encode(), body, 1)
    return text


def _next_tick(after: float, every: float, phase: float) -> float:
    """The first moment at or after `after` of a clock ticking every `every` seconds, its ticks
    `phase` (0-1) of a period past the epoch's."""
    offset = phase * every
    return offset + math.ceil((after - offset) / every) * every


def _key(item: Any, field: str) -> Any:
    return item.key if isinstance(item, Raw) else item[field]


def _matches(item: Any, words: list[str], text: Any) -> bool:
    return isinstance(item, Raw) or all(w in str(text(item)).lower() for w in words)


_BOX = re.compile(r"bounding_box:\[([^\]]*)\]")


def _rule_matches(rule: str, tweet: dict[str, Any]) -> bool:
    """A filtered-stream rule as the fake understands one: every plain word in the text, and a
    `bounding_box:[w s e n]` holding the tweet's point; other operators (lang:) are ignored."""
    words = [w for w in _BOX.sub(" ", rule).replace("(", " ").replace(")", " ").lower().split() if ":" not in w]
    box = _BOX.search(rule)
    if box:
        west, south, east, north = map(float, box.group(1).split())
        point = ((tweet.get("geo") or {}).get("coordinates") or {}).get("coordinates")
        if not (isinstance(point, list) and west <= point[0] <= east and south <= point[1] <= north):
            return False
    return all(w in str(tweet.get("text", "")).lower() for w in words)


@dataclass
class Failure:
    mode: str  # ratelimit | server_error | hang | malformed | wrong_shape | endless | endless_event | drip | drip_headers | echo
    times: int = 1
    seconds: float = 0.0
    status: int = 500


@dataclass
class Request:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any = None  # a POST's JSON


@dataclass(frozen=True)
class RuleCall:
    """One call of X's rules endpoint: "get", "add" (the rules sent) or "delete" (the ids)."""

    action: str
    payload: Any = None


@dataclass
class FakeData:
    # Mastodon: statuses per hashtag (API objects), newest id last
    mastodon: dict[str, list[dict[str, Any] | Raw]] = field(default_factory=dict)
    bluesky: list[dict[str, Any] | Raw] = field(default_factory=list)  # PostViews
    x: list[dict[str, Any] | Raw] = field(default_factory=list)  # tweets
    x_users: dict[str, str] = field(default_factory=dict)  # author_id -> username
    feeds: dict[str, tuple[str, str | bytes]] = field(default_factory=dict)  # name -> (etag, xml)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # path prefix -> extra headers


class FakeApis:
    def __init__(self) -> None:
        self.data = FakeData()
        self.requests: list[Request] = []
        self.hangups: queue.Queue[str] = queue.Queue()  # paths whose dripped response the client gave up on
        self._failures: dict[str, list[Failure]] = {}
        self._lock = threading.Lock()
        # Mastodon streaming: every status added, per tag, in the order added; listeners wait on
        # `_changed` for more, or for `_generation` to move (drop_streams) or the server to close.
        self._announced: dict[str, list[dict[str, Any]]] = {}
        self._public: list[dict[str, Any] | Raw] = []  # every status added (and raw event data), for the public stream
        self._changed = threading.Condition()
        self._generation = 0
        self._closed = False
        self.listening = 0  # stream listeners connected now
        # Where the instance API says its streaming server is; None: this server itself. Set to
        # another fake's URL, this one answers its own streaming path with a 301 there, as
        # Mastodon's web app does when the streaming server runs on another host.
        self.streaming_server: str | None = None
        # Mastodon's search index (4.2 and later): None, a status is searchable once added;
        # (every, refresh), it is found only once an indexing job (every `every` seconds) has
        # taken it and the index has refreshed (every `refresh` seconds) after that, as
        # Mastodon's once-a-minute IndexingScheduler and 30 s refresh_interval do. The ticks'
        # phases are random per fake (`search_phase`).
        self.search_index: tuple[float, float] | None = None
        self.search_phase = (random.random(), random.random())
        self._added: dict[str, float] = {}  # status id -> when it was added (time.time())
        # Status ids the search does not return (yet), whatever `search_index` says: a status
        # indexed late, or never within a test
        self.unindexed: set[str] = set()
        # X's filtered stream: the app's rules, every call of the rules endpoint, every tweet
        # added (announced to the stream listeners whose rules it matches)
        self.x_rules: list[dict[str, str]] = []
        self.rule_calls: list[RuleCall] = []
        self._x_announced: list[dict[str, Any]] = []
        self._next_rule_id = 1_600_000_000_000_000_000
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeApis":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def fail(self, prefix: str, mode: str, times: int = 1, seconds: float = 0.0, status: int = 500) -> None:
        """The next `times` requests whose path starts with `prefix` (or, for a prefix ending in
        "$", is exactly it) answer in `mode`."""
        with self._lock:
            self._failures.setdefault(prefix, []).append(Failure(mode, times, seconds, status))

    def _take_failure(self, path: str) -> Failure | None:
        with self._lock:
            for prefix, planned in self._failures.items():
                if (path == prefix[:-1] if prefix.endswith("$") else path.startswith(prefix)) and planned:
                    failure = planned[0]
                    failure.times -= 1
                    if failure.times <= 0:
                        planned.pop(0)
                    return failure
        return None

    def hits(self, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    # --- content builders: real shapes, hand-made content ---------------------------------

    def toot(self, tag: str, sid: int, minutes: float, text: str, acct: str = "warga", **extra: Any) -> dict[str, Any]:
        host = urlsplit(self.url).netloc
        status = {
            "id": str(sid), "created_at": iso(T0 + timedelta(minutes=minutes)), "in_reply_to_id": None,
            "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "id",
            "uri": f"{self.url}/users/{acct}/statuses/{sid}", "url": f"{self.url}/@{acct}/{sid}",
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
            "content": f"<p>{text}</p>", "reblog": None,
            "account": {"id": str(sid % 97 + 1), "username": acct, "acct": acct, "display_name": acct.title(),
                        "url": f"{self.url}/@{acct}", "note": "<p>Warga Buleleng</p>", "indexable": True},
            "media_attachments": [], "mentions": [],
            "tags": [{"name": tag, "url": f"{self.url}/tags/{tag}"}], "emojis": [], "card": None, "poll": None,
            "application": {"name": "Web"}, "_host": host,
        }
        status.update(extra)
        self.add_status(tag, status)
        return status

    def add_status(self, tag: str, status: dict[str, Any] | Raw) -> None:
        with self._changed:
            self.data.mastodon.setdefault(tag, []).append(status)
            self.data.mastodon[tag].sort(key=lambda s: int(_key(s, "id")))
            if isinstance(status, dict):
                self._announced.setdefault(tag, []).append(status)
                self._public.append(status)
                self._added.setdefault(str(status.get("id")), time.time())
            self._changed.notify_all()

    def delete_status(self, sid: int) -> None:
        """Delete a status: gone from its timeline, the search and `GET /api/v1/statuses/:id`."""
        with self._changed:
            for statuses in self.data.mastodon.values():
                statuses[:] = [s for s in statuses if str(_key(s, "id")) != str(sid)]

    def searchable(self, status: Any) -> bool:
        """Is `status` in the search index yet (`search_index`)?"""
        if isinstance(status, Raw):
            return True
        if str(status.get("id")) in self.unindexed:
            return False
        if self.search_index is None:
            return True
        every, refresh = self.search_index
        added = self._added.get(str(status.get("id")), 0.0)
        indexed = _next_tick(added, every, self.search_phase[0])
        return time.time() >= _next_tick(indexed, refresh, self.search_phase[1])

    def public_event(self, data: bytes) -> None:
        """An `update` event on the public stream whose data is exactly these bytes (a status no
        server would send: truncated, of the wrong shape); nothing is stored."""
        with self._changed:
            self._public.append(Raw(data))
            self._changed.notify_all()

    def drop_streams(self) -> None:
        """Hang up on every stream listener, as a restarting server does."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def skeet(self, rkey: str, minutes: float, text: str, handle: str = "warga.bsky.social", **extra: Any) -> dict[str, Any]:
        did = "did:plc:" + (handle.split(".")[0] + "x" * 24)[:24]
        when = iso(T0 + timedelta(minutes=minutes))
        view = {
            "uri": f"at://{did}/app.bsky.feed.post/{rkey}", "cid": "bafyrei" + rkey.ljust(20, "q"),
            "author": {"did": did, "handle": handle, "displayName": handle.split(".")[0].title(), "labels": []},
            "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": when, "langs": ["id"]},
            "replyCount": 0, "repostCount": 0, "likeCount": 0, "quoteCount": 0, "indexedAt": when, "labels": [],
        }
        view.update(extra)
        self.data.bluesky.append(view)
        return view

    def tweet(self, tid: int, minutes: float, text: str, username: str = "wargabuleleng", **extra: Any) -> dict[str, Any]:
        author_id = str(1000 + sum(map(ord, username)))
        self.data.x_users[author_id] = username
        tweet = {"id": str(tid), "text": text, "created_at": iso(T0 + timedelta(minutes=minutes)), "author_id": author_id,
                 "lang": "in", "conversation_id": str(tid), "edit_history_tweet_ids": [str(tid)]}
        tweet.update(extra)
        with self._changed:
            self.data.x.append(tweet)
            self._x_announced.append(tweet)
            self._changed.notify_all()
        return tweet

    def add_rule(self, value: str, tag: str | None = None) -> dict[str, str]:
        """A filtered-stream rule of the app, as X keeps it (added by whoever: another tool)."""
        with self._changed:
            self._next_rule_id += 1
            rule = {"id": str(self._next_rule_id), "value": value, **({"tag": tag} if tag is not None else {})}
            self.x_rules.append(rule)
            return rule

    def x_rules_of(self, tag: str | None) -> list[str]:
        """The values of the app's rules tagged `tag`, sorted."""
        return sorted(r["value"] for r in self.x_rules if r.get("tag") == tag)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeApis
    protocol_version = "HTTP/1.1"
    drip = 0.0  # seconds between the bytes of this request's body (0: all at once)

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.fake.requests.append(Request(parts.path, params, {k: v for k, v in self.headers.items()}))
        self.drip = 0.0
        failure = self.fake._take_failure(parts.path)
        if failure and self._misbehave(failure):
            return
        path = parts.path
        if path.startswith("/api/v1/timelines/tag/"):
            return self._mastodon_tag(unquote(path.rsplit("/", 1)[1]), params)
        if path == "/api/v2/search":
            return self._mastodon_search(params)
        if path.startswith("/api/v1/statuses/"):
            return self._mastodon_status(path.rsplit("/", 1)[1])
        if path == "/api/v2/instance":
            return self._send(200, {"domain": "127.0.0.1", "configuration": {"urls": {"streaming": self._streaming_server()}}})
        if path == "/api/v1/streaming/hashtag":
            if self.fake.streaming_server:
                return self._send_raw(301, b"", "text/html", {"Location": self.fake.streaming_server + self.path})
            return self._mastodon_stream(lambda: self.fake._announced.get(params.get("tag", ""), []))
        if path == "/api/v1/streaming/public":
            if not self.headers.get("Authorization", "").startswith("Bearer "):  # Mastodon 4.2 and later
                return self._send(401, {"error": "This method requires an authenticated user"})
            return self._mastodon_stream(lambda: self.fake._public)
        if path == "/xrpc/app.bsky.feed.searchPosts":
            return self._bluesky(params)
        if path == "/2/tweets/search/recent":
            return self._x(params)
        if path == "/2/tweets/search/stream/rules":
            return self._x_rules_get(params)
        if path == "/2/tweets/search/stream":
            return self._x_stream()
        if path.startswith("/feeds/"):
            return self._feed(path.rsplit("/", 1)[1])
        self._send(404, {"error": "Record not found"})

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        self.fake.requests.append(Request(parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                                          {k: v for k, v in self.headers.items()}, body))
        self.drip = 0.0
        failure = self.fake._take_failure(parts.path)
        if failure and self._misbehave(failure):
            return
        if parts.path == "/2/tweets/search/stream/rules":
            return self._x_rules_post(body)
        self._send(404, {"error": "Record not found"})

    def _misbehave(self, f: Failure) -> bool:
        if f.mode == "ratelimit":
            self._send(429, {"error": "Too many requests"}, {"Retry-After": str(int(f.seconds))})
        elif f.mode == "too_many_connections":  # X's answer to a stream connection over the app's limit
            self._send(429, {"title": "ConnectionException", "detail": "This stream is currently at the maximum allowed connection limit.",
                             "connection_issue": "TooManyConnections", "type": "https://api.x.com/2/problems/streaming-connection"},
                       {"x-rate-limit-reset": str(int(time.time() + f.seconds))} if f.seconds else None)
        elif f.mode == "server_error":
            self._send(f.status, {"error": "Internal Server Error"})
        elif f.mode == "hang":
            time.sleep(f.seconds)
            self.close_connection = True
        elif f.mode == "malformed":
            self._send_raw(200, b'{"posts": [{"uri": "at://trunc', "application/json")
        elif f.mode == "drip":  # the real response, a byte every `seconds`: no read timeout trips
            self.drip = f.seconds
            return False
        elif f.mode == "drip_headers":  # a 200 of "[]" whose status line and headers come a byte every `seconds`
            self.close_connection = True
            head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"p" * 400 + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
            try:
                for byte in head:
                    self.wfile.write(bytes([byte]))
                    time.sleep(f.seconds)
                self.wfile.write(b"[]")
            except OSError:  # the client hung up
                self.fake.hangups.put(urlsplit(self.path).path)
        elif f.mode == "echo":  # refused, quoting back the request line and its credentials
            self._send(f.status, {"error": f"refused {self.headers.get('Authorization')} for {self.path}"})
        elif f.mode == "wrong_shape":
            self._send(200, {"message": "maintenance"})
        elif f.mode == "endless_event":  # an event stream whose one line never ends
            self._endless("text/event-stream", b"event: update\ndata: ")
        elif f.mode == "endless":  # a JSON body that never ends
            self._endless("application/json", b'{"data": ["')
        else:
            return False
        return True

    def _endless(self, ctype: str, opening: bytes) -> None:
        """A 200 whose body goes on (64 MB here) until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(opening)
            for _ in range(64):
                self.wfile.write(b"a" * (1 << 20))
        except OSError:
            pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, dumps(body), "application/json; charset=utf-8", headers)

    def _send_raw(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for prefix, extra in self.fake.data.headers.items():
            if urlsplit(self.path).path.startswith(prefix):
                for k, v in extra.items():
                    self.send_header(k, v)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not self.drip:
            self.wfile.write(body)
            return
        self.close_connection = True
        try:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                time.sleep(self.drip)
        except OSError:  # the client hung up
            self.fake.hangups.put(urlsplit(self.path).path)

    # --- Mastodon: newest first; min_id returns the page immediately newer than min_id -----

    def _mastodon_page(self, statuses: list[Any], params: dict[str, str]) -> list[Any]:
        limit = min(int(params.get("limit", 20)), 40)
        rows = statuses
        if "max_id" in params:
            rows = [s for s in rows if int(_key(s, "id")) < int(params["max_id"])]
        if "since_id" in params:
            rows = [s for s in rows if int(_key(s, "id")) > int(params["since_id"])]
        if "min_id" in params:
            rows = [s for s in rows if int(_key(s, "id")) > int(params["min_id"])][:limit]  # oldest after min_id
        else:
            rows = rows[-limit:]
        rows = sorted(rows, key=lambda s: -int(_key(s, "id")))
        return [s if isinstance(s, Raw) else {k: v for k, v in s.items() if not k.startswith("_")} for s in rows]

    def _mastodon_tag(self, tag: str, params: dict[str, str]) -> None:
        page = self._mastodon_page(self.fake.data.mastodon.get(tag, []), params)
        headers = {}
        if page:
            base = f"{self.fake.url}/api/v1/timelines/tag/{tag}"
            limit = params.get("limit", "20")
            headers["Link"] = (f'<{base}?{urlencode({"limit": limit, "max_id": _key(page[-1], "id")})}>; rel="next", '
                               f'<{base}?{urlencode({"limit": limit, "min_id": _key(page[0], "id")})}>; rel="prev"')
        self._send(200, page, headers)

    def _mastodon_search(self, params: dict[str, str]) -> None:
        q = params.get("q", "").lower()
        everything = sorted({_key(s, "id"): s for ss in self.fake.data.mastodon.values() for s in ss}.values(), key=lambda s: int(_key(s, "id")))
        hits = [s for s in everything if _matches(s, q.split(), lambda s: s["content"].lower()) and self.fake.searchable(s)
                and (isinstance(s, Raw) or (s.get("account") or {}).get("indexable") is not False)]
        self._send(200, {"accounts": [], "hashtags": [], "statuses": self._mastodon_page(hits, params)})

    def _mastodon_status(self, sid: str) -> None:
        """One status by id (`GET /api/v1/statuses/:id`), indexed or not; 404 for one never
        added (or deleted: `delete_status`). A `Raw` status is served as its bytes."""
        with self.fake._changed:
            found = next((s for ss in self.fake.data.mastodon.values() for s in ss if str(_key(s, "id")) == sid), None)
        if found is None:
            return self._send(404, {"error": "Record not found"})
        if isinstance(found, Raw):
            return self._send_raw(200, found.body, "application/json")
        self._send(200, {k: v for k, v in found.items() if not k.startswith("_")})

    def _streaming_server(self) -> str:
        return self.fake.streaming_server or "ws" + self.fake.url[len("http"):]

    HEARTBEAT = 0.5  # seconds between ":thump" comments on an idle stream (Mastodon: ~15 s)

    def _mastodon_stream(self, announced: Any) -> None:
        """`update` events for the statuses `announced()` lists (a hashtag's, or every status for
        the public timeline) added after this listener connected."""
        def events(new: list[Any]) -> bytes:
            return b"".join(b"event: update\ndata: " + (st.body if isinstance(st, Raw) else dumps(
                {k: v for k, v in st.items() if not k.startswith("_")})) + b"\n\n" for st in new)

        self._stream({"Content-Type": "text/event-stream", "Cache-Control": "no-store"}, announced, events, b":thump\n\n")

    def _stream(self, headers: dict[str, str], announced: Any, render: Any, keep_alive: bytes) -> None:
        """A streaming answer: `render(new)` for what `announced()` lists beyond what this
        listener has seen, `keep_alive` while nothing comes; until the fake closes or
        `drop_streams` hangs up on every listener. `listening` counts the listeners."""
        fake = self.fake
        with fake._changed:
            seen, generation = len(announced()), fake._generation
            fake.listening += 1
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        try:
            while True:
                with fake._changed:
                    fake._changed.wait_for(lambda: fake._closed or fake._generation != generation
                                           or len(announced()) > seen, timeout=self.HEARTBEAT)
                    if fake._closed or fake._generation != generation:
                        return
                    new = announced()[seen:]
                    seen += len(new)
                    chunk = render(new)  # under the lock: rendering may read the fake's state (X's rules)
                self.wfile.write(chunk or keep_alive)
                self.wfile.flush()
        except OSError:
            pass
        finally:
            with fake._changed:
                fake.listening -= 1

    # --- Bluesky: sort=latest, since inclusive, until exclusive, cursor = offset ------------

    def _bluesky(self, params: dict[str, str]) -> None:
        q = params.get("q", "").lower()
        rows = [p for p in self.fake.data.bluesky if _matches(p, q.split(), lambda p: p["record"].get("text"))]
        if "since" in params:
            rows = [p for p in rows if _key(p, "indexedAt") >= iso(datetime.fromisoformat(params["since"].replace("Z", "+00:00")))]
        if "until" in params:
            rows = [p for p in rows if _key(p, "indexedAt") < iso(datetime.fromisoformat(params["until"].replace("Z", "+00:00")))]
        rows.sort(key=lambda p: _key(p, "indexedAt"), reverse=True)
        offset, limit = int(params.get("cursor", 0)), int(params.get("limit", 25))
        page = rows[offset:offset + limit]
        body: dict[str, Any] = {"posts": page, "hitsTotal": len(rows)}
        if offset + limit < len(rows):
            body["cursor"] = str(offset + limit)
        self._send(200, body)

    # --- X: newest first; since_id/until_id exclusive; next_token = offset ------------------

    def _x(self, params: dict[str, str]) -> None:
        if self.headers.get("Authorization") != f"Bearer {X_TOKEN}":
            return self._send(401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})
        q = params.get("query", "").lower().split(" lang:")[0].strip("()")
        rows = [t for t in self.fake.data.x if _matches(t, q.split(), lambda t: t["text"].lower())]
        if "since_id" in params:
            rows = [t for t in rows if int(_key(t, "id")) > int(params["since_id"])]
        if "until_id" in params:
            rows = [t for t in rows if int(_key(t, "id")) < int(params["until_id"])]
        rows.sort(key=lambda t: -int(_key(t, "id")))
        offset, limit = int(params.get("next_token", 0) or 0), int(params.get("max_results", 10))
        page = rows[offset:offset + limit]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=str(_key(page[0], "id")), oldest_id=str(_key(page[-1], "id")))
        if offset + limit < len(rows):
            meta["next_token"] = str(offset + limit)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = page
            body["includes"] = {"users": [{"id": t["author_id"], "username": self.fake.data.x_users.get(t["author_id"], "u"),
                                           "name": "Nama Asli"} for t in page if not isinstance(t, Raw) and "author_id" in t]}
        self._send(200, body)

    # --- X filtered stream: rules per app, tweets matching them as JSON lines -----------------

    def _x_authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {X_TOKEN}":
            return True
        self._send(401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})
        return False

    def _x_rules_get(self, params: dict[str, str]) -> None:
        if not self._x_authorized():
            return
        fake = self.fake
        with fake._changed:
            fake.rule_calls.append(RuleCall("get"))
            rules = [dict(r) for r in fake.x_rules]
        offset, limit = int(params.get("pagination_token", 0) or 0), int(params.get("max_results", 1000))
        page = rules[offset:offset + limit]
        meta: dict[str, Any] = {"sent": iso(datetime.now(timezone.utc)), "result_count": len(page)}
        if offset + limit < len(rules):
            meta["next_token"] = str(offset + limit)
        self._send(200, {"data": page, "meta": meta} if page else {"meta": meta})

    MAX_RULE = 512

    def _x_rules_post(self, body: Any) -> None:
        """X's add (a duplicate value or an over-long rule is refused, reported in `errors` of a
        200) and delete (by id)."""
        if not self._x_authorized():
            return
        fake = self.fake
        if not isinstance(body, dict) or not (isinstance(body.get("add"), list) or isinstance(body.get("delete"), dict)):
            return self._send(400, {"title": "Invalid Request", "detail": "One or more parameters to your request was invalid."})
        now = iso(datetime.now(timezone.utc))
        errors: list[dict[str, Any]] = []
        with fake._changed:
            if "add" in body:
                fake.rule_calls.append(RuleCall("add", [dict(r) for r in body["add"]]))
                created = []
                for rule in body["add"]:
                    value = rule.get("value", "")
                    same = [r for r in fake.x_rules if r["value"] == value]
                    if same:
                        errors.append({"value": value, "id": same[0]["id"], "title": "DuplicateRule",
                                       "type": "https://api.x.com/2/problems/duplicate-rules"})
                    elif len(value) > self.MAX_RULE:
                        errors.append({"value": value, "title": "RuleTooLong", "type": "https://api.x.com/2/problems/invalid-rules"})
                    else:
                        fake._next_rule_id += 1
                        new = {"id": str(fake._next_rule_id), "value": value, **({"tag": rule["tag"]} if "tag" in rule else {})}
                        fake.x_rules.append(new)
                        created.append(new)
                out: dict[str, Any] = {"meta": {"sent": now, "summary": {"created": len(created), "not_created": len(errors),
                                                                        "valid": len(created), "invalid": len(errors)}}}
                if created:
                    out["data"] = created
            else:
                ids = [str(i) for i in body["delete"].get("ids") or []]
                fake.rule_calls.append(RuleCall("delete", ids))
                known = {r["id"] for r in fake.x_rules}
                fake.x_rules[:] = [r for r in fake.x_rules if r["id"] not in ids]
                errors = [{"title": "Not Found Error", "value": i, "type": "https://api.x.com/2/problems/resource-not-found"}
                          for i in ids if i not in known]
                out = {"meta": {"sent": now, "summary": {"deleted": len(ids) - len(errors), "not_deleted": len(errors)}}}
        if errors:
            out["errors"] = errors
        self._send(200, out)

    def _x_stream(self) -> None:
        """Each tweet added after this listener connected that matches one of the app's rules,
        as a JSON line with its `matching_rules`; `\r\n` between them while idle."""
        if not self._x_authorized():
            return
        fake = self.fake

        def lines(new: list[Any]) -> bytes:
            out = []
            for tweet in new:
                matched = [{"id": r["id"], "tag": r.get("tag", "")} for r in fake.x_rules if _rule_matches(r["value"], tweet)]
                if matched:
                    data = {k: tweet[k] for k in ("id", "text", "edit_history_tweet_ids") if k in tweet}
                    out.append(dumps({"data": data, "matching_rules": matched}) + b"\r\n")
            return b"".join(out)

        self._stream({"Content-Type": "application/json; charset=utf-8"}, lambda: fake._x_announced, lines, b"\r\n")

    def _feed(self, name: str) -> None:
        if name not in self.fake.data.feeds:
            return self._send(404, {"error": "no such feed"})
        etag, xml = self.fake.data.feeds[name]  # xml as text, or as bytes served exactly
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_raw(200, xml if isinstance(xml, bytes) else xml.encode(), "application/rss+xml; charset=utf-8",
                       {"ETag": etag, "Last-Modified": "Thu, 15 Jan 2026 01:00:00 GMT"})
