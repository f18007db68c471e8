"""A pipe that hands over its bytes a few at a time, as a real one may: for readers that must not
assume a line, or a JSON value, arrives in one read."""
from __future__ import annotations

import io


class Trickle(io.RawIOBase):
    """At most `step` bytes per read."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        size = min(self.step, len(buffer))
        chunk, self.data = self.data[:size], self.data[size:]
        buffer[: len(chunk)] = chunk
        return len(chunk)
