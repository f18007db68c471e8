"""Small parsers every connector needs for hostile payloads: JSON, times, HTML bodies, ids.

Each raises ValueError naming the field, which the connector turns into a quarantined BadInput.
None of them may raise anything else on any input (deep nesting, huge numbers, odd dates): one
bad record must cost one record, never the poll it came in.
"""
from __future__ import annotations

import email.utils
import json
import re
from datetime import datetime, timezone, tzinfo
from html import unescape
from html.parser import HTMLParser
from typing import Any

from siaga.sources.schema import MAX_TEXT, Unreadable, check_time, storable

MAX_DEPTH = 64  # containers deeper than this are not built (the stdlib decoder recurses)
MAX_INT_DIGITS = 4300  # Python's own limit for int(str); longer integers are not built
MAX_TIME_CHARS = 64
MAX_ID = 2**63 - 1  # Mastodon and X ids are signed 64-bit snowflakes


# --- JSON ------------------------------------------------------------------------------------


# A JSON string literal or a bracket: enough to find nesting without decoding.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)
_TOO_DEEP = "\x00siaga: nested too deep"  # contains NUL, so it can never pass as real data


def load_json(text: str) -> Any:
    """`json.loads`, except that no input makes it raise anything but `json.JSONDecodeError`:
    containers nested deeper than MAX_DEPTH and integers longer than MAX_INT_DIGITS come back as
    `Unreadable`. NaN and Infinity come back as floats (`schema.check_record` refuses them).

    The stdlib decoder is kept for the normal case (it is C and fast); only a document it cannot
    build is decoded again with the deep parts cut out, by a bracket scan, because no pinned
    library decodes JSON with a depth limit."""
    try:
        value = json.loads(text)
    except RecursionError:
        return _load_capped(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer of more than 4,300 digits
        return _load_capped(text)
    # Every container needs an opening bracket in the text (one inside a string only makes the
    # count larger), so a text with no more than MAX_DEPTH of them cannot nest deeper: the walk
    # over the decoded value, a tenth of ingesting a post, is skipped for nearly every post.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth_exceeds(value, MAX_DEPTH):
        return _load_capped(text)
    return value


def _load_capped(text: str) -> Any:
    pieces: list[str] = []
    depth, cut_from, last = 0, -1, 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth == MAX_DEPTH + 1:
                cut_from = match.start()
        elif token in "]}":
            if depth == MAX_DEPTH + 1 and cut_from >= 0:
                pieces += [text[last:cut_from], json.dumps(_TOO_DEEP)]
                last, cut_from = match.end(), -1
            depth -= 1
    # A deep part never closed: the document is broken; the decoder says so without recursing.
    pieces.append(text[last:cut_from] + json.dumps(_TOO_DEEP) if cut_from >= 0 else text[last:])
    try:
        return _mark_too_deep(json.loads("".join(pieces), parse_int=_int))
    except RecursionError:  # the scan and the decoder disagreed on a broken document
        raise json.JSONDecodeError("nested too deeply to read", text, 0) from None


def _int(digits: str) -> int | Unreadable:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        return Unreadable(f"an integer of {len(digits.lstrip('-'))} digits")
    return int(digits)


def _mark_too_deep(value: Any) -> Any:
    if value == _TOO_DEEP:
        return Unreadable(f"nested deeper than {MAX_DEPTH} levels")
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            if child == _TOO_DEEP:
                node[key] = Unreadable(f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(child, (dict, list)):
                stack.append(child)
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def json_text(value: Any) -> str:
    """A record as JSON text for quarantine, whatever it holds (markers, NaN, surrogates)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


# --- times -----------------------------------------------------------------------------------


def parse_time(value: Any, field: str, naive_tz: tzinfo | None = None) -> datetime:
    """An ISO 8601 time as UTC. Without a zone it is refused unless `naive_tz` says what zone a
    source writes (replay files in Bali time). Years before 2000 or too far ahead to convert
    are refused here, never raised as OverflowError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field '{field}' is missing or not a string")
    if len(value) > MAX_TIME_CHARS:
        raise ValueError(f"field '{field}': {len(value)} characters is too long for a time")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"field '{field}': not an ISO 8601 time: {storable(value[:40])!r}") from None
    if when.tzinfo is None:
        if naive_tz is None:
            raise ValueError(f"field '{field}': time has no timezone: {storable(value[:40])!r}")
        when = when.replace(tzinfo=naive_tz)
    return _utc(when, field)


def _utc(when: datetime, field: str) -> datetime:
    try:
        return when.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError(f"field '{field}': {when.isoformat()} is out of range") from None


def iso_time(value: Any, field: str, now: datetime) -> datetime:
    """An ISO 8601 time with a zone, from 2000 on, not in the future (a forged time must not
    shift counts)."""
    return check_time(parse_time(value, field), field, now)


_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_RFC822_YEAR = re.compile(rf"\b(?:{_MONTHS})[a-z]*\.?\s+(\d+)\b", re.I)


def rfc822_time(value: Any, field: str, now: datetime) -> datetime:
    """RSS dates ("Thu, 15 Jan 2026 08:00:00 +0800"); ISO 8601 accepted too, as feeds mix them.

    The stdlib reads a four-digit year such as 0001 as 2001 (it takes any year under 100 for a
    two-digit one): the year is checked against what was written."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field '{field}' is missing")
    value = value.strip()
    if len(value) > MAX_TIME_CHARS:
        raise ValueError(f"field '{field}': {len(value)} characters is too long for a time")
    try:
        when = email.utils.parsedate_to_datetime(value)
    except Exception:  # the stdlib's date parser has raised TypeError, ValueError and IndexError
        return iso_time(value, field, now)
    written = _RFC822_YEAR.search(value)
    if written and len(written.group(1)) > 2 and int(written.group(1)) != when.year:
        raise ValueError(f"field '{field}': year {written.group(1)} is out of range")
    if when.tzinfo is None:
        raise ValueError(f"field '{field}': time has no timezone: {value[:40]!r}")
    return check_time(_utc(when, field), field, now)


# --- HTML ------------------------------------------------------------------------------------


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
    is enough: we only need the words, never to render or trust the markup. Lines break at
    "\\n" only (never at U+2028 and the like, which `splitlines` would take for line ends)."""
    if "<" not in html:
        return unescape(html).strip()[:MAX_TEXT]
    html = _unclosed_as_text(html)
    try:
        parts = _text_parts(html)
    except AssertionError:  # Python 3.11's parser on a marked section it does not know ("<![x[")
        parts = _text_parts(html.replace("<![", "&lt;!["))
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)[:MAX_TEXT]


