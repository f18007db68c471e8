"""An incident whose hazard was retired (its file deleted, `hazard_lists`) while it was open
still resolves; its later messages go where its earlier ones went. Its agency was guessed as
BPBD ("bpbd" when the hazard is unknown), so a traffic accident's closing notice reached BPBD,
who never saw it open, as a top-level message without its thread."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from siaga import alerts, incidents, settings, store
from siaga.hazard_config import read_directory
from siaga.hazards import HazardSet
from siaga.incidents import Change
from siaga.routing import Router

OPENED = datetime(2026, 12, 5, 2, 0, tzinfo=timezone.utc)  # 10:00 WITA: no quiet hours


def test_a_retired_hazards_open_incident_is_closed_where_it_was_opened(sqlite_url, tmp_path):
    router = Router.load(settings.config_dir() / "routing.yaml")
    hazards = tmp_path / "hazards"
    shutil.copytree(settings.config_dir() / "hazards", hazards)
    full = HazardSet.from_config(read_directory(hazards))
    (hazards / "traffic_accident.yaml").unlink()  # and the one line naming it elsewhere
    jam = hazards / "traffic_jam.yaml"
    jam.write_text(jam.read_text(encoding="utf-8").replace("subsumed_by: [traffic_accident]\n", ""), encoding="utf-8")
    retired = HazardSet.from_config(read_directory(hazards))
    assert "traffic_accident" not in retired.hazards
    with store.session_scope(sqlite_url) as session:
        incident = store.Incident(
            hazard="traffic_accident", level="road", area_code="road-1", area_name="Jalan Ahmad Yani", village="Banyuasri",
            district="Buleleng", road="Jalan Ahmad Yani", state="open", severity="medium", posts=4, authors=4,
            notified_posts=4, opened_at=OPENED, last_activity_at=OPENED,
        )
        session.add(incident)
        session.flush()
        alerts.enqueue(session, [Change(incident, "new")], full, router, OPENED)
    later = OPENED + timedelta(hours=4)
    with store.session_scope(sqlite_url) as session:
        changes = incidents.resolve_quiet(session, later, timedelta(hours=3), retired.hazards)
        assert [c.kind for c in changes] == ["resolved"]
        alerts.enqueue(session, changes, retired, router, later)
    with store.session_scope(sqlite_url) as session:
        rows = session.execute(sa.select(store.OutboxMessage.kind, store.OutboxMessage.receiver)
                               .order_by(store.OutboxMessage.id)).all()
    opened = {r for k, r in rows if k == "new"}
    closed = {r for k, r in rows if k == "resolved"}
    assert opened == {"dishub"} and closed == opened
