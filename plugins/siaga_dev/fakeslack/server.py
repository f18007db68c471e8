"""A Slack-compatible fake Web API on 127.0.0.1 for tests and demos.

Delivery has to be proven against what Slack actually does when things go wrong: 429 with
`Retry-After`, 5xx, a server that never answers, and the worst case, a message that was stored
while the client saw an error. This server speaks enough of the Web API (`auth.test`,
`chat.postMessage`, `chat.update`, `chat.delete`, `conversations.history`,
`conversations.replies`, `conversations.list`) for the real `slack_sdk.WebClient` to talk to it unchanged, records every
request, and can be told per method to misbehave for the next N calls.

Built on the standard library's `ThreadingHTTPServer` rather than a mock-server package on
purpose: it adds no dependency, and the failure modes need control of the raw socket (store a
message and then close the connection without an answer) that request/response mock libraries
such as pytest-httpserver or `responses` do not offer.

Like Slack, channels have ids ("C…"); `chat.postMessage` accepts a name ("#bpbd-siaga") or an id
and answers with the id, while `chat.update` and `conversations.*` insist on the id, so code
that forgets to resolve a channel name fails here as it would against Slack. Blocks are
checked against Slack's limits by `blockkit.py`.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from siaga.vocabulary import SLACK_MESSAGE_TEXT
from siaga_dev.fakeslack.blockkit import validate_blocks

API_PREFIX = "/api/"
DEFAULT_TOKEN = "xoxb-siaga-fake-token"
BOT_USER_ID = "U0SIAGABOT"
BOT_ID = "B0SIAGABOT"
TEAM_ID = "T0SIAGA"

# Parameters Slack accepts as JSON strings in form bodies and as objects in JSON bodies.
_JSON_PARAMS = ("blocks", "attachments", "metadata")

FAILURE_MODES = ("ratelimit", "server_error", "stored_server_error", "hang", "delay", "drop", "reset", "error",
                 "garbled", "no_ts", "redirect")


@dataclass
class Failure:
    """One programmed misbehaviour of one API method, used for the next `times` calls.

    - ratelimit: HTTP 429 with `Retry-After: seconds` (or `retry_after` as written, "" for no
      header at all), nothing stored.
    - server_error: HTTP `status` (500 by default), nothing stored.
    - stored_server_error: handle the call (the message IS stored), then answer HTTP `status`
      (500 by default): a gateway that timed out in front of a Slack that did its work.
    - hang: wait `seconds` (longer than the client timeout), then close without answering,
      nothing stored.
    - delay: wait `seconds`, then handle the call normally (stored and answered).
    - drop: handle the call (the message IS stored), then close without answering: the client
      cannot tell whether it landed.
    - reset: abort the connection with a TCP reset before handling the call, nothing stored.
    - error: HTTP 200 with `{"ok": false, "error": error}` (e.g. "channel_not_found").
    - garbled: handle the call (the message IS stored), then answer HTTP 200 with a body that
      is not JSON (a proxy's page, a cut reply): `body`, or a gateway's HTML page. In `body`,
      "{authorization}" stands for the request's Authorization header (a proxy's error page
      that quotes the request back).
    - no_ts: handle the call (stored), then answer `{"ok": true}` without the message's `ts`.
    - redirect: HTTP `status` (give 301, 302, 303, 307 or 308) with `Location: location`,
      nothing stored; the real Slack API never redirects (a client must not follow it).
    """

    mode: str
    times: int = 1
    seconds: float = 0.0
    status: int = 500
    error: str = "internal_error"
    location: str = ""
    body: str = ""
    retry_after: str | None = None


@dataclass
class Chaos:
    """Misbehaviour drawn at random for every call of one method, once queued failures are used
    up: `mix` maps a failure mode to its probability (the rest are handled normally), `seconds`
    a mode to its `Failure.seconds` (Retry-After, hang, delay). Seeded, so a run can be replayed
    as far as the order of calls allows."""

    mix: dict[str, float]
    seconds: dict[str, float]
    rng: random.Random

    def draw(self) -> Failure | None:
        pick, total = self.rng.random(), 0.0
        for mode, share in self.mix.items():
            total += share
            if pick < total:
                return Failure(mode=mode, seconds=self.seconds.get(mode, 0.0), status=self.rng.choice((500, 502, 503)))
        return None


@dataclass
class RecordedRequest:
    method: str
    params: dict[str, Any]
    authorised: bool
    outcome: str = "handled"  # or the failure mode that answered it


@dataclass
class _Channel:
    id: str
    name: str
    messages: list[dict[str, Any]] = field(default_factory=list)


class FakeSlack:
    """The fake server. `with FakeSlack() as fake:` starts it on a free port of 127.0.0.1;
    point the client at `fake.base_url`."""

    def __init__(
        self,
        token: str | None = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        channels: list[str] | tuple[str, ...] = (),
        auto_create_channels: bool = True,
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"FakeSlack only listens on loopback, not {host!r}")
        self.token = token  # None accepts any non-empty token
        self.auto_create_channels = auto_create_channels
        self.on_message = on_message
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._channels: dict[str, _Channel] = {}
        self._failures: dict[str, list[Failure]] = {}
        self._chaos: dict[str, Chaos] = {}
        self._requests: list[RecordedRequest] = []
        self._ts_counter = 0
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        for name in channels:
            self._ensure_channel(name)
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self) -> "FakeSlack":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakeslack", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # wakes handlers that are hanging or delaying
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- programming failures ----------------------------------------------------------------
    def fail(
        self,
        method: str,
        mode: str,
        times: int = 1,
        seconds: float = 0.0,
        status: int = 500,
        error: str = "internal_error",
        location: str = "",
        body: str = "",
        retry_after: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` misbehave (queued after earlier ones)."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; choose one of {FAILURE_MODES}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if mode == "redirect" and not (300 <= status < 400 and location):
            raise ValueError("redirect: needs a 3xx status and a location")
        with self._lock:
            self._failures.setdefault(method, []).append(
                Failure(mode=mode, times=times, seconds=seconds, status=status, error=error, location=location,
                        body=body, retry_after=retry_after)
            )

    def chaos(self, method: str, mix: dict[str, float], seconds: dict[str, float] | None = None, seed: int = 0) -> None:
        """Make every later call of `method` misbehave at random (see `Chaos`), e.g.
        `fake.chaos("chat.postMessage", {"ratelimit": .1, "server_error": .1, "hang": .05,
        "reset": .05, "drop": .05}, {"ratelimit": 1, "hang": 2})`."""
        unknown = set(mix) - set(FAILURE_MODES)
        if unknown:
            raise ValueError(f"unknown failure mode(s) {sorted(unknown)}; choose from {FAILURE_MODES}")
        if "redirect" in mix:
            raise ValueError("chaos mix: 'redirect' needs a location; program it with fail()")
        if any(p < 0 for p in mix.values()) or sum(mix.values()) > 1:
            raise ValueError("chaos mix: probabilities must be >= 0 and add up to at most 1")
        with self._lock:
            self._chaos[method] = Chaos(dict(mix), dict(seconds or {}), random.Random(seed))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled (e.g. a delayed post the client gave up on
        has been stored); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def clear_failures(self) -> None:
        """Forget queued failures and chaos: from now on every call is handled normally."""
        with self._lock:
            self._failures.clear()
            self._chaos.clear()

    def _next_failure(self, method: str) -> Failure | None:
        with self._lock:
            queue = self._failures.get(method)
            if not queue:
                chaos = self._chaos.get(method)
                return chaos.draw() if chaos is not None else None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure

    # --- inspection ----------------------------------------------------------------------------
    def channel_id(self, channel: str) -> str:
        """Id of a channel given by name ("#x" or "x") or id; creates it when auto-creating."""
        with self._lock:
            found = self._find_channel(channel)
            if found is None:
                raise KeyError(f"no channel {channel!r} on the fake")
            return found.id

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Copies of stored messages (top-level and replies) in posting order."""
        with self._lock:
            if channel is None:
                chans = list(self._channels.values())
            else:
                found = self._find_channel(channel)
                chans = [found] if found else []
            out = [dict(m) for c in chans for m in c.messages]
        return sorted(out, key=lambda m: _ts_key(m["ts"]))

    def requests(self, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if method is None or r.method == method]

    def requests_count(self, method: str) -> int:
        return len(self.requests(method))

    def dump(self) -> dict[str, Any]:
        """Everything that arrived, JSON-serialisable."""
        with self._lock:
            return {
                "channels": {c.id: c.name for c in self._channels.values()},
                "messages": self.messages(),
                "requests": [r.__dict__ for r in self._requests],
            }

    # --- channels ----------------------------------------------------------------------------
    def _find_channel(self, channel: str) -> _Channel | None:
        if channel in self._channels:
            return self._channels[channel]
        name = channel.lstrip("#")
        for c in self._channels.values():
            if c.name == name:
                return c
        return None

    def _ensure_channel(self, name: str) -> _Channel:
        found = self._find_channel(name)
        if found is not None:
            return found
        bare = name.lstrip("#")
        cid = "C" + hashlib.sha1(bare.encode()).hexdigest()[:9].upper()
        chan = _Channel(id=cid, name=bare)
        self._channels[cid] = chan
        return chan

    def _next_ts(self) -> str:
        self._ts_counter += 1
        micro = self._ts_counter * 100
        return f"{1700000000 + micro // 1_000_000}.{micro % 1_000_000:06d}"

    # --- API methods (called with the lock held) ----------------------------------------------
    def _api(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        handler = _METHODS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(self, p)

    def _auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://siaga-fake.slack.com/", "team": "Siaga (fake)",
                "user": "siaga", "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}

    def _post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        chan = self._find_channel(channel)
        if chan is None:
            if not self.auto_create_channels or not channel.startswith("#"):
                return {"ok": False, "error": "channel_not_found"}
            chan = self._ensure_channel(channel)
        text, blocks = p.get("text"), p.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if text and len(text) > SLACK_MESSAGE_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        problem = validate_blocks(blocks) if blocks is not None else None
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        thread_ts = p.get("thread_ts") or None
        if thread_ts is not None:
            parent = _by_ts(chan, thread_ts)
            if parent is None:
                return {"ok": False, "error": "thread_not_found"}
            parent["reply_count"] = parent.get("reply_count", 0) + 1
        message = {
            "type": "message", "ts": self._next_ts(), "channel": chan.id, "channel_name": chan.name,
            "user": BOT_USER_ID, "bot_id": BOT_ID, "text": text or "", "blocks": blocks,
            "thread_ts": thread_ts, "reply_broadcast": _truthy(p.get("reply_broadcast")),
            "metadata": p.get("metadata"),
            "unfurl_links": p.get("unfurl_links"), "link_names": p.get("link_names"),
        }
        chan.messages.append(message)
        if self.on_message is not None:
            self.on_message(dict(message))
        return {"ok": True, "channel": chan.id, "ts": message["ts"], "message": _public(message, True)}

    def _stored(self, p: dict[str, Any]) -> tuple[_Channel, dict[str, Any]] | dict[str, Any]:
        """The channel and live message `p` names (`chat.update`, `chat.delete`), or Slack's error."""
        chan = self._channels.get(p.get("channel") or "")
        if chan is None:
            return {"ok": False, "error": "channel_not_found"}
        message = _by_ts(chan, p.get("ts") or "")
        if message is None or message.get("subtype") == "tombstone":
            return {"ok": False, "error": "message_not_found"}
        return chan, message

    def _update(self, p: dict[str, Any]) -> dict[str, Any]:
        found = self._stored(p)
        if isinstance(found, dict):
            return found
        chan, message = found
        blocks = p.get("blocks")
        problem = validate_blocks(blocks) if blocks is not None else None
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        if "text" in p:
            message["text"] = p["text"]
        if blocks is not None:
            message["blocks"] = blocks
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {"ok": True, "channel": chan.id, "ts": message["ts"], "text": message["text"]}

    def _delete(self, p: dict[str, Any]) -> dict[str, Any]:
        """A person deleting a message, as Slack does it: a message with replies leaves a
        tombstone its thread hangs on; any other is gone, and replying to it is `thread_not_found`."""
        found = self._stored(p)
        if isinstance(found, dict):
            return found
        chan, message = found
        if message.get("reply_count"):
            message.update(subtype="tombstone", text="This message was deleted.", blocks=None, metadata=None)
        else:
            chan.messages.remove(message)
        return {"ok": True, "channel": chan.id, "ts": message["ts"]}

    def delete(self, channel: str, ts: str) -> None:
        """Delete a stored message as a person in Slack would (`chat.delete`)."""
        with self._lock:
            answer = self._delete({"channel": self.channel_id(channel), "ts": ts})
        if not answer["ok"]:
            raise KeyError(f"{channel} {ts}: {answer['error']}")

    def _history(self, p: dict[str, Any]) -> dict[str, Any]:
        chan = self._channels.get(p.get("channel") or "")
        if chan is None:
            return {"ok": False, "error": "channel_not_found"}
        with_meta = _truthy(p.get("include_all_metadata"))
        top = [m for m in chan.messages if m["thread_ts"] is None or m["reply_broadcast"]]
        top = _window(top, p)
        top.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)  # newest first, like Slack
        return _page([_public(m, with_meta) for m in top], p)

    def _replies(self, p: dict[str, Any]) -> dict[str, Any]:
        chan = self._channels.get(p.get("channel") or "")
        if chan is None:
            return {"ok": False, "error": "channel_not_found"}
        parent = _by_ts(chan, p.get("ts") or "")
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        with_meta = _truthy(p.get("include_all_metadata"))
        thread = [parent] + _window([m for m in chan.messages if m["thread_ts"] == parent["ts"]
                                     and m is not parent], p)
        return _page([_public(m, with_meta) for m in thread], p)

    def _list(self, p: dict[str, Any]) -> dict[str, Any]:
        chans = [{"id": c.id, "name": c.name, "is_channel": True, "is_member": True}
                 for c in self._channels.values()]
        page = _page(chans, p)
        page["channels"] = page.pop("messages")
        return page


