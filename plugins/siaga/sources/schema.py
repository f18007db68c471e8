"""The one shape every post has before it is stored, whatever source it came from.

Each connector checks the posts it makes against it inside its per-record guard (so a refusal
names the file and line or item id), and ingest checks again before storing, so nothing reaches
the database that SQLite or PostgreSQL would refuse or silently mangle:

- strings are valid Unicode, which rules out lone surrogates (an undecodable byte or a broken
  escape: SQLite and PostgreSQL cannot encode them), and hold no NUL (PostgreSQL refuses it);
  ids, source names and authors hold no control characters either;
- lengths fit the columns of `store.Post`; text is at most MAX_TEXT characters;
- times carry a zone, are from MIN_TIME on and at most FUTURE_SLACK after the poll that found
  them (an API cannot return a post from the future: the author's clock or the record is wrong);
- numbers are finite and coordinates on the globe;
- the raw payload is JSON both backends store: string keys, clean strings, finite numbers,
  integers within 64 bits, at most MAX_RAW_DEPTH deep and MAX_RAW_CHARS long.

Every refusal is a ValueError saying which field and what was wrong.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from operator import attrgetter, is_
from typing import TYPE_CHECKING, Any

from siaga.store import Post
from siaga.vocabulary import MAX_TEXT  # characters of one post; HTML bodies are cut to it, JSON records refused beyond it

if TYPE_CHECKING:
    from siaga.sources.base import IncomingPost

_COLUMNS = Post.__table__.c
SOURCE_CHARS: int = _COLUMNS.source.type.length
ID_CHARS: int = _COLUMNS.source_id.type.length
AUTHOR_CHARS: int = _COLUMNS.author.type.length
MAX_URL = 2_048
MAX_RAW_CHARS = 100_000  # characters of a post's raw payload, as JSON
MAX_RAW_DEPTH = 16
MAX_RAW = 10_000  # characters of a bad record kept in quarantine
MIN_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)  # older "posts" are typos (0026 for 2026) or forged
FUTURE_SLACK = timedelta(minutes=10)  # clocks drift; a post "from tomorrow" is refused
_INT64 = 2**63

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Unreadable:
    """A value the JSON decoder declined to build (nested too deep, an integer too long). It is
    left in place so the one record holding it is refused, naming the field, while its
    neighbours in the same document are still read (`parsing.load_json`)."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"<{self.why}>"

    __str__ = __repr__


def storable(text: str) -> str:
    """`text` with NUL and lone surrogates written as escapes, so it can be stored and shown:
    for quarantine rows and messages quoting bad input."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _unicode_problem(value: str) -> str | None:
    if "\x00" in value:
        return f"contains NUL (U+0000) at character {value.index(chr(0))}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        what = f"undecodable byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"lone surrogate U+{code:04X}"
        return f"is not valid Unicode: {what} at character {exc.start}"
    return None


def check_string(value: Any, field: str, max_chars: int, *, required: bool = False, single_line: bool = False) -> str | None:
    """A string field: valid Unicode without NUL, within `max_chars`; None allowed unless
    `required`. `single_line` also refuses control characters (ids, names)."""
    if value is None:
        if required:
            raise ValueError(f"field '{field}' is missing")
        return None
    if not isinstance(value, str):
        raise ValueError(f"field '{field}': expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise ValueError(f"field '{field}' is empty")
    if len(value) > max_chars:
        raise ValueError(f"field '{field}': {len(value)} characters, more than {max_chars}")
    problem = _unicode_problem(value)
    if problem:
        raise ValueError(f"field '{field}' {problem}")
    if single_line:
        control = _CONTROL.search(value)
        if control:
            raise ValueError(f"field '{field}' contains control character U+{ord(control.group()):04X} at character {control.start()}")
    return value


def check_time(when: Any, field: str, now: datetime | None) -> datetime:
    """A zone-aware time from MIN_TIME on and, when `now` is given, at most FUTURE_SLACK after it."""
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"field '{field}': expected a time with a zone, got {when!r}"[:200])
    if when < MIN_TIME:
        raise ValueError(f"field '{field}': {when.isoformat()} is before {MIN_TIME.date().isoformat()}")
    if now is not None and when > now + FUTURE_SLACK:
        raise ValueError(f"field '{field}': {when.isoformat()} is in the future (more than {_minutes(FUTURE_SLACK)} after {now.isoformat()})")
    return when


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g} minutes"


def check_number(value: Any, field: str, low: float, high: float) -> float | None:
    """A finite JSON number within [low, high] (a latitude, a longitude) as a float, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"field '{field}': expected a number, got {type(value).__name__} {storable(repr(value)[:40])}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"field '{field}': {str(value)[:40]} is outside [{low}, {high}]") from None
    if not low <= number <= high:  # also refuses NaN
        raise ValueError(f"field '{field}': {number} is outside [{low}, {high}]")
    return number


