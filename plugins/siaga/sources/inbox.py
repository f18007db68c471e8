"""A folder of exported posts (group exports, WhatsApp forwards typed up by staff) for sources
without an API: `*.json` (one object or a list) and `*.jsonl` files, each post checked against
a JSON Schema so staff get a precise reason for every refused line.

The connector cannot know when a file's posts are safely stored, so it never moves or deletes
files; the cursor remembers each file's size and modification time, and a file is read again
only when it changes (the store keeps one row per post id, so re-reading is harmless).
"""
from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any, AsyncIterator, Callable

from jsonschema import Draft202012Validator, FormatChecker

from siaga.files import read_regular_file
from siaga.sources.base import AuthorPolicy, BadInput, IncomingPost, PollResult, SourceConfigError, author_key
from siaga.sources.parsing import iso_time, load_json, record_id
from siaga.sources.records import Records, decode_line, without_bom
from siaga.sources.push import PushStream
from siaga.sources.schema import AUTHOR_CHARS, ID_CHARS, MAX_TEXT, MAX_URL, check_number, check_record, storable
from siaga.sources.watch import WATCH_EVERY, Seen, changes, check_watch

POST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "created_at", "text"],
    "properties": {
        "id": {"type": ["string", "integer"], "minLength": 1, "maxLength": ID_CHARS},
        "created_at": {"type": "string", "format": "date-time"},
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
        "author": {"type": ["string", "null"], "maxLength": AUTHOR_CHARS},
        "url": {"type": ["string", "null"], "maxLength": MAX_URL},
        "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
        "lon": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
        "channel": {"type": ["string", "null"], "maxLength": 200},  # e.g. "WA grup Warga Sukasada"
    },
}
_VALIDATOR = Draft202012Validator(POST_SCHEMA, format_checker=FormatChecker())
MAX_FILE_BYTES = 20_000_000