_METHODS: dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._post_message,
    "chat.update": FakeSlack._update,
    "chat.delete": FakeSlack._delete,
    "conversations.history": FakeSlack._history,
    "conversations.replies": FakeSlack._replies,
    "conversations.list": FakeSlack._list,
}


# --- helpers -----------------------------------------------------------------------------------
def _ts_key(ts: str) -> tuple[int, int]:
    sec, _, frac = ts.partition(".")
    return int(sec), int(frac or 0)


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _by_ts(chan: _Channel, ts: str) -> dict[str, Any] | None:
    return next((m for m in chan.messages if m["ts"] == ts), None)


def _window(messages: list[dict[str, Any]], p: dict[str, Any]) -> list[dict[str, Any]]:
    """Slack's `oldest`/`latest` bounds, exclusive unless `inclusive`."""
    inclusive = _truthy(p.get("inclusive"))
    out = messages
    if p.get("oldest"):
        lo = _ts_key(str(p["oldest"]))
        out = [m for m in out if _ts_key(m["ts"]) > lo or (inclusive and _ts_key(m["ts"]) == lo)]
    if p.get("latest"):
        hi = _ts_key(str(p["latest"]))
        out = [m for m in out if _ts_key(m["ts"]) < hi or (inclusive and _ts_key(m["ts"]) == hi)]
    return out


