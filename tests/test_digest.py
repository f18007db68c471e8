"""The managers' daily digest: counts per hazard and kecamatan for the period, dead letters,
one outbox row per day (no incident), delivered as a top-level message to the managers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from siaga import delivery, digest, outbox, pipeline, settings, store
from siaga_dev.fakeslack import FakeSlack
from siaga.slackclient import make_client

DAY_END = datetime(2026, 1, 15, 23, 0, tzinfo=timezone.utc)  # 07:00 WITA on 16 Jan
DAY_START = DAY_END - timedelta(days=1)
TOKEN = "xoxb-digest"


def _incident(session, hazard, district, opened_at, state="open"):
    incident = store.Incident(
        hazard=hazard, level="village", area_code=f"{hazard}-{district}-{opened_at:%H%M}", area_name="x", village="x",
        district=district, state=state, severity="low", posts=3, authors=3, notified_posts=3,
        opened_at=opened_at, last_activity_at=opened_at,
    )
    session.add(incident)
    session.flush()
    return incident


def _event(session, incident, kind, at):
    session.add(store.IncidentEvent(incident_id=incident.id, at=at, kind=kind, actor="U0DUTY01", detail={}))


def a_day(session):
    """Sawan: two floods opened (one resolved); Sukasada: a landslide called a false alarm; a flood
    opened the day before and resolved in the period; one opened after the period; a dead letter."""
    in_day = DAY_START + timedelta(hours=5)
    f1 = _incident(session, "flood", "Sawan", in_day)
    _incident(session, "flood", "Sawan", in_day + timedelta(hours=1))
    _event(session, f1, "resolved", in_day + timedelta(hours=3))
    f1.state = "resolved"
    ls = _incident(session, "landslide", "Sukasada", in_day, state="false_alarm")
    _event(session, ls, "false_alarm", in_day + timedelta(minutes=30))
    old = _incident(session, "flood", "Sawan", DAY_START - timedelta(hours=3), state="resolved")
    _event(session, old, "resolved", DAY_START + timedelta(hours=1))
    _incident(session, "flood", "Sawan", DAY_END + timedelta(minutes=1))
    session.add(store.OutboxMessage(dedup_key="dead-1", incident_id=f1.id, receiver="bpbd", channel="#bpbd-siaga", kind="update",
                                    payload={"text": "x"}, state="dead", attempts=8, last_error="slack error: channel_not_found (HTTP 200)",
                                    next_attempt_at=in_day))
    session.flush()


def test_summary_counts_per_hazard_and_kecamatan(db_url):
    with store.session_scope(db_url) as session:
        a_day(session)
        s = digest.summarise(session, DAY_START, DAY_END)
    sawan, sukasada = s.areas[("flood", "Sawan")], s.areas[("landslide", "Sukasada")]
    assert (sawan.opened, sawan.resolved, sawan.false_alarm, sawan.still_open) == (2, 2, 0, 1)
    assert (sukasada.opened, sukasada.resolved, sukasada.false_alarm, sukasada.still_open) == (1, 0, 1, 0)
    assert s.dead_total == 1 and s.dead[0]["channel"] == "#bpbd-siaga"
    assert list(s.areas)[0] == ("flood", "Sawan")  # most opened first


def test_digest_is_queued_once_per_day_for_the_managers(db_url, router, hazard_set):
    with store.session_scope(db_url) as session:
        a_day(session)
        assert digest.enqueue_digest(session, router, DAY_START, DAY_END, DAY_END, hazard_set) == 1
        # a re-run, or a manual trigger later the same morning: nothing new
        assert digest.enqueue_digest(session, router, DAY_START, DAY_END, DAY_END, hazard_set) == 0
        later = DAY_END + timedelta(hours=2)
        assert digest.enqueue_digest(session, router, later - timedelta(days=1), later, later, hazard_set) == 0
        (row,) = session.scalars(sa.select(store.OutboxMessage).where(store.OutboxMessage.kind == "digest")).all()
        assert (row.incident_id, row.receiver, row.channel) == (None, "managers", "#siaga-managers")
        assert row.dedup_key == "digest:2026-01-16:managers"
        text = row.payload["text"]
    assert "3 insiden dibuka, 2 selesai, 1 alarm palsu, 1 masih terbuka, 1 gagal kirim" in text
    assert "(3 opened, 2 resolved, 1 false alarm, 1 still open, 1 dead letter)" in text
    blocks = " ".join(b["text"]["text"] for b in row.payload["blocks"])
    assert "Kec. Sawan: 2 dibuka (2 opened), 2 selesai (2 resolved), 1 masih terbuka (1 still open)" in blocks
    assert "Longsor" in blocks and "channel_not_found" in blocks
    assert "15 Jan 07:00 WITA – 16 Jan 07:00 WITA" in text


def test_the_next_day_gets_its_own_digest(sqlite_url, router, hazard_set):
    with store.session_scope(sqlite_url) as session:
        assert digest.enqueue_digest(session, router, DAY_START, DAY_END, DAY_END, hazard_set) == 1
        nxt = DAY_END + timedelta(days=1)
        assert digest.enqueue_digest(session, router, DAY_END, nxt, nxt, hazard_set) == 1
        row = session.scalars(sa.select(store.OutboxMessage).order_by(store.OutboxMessage.id)).first()
        assert "Tidak ada insiden" in str(row.payload["blocks"])


def test_place_names_are_escaped(sqlite_url, router, hazard_set):
    with store.session_scope(sqlite_url) as session:
        _incident(session, "flood", "<!channel> Sawan", DAY_START + timedelta(hours=1))
        digest.enqueue_digest(session, router, DAY_START, DAY_END, DAY_END, hazard_set)
        row = session.scalars(sa.select(store.OutboxMessage)).one()
    blocks = str(row.payload["blocks"])
    assert "<!channel>" not in blocks and "&lt;!channel&gt; Sawan" in blocks


def test_digest_is_delivered_top_level_without_a_thread_or_timeline(db_url, router, hazard_set):
    with store.session_scope(db_url) as session:
        a_day(session)
        digest.enqueue_digest(session, router, DAY_START, DAY_END, DAY_END, hazard_set)
        events_before = session.scalar(sa.select(sa.func.count()).select_from(store.IncidentEvent))
    with FakeSlack(token=TOKEN) as fake:
        client = make_client(token=TOKEN, base_url=fake.base_url, conn_id=None, backoff_factor=0.01)
        report = delivery.deliver(client, DAY_END, db_url)
        assert report.sent == 1 and report.waiting_for_thread == 0
        (posted,) = fake.messages("#siaga-managers")
        assert not posted.get("thread_ts") and "Ringkasan harian" in posted["text"]
        assert delivery.deliver(client, DAY_END + timedelta(minutes=5), db_url).sent == 0
    with store.session_scope(db_url) as session:
        row = session.scalars(sa.select(store.OutboxMessage).where(store.OutboxMessage.kind == "digest")).one()
        assert row.state == "sent" and row.sent_ts == posted["ts"]
        assert session.scalar(sa.select(sa.func.count()).select_from(store.IncidentEvent)) == events_before
        assert session.scalars(sa.select(store.IncidentThread)).all() == []


def test_a_digest_that_keeps_failing_is_dead_lettered_without_a_timeline(sqlite_url, router, hazard_set):
    with store.session_scope(sqlite_url) as session:
        digest.enqueue_digest(session, router, DAY_START, DAY_END, DAY_END, hazard_set)
    with FakeSlack(token=TOKEN) as fake:
        fake.fail("chat.postMessage", "error", error="channel_not_found")
        client = make_client(token=TOKEN, base_url=fake.base_url, conn_id=None, backoff_factor=0.01)
        assert delivery.deliver(client, DAY_END, sqlite_url).dead == 1
    with store.session_scope(sqlite_url) as session:
        assert outbox.dead_letters(session)[0]["incident"] is None


def test_pipeline_digest_uses_the_day_before_now(sqlite_url, monkeypatch):
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    with store.session_scope(sqlite_url) as session:
        _incident(session, "flood", "Sawan", DAY_END - timedelta(hours=2))
        _incident(session, "flood", "Sawan", DAY_START - timedelta(hours=2))  # before the window
    result = pipeline.digest(DAY_END)
    assert result["written"] == 1
    with store.session_scope(sqlite_url) as session:
        row = session.scalars(sa.select(store.OutboxMessage)).one()
    assert "1 insiden dibuka" in row.payload["text"] and "(1 opened" in row.payload["text"]


def test_digest_dag_runs_daily_at_seven_in_bali():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import Asset
    from airflow.timetables.base import TimeRestriction

    bag = DagBag(dag_folder=str(settings.config_dir().parent / "dags" / "siaga_digest.py"))
    assert bag.import_errors == {}
    dag = bag.dags["siaga_digest"]
    timetable = dag.timetable
    assert timetable.summary == "0 7 * * *"
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc), latest=None, catchup=True))
    assert info.run_after == datetime(2026, 1, 15, 23, 0, tzinfo=timezone.utc)  # 07:00 WITA
    assert [t.outlets for t in dag.tasks] == [[Asset(pipeline.OUTBOX_URI)]]  # wakes the deliver DAG


def test_the_terms_behind_the_weeks_false_alarms_get_a_short_section(db_url, router, hazard_set):
    """A landslide an officer called a false alarm, its evidence post matched by "longsor":
    the managers read which term to tighten."""
    with store.session_scope(db_url) as session:
        a_day(session)
        at = DAY_START + timedelta(hours=4)
        post = store.Post(source="t", source_id="1", created_at=at, author="a", text="longsor <b>*", text_hash="h", raw={})
        session.add(post)
        session.flush()
        session.add(store.HazardMatchRow(post_id=post.id, hazard="landslide", terms=["longsor <b>*"], severity_cues=[],
                                         via_road=False, lists_fingerprint="f"))
        ls = session.scalars(sa.select(store.Incident).where(store.Incident.hazard == "landslide")).one()
        ls.closed_by, ls.closed_at = "U0DUTY01", at + timedelta(minutes=30)
        session.add(store.Alert(incident_id=ls.id, hazard="landslide", level="village", area_code=ls.area_code,
                                window_start=at - timedelta(hours=1), window_end=at, observed=3, expected=0.1, authors=3,
                                score=5.0, explanation={"post_ids": [post.id]}))
        session.flush()
        assert digest.enqueue_digest(session, router, DAY_START, DAY_END, DAY_END, hazard_set) == 1
        (row,) = session.scalars(sa.select(store.OutboxMessage).where(store.OutboxMessage.kind == "digest")).all()
    section = next(b["text"]["text"] for b in row.payload["blocks"] if "terms behind false alarms" in b["text"]["text"])
    assert section.splitlines()[0] == ":mag: *Istilah di balik alarm palsu, 7 hari (terms behind false alarms, 7 days)*"
    assert section.splitlines()[1] == ("• 'longsor &lt;b&gt;*' (Tanah Longsor (Landslide)): 1 dari 1 insiden alarm palsu "
                                       "(1 of 1 incidents false alarms)")


def test_no_false_alarms_no_terms_section(db_url, router, hazard_set):
    with store.session_scope(db_url) as session:
        a_day(session)
        digest.enqueue_digest(session, router, DAY_START, DAY_END, DAY_END, hazard_set)
        (row,) = session.scalars(sa.select(store.OutboxMessage).where(store.OutboxMessage.kind == "digest")).all()
    assert not any("terms behind false alarms" in b["text"]["text"] for b in row.payload["blocks"])


def test_road_incidents_count_in_their_kecamatan_with_the_road_named(db_url, router, hazard_set):
    """A jam on a road through Buleleng and Sukasada: counted under its own kecamatan, the road
    named, never "no kecamatan"."""
    with store.session_scope(db_url) as session:
        jam = store.Incident(hazard="traffic_jam", level="road", area_code="jl-ahmad-yani", area_name="Jalan Ahmad Yani",
                             road="Jalan Ahmad Yani", district=None, state="open", severity="medium", posts=4, authors=4,
                             notified_posts=4, opened_at=DAY_START + timedelta(hours=2), last_activity_at=DAY_START + timedelta(hours=2))
        session.add(jam)
        session.flush()
        for code, name in (("51.08.06", "Buleleng"), ("51.08.05", "Sukasada")):
            session.add(store.IncidentArea(incident_id=jam.id, level="district", area_code=code, name=name, posts=0,
                                           added_at=jam.opened_at))
        session.flush()
        s = digest.summarise(session, DAY_START, DAY_END)
        assert ("traffic_jam", "Buleleng") in s.areas and ("traffic_jam", digest.NO_DISTRICT) not in s.areas
        assert s.areas[("traffic_jam", "Buleleng")].roads == {"Jalan Ahmad Yani"}
        blocks = str(digest.build_message(s, hazard_set)["blocks"])
    assert "Kec. Buleleng: 1 dibuka (1 opened), 1 masih terbuka (1 still open) · lewat Jalan Ahmad Yani (via Jalan Ahmad Yani)" in blocks
    assert "tanpa kecamatan" not in blocks
