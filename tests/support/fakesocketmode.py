"""A fake Slack Socket Mode endpoint on 127.0.0.1 for tests, on top of the fake Web API.

Socket Mode starts with a Web API call, `apps.connections.open`, authorised by the app-level
token (`xapp-…`), which answers with a WebSocket URL; Slack then sends `hello` on the socket and
afterwards one JSON envelope per event, each of which the app must acknowledge by sending back
`{"envelope_id": …}` within a few seconds. This fake does exactly that: `FakeSocketMode` is a
`FakeSlack` (so the same server also takes the `chat.update` and `chat.postEphemeral` calls the
app makes while handling a click) plus a WebSocket server from the `websockets` package.
Tests push envelopes with `send_interactive` and read the acknowledgements with `wait_ack`.
"""
from __future__ import annotations

import json
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from siaga_dev.fakeslack import API_PREFIX, FakeSlack

APP_TOKEN = "xapp-1-A0SIAGA-fake"
APP_ID = "A0SIAGA"


class FakeSocketMode(FakeSlack):
    """`with FakeSocketMode(token=BOT, app_token=APP) as fake:`; point a WebClient at
    `fake.base_url` and a SocketModeClient at that WebClient."""

    def __init__(self, app_token: str = APP_TOKEN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_token = app_token
        self.connections_opened = 0
        self.refused_opens = 0
        self.acks: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []
        self._sockets: list[ServerConnection] = []
        self._changed = threading.Condition(self._lock)
        self._ws = serve(self._serve_socket, "127.0.0.1", 0)
        self._ws_thread: threading.Thread | None = None
        self._install_open_handler()

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def ws_port(self) -> int:
        return self._ws.socket.getsockname()[1]

    def start(self) -> "FakeSocketMode":
        super().start()
        self._ws_thread = threading.Thread(target=self._ws.serve_forever, name="fakesocketmode", daemon=True)
        self._ws_thread.start()
        return self

    def close(self) -> None:
        self._ws.shutdown()
        if self._ws_thread is not None:
            self._ws_thread.join(timeout=5)
        super().close()

    # --- driving the app -------------------------------------------------------------------------
    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._sockets) >= count, timeout=timeout)

    def send_interactive(self, payload: dict[str, Any], envelope_id: str | None = None, retry_attempt: int = 0) -> str:
        """Deliver an `interactive` envelope (a button click) to every connected app socket."""
        envelope_id = envelope_id or uuid.uuid4().hex
        envelope = {"envelope_id": envelope_id, "type": "interactive", "payload": payload,
                    "accepts_response_payload": False, "retry_attempt": retry_attempt, "retry_reason": ""}
        self.send_raw(envelope)
        return envelope_id

    def send_raw(self, message: dict[str, Any]) -> None:
        with self._lock:
            sockets = list(self._sockets)
        if not sockets:
            raise RuntimeError("no Socket Mode client is connected")
        for sock in sockets:
            sock.send(json.dumps(message))

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        with self._changed:
            found = self._changed.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.acks), timeout=timeout)
            return next((a for a in self.acks if a.get("envelope_id") == envelope_id), None) if found else None

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        """Wait until `predicate()` holds (checked whenever the fake records something)."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout=timeout)

    def notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # --- the socket ---------------------------------------------------------------------------------
    def _serve_socket(self, conn: ServerConnection) -> None:
        conn.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID},
                              "debug_info": {"host": "fake-socketmode", "approximate_connection_time": 3600}}))
        with self._changed:
            self._sockets.append(conn)
            self._changed.notify_all()
        try:
            for raw in conn:
                try:
                    message = json.loads(raw)
                except (TypeError, ValueError):
                    message = {"unparsed": str(raw)[:200]}
                with self._changed:
                    self.acks.append(message)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self._sockets.remove(conn)
                self._changed.notify_all()

    # --- Web API additions ---------------------------------------------------------------------------
    def _install_open_handler(self) -> None:
        """`apps.connections.open` is authorised by the app token, unlike every other method, so it
        is answered before FakeSlack's bot-token check."""
        fake = self
        base = self._server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def _handle(self) -> None:
                if urlsplit(self.path).path != API_PREFIX + "apps.connections.open":
                    super()._handle()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                with fake._changed:
                    if token != fake.app_token:
                        fake.refused_opens += 1
                        fake._changed.notify_all()
                        self._send(200, {"ok": False, "error": "invalid_auth" if token else "not_authed"})
                        return
                    fake.connections_opened += 1
                    fake._changed.notify_all()
                self._send(200, {"ok": True, "url": f"ws://127.0.0.1:{fake.ws_port}/link/?ticket={uuid.uuid4().hex}&app_id={APP_ID}"})

        self._server.RequestHandlerClass = Handler

    def _api(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postEphemeral":
            channel = self._channels.get(p.get("channel") or "")
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            if not p.get("user") or not (p.get("text") or p.get("blocks")):
                return {"ok": False, "error": "invalid_arguments"}
            self.ephemerals.append({"channel": channel.id, "user": p["user"], "text": p.get("text", "")})
            self._changed.notify_all()  # the lock is held by the caller
            return {"ok": True, "message_ts": self._next_ts()}
        result = super()._api(method, p)
        self._changed.notify_all()
        return result
