"""config/sources.yaml as operators write it: its JSON Schema and the check `load_sources` and
`siaga check` share, so a file the check passes is a file the ingest DAG loads.

The schema knows every key each kind of source reads, so a typo ("max_page") is an error at its
own line with the key meant, instead of a setting silently left at its default. What a schema
cannot say (a feed that is not an http(s) URL, an X bounding box wider than X allows) is still
each connector's `from_config`; its errors name the field as `sources[i].field`, which is placed
back at its line here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from siaga.config_errors import (
    ConfigError, ConfigProblem, ConfigSyntaxError, Document, read_yaml, schema_problems, undotted,
)
from siaga.sources.base import SourceConfigError
from siaga.sources.http import HTTP_OPTIONS
from siaga.sources.watch import MAX_WATCH_EVERY, MIN_WATCH_EVERY

_STRINGS = {"type": "array", "items": {"type": "string"}}
_COUNT = {"type": "integer", "minimum": 1}
# Upper bounds where the code does arithmetic with a value: without them an integer too large
# for a float (`backoff: 1e400` written out) was an OverflowError traceback from `siaga check`,
# and a replay speed of 1.0e+300 one from the ingest task's clock.
_SECONDS = {"type": "number", "exclusiveMinimum": 0, "maximum": 86_400}  # a timeout or a wait: at most a day
_ATTEMPTS = {"type": "integer", "minimum": 1, "maximum": 100}
MIN_SPEED, MAX_SPEED = 0.001, 100_000  # a replay's speed, times real time (`siaga live --speed` too)
_SPEED = {"type": "number", "minimum": MIN_SPEED, "maximum": MAX_SPEED}
_HTTP = {
    "type": "object",
    "additionalProperties": False,
    "properties": {k: _ATTEMPTS if k == "attempts" else _SECONDS for k in HTTP_OPTIONS},
}
_AUTHORS = {"official": {"type": "boolean"}, "official_accounts": _STRINGS}
_WATCH = {"push": {"type": "boolean"},  # a source that cannot stream, watched instead (`watch`)
          "watch_every": {"type": "number", "minimum": MIN_WATCH_EVERY, "maximum": MAX_WATCH_EVERY}}
_KEYS: dict[str, dict[str, Any]] = {
    "replay": {
        "path": {"type": "string"},
        "timezone": {"type": "string"},
        "clock": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"mode": {"enum": ["identity", "live"]}, "speed": _SPEED},
        },
    },
    "rss": {"feeds": _STRINGS, **_WATCH, **_AUTHORS, "http": _HTTP},
    "mastodon": {
        "instances": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"url": {"type": "string"}, "conn_id": {"type": "string"},
                               "hashtags": _STRINGS, "searches": _STRINGS},
            },
        },
        "language": {"type": "string"}, "limit": _COUNT, "max_pages": _COUNT, "push": {"type": "boolean"},
        **_AUTHORS, "http": _HTTP,
    },
    "bluesky": {
        "appview": {"type": "string"}, "language": {"type": "string"}, "limit": _COUNT, "max_pages": _COUNT,
        "conn_id": {"type": "string"}, "queries": _STRINGS, "push": {"type": "boolean"}, "jetstream": {"type": "string"},
        **_AUTHORS, "http": _HTTP,
    },
    "x": {
        "conn_id": {"type": "string"}, "api": {"type": "string"}, "language": {"type": "string"},
        "max_results": _COUNT, "max_pages": _COUNT, "queries": _STRINGS, "geo_query": {"type": "string"},
        "bounding_boxes": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "push": {"type": "boolean"}, **_AUTHORS, "http": _HTTP,
    },
    "inbox": {"path": {"type": "string"}, **_WATCH, **_AUTHORS},
}
_COMMON = {"name": {"type": "string", "minLength": 1}, "kind": {"enum": sorted(_KEYS)}, "enabled": {"type": "boolean"}}
# How many days raw posts are kept. Bounded so that "now minus the retention" is still a date:
# 1,000,000,000 passed the check and the retention task then failed on the date arithmetic with
# an OverflowError. A century is more than any deployment keeps personal data.
MAX_RETENTION_DAYS = 36_500
RETENTION_DAYS = {"type": "integer", "minimum": 1, "maximum": MAX_RETENTION_DAYS}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    # Said, even when empty (`sources: []`): a file cut off in its comment header by a save
    # caught half-way was a valid file polling nothing, kept as the last good version.
    "required": ["sources"],
    "properties": {
        "retention_days": RETENTION_DAYS,
        "sources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "kind"],
                "properties": _COMMON,
                "allOf": [
                    {
                        "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                        "then": {"properties": {**_COMMON, **keys}, "additionalProperties": False},
                    }
                    for kind, keys in _KEYS.items()
                ],
            },
        },
    },
}

@dataclass(frozen=True)
class Claim:
    """Something only one enabled source may hold (X's one stream connection per app). A
    connector lists its own with `claims()`; a later source claiming a held `key` is refused at
    its `field`'s line, with `why`."""

    key: str
    field: str
    why: str


# kind -> the connector's from_config(entry, base_dir, where)
Builder = Callable[[dict[str, Any], Path, str], Any]


def check(path: Path, builders: dict[str, Builder]) -> tuple[list[ConfigProblem], list[Any]]:
    """Every problem of the sources file at `path` and the enabled sources it builds (those
    only when there is no problem). Disabled sources are checked too: switching one on must
    not be the moment a typo shows."""
    try:
        doc = read_yaml(path)
    except ConfigSyntaxError as exc:
        return exc.problems, []
    return check_document(doc, Path(path).parent.parent, builders)


def check_document(doc: Document, base_dir: Path, builders: dict[str, Builder]) -> tuple[list[ConfigProblem], list[Any]]:
    """`check` of a sources file already read (its last good text, `sources.sources_in_force`);
    relative paths in it are under `base_dir`."""
    doc.data = {} if doc.data is None else doc.data
    problems = schema_problems(doc, SCHEMA)  # redacted, as every ConfigProblem is
    if problems:
        return problems, []
    built, names = [], {}
    held: dict[str, int] = {}  # claim key -> the source holding it
    for i, entry in enumerate(doc.data.get("sources") or []):
        try:
            source = builders[entry["kind"]](entry, base_dir, f"sources[{i}]")
        except SourceConfigError as exc:
            problems.append(_placed(doc, str(exc)))
            continue
        if entry["name"] in names:
            problems.append(doc.at(("sources", i, "name"), f"duplicate source name {entry['name']!r} (first at sources[{names[entry['name']]}])"))
        names.setdefault(entry["name"], i)
        if entry.get("enabled", True):
            built.append(source)
            for claim in source.claims() if hasattr(source, "claims") else []:
                if claim.key in held:
                    j = held[claim.key]
                    problems.append(doc.at(("sources", i, claim.field),
                                           f"{claim.why} (by source {doc.data['sources'][j]['name']!r}, sources[{j}])"))
                held.setdefault(claim.key, i)
    return problems, ([] if problems else built)


def retention_days(path: Path) -> int | None:
    """`retention_days` of the sources file at `path` (None when not set), checked as `check`
    checks it; ConfigError at its file:line:column when the file cannot be read or the value is
    wrong. Only this field: purging old posts must not wait for a source's typo to be fixed."""
    doc = read_yaml(path)
    if doc.data is None:
        return None
    problems = schema_problems(doc, {"type": "object", "properties": {"retention_days": RETENTION_DAYS}})
    if problems:
        raise ConfigError(problems)
    return doc.data.get("retention_days")


def _placed(doc: Document, message: str) -> ConfigProblem:
    """A connector's "sources[0].feeds[1]: not an http(s) URL" at that field's line."""
    where, _, text = message.partition(": ")
    if not where.startswith("sources["):
        return doc.at(("sources",), message)
    return doc.at(undotted(where), text)
