"""A response body as given chunks, so a stream reader's bounds can be tested however the bytes
are split on the wire."""
from __future__ import annotations

from typing import AsyncIterator

import httpx


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (taken modulo its length, so any integers will do)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


async def drain(stream: httpx.AsyncByteStream) -> bytes:
    return b"".join([chunk async for chunk in stream])
