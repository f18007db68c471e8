"""A source that returns the same poll every time: the posts and bad input a test hands it.

For tests of what ingest does with a poll's result (storing, quarantining, queueing for
tagging, retention), where how a real connector pages is beside the point.
"""
from __future__ import annotations

from typing import Any, Iterable

from siaga.sources import BadInput, IncomingPost, PollResult


class Fixed:
    def __init__(self, name: str, posts: list[IncomingPost], bad: Iterable[BadInput] = ()) -> None:
        self.name, self.posts, self.bad = name, posts, list(bad)

    def poll(self, cursor: dict[str, Any] | None, now: Any) -> PollResult:
        return PollResult(self.posts, self.bad, {"polled": True})
