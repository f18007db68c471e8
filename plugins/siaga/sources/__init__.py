"""Where posts come from. Each source is a small connector that turns its input into
`IncomingPost`s and `BadInput`s and keeps a cursor, so the ingest DAG can map over them alike."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from siaga import settings
from siaga.config_errors import ConfigError, Document
from siaga.sources.base import BadInput, IncomingPost, PollResult, Source, SourceConfigError
from siaga.sources.bluesky import BlueskySource
from siaga.sources.http import SourceError
from siaga.sources.inbox import InboxSource
from siaga.sources.mastodon import MastodonSource
from siaga.sources.push import PushStream, push_streams
from siaga.sources.replay import ReplaySource
from siaga.sources.rss import RssSource
from siaga.sources.x import XSource

if TYPE_CHECKING:  # the database is needed only by `sources_in_force`
    from sqlalchemy.orm import Session

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
    "sources_in_force",
    "retention_in_force",
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


class SourcesFileRefused(ConfigError):
    """sources.yaml refused as a whole (`sources_in_force`): every problem at file:line."""


def sources_in_force(session: "Session", path: Path | None = None) -> list[Source]:
    """`load_sources`, or the sources of the last good sources.yaml when the file is refused
    (`last_good`, as for the hazard lists, routing.yaml and detection.yaml), with the refusal
    logged at ERROR: a typo in a new feed's entry stopped every source's polling until it was
    fixed, in a disaster as on a quiet day. Raises the refusal when no good version was ever
    kept."""
    from siaga import last_good

    path = Path(path or settings.config_dir() / "sources.yaml")
    return last_good.in_force(session, path, _builder(path), SourcesFileRefused)


def _builder(path: Path) -> Callable[[Document], list[Source]]:
    """The enabled sources of a sources file's document, SourcesFileRefused with every problem
    (relative paths under the folder above the file's, for the kept text too)."""
    builders = {kind: cls.from_config for kind, cls in _KINDS.items()}
    base_dir = path.parent.parent

    def build(doc: Document) -> list[Source]:
        from siaga.sources import config_file

        problems, sources = config_file.check_document(doc, base_dir, builders)
        if problems:
            raise SourcesFileRefused(problems)
        return sources

    return build


def retention_in_force(session: "Session", path: Path | None = None) -> int | None:
    """`retention_days` of the sources.yaml in force (None: not set), as `sources_in_force`
    reads the file: while it is refused, its last good version's. The purge read the field from
    the file alone, and a file emptied or cut before that line by a save caught half-way meant
    the default: posts kept a year by choice were deleted at 30 days, for good. With no good
    version ever kept, the field alone, checked (`config_file.retention_days`): purging does
    not wait for a source's typo to be fixed."""
    from siaga import last_good
    from siaga.sources import config_file

    path = Path(path or settings.config_dir() / "sources.yaml")
    build = _builder(path)

    def retention(doc: Document) -> int | None:
        build(doc)
        return (doc.data or {}).get("retention_days")

    try:
        return last_good.in_force(session, path, retention, SourcesFileRefused)
    except SourcesFileRefused:
        return config_file.retention_days(path)


def check_sources_file(path: Path) -> tuple[list[Any], list[Source]]:
    """(problems, enabled sources) of a sources file; the sources only when it has no problem."""
    from siaga.sources import config_file

    return config_file.check(Path(path), {kind: cls.from_config for kind, cls in _KINDS.items()})