def _path(parent: str, key: Any) -> str:
    part = f"[{key}]" if isinstance(key, int) else (("." if parent else "") + storable(str(key))[:40])
    return parent + part


def _spelled(field: str, keys: tuple[Any, ...]) -> str:
    """The path of a node below `field`, as `_path` spells it one step at a time."""
    path = field
    for key in keys:
        path = _path(path, key)
    return path


def _plain(value: str) -> bool:
    """A string `check_string` would accept on sight: ASCII (so valid UTF-8), no NUL, short."""
    return value.isascii() and len(value) <= MAX_RAW_CHARS and "\x00" not in value


def _shown(path: str) -> str:
    return path if len(path) <= 80 else f"{path[:40]}…{path[-30:]}"


def check_record(record: Any, field: str = "") -> None:
    """An input record (one JSON line, one API item) holds nothing a JSON decoder should not have
    produced: no NaN or Infinity (not JSON, and PostgreSQL refuses them), no value the decoder
    declined to build (nested too deep, an integer of thousands of digits)."""
    stack = [(record, field)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, _path(path, k)) for k, v in node.items() if isinstance(v, (dict, list, float, Unreadable)))
        elif isinstance(node, list):
            stack.extend((v, _path(path, i)) for i, v in enumerate(node) if isinstance(v, (dict, list, float, Unreadable)))
        elif isinstance(node, Unreadable):
            raise ValueError(f"field '{_shown(path) or '(record)'}': {node.why}")
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError(f"field '{_shown(path) or '(record)'}': {node} is not a JSON number")


def check_raw(raw: Any, field: str = "raw") -> None:
    """The raw payload kept with a post is JSON that SQLite and PostgreSQL both store."""
    _checked_raw(raw, field)


def _checked_raw(raw: Any, field: str) -> list[Any]:
    """`check_raw`, returning the dicts and lists `raw` is made of (for `_seal`).

    The walk keeps each node's path as a tuple of keys and spells it only for an error, and a
    plain ASCII string without NUL within the limit (nearly all of them) is accepted without the
    full string check. A flat record of such values (most records: a JSON line, an API item's
    fields) is accepted without the walk (`_flat_and_fine`)."""
    if not isinstance(raw, dict):
        raise ValueError(f"field '{field}': expected an object, got {type(raw).__name__}")
    if _flat_and_fine(raw):
        return [raw]
    containers: list[Any] = []
    size = 0
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(raw, (), 1)]
    while stack:
        node, keys, depth = stack.pop()
        if depth > MAX_RAW_DEPTH:
            raise ValueError(f"field '{_shown(_spelled(field, keys))}': nested deeper than {MAX_RAW_DEPTH} levels")
        if isinstance(node, dict):
            containers.append(node)
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"field '{_spelled(field, keys)}': key {key!r} is not a string"[:200])
                if not _plain(key):
                    check_string(key, _spelled(field, keys + (key,)), MAX_RAW_CHARS)
                size += len(key)
                stack.append((value, keys + (key,), depth + 1))
        elif isinstance(node, list):
            containers.append(node)
            stack.extend((value, keys + (i,), depth + 1) for i, value in enumerate(node))
        elif isinstance(node, str):
            if not _plain(node):
                check_string(node, _spelled(field, keys), MAX_RAW_CHARS)
            size += len(node)
        elif isinstance(node, bool) or node is None:
            pass
        elif isinstance(node, int):
            if not -_INT64 <= node < _INT64:
                raise ValueError(f"field '{_spelled(field, keys)}': integer outside 64 bits")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError(f"field '{_spelled(field, keys)}': {node} is not a JSON number")
        else:
            raise ValueError(f"field '{_spelled(field, keys)}': {type(node).__name__} is not JSON")
        if size > MAX_RAW_CHARS:
            raise ValueError(f"field '{field}': more than {MAX_RAW_CHARS} characters")
    return containers


