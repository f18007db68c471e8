"""Slow hazards (drought, clean-water shortage) are counted over their own day-long window with a
baseline that leaves the whole window out: three accounts reporting dry wells over twenty hours
alert as three in two hours do (issue 18, cause 2); forwarded copies add no author."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from siaga import detect, store
from siaga.routing import Router
from siaga.settings import config_dir
from test_detect import T0, add_posts

DRY = [
    "Sumur kering di Desa Tejakula, sudah seminggu beli air tangki",
    "Mata air kering di Tejakula, warga antre bantuan air bersih",
    "di tejakula sumur warga mengering, terpaksa beli air tangki",
]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.load(config_dir() / "routing.yaml")


def run_every_quarter_hour(url: str, router: Router, hours: float) -> None:
    for k in range(int(hours * 4) + 1):
        detect.run(T0 + timedelta(minutes=15 * k), router, url)


def drought_incidents(url: str) -> list[store.Incident]:
    with store.session_scope(url) as session:
        rows = session.scalars(sa.select(store.Incident).where(store.Incident.hazard == "drought")).all()
        session.expunge_all()
        return rows


@pytest.mark.parametrize("spread_hours", [2, 20])
def test_three_dry_well_reports_alert_whether_over_two_or_twenty_hours(sqlite_url, router, spread_hours):
    step = spread_hours * 60 // 2
    add_posts(sqlite_url, [(i * step, f"warga{i}", text) for i, text in enumerate(DRY)])
    run_every_quarter_hour(sqlite_url, router, spread_hours + 0.5)
    [incident] = drought_incidents(sqlite_url)
    assert incident.village == "Tejakula"


def test_forwarded_copies_add_no_author(sqlite_url, router):
    first = DRY[0]
    add_posts(sqlite_url, [(0, "warga0", first), (30, "warga1", "Info dari grup WA: " + first),
                           (60, "warga2", "copas dari grup sebelah: " + first + "!!")])
    run_every_quarter_hour(sqlite_url, router, 2)
    assert drought_incidents(sqlite_url) == []


# Six accounts telling of one water shortage in Tejakula over twenty hours, three to four hours
# apart: further apart than the deployment's incident gap (2 h) and quiet period (3 h), well
# within drought's own day (`detection.incident_gap_minutes: 1440` in drought.yaml).
SHORTAGE = [
    (0, "warga0", DRY[0]),
    (20, "warga1", DRY[1]),
    (40, "warga2", DRY[2]),
    (4 * 60, "warga3", "Warga Desa Tejakula kesulitan air bersih, sumur kering semua"),
    (8 * 60, "warga4", "Mohon bantuan air bersih untuk Tejakula, sumur kering"),
    (12 * 60, "warga5", "Tejakula masih krisis air bersih, sumur warga kering"),
    (16 * 60, "warga6", "Antre air bersih lagi di Tejakula, sumur kering"),
    (20 * 60, "warga7", "Sumur kering di Tejakula, warga beli air tangki"),
]
SANGSIT_FLOOD = ["Banjir di Desa Sangsit, air masuk rumah warga", "bnjir lg di sangsit kec sawan, air udah selutut",
                 "Sangsit banjir parah, warga mengungsi"]


def incidents_of(url: str, hazard: str) -> list[tuple[int, str, int]]:
    """(id, state, posts) of the hazard's incidents."""
    with store.session_scope(url) as session:
        return [(i.id, i.state, i.posts) for i in session.scalars(
            sa.select(store.Incident).where(store.Incident.hazard == hazard).order_by(store.Incident.id))]


def test_a_water_shortage_reported_over_twenty_hours_is_one_incident(sqlite_url, router):
    """With the deployment's two-hour gap it was a new incident at every report hours later."""
    add_posts(sqlite_url, SHORTAGE)
    run_every_quarter_hour(sqlite_url, router, 20.5)
    [(_, state, posts)] = incidents_of(sqlite_url, "drought")
    assert state == "open" and posts == len(SHORTAGE)  # and still open: drought's quiet is its gap
    with store.session_scope(sqlite_url) as session:
        kinds = [e.kind for e in session.scalars(sa.select(store.IncidentEvent))]
    assert "resolved" not in kinds and "reopened" not in kinds


def test_two_floods_hours_apart_are_two_incidents(sqlite_url, router):
    """Flood keeps the deployment's two-hour gap: the same village flooding again 2.5 hours
    after the last report is a new event, with a message of its own. (From three hours on, the
    first has resolved itself after the quiet period and the second reopens it: also news.)"""
    add_posts(sqlite_url, [(m, f"warga{i}", text) for i, (m, text) in enumerate(zip((0, 5, 10), SANGSIT_FLOOD))])
    add_posts(sqlite_url, [(m, f"warga{i + 3}", text) for i, (m, text) in enumerate(zip((160, 165, 170), SANGSIT_FLOOD))])
    run_every_quarter_hour(sqlite_url, router, 3)
    assert [posts for _, _, posts in incidents_of(sqlite_url, "flood")] == [3, 3]