@dataclass
class InboxSource:
    name: str
    folder: Path
    authors: AuthorPolicy = AuthorPolicy()
    key: Callable[[], bytes] = author_key
    push: bool = False
    watch_every: float = WATCH_EVERY  # with push: seconds between two looks at the folder (`folder_announcements`)

    @classmethod
    def from_config(cls, entry: dict[str, Any], base_dir: Path, where: str) -> "InboxSource":
        if not isinstance(entry.get("path"), str):
            raise SourceConfigError(f"{where}.path: an inbox source needs a folder path")
        folder = Path(entry["path"])
        push, every = check_watch(entry, where)
        return cls(entry["name"], folder if folder.is_absolute() else base_dir / folder, AuthorPolicy.from_config(entry, where),
                   push=push, watch_every=every)

    def push_streams(self) -> list[PushStream]:
        """The folder, watched by the triggerer (none without `push`): a file dropped or
        changed there wakes ingest (`folder_announcements`). The triggerer must see the folder
        the workers read (the same machine, or the same volume)."""
        return [PushStream(self.name, str(self.folder), protocol="inbox", every=self.watch_every)] if self.push else []

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult:
        done: dict[str, Any] = dict((cursor or {}).get("files") or {})
        posts: list[IncomingPost] = []
        bad: list[BadInput] = []
        if not self.folder.is_dir():
            return PollResult([], [BadInput(str(self.folder), "inbox folder does not exist", "")], {"files": done}, [f"{self.folder}: missing"])
        files, odd = _listing(self.folder)
        for path in odd:
            bad.append(BadInput(path.name, "not a regular file (a folder, a link to nowhere, a device or a pipe): not read", ""))
        for path, stamp, size in files:
            if done.get(path.name) == stamp:
                continue
            if size > MAX_FILE_BYTES:
                bad.append(BadInput(f"{path.name}@{stamp}", f"file larger than {MAX_FILE_BYTES} bytes", ""))
            else:
                try:
                    got, got_bad = self._read(path, now)
                except OSError as exc:
                    # One file the service cannot read (its permissions, a failing disk) costs
                    # that file, not the folder's other files: kept as bad input, and not marked
                    # read, so it is read once it can be.
                    bad.append(BadInput(f"{path.name}@{stamp}", f"cannot read the file: {exc.strerror or exc}", ""))
                    continue
                posts += got
                bad += got_bad
            done[path.name] = stamp
        return PollResult(posts, bad, {"files": done})

    def _read(self, path: Path, now: datetime) -> tuple[list[IncomingPost], list[BadInput]]:
        """Each line (split at "\\n" only, strict UTF-8) or each item of a JSON document, on its
        own: one bad record is quarantined with its place, never its neighbours."""
        data = read_regular_file(path, MAX_FILE_BYTES)  # what was listed may have been swapped since
        if len(data) > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, f"it grew past {MAX_FILE_BYTES} bytes since it was listed")
        records = Records(now, by_place=True)
        if path.suffix.lower() == ".jsonl":
            for n, line in enumerate(without_bom(data).split(b"\n"), start=1):
                line = line.removesuffix(b"\r")
                if line.strip():
                    records.take(f"{path.name}:{n}", line, lambda: self.parse(decode_line(line), now))
            return records.posts, records.bad
        # One document: bytes that are not UTF-8 become lone surrogates, so they cost only the
        # item whose fields hold them (the schema refuses them there), not the whole file.
        text = data.decode("utf-8-sig", "surrogateescape")
        try:
            doc = load_json(text)
        except ValueError as exc:
            reason = f"not valid JSON: {getattr(exc, 'msg', exc)} at line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')}"
            return [], [BadInput(path.name, reason, storable(data.decode("utf-8", "backslashreplace")), by_place=True)]
        for i, item in enumerate(doc if isinstance(doc, list) else [doc]):
            records.take(f"{path.name}[{i}]", item, lambda: self.parse(item, now))
        return records.posts, records.bad

    def parse(self, obj: Any, now: datetime) -> IncomingPost:
        check_record(obj)
        errors = sorted(_VALIDATOR.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            place = "/".join(storable(str(p))[:40] for p in first.absolute_path) or "(post)"
            raise ValueError(f"field '{place}': {storable(first.message[:300])}")
        author, pseudonymised = self.authors.apply(obj.get("author"), self.key)
        source_id = record_id(obj["id"])
        return IncomingPost(
            source=self.name,
            source_id=source_id,
            created_at=iso_time(obj["created_at"], "created_at", now),
            text=obj["text"],
            author=author,
            url=obj.get("url") or None,
            lat=check_number(obj.get("lat"), "lat", -90, 90),
            lon=check_number(obj.get("lon"), "lon", -180, 180),
            raw={"id": source_id, "channel": obj.get("channel")},
            author_pseudonymised=pseudonymised,
        )


def _post_named(path: Path) -> bool:
    """A post file's name: .json or .jsonl in any case (staff on Windows save "EXPORT.JSONL")."""
    return path.suffix.lower() in (".json", ".jsonl")


def _files(folder: Path) -> list[tuple[Path, str, int]]:
    """(path, stamp, size) of each post file in `folder`, by name: the stamp (size and
    modification time) is how the poll's cursor and the watcher tell a file has changed."""
    return _listing(folder)[0]


def _listing(folder: Path) -> tuple[list[tuple[Path, str, int]], list[Path]]:
    """`_files`, and the entries named as post files that are no regular file (a folder, a link
    to nowhere or in a loop, a device, a pipe): reported by the poll, not skipped without a word."""
    found, odd = [], []
    for path in sorted(p for p in folder.iterdir() if _post_named(p)):
        try:
            stat = path.stat()
        except FileNotFoundError:
            if path.is_symlink():  # a link to nowhere; else gone since the listing
                odd.append(path)
            continue
        except OSError:  # a link in a loop
            odd.append(path)
            continue
        if S_ISREG(stat.st_mode):
            found.append((path, f"{stat.st_size}:{stat.st_mtime_ns}", stat.st_size))
        else:
            odd.append(path)
    return found, odd


async def folder_announcements(stream: PushStream, client: Any, token: Any) -> AsyncIterator[str]:
    """A label for every post file dropped or changed in the folder `stream.url` names, looking
    every `stream.every` seconds, forever (`push.READERS["inbox"]`; `client` and `token`, which
    streams over HTTP need, go unused). Raises OSError while the folder cannot be listed
    (`push.listen` looks again after its backoff)."""
    folder = Path(stream.url)

    async def look(seen: Seen) -> frozenset[str]:
        listing = await asyncio.to_thread(_files, folder)  # a listing blocks (a network volume): off the shared loop
        return frozenset(f"{path.name}@{stamp}" for path, stamp, _ in listing)

    async for label in changes(stream, look):
        yield label
