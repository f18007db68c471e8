"""A message held by quiet hours says when it was held, in WITA like every other time a person
reads (`catalogue.wita`). Its note wrote the times itself: without a zone, with English month
names, and in routing.yaml's `timezone` (06:00 meaning 06:00 WIB in an alert whose other times
are WITA)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
import yaml

from siaga import alerts, settings, store
from siaga.catalogue import wita
from siaga.hazard_config import default_hazard_dir
from siaga.hazards import HazardSet
from siaga.incidents import Change
from siaga.routing import Router


def held_jam(url: str, router: Router, at: datetime) -> dict:
    """The outbox payload of a low-severity jam on Jalan Ahmad Yani opened `at` (Dishub holds
    those through its quiet hours)."""
    with store.session_scope(url) as session:
        incident = store.Incident(
            hazard="traffic_jam", level="village", area_code="v-jam", area_name="Sangsit", village="Sangsit",
            district="Sawan", road="Jalan Ahmad Yani", state="open", severity="low", posts=5, authors=4, notified_posts=5,
            opened_at=at, last_activity_at=at,
        )
        session.add(incident)
        session.flush()
        alerts.enqueue(session, [Change(incident, "new")], HazardSet.load(default_hazard_dir()), router, at)
    with store.session_scope(url) as session:
        [row] = session.scalars(sa.select(store.OutboxMessage)).all()
        return row.payload, row.next_attempt_at


@pytest.mark.parametrize("zone", [None, "Asia/Jakarta"])
def test_the_hold_note_gives_its_times_in_wita(sqlite_url, tmp_path, zone):
    data = yaml.safe_load((settings.config_dir() / "routing.yaml").read_text(encoding="utf-8"))
    if zone:
        data["timezone"] = zone
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    router = Router.load(path)
    night = datetime(2026, 12, 4, 19, 30, tzinfo=timezone.utc)  # 03:30 WITA, 02:30 WIB: quiet in both
    payload, due = held_jam(sqlite_url, router, night)
    assert due > night
    note = payload["blocks"][1]["elements"][0]["text"]
    assert wita(night, "short") in note and wita(due, "short") in note  # "5 Des 03:30 WITA"
    assert wita(due, "short", "en") in payload["text"]
