"""A fold whose text adds up how many characters its searches scan: what tests of the
geotagger's name finding assert stays linear in the text, without timing anything."""
from __future__ import annotations

from typing import Any


class ScanCountingText(str):
    """A folded text counting, per method, the characters its `count` calls scan and its `rfind`
    calls scan (back from the end of the range to what they find)."""

    def __init__(self, _text: str) -> None:
        self.scanned = {"count": 0, "rfind": 0}

    def count(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else min(end, len(self))
        self.scanned["count"] += max(0, stop - start)
        return str.count(self, sub, start, end)

    def rfind(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else min(end, len(self))
        found = str.rfind(self, sub, start, end)
        self.scanned["rfind"] += max(0, stop - (found + 1 if found >= 0 else start))
        return found


class CountingFold:
    """A fold whose text counts its scans (`text.scanned`); everything else is the real fold's."""

    def __init__(self, folded: Any) -> None:
        self._folded = folded
        self.text = ScanCountingText(folded.text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._folded, name)
