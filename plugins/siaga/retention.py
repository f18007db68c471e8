"""Retention: raw posts are personal data and are kept only as long as they are useful.

Posts older than the retention are deleted, except those an alert cites as evidence
(`alerts.explanation["post_ids"]`): an incident must still show why it was raised. Deleting a
post cascades to its geotags and hazard matches, and a trigger (migration 0008) drops its row
in `post_tags` or `posts_to_tag`; copies that pointed at it keep their row with
`duplicate_of` set to NULL by the foreign key.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from siaga import settings
from siaga.store import Alert, Post, in_slices

DEFAULT_RETENTION = timedelta(days=30)


def retention_in_force(session: Session, path: Path | None = None) -> timedelta:
    """The retention of the sources.yaml in force (`sources.retention_in_force`: its last good
    version while the file is refused), else DEFAULT_RETENTION."""
    from siaga.sources import retention_in_force as days_in_force

    days = days_in_force(session, path)
    return DEFAULT_RETENTION if days is None else timedelta(days=days)


def configured_retention(path: Path | None = None) -> timedelta:
    """`retention_days` of config/sources.yaml (where operators configure what is collected),
    read and checked by the sources file's own schema (`sources.config_file`), so `siaga check`
    passes exactly what this task can use; a ConfigError at the value's line otherwise."""
    from siaga.sources.config_file import retention_days

    days = retention_days(path or settings.config_dir() / "sources.yaml")
    return DEFAULT_RETENTION if days is None else timedelta(days=days)


def evidence_post_ids(session: Session) -> set[int]:
    """Ids of posts cited by any alert. Read in Python: the JSON list has no portable SQL form."""
    ids: set[int] = set()
    for explanation in session.scalars(select(Alert.explanation)):
        for value in (explanation or {}).get("post_ids") or []:
            if isinstance(value, int) and not isinstance(value, bool):
                ids.add(value)
            elif isinstance(value, str) and value.isdigit():
                ids.add(int(value))
    return ids


def purge_old_posts(session: Session, older_than: datetime) -> int:
    """Delete posts created before `older_than` that no alert cites; returns how many.

    The old posts are listed once and deleted in slices (`store.in_slices`): listing them again
    after every batch of 1,000 made the first purge of a long backlog quadratic."""
    if older_than.tzinfo is None:
        raise ValueError("older_than must be timezone-aware")
    keep = evidence_post_ids(session)
    candidates = [pid for pid in session.scalars(select(Post.id).where(Post.created_at < older_than).order_by(Post.id))
                  if pid not in keep]
    purged = 0
    for among in in_slices(session, Post.id, candidates):
        purged += session.execute(delete(Post).where(among).execution_options(synchronize_session=False)).rowcount or 0
    return purged