def _text_parts(html: str) -> list[str]:
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return parser.parts


def _unclosed_as_text(html: str) -> str:
    """`html` with each "<" after its last ">" written "&lt;": none of them can open a tag, and the
    parser reads them as text either way (the same text, a property test holds), but Python
    3.11's read each as a tag to the end of the input first, quadratic in them: "<a " 10,000
    times, one Mastodon status or RSS description, took 7 s, 40,000 times two minutes."""
    last = html.rfind(">")
    tail = html[last + 1:]
    return html if "<" not in tail else html[:last + 1] + tail.replace("<", "&lt;")


# --- fields ----------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]{1,19}")


def numeric_id(value: Any, field: str) -> int:
    """Mastodon and X ids are decimal strings larger than a float holds exactly: compare as int.
    Only ASCII digits within a signed 64-bit id: a hostile id must not push a cursor past every
    real post."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not _DIGITS.fullmatch(text) or int(text) > MAX_ID:
        raise ValueError(f"field '{field}': expected a numeric id, got {storable(json_text(value)[:40])}")
    return int(text)


def record_id(value: Any, field: str = "id") -> str:
    """An id given in a JSON record: a non-empty string or an integer (never true, 1.5, {} or [])."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"field '{field}': expected a string or an integer, got {type(value).__name__} {storable(json_text(value)[:40])}")
    text = str(value)
    if not text.strip():
        raise ValueError(f"field '{field}' is empty")
    return text


def opt_text(value: Any, field: str) -> str | None:
    """An optional string field of a JSON record: null or "" mean absent, anything else is wrong."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"field '{field}': expected a string, got {type(value).__name__}")
    return value


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
