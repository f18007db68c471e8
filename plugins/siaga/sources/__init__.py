"""Where posts come from. Each source is a small connector that turns its input into
`IncomingPost`s and `BadInput`s and keeps a cursor, so the ingest DAG can map over them alike."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from siaga import settings
from siaga.sources.base import BadInput, IncomingPost, PollResult, Source, SourceConfigError
from siaga.sources.bluesky import BlueskySource
from siaga.sources.http import SourceError
from siaga.sources.inbox import InboxSource
from siaga.sources.mastodon import MastodonSource
from siaga.sources.push import PushStream, push_streams
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
    "PushStream",
    "push_streams",
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
    """The enabled sources of `config/sources.yaml` (or the file given). The whole file is
    checked first (`sources.config_file`, as `siaga check` does): SourceConfigError lists every
    problem as `file:line:column: field: message`."""
    path = Path(path or settings.config_dir() / "sources.yaml")
    problems, sources = check_sources_file(path)
    if problems:
        raise SourceConfigError("\n".join(map(str, problems)))
    return sources


def check_sources_file(path: Path) -> tuple[list[Any], list[Source]]:
    """(problems, enabled sources) of a sources file; the sources only when it has no problem."""
    from siaga.sources import config_file

    return config_file.check(Path(path), {kind: cls.from_config for kind, cls in _KINDS.items()})
