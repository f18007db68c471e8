"""What every source yields: posts in one shape, bad input with where it was, and a cursor."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from siaga.normalise import fold


class SourceConfigError(ValueError):
    """A source entry in config is wrong; the message names the file and field."""


@dataclass(frozen=True)
class IncomingPost:
    source: str
    source_id: str
    created_at: datetime
    text: str
    author: str | None
    url: str | None
    lat: float | None
    lon: float | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def text_hash(self) -> str:
        return text_fingerprint(self.text)


@dataclass(frozen=True)
class BadInput:
    location: str  # file:line, or an API page and index
    reason: str
    raw: str


@dataclass(frozen=True)
class PollResult:
    posts: list[IncomingPost]
    bad: list[BadInput]
    cursor: dict[str, Any]


class Source(Protocol):
    name: str

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult: ...


_URLS = re.compile(r"https?://\S+")
_MENTIONS = re.compile(r"(^|\s)(rt\s+)?@\w+:?")


def text_fingerprint(text: str) -> str:
    """Reposts and near-identical copies ("RT @x: ...", a different link) share this."""
    stripped = _MENTIONS.sub(" ", _URLS.sub(" ", text.lower()))
    return hashlib.sha256(fold(stripped).text.encode()).hexdigest()[:32]
