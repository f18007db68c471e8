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
