"""One record at a time: what every connector does with each record it reads.

A record (a line of a file, an item of an API page or feed) becomes posts that passed the
shared schema, or one `BadInput` saying where it was and what was wrong. Whatever a record
raises, it costs that record only: its neighbours are kept and the cursor moves past it. Only
a configuration error (a missing pseudonymisation key, missing credentials) stops the poll,
because it is wrong for every record alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Iterable

from siaga.sources.base import BadInput, IncomingPost, SourceConfigError
from siaga.sources.parsing import json_text, load_json
from siaga.sources.schema import check_post, check_record, storable

MAX_LABEL = 120  # characters of an item id quoted in a location


def describe(exc: BaseException) -> str:
    """The reason a record was refused, for a person: our own checks already say which field
    and what was wrong; anything else is named by its type, as it is a case nobody foresaw."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    if isinstance(exc, ValueError) and not isinstance(exc, UnicodeError):
        return storable(str(exc))[:1000]
    return storable(f"unexpected {type(exc).__name__}: {exc}")[:1000]


def label(value: Any) -> str | None:
    """An item's id as it may appear in a location, or None when it is no usable id."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = storable(str(value) if isinstance(value, str) else json_text(value))
    return text[:MAX_LABEL] if text.strip() else None


def raw_of(record: Any) -> str:
    """A record as text for quarantine: bytes that are not UTF-8 are kept as escapes."""
    if isinstance(record, bytes):
        return record.decode("utf-8", "backslashreplace")
    if isinstance(record, str):
        return record
    return json_text(record)


BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark


def without_bom(data: bytes) -> bytes:
    """A JSON Lines file's bytes without the byte order mark some editors write first (Windows
    Notepad's "UTF-8 with BOM", a spreadsheet's "CSV UTF-8"): the first line was refused as "not
    valid JSON: Unexpected UTF-8 BOM" and its post quarantined, where the same export saved as
    one JSON document was read. Only the file's first bytes: anywhere else U+FEFF is a character
    of its line, refused there."""
    return data[len(BOM):] if data.startswith(BOM) else data


def decode_line(line: bytes) -> Any:
    """One line of a JSON Lines file, as a record: strict UTF-8 (an undecodable byte is refused,
    never replaced by U+FFFD and stored), then JSON."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8: byte 0x{line[exc.start]:02x} at byte {exc.start}") from None
    try:
        record = load_json(text)
    except ValueError as exc:
        # json's "Invalid control character at" already ends in "at": said once
        what = str(getattr(exc, "msg", exc)).removesuffix(" at")
        raise ValueError(f"not valid JSON: {what} at column {getattr(exc, 'colno', '?')}") from None
    check_record(record)
    return record


@dataclass
class Records:
    """The posts and bad input of one poll, filled record by record with `take`."""

    now: datetime | None  # the poll's time; None defers the check for the future (replay)
    posts: list[IncomingPost] = field(default_factory=list)
    bad: list[BadInput] = field(default_factory=list)
    by_place: bool = False  # a file's records: each bad one counts at its own place (`BadInput.by_place`)

    def take(self, where: str | Callable[[], str], record: Any, parse: Callable[[], IncomingPost | Iterable[IncomingPost]]) -> list[IncomingPost]:
        """The posts `parse()` makes of `record`, checked against the schema; or, whatever goes
        wrong, none and a BadInput at `where`. `where` and `record` may be functions, asked only
        when the record is bad (naming or serialising every good record would be wasted work)."""
        try:
            got = parse()
            posts = [got] if isinstance(got, IncomingPost) else list(got)
            for post in posts:
                check_post(post, self.now)
        except SourceConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 -- the point: one record never fails the poll
            refused = self.refused(where, record, exc)
            self.bad.append(replace(refused, by_place=True) if self.by_place else refused)
            return []
        self.posts.extend(posts)
        return posts

    @staticmethod
    def refused(where: str | Callable[[], str], record: Any, exc: BaseException) -> BadInput:
        try:
            location = where() if callable(where) else where
        except Exception:  # noqa: BLE001 -- a record too broken to name is still kept
            location = "(unnamed record)"
        try:
            raw = raw_of(record() if callable(record) else record)
        except Exception as err:  # noqa: BLE001
            raw = f"(could not be quoted: {type(err).__name__})"
        return BadInput(storable(location), describe(exc), storable(raw))
