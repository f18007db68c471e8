"""Small parsers every connector needs for hostile payloads: times, HTML bodies, numeric ids.

Each raises ValueError naming the field, which the connector turns into a quarantined BadInput.
"""
from __future__ import annotations

import email.utils
import json
from datetime import datetime, timedelta, timezone
from html import unescape
from html.parser import HTMLParser
from typing import Any

MAX_TEXT = 20_000  # characters kept of one post; longer bodies are cut, not refused
MAX_RAW = 10_000  # characters of a bad payload kept in quarantine
FUTURE_SLACK = timedelta(minutes=10)  # clocks drift; a post "from tomorrow" is refused


def iso_time(value: Any, field: str, now: datetime) -> datetime:
    """An ISO 8601 time with a zone, not in the future (a forged time must not shift counts)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"field '{field}' is missing or not a string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"field '{field}': not an ISO 8601 time: {value[:40]!r}") from None
    return _checked(when, field, now)


def rfc822_time(value: Any, field: str, now: datetime) -> datetime:
    """RSS dates ("Thu, 15 Jan 2026 08:00:00 +0800"); ISO 8601 accepted too, as feeds mix them."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field '{field}' is missing")
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return iso_time(value.strip(), field, now)
    return _checked(when, field, now)


def _checked(when: datetime, field: str, now: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"field '{field}': time has no timezone: {when.isoformat()}")
    when = when.astimezone(timezone.utc)
    if when > now + FUTURE_SLACK:
        raise ValueError(f"field '{field}': {when.isoformat()} is in the future")
    return when


class _TextOnly(HTMLParser):
    _BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"}
    _SKIP = {"script", "style"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    """Visible text of an HTML fragment (Mastodon content, RSS descriptions). The stdlib parser
    is enough: we only need the words, never to render or trust the markup."""
    if "<" not in html:
        return unescape(html).strip()[:MAX_TEXT]
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)[:MAX_TEXT]


def numeric_id(value: Any, field: str) -> int:
    """Mastodon and X ids are decimal strings larger than a float holds exactly: compare as int."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).isdigit():
        raise ValueError(f"field '{field}': expected a numeric id, got {str(value)[:40]!r}")
    return int(value)


def raw_text(item: Any) -> str:
    try:
        return json.dumps(item, ensure_ascii=False, default=str)[:MAX_RAW]
    except (TypeError, ValueError):
        return repr(item)[:MAX_RAW]


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