def _page(items: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any]:
    """Cursor pagination; the cursor is an opaque offset."""
    limit = max(1, min(int(p.get("limit") or 100), 1000))
    start = int(p.get("cursor") or 0)
    chunk = items[start:start + limit]
    more = start + limit < len(items)
    return {"ok": True, "messages": chunk, "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def _public(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    """A stored message as Slack returns it (metadata only when asked for)."""
    out = {k: v for k, v in message.items()
           if v is not None and k not in ("channel", "channel_name", "metadata", "unfurl_links",
                                          "link_names")}
    if not out.get("reply_broadcast"):
        out.pop("reply_broadcast", None)
    if message.get("reply_count"):
        out["thread_ts"] = message["ts"]  # Slack marks a thread parent with its own ts
    if with_metadata and message.get("metadata"):
        out["metadata"] = message["metadata"]
    return out


def _parse_params(handler: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
    """Query string, form or JSON body, merged as Slack does."""
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(urlsplit(handler.path).query).items()}
    ctype = handler.headers.get("Content-Type", "")
    if body:
        if ctype.startswith("application/json"):
            loaded = json.loads(body.decode("utf-8"))
            if isinstance(loaded, dict):
                params.update(loaded)
        else:
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()})
    for key in _JSON_PARAMS:
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError:
                pass  # left as a string; validate_blocks then refuses it
    return params


def _make_handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass  # the recorded requests are the log

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            with fake._idle:
                fake._in_flight += 1
            try:
                self._handle()
            finally:
                with fake._idle:
                    fake._in_flight -= 1
                    fake._idle.notify_all()

        def _handle(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if not path.startswith(API_PREFIX):
                self._send(404, {"ok": False, "error": "not_found"})
                return
            method = path[len(API_PREFIX):]
            try:
                params = _parse_params(self, body)
            except (ValueError, UnicodeDecodeError):
                self._send(200, {"ok": False, "error": "invalid_json"})
                return
            token = params.pop("token", None)
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                token = auth[len("Bearer "):]
            authorised = bool(token) and (fake.token is None or token == fake.token)
            record = RecordedRequest(method=method, params=params, authorised=authorised)
            with fake._lock:
                fake._requests.append(record)
            if not token:
                self._send(200, {"ok": False, "error": "not_authed"})
                return
            if not authorised:
                self._send(200, {"ok": False, "error": "invalid_auth"})
                return
            failure = fake._next_failure(method)
            if failure is not None:
                record.outcome = failure.mode
                if self._misbehave(failure, method, params):
                    return
            with fake._lock:
                result = fake._api(method, params)
            self._send(200, result)

        def _misbehave(self, failure: Failure, method: str, params: dict[str, Any]) -> bool:
            """Act out a failure; True when the request is finished."""
            if failure.mode == "ratelimit":
                value = str(int(failure.seconds)) if failure.retry_after is None else failure.retry_after
                self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": value} if value else {})
            elif failure.mode in ("server_error", "stored_server_error"):
                if failure.mode == "stored_server_error":
                    with fake._lock:
                        fake._api(method, params)
                self._send(failure.status, {"ok": False, "error": "internal_error"})
            elif failure.mode == "redirect":
                self._send(failure.status, {"ok": False, "error": "redirected"}, {"Location": failure.location})
            elif failure.mode == "error":
                self._send(200, {"ok": False, "error": failure.error})
            elif failure.mode == "hang":
                fake._stop.wait(failure.seconds)
                self.close_connection = True
            elif failure.mode == "delay":
                fake._stop.wait(failure.seconds)
                return False
            elif failure.mode == "reset":
                # SO_LINGER with a zero timeout: close() sends RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.wfile.close()  # the socket is only closed once its file objects are
                self.rfile.close()
                self.connection.close()
                self.wfile = io.BytesIO()  # the standard library flushes it after every request
                self.close_connection = True
            elif failure.mode == "drop":
                with fake._lock:
                    fake._api(method, params)
                self.close_connection = True
            elif failure.mode in ("garbled", "no_ts"):
                with fake._lock:
                    fake._api(method, params)
                if failure.mode == "no_ts":
                    self._send(200, {"ok": True})
                else:
                    page = failure.body or "<html><body>502 Bad Gateway</body></html>"
                    body = page.replace("{authorization}", self.headers.get("Authorization", "")).encode("utf-8")
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            return True

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout); nothing to answer

    return Handler
