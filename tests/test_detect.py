"""The detect run end to end on a database of posts: tagging, area counts, spikes, incidents and
outbox messages, and that running it again over the same window changes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import detect, store
from siaga.routing import Router
from siaga.settings import config_dir
from siaga.sources.base import text_fingerprint

T0 = datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)  # 10:00 WITA
FLOOD_TEXTS = [
    "Banjir di Desa Sangsit, air masuk rumah warga",
    "bnjir lg di sangsit kec sawan, air udah selutut",
    "Sangsit banjir parah, warga mengungsi",
    "Info: banjir merendam Desa Sangsit, Sawan. Hati-hati yang lewat",
    "Hujan deras dari subuh, Desa Sangsit kebanjiran",
    "Sungai meluap, banjir di Sangsit Sawan makin tinggi",
]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.load(config_dir() / "routing.yaml")


def add_posts(url: str, posts: list[tuple[int, str, str]]) -> None:
    """(minutes after T0, author, text) as ingested posts."""
    with store.session_scope(url) as session:
        start = session.scalar(sa.select(sa.func.count()).select_from(store.Post))
        for i, (minutes, author, text) in enumerate(posts, start=start):
            session.add(store.Post(
                source="test", source_id=str(i), created_at=T0 + timedelta(minutes=minutes), author=author,
                text=text, url=None, lat=None, lon=None, text_hash=text_fingerprint(text), raw={"i": i},
            ))


def rows(url: str, model) -> int:
    with store.session_scope(url) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def snapshot(url: str) -> dict:
    """Everything a detect run writes, as comparable values."""
    with store.session_scope(url) as session:
        return {
            "counts": sorted(session.execute(sa.select(store.AreaCount.hazard, store.AreaCount.level, store.AreaCount.area_code,
                                                       store.AreaCount.bucket_start, store.AreaCount.posts, store.AreaCount.authors)).all()),
            "alerts": sorted(session.execute(sa.select(store.Alert.id, store.Alert.observed, store.Alert.window_end)).all()),
            "incidents": sorted(session.execute(sa.select(store.Incident.id, store.Incident.state, store.Incident.severity, store.Incident.posts)).all()),
            "events": rows(url, store.IncidentEvent),
            "outbox": rows(url, store.OutboxMessage),
        }


def test_a_flood_told_by_many_fires_once_and_rerunning_changes_nothing(db_url, router):
    add_posts(db_url, [(3 * i, f"warga{i}", text) for i, text in enumerate(FLOOD_TEXTS)])
    now = T0 + timedelta(minutes=20)
    report = detect.run(now, router, db_url)
    assert report.tagged == len(FLOOD_TEXTS) and report.spikes >= 1 and report.changes.get("new") == 1
    with store.session_scope(db_url) as session:
        (incident,) = session.scalars(sa.select(store.Incident)).all()
        assert (incident.hazard, incident.village, incident.state) == ("flood", "Sangsit", "open")
        alert = session.scalars(sa.select(store.Alert).order_by(store.Alert.window_end)).first()
        why = alert.explanation
        assert why["observed"] >= 3 and why["expected"] < 0.1 and why["p_value"] <= why["threshold"]
        assert why["areas_tested"] >= 100 and "banjir" in why["terms"] and len(why["post_ids"]) == why["observed"]
        # the timeline page's chart: village, kecamatan and regency series in 5-minute buckets
        levels = set(session.scalars(sa.select(store.AreaCount.level).where(store.AreaCount.hazard == "flood")))
        assert levels == {"village", "district", "regency"}
        total = session.scalar(sa.select(sa.func.sum(store.AreaCount.posts)).where(
            store.AreaCount.hazard == "flood", store.AreaCount.level == "village"))
        assert total == len(FLOOD_TEXTS)
    assert rows(db_url, store.OutboxMessage) >= 1
    before = snapshot(db_url)
    again = detect.run(now, router, db_url)
    assert again.tagged == 0 and again.changes == {}
    assert snapshot(db_url) == before


def test_one_author_shouting_does_not_fire(db_url, router):
    add_posts(db_url, [(2 * i, "si_paling_heboh", text) for i, text in enumerate(FLOOD_TEXTS)])
    report = detect.run(T0 + timedelta(minutes=20), router, db_url)
    assert report.spikes == 0 and rows(db_url, store.Incident) == 0
    assert rows(db_url, store.AreaCount) > 0  # still counted, for the chart


def test_reposts_by_many_accounts_do_not_fire(db_url, router):
    add_posts(db_url, [(i, f"akun{i}", FLOOD_TEXTS[0]) for i in range(8)])
    report = detect.run(T0 + timedelta(minutes=20), router, db_url)
    assert report.spikes == 0 and rows(db_url, store.Incident) == 0
    with store.session_scope(db_url) as session:
        assert session.scalar(sa.select(sa.func.max(store.AreaCount.posts))) == 1


def test_everyday_noise_does_not_fire(db_url, router):
    noise = [
        (0, "a", "Banjir diskon akhir tahun di toko Singaraja!"),
        (15, "b", "hujan gerimis di Sangsit, adem"),
        (40, "c", "banjir di Sangsit tadi pagi sudah surut"),
        (70, "d", "Macet dikit di Seririt"),
    ]
    add_posts(db_url, noise)
    report = detect.run(T0 + timedelta(minutes=90), router, db_url)
    assert report.spikes == 0 and rows(db_url, store.Incident) == 0


def test_three_people_in_a_quiet_village_fire(db_url, router):
    """The control for the test below: the same three posts with no history are an alarm."""
    add_posts(db_url, [(3 * i, f"baru{i}", text) for i, text in enumerate(FLOOD_TEXTS[:3])])
    report = detect.run(T0 + timedelta(minutes=20), router, db_url)
    assert report.changes.get("new") == 1


def test_history_of_chatter_raises_the_bar(db_url, router):
    """A village where flood talk is usual every day needs more than three posts to alarm."""
    chatter = [(-(d * 24 * 60) + 60 * h, f"warga{d}_{h}", f"hari ke {d} jam {h}: banjir lagi di Sangsit, biasa")
               for d in range(1, 8) for h in range(0, 24, 2)]
    add_posts(db_url, chatter)
    for d in range(7, 0, -1):  # the daily detect runs that stored the history
        detect.run(T0 - timedelta(days=d) + timedelta(hours=23), router, db_url)
    add_posts(db_url, [(3 * i, f"baru{i}", text) for i, text in enumerate(FLOOD_TEXTS[:3])])
    incidents_before = rows(db_url, store.Incident)
    detect.run(T0 + timedelta(minutes=20), router, db_url)
    assert rows(db_url, store.Incident) == incidents_before


def test_later_runs_over_the_same_posts_record_nothing_and_new_posts_are_one_change(db_url, router):
    """Detection runs every few minutes over sliding windows: the runs that see no new post
    write no alert, timeline row or message; the run that sees one writes one "grew" row."""
    add_posts(db_url, [(3 * i, f"warga{i}", text) for i, text in enumerate(FLOOD_TEXTS[:4])])
    detect.run(T0 + timedelta(minutes=15), router, db_url)
    before = snapshot(db_url)
    for minutes in (20, 25, 30):
        report = detect.run(T0 + timedelta(minutes=minutes), router, db_url)
        assert report.changes == {}
    after = snapshot(db_url)
    assert (after["events"], after["outbox"], len(after["alerts"])) == (before["events"], before["outbox"], len(before["alerts"]))
    add_posts(db_url, [(32, "warga9", FLOOD_TEXTS[5])])
    detect.run(T0 + timedelta(minutes=35), router, db_url)
    with store.session_scope(db_url) as session:
        (incident,) = session.scalars(sa.select(store.Incident)).all()
        kinds = [e.kind for e in session.scalars(sa.select(store.IncidentEvent).order_by(store.IncidentEvent.id))]
        assert kinds == ["opened", "grew"] and (incident.posts, incident.authors) == (5, 5)
        assert incident.last_activity_at == T0 + timedelta(minutes=32)  # the newest post
