"""A folder of exported posts (group exports, WhatsApp forwards typed up by staff) for sources
without an API: `*.json` (one object or a list) and `*.jsonl` files, each post checked against
a JSON Schema so staff get a precise reason for every refused line.

The connector cannot know when a file's posts are safely stored, so it never moves or deletes
files; the cursor remembers each file's size and modification time, and a file is read again
only when it changes (the store keeps one row per post id, so re-reading is harmless).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from jsonschema import Draft202012Validator, FormatChecker

from siaga.sources.base import AuthorPolicy, BadInput, IncomingPost, PollResult, SourceConfigError, author_key
from siaga.sources.parsing import MAX_RAW, iso_time

POST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "created_at", "text"],
    "properties": {
        "id": {"type": ["string", "integer"], "minLength": 1, "maxLength": 200},
        "created_at": {"type": "string", "format": "date-time"},
        "text": {"type": "string", "minLength": 1, "maxLength": 20000},
        "author": {"type": ["string", "null"], "maxLength": 256},
        "url": {"type": ["string", "null"], "maxLength": 2000},
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

    @classmethod
    def from_config(cls, entry: dict[str, Any], base_dir: Path, where: str) -> "InboxSource":
        if not isinstance(entry.get("path"), str):
            raise SourceConfigError(f"{where}.path: an inbox source needs a folder path")
        folder = Path(entry["path"])
        return cls(entry["name"], folder if folder.is_absolute() else base_dir / folder, AuthorPolicy.from_config(entry, where))

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult:
        done: dict[str, Any] = dict((cursor or {}).get("files") or {})
        posts: list[IncomingPost] = []
        bad: list[BadInput] = []
        if not self.folder.is_dir():
            return PollResult([], [BadInput(str(self.folder), "inbox folder does not exist", "")], {"files": done}, [f"{self.folder}: missing"])
        for path in sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix in (".json", ".jsonl")):
            stat = path.stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
            if done.get(path.name) == stamp:
                continue
            if stat.st_size > MAX_FILE_BYTES:
                bad.append(BadInput(f"{path.name}@{stamp}", f"file larger than {MAX_FILE_BYTES} bytes", ""))
            else:
                got, got_bad = self._read(path, now)
                posts += got
                bad += got_bad
            done[path.name] = stamp
        return PollResult(posts, bad, {"files": done})

    def _read(self, path: Path, now: datetime) -> tuple[list[IncomingPost], list[BadInput]]:
        text = path.read_text(encoding="utf-8", errors="replace")
        rows: list[tuple[str, str, Any]] = []  # (location, raw, decoded or exception)
        if path.suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    rows.append((f"{path.name}:{n}", line, _decode(line)))
        else:
            doc = _decode(text)
            if isinstance(doc, ValueError):
                return [], [BadInput(path.name, str(doc), text[:MAX_RAW])]
            items = doc if isinstance(doc, list) else [doc]
            rows = [(f"{path.name}[{i}]", json.dumps(item, ensure_ascii=False), item) for i, item in enumerate(items)]
        posts, bad = [], []
        for where, raw, obj in rows:
            try:
                posts.append(self.parse(obj, now))
            except ValueError as exc:
                bad.append(BadInput(where, str(exc), raw[:MAX_RAW]))
        return posts, bad

    def parse(self, obj: Any, now: datetime) -> IncomingPost:
        if isinstance(obj, ValueError):
            raise obj
        errors = sorted(_VALIDATOR.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            place = "/".join(str(p) for p in first.absolute_path) or "(post)"
            raise ValueError(f"field '{place}': {first.message[:300]}")
        author, pseudonymised = self.authors.apply(obj.get("author"), self.key)
        return IncomingPost(
            source=self.name,
            source_id=str(obj["id"]),
            created_at=iso_time(obj["created_at"], "created_at", now),
            text=obj["text"],
            author=author,
            url=obj.get("url") or None,
            lat=obj.get("lat"),
            lon=obj.get("lon"),
            raw={"id": str(obj["id"]), "channel": obj.get("channel")},
            author_pseudonymised=pseudonymised,
        )


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
