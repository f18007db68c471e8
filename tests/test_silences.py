"""Silences: a snoozed hazard × area writes no outbox rows while it lasts, says so on the incident's
timeline, and alerts of other hazards or areas still go out."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import alerts, silences, store
from siaga.incidents import Change

T0 = datetime(2026, 1, 15, 3, 0, tzinfo=timezone.utc)  # 11:00 WITA, outside quiet hours
FLOOD_SUKASADA = {"hazard": "flood", "district": "Sukasada", "agency": "bpbd"}


def _incident(session, hazard="flood", district="Sawan", code="51.08.07.2001", severity="low"):
    incident = store.Incident(
        hazard=hazard, level="village", area_code=code, area_name="Sangsit", village="Sangsit", district=district,
        state="open", severity=severity, posts=5, authors=4, notified_posts=5, opened_at=T0, last_activity_at=T0,
    )
    session.add(incident)
    session.flush()
    return incident


def _outbox_incidents(session):
    return sorted({r.incident_id for r in session.scalars(sa.select(store.OutboxMessage))})


def test_silenced_change_is_not_enqueued_but_is_on_the_timeline(db_url, router, hazard_set):
    with store.session_scope(db_url) as session:
        silence, created = silences.create_silence(
            session, {"hazard": "flood", "district": "Sawan"}, T0 + timedelta(hours=6), "U0DUTY",
            starts_at=T0 - timedelta(minutes=5), reason="known flooding, team on site")
        assert created
        sawan_flood = _incident(session)
        other_district = _incident(session, district="Sukasada", code="51.08.05.2001")
        other_hazard = _incident(session, hazard="landslide")
        written = alerts.enqueue(session, [Change(i, "new") for i in (sawan_flood, other_district, other_hazard)],
                                 hazard_set, router, T0)
        ids = (sawan_flood.id, other_district.id, other_hazard.id, silence.id)
    with store.session_scope(db_url) as session:
        assert written >= 2
        assert _outbox_incidents(session) == sorted([ids[1], ids[2]])
        events = session.scalars(sa.select(store.IncidentEvent).where(store.IncidentEvent.kind == "silenced")).all()
    assert [(e.incident_id, e.detail["silence_id"], e.detail["kind"]) for e in events] == [(ids[0], ids[3], "new")]
    assert events[0].detail["created_by"] == "U0DUTY"


def test_silence_only_holds_while_it_lasts(sqlite_url, router, hazard_set):
    with store.session_scope(sqlite_url) as session:
        silences.create_silence(session, {"hazard": "flood", "district": "Sawan"}, T0 + timedelta(hours=2), "U0DUTY",
                                starts_at=T0 + timedelta(hours=1))
        before, during, after = (_incident(session, code=f"v{i}") for i in range(3))
        alerts.enqueue(session, [Change(before, "new")], hazard_set, router, T0)
        alerts.enqueue(session, [Change(during, "new")], hazard_set, router, T0 + timedelta(hours=1, minutes=30))
        alerts.enqueue(session, [Change(after, "new")], hazard_set, router, T0 + timedelta(hours=2))
        assert _outbox_incidents(session) == [before.id, after.id]


def test_silence_on_an_area_code_and_on_updates_of_a_live_incident(sqlite_url, router, hazard_set):
    with store.session_scope(sqlite_url) as session:
        incident = _incident(session, district=None, code="road-123")
        incident.level = "road"
        matchers = silences.snooze_matchers(incident)
        assert matchers == {"hazard": "flood", "level": "road", "area_code": "road-123"}
        silences.create_silence(session, matchers, T0 + timedelta(hours=1), "U0DUTY", starts_at=T0)
        assert alerts.enqueue(session, [Change(incident, "update"), Change(incident, "escalation")],
                              hazard_set, router, T0 + timedelta(minutes=10)) == 0
        kinds = [e.detail["kind"] for e in session.scalars(sa.select(store.IncidentEvent))]
    assert kinds == ["update", "escalation"]


# --- matching: the rule alerts.enqueue and the Slack messages apply -----------------------------


def test_an_active_silence_matches_only_labels_equal_to_all_its_matchers():
    s = silences.Silence({"hazard": "flood", "district": "Sukasada"}, ends_at=T0 + timedelta(hours=2))
    assert silences.matching(FLOOD_SUKASADA, [s], T0) is s
    assert silences.matching({**FLOOD_SUKASADA, "district": "Buleleng"}, [s], T0) is None
    assert silences.matching({**FLOOD_SUKASADA, "hazard": "landslide"}, [s], T0) is None
    assert silences.matching({"hazard": "flood"}, [s], T0) is None  # a change without a district is not muted


def test_a_silence_holds_from_its_start_until_its_end_and_the_first_match_is_named():
    later = silences.Silence({"hazard": "flood"}, ends_at=T0 + timedelta(hours=1), starts_at=T0 + timedelta(minutes=30), id=1)
    wider = silences.Silence({"district": "Sukasada"}, ends_at=T0 + timedelta(hours=3), id=2)
    assert silences.matching(FLOOD_SUKASADA, [later], T0) is None
    assert silences.matching(FLOOD_SUKASADA, [later], T0 + timedelta(minutes=30)) is later
    assert silences.matching(FLOOD_SUKASADA, [later], T0 + timedelta(hours=1)) is None
    assert silences.matching(FLOOD_SUKASADA, [later, wider], T0 + timedelta(minutes=45)).id == 1
    assert silences.matching(FLOOD_SUKASADA, [later, wider], T0 + timedelta(hours=1)).id == 2
    assert silences.matching(FLOOD_SUKASADA, [], T0) is None


def test_a_silence_refuses_bad_input():
    with pytest.raises(ValueError, match="matchers: empty"):
        silences.Silence({}, ends_at=T0)
    with pytest.raises(ValueError, match="ends_at: naive"):
        silences.Silence({"hazard": "flood"}, ends_at=datetime(2024, 3, 1))
    with pytest.raises(ValueError, match="starts_at must be before"):
        silences.Silence({"hazard": "flood"}, ends_at=T0, starts_at=T0)
    with pytest.raises(ValueError, match="naive"):
        silences.matching(FLOOD_SUKASADA, [], datetime(2024, 3, 1))


def test_the_same_click_creates_one_silence(db_url):
    with store.session_scope(db_url) as session:
        first, made = silences.create_silence(session, {"hazard": "flood", "district": "Sawan"}, T0 + timedelta(hours=1),
                                              "U0DUTY", starts_at=T0, dedup_key="slack:1:U0DUTY:1700000000.1")
        again, made_again = silences.create_silence(session, {"hazard": "flood", "district": "Sawan"},
                                                    T0 + timedelta(hours=1), "U0DUTY", starts_at=T0,
                                                    dedup_key="slack:1:U0DUTY:1700000000.1")
        assert made and not made_again and again.id == first.id
        assert session.scalar(sa.select(sa.func.count()).select_from(store.SilenceRow)) == 1


@pytest.mark.parametrize("matchers, field", [
    ({}, "matchers"),
    ({"hazrd": "flood"}, "matchers.hazrd"),
    ({"hazard": ""}, "matchers.hazard"),
    ({"severity": "low"}, "matchers"),  # would silence every low alert everywhere
])
def test_bad_matchers_are_refused_naming_the_field(sqlite_url, matchers, field):
    with store.session_scope(sqlite_url) as session:
        with pytest.raises(silences.SilenceError, match=field.replace(".", r"\.")):
            silences.create_silence(session, matchers, T0 + timedelta(hours=1), "U0DUTY", starts_at=T0)


def test_bad_times_are_refused(sqlite_url):
    with store.session_scope(sqlite_url) as session:
        m = {"hazard": "flood"}
        with pytest.raises(silences.SilenceError, match="ends_at"):
            silences.create_silence(session, m, T0, "U0DUTY", starts_at=T0)
        with pytest.raises(silences.SilenceError, match="at most"):
            silences.create_silence(session, m, T0 + timedelta(days=90), "U0DUTY", starts_at=T0)
        with pytest.raises(silences.SilenceError, match="created_by"):
            silences.create_silence(session, m, T0 + timedelta(hours=1), " ", starts_at=T0)


def test_expire_lifts_a_silence(sqlite_url, router, hazard_set):
    with store.session_scope(sqlite_url) as session:
        row, _ = silences.create_silence(session, {"hazard": "flood"}, T0 + timedelta(hours=6), "U0DUTY", starts_at=T0)
        silences.expire(session, row.id, T0 + timedelta(hours=1))
        incident = _incident(session)
        assert alerts.enqueue(session, [Change(incident, "new")], hazard_set, router, T0 + timedelta(hours=1)) >= 1


def test_migration_0004_downgrades_and_upgrades(tmp_path):
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'm.db'}"
    store.migrate(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    command.downgrade(cfg, "0003")
    with store.engine(url).connect() as conn:
        assert "silences" not in sa.inspect(conn).get_table_names()
        outbox_cols = {c["name"]: c for c in sa.inspect(conn).get_columns("outbox")}
        assert outbox_cols["incident_id"]["nullable"] is False
    store.engine_for(url).dispose()
    command.upgrade(cfg, "head")
    with store.engine(url).connect() as conn:
        assert "silences" in sa.inspect(conn).get_table_names()
    store.engine_for(url).dispose()
