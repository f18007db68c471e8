"""The last good version of an operator's config file, kept in force when the file turns bad.

Every detect run reads routing.yaml and detection.yaml (the digest run reads routing.yaml too),
and every ingest run sources.yaml (`sources.sources_in_force`).
A typo saved at 3 a.m. used to stop every one of those runs until someone fixed it: no incident
and no alert, in the middle of a flood. So, as for the hazard lists (`hazard_lists.in_force`),
the text of each such file is kept in the database (`store.ConfigState`, named `file:<name>`)
each time it is read and valid; when the file is refused, the run goes on under the kept text,
and the refusal is logged at ERROR with every file:line:column an operator must fix (the same
lines `siaga check` prints). Only a deployment that never had a valid file has nothing to fall
back on: then the error is raised, as before.

aliases.yaml is kept the same way but beside the matcher cache, not in the database
(`geotag.default_geotagger`, `matcher_cache.keep_last_good`): every process that tags reads it,
`siaga tag` included, which has no database.

What counts as bad is what the file's own reader refuses (its ConfigError): a syntax or schema
error, an unknown receiver, an unreadable or missing routing.yaml. A detection.yaml that does
not exist still means the defaults (`detection_config.load`): that is a documented choice, not
a typo.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlalchemy.orm import Session

from siaga.config_errors import ConfigError, Document, document_of, read_document
from siaga.store import ConfigState, conflict_insert, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
_PREFIX = "file:"


def state_name(path: Path) -> str:
    """The name a file's last good text is kept under: its file name (one config folder per
    deployment, so the name is enough, and moving the folder keeps it)."""
    return _PREFIX + Path(path).name


def in_force(session: Session, path: Path, build: Callable[[Document], T], refused: type[ConfigError],
             remember: bool = True) -> T:
    """What `build` makes of the file at `path`, or of its last good text when the file is
    refused. A valid file's text becomes the last good one unless `remember` is False (a
    read-only look). Raises the refusal when no good text was ever kept."""
    path = Path(path)
    try:
        doc = read_document(path, refused)
        value = build(doc)
    except ConfigError as exc:
        kept = session.get(ConfigState, state_name(path))
        text = kept.content.get("text") if kept is not None and isinstance(kept.content, dict) else None
        if not isinstance(text, str):
            raise
        log.error("REFUSED %s: %s -- keeping its last good version in force (%s, from %s)",
                  path, exc, kept.fingerprint[:12], kept.updated_at.isoformat())
        return build(document_of(None, f"{path} (last good version)", text, refused))
    if remember:
        remember_content(session, state_name(path), fingerprint(doc.text), {"text": doc.text})
    return value


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def remember_content(session: Session, name: str, fingerprint: str, content: dict[str, Any]) -> bool:
    """Make `content` the last good version kept under `name`; False when it already was. One
    upsert, not a check then an INSERT: runs that start side by side on a new database each
    find no row, and all but one failed on the key (seen in benchmarks/bench_partitions.py)."""
    state = session.get(ConfigState, name)
    if state is not None and state.fingerprint == fingerprint and state.content == content:
        return False
    stmt = conflict_insert(session, ConfigState).values(name=name, fingerprint=fingerprint, content=content, updated_at=utcnow())
    session.execute(stmt.on_conflict_do_update(index_elements=[ConfigState.name], set_={
        "fingerprint": stmt.excluded.fingerprint, "content": stmt.excluded.content, "updated_at": stmt.excluded.updated_at}))
    if state is not None:
        session.expire(state)  # the row was written around the object the session holds
    return True