def _flat_and_fine(raw: dict[Any, Any]) -> bool:
    """True when `raw` is one level of values `check_raw`'s walk accepts as they are: plain
    string keys; strings, 64-bit integers, finite floats, booleans and nulls; within
    MAX_RAW_CHARS in all. False for anything else, which the walk then checks and names."""
    size = 0
    for key, value in raw.items():
        if type(key) is not str or not _plain(key):
            return False
        size += len(key)
        kind = type(value)
        if kind is str:
            if not _plain(value) and (len(value) > MAX_RAW_CHARS or _unicode_problem(value) is not None):
                return False
            size += len(value)
        elif kind is int:
            if not -_INT64 <= value < _INT64:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif value is not None and kind is not bool:
            return False
    return size <= MAX_RAW_CHARS


def check_post(post: IncomingPost, now: datetime | None) -> IncomingPost:
    """`post` if it has the shape every stored post has; else ValueError naming the field.
    `now` is the time of the poll (None: do not check for the future, as replay does before a
    line is due).

    Every post is checked twice, by its connector and again by ingest, which must let nothing
    unchecked through whatever source made the post. A post that passed carries a seal
    (`IncomingPost.schema_checked`, see `_seal`), which only this function makes: it holds the
    values that were checked, and the second check accepts them without walking them again
    (most of the check's cost) only while the post still holds exactly those values; then only
    `now`, which may differ, is checked again. A post never checked, rebuilt
    (`dataclasses.replace` makes a new, unsealed post), given another field by
    `object.__setattr__`, or whose raw payload was changed at any depth after its check is
    checked in full again."""
    seal = getattr(post, "schema_checked", None)
    if type(seal) is tuple and seal and seal[0] is _SEALED and _holds(seal, post):
        check_time(post.created_at, "created_at", now)
        return post
    check_string(post.source, "source", SOURCE_CHARS, required=True, single_line=True)
    check_string(post.source_id, "id", ID_CHARS, required=True, single_line=True)
    check_time(post.created_at, "created_at", now)
    check_string(post.text, "text", MAX_TEXT, required=True)
    check_string(post.author, "author", AUTHOR_CHARS, single_line=True)
    check_string(post.url, "url", MAX_URL, single_line=True)
    check_string(post.reposts, "reposts", MAX_URL, single_line=True)
    check_number(post.lat, "lat", -90, 90)
    check_number(post.lon, "lon", -180, 180)
    containers = _checked_raw(post.raw, "raw")
    try:
        object.__setattr__(post, "schema_checked", _seal(post, containers))
    except (AttributeError, TypeError):  # not an IncomingPost (a test's stand-in): checked every time
        pass
    return post


# The seal of a checked post (`_seal`): a tuple starting with this object, which nothing
# outside this module can name, then the kind of payload it seals.
_SEALED, _FLAT, _NESTED = object(), object(), object()
_FIELDS = attrgetter("source", "source_id", "created_at", "text", "author", "url", "reposts", "lat", "lon")


def _seal(post: IncomingPost, containers: list[Any]) -> tuple[Any, ...]:
    """What `check_post` checked of one post: the very objects in its fields, and the keys and
    values of every dict and list of its raw payload (`containers`, the payload first;
    references, not copies).

    `_holds` is true only while every field of the post is the very object checked and every
    container of its payload still holds the very keys and values it held (a key added, removed
    or re-bound at any depth changes its container's contents). Identity, not equality: nothing
    a value's own `__eq__` says can pass a changed post. A flat payload (one dict of strings,
    numbers, booleans and nulls: a JSON line, most API items) is sealed by its keys and values
    alone, so the seal holds no container and the garbage collector stops tracking it; sealing
    and verifying a post cost about a microsecond each, against some five to check it."""
    if len(containers) == 1:
        raw = containers[0]
        return (_SEALED, _FLAT, *_FIELDS(post), *raw, *raw.values())
    return (_SEALED, _NESTED, *_FIELDS(post), post.raw, tuple((node, _contents(node)) for node in containers))


def _holds(seal: tuple[Any, ...], post: IncomingPost) -> bool:
    if seal[1] is _FLAT:
        raw = post.raw
        if type(raw) is not dict:
            return False
        now = (_SEALED, _FLAT, *_FIELDS(post), *raw, *raw.values())
        return len(now) == len(seal) and all(map(is_, seal, now))
    now = (_SEALED, _NESTED, *_FIELDS(post), post.raw)  # the seal's all but its last item
    return all(map(is_, seal, now)) and all(_same(was, _contents(node)) for node, was in seal[-1])


def _contents(node: Any) -> tuple[Any, ...]:
    """A dict's keys then its values, or a list's items."""
    return (*node, *node.values()) if isinstance(node, dict) else tuple(node)


def _same(was: tuple[Any, ...], now: tuple[Any, ...]) -> bool:
    return len(was) == len(now) and all(map(is_, was, now))
