"""The incident the outbox, delivery and Slack-action tests hang their messages on."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from siaga import store


def sangsit_flood(session: Any, at: datetime, **fields: Any) -> store.Incident:
    """An open, low flood incident in Desa Sangsit, Kec. Sawan, opened at `at` (flushed, so it
    has its id); `fields` change any column."""
    values: dict[str, Any] = dict(
        hazard="flood", level="village", area_code="51.08.07.2001", area_name="Sangsit", village="Sangsit",
        district="Sawan", state="open", severity="low", posts=5, authors=4, notified_posts=5,
        opened_at=at, last_activity_at=at,
    )
    values.update(fields)
    incident = store.Incident(**values)
    session.add(incident)
    session.flush()
    return incident
