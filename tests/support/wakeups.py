"""The wake-ups a push reader gives while a test acts on its source: what the watched-source
tests (a feed, an inbox folder) compare."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Awaitable, Callable

from siaga.sources import push


async def wake_ups_while(stream: push.PushStream, act: Callable[[], Awaitable[None]], *, learn: float = 0.0,
                         settle: float = 0.3) -> list[push.WakeUp]:
    """The wake-ups `stream` gives (no gap between them, a short backoff) while `act()` runs,
    `learn` seconds after listening starts (time for a watcher's first look), and for `settle`
    seconds after it."""
    got: list[push.WakeUp] = []

    async def collect() -> None:
        async for wake_up in push.wake_ups(stream, gap=0.0, backoff_first=0.05):
            got.append(wake_up)

    task = asyncio.create_task(collect())
    try:
        await asyncio.sleep(learn)
        await act()
        await asyncio.sleep(settle)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # its reader and looks are cancelled before the loop closes
    return got
