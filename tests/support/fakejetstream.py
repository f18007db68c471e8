"""A fake Jetstream (Bluesky's JSON firehose) on 127.0.0.1, spoken to through the real
`websockets` client.

It serves `/subscribe` like Jetstream: every event is sent to every subscriber as one text
message; `cursor` (unix microseconds) replays the events from then on before the live tail. The
test drives it from its own thread, as FakeApis is driven: `post` publishes a created post,
`send` any event, `raw` any bytes (malformed JSON, an oversized message), `close` ends every
connection cleanly, `drop` cuts them without a close handshake (a server restart, a lost route).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve

POST = "app.bsky.feed.post"
T0_US = 1_764_806_400_000_000  # 2025-12-04T00:00:00Z in microseconds


@dataclass
class Subscription:
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeJetstream:
    subscriptions: list[Subscription] = field(default_factory=list)
    log: list[tuple[int, str | bytes]] = field(default_factory=list)  # (time_us, message) of every event sent

    def __post_init__(self) -> None:
        self._clients: set[ServerConnection] = set()
        self._ready = threading.Event()
        self._clock = itertools.count(T0_US, 1000)
        self._rkeys = itertools.count(1)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> "FakeJetstream":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop: asyncio.Future[None] = self.loop.create_future()
        # max_size=None: the fake must be able to send what the client refuses to read; deflate,
        # which the client offers: an oversized message then arrives small and must be refused
        # by its inflated size
        async with serve(self._handler, "127.0.0.1", 0, max_size=None, compression="deflate") as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop
            for ws in list(self._clients):
                ws.transport.abort()

    async def _handler(self, ws: ServerConnection) -> None:
        parts = urlsplit(ws.request.path)
        params = parse_qs(parts.query)
        self.subscriptions.append(Subscription(parts.path, params, dict(ws.request.headers.raw_items())))
        if parts.path != "/subscribe":
            await ws.close(1008, "not found")
            return
        if "cursor" in params:
            since = int(params["cursor"][-1])
            for time_us, message in list(self.log):
                if time_us >= since:
                    await ws.send(message)
        self._clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self._clients.discard(ws)

    # --- what a test sees -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    @property
    def listening(self) -> int:
        return len(self._clients)

    # --- what a test makes the network do -----------------------------------------------------------

    def post(self, text: str, langs: list[str] | None = None, did: str = "did:plc:wargabuleleng0000000000",
             **record: Any) -> dict[str, Any]:
        """A new post, as Jetstream sends it."""
        rkey = f"3lbsky{next(self._rkeys):07d}"
        body: dict[str, Any] = {"$type": POST, "text": text, "createdAt": "2025-12-04T00:00:00.000Z"}
        if langs is not None:
            body["langs"] = langs
        body.update(record)
        return self.send({"kind": "commit", "commit": {"rev": rkey, "operation": "create", "collection": POST,
                                                       "rkey": rkey, "record": body, "cid": "bafyrei" + rkey}}, did)

    def send(self, event: dict[str, Any], did: str = "did:plc:wargabuleleng0000000000") -> dict[str, Any]:
        """Any event (a delete, an update, a like, an identity change), with its did and time."""
        time_us = next(self._clock)
        event = {"did": did, "time_us": time_us, **event}
        self._broadcast(time_us, json.dumps(event, ensure_ascii=False))
        return event

    def raw(self, message: str | bytes) -> None:
        """Exactly these bytes or this text as one message, to every subscriber."""
        self._broadcast(next(self._clock), message, logged=False)

    def close(self) -> None:
        """Close every connection cleanly (code 1000), as a server going down for maintenance."""
        async def bye() -> None:
            for ws in list(self._clients):
                await ws.close()

        asyncio.run_coroutine_threadsafe(bye(), self.loop).result(10)

    def drop(self) -> None:
        """Cut every connection without a close frame."""
        async def cut() -> None:
            for ws in list(self._clients):
                ws.transport.abort()

        asyncio.run_coroutine_threadsafe(cut(), self.loop).result(10)

    def _broadcast(self, time_us: int, message: str | bytes, logged: bool = True) -> None:
        async def send_all() -> None:
            if logged:
                self.log.append((time_us, message))
            for ws in list(self._clients):
                try:
                    await ws.send(message)
                except Exception:  # noqa: BLE001 - a subscriber gone meanwhile
                    pass

        asyncio.run_coroutine_threadsafe(send_all(), self.loop).result(10)
