"""Where posts come from. Each source is a small connector that turns its input into
`IncomingPost`s and `BadInput`s and keeps a cursor, so the ingest DAG can map over them alike."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from siaga import settings
from siaga.sources.base import BadInput, IncomingPost, PollResult, Source, SourceConfigError
from siaga.sources.bluesky import BlueskySource
from siaga.sources.http import SourceError
from siaga.sources.inbox import InboxSource
from siaga.sources.mastodon import MastodonSource
from siaga.sources.replay import ReplaySource
from siaga.sources.rss import RssSource
from siaga.sources.x import XSource

__all__ = [
    "BadInput",
    "IncomingPost",
    "PollResult",
    "Source",
    "SourceConfigError",
    "SourceError",
    "ReplaySource",
    "RssSource",
    "MastodonSource",
    "BlueskySource",
    "XSource",
    "InboxSource",
    "load_sources",
]

_KINDS = {
    "replay": ReplaySource,
    "rss": RssSource,
    "mastodon": MastodonSource,
    "bluesky": BlueskySource,
    "x": XSource,
    "inbox": InboxSource,
}


def load_sources(path: Path | None = None) -> list[Source]:
    """The enabled sources of `config/sources.yaml` (or the file given)."""
    path = path or settings.config_dir() / "sources.yaml"
    with open(path, encoding="utf-8") as fh:
        doc: dict[str, Any] = yaml.safe_load(fh) or {}
    sources: list[Source] = []
    for i, entry in enumerate(doc.get("sources") or []):
        where = f"{path}: sources[{i}]"
        if not isinstance(entry, dict) or "name" not in entry or "kind" not in entry:
            raise SourceConfigError(f"{where}: each source needs 'name' and 'kind'")
        if not entry.get("enabled", True):
            continue
        kind = _KINDS.get(entry["kind"])
        if kind is None:
            raise SourceConfigError(f"{where}.kind: unknown kind {entry['kind']!r} (known: {sorted(_KINDS)})")
        sources.append(kind.from_config(entry, base_dir=path.parent.parent, where=where))
    names = [s.name for s in sources]
    if len(names) != len(set(names)):
        raise SourceConfigError(f"{path}: source names must be unique, got {names}")
    return sources
