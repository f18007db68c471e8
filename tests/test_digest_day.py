"""The managers' digest always covers the day that ends at 07:00 WITA, however its run was
started: by the schedule, late, or by hand (Airflow gives a run triggered by hand no interval,
and `pipeline.run_time` then falls back to the time it runs)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import given, settings as hsettings, strategies as st

from siaga import digest, pipeline, store
from siaga.vocabulary import LOCAL_TZ

SEVEN = datetime(2026, 12, 5, 7, 0, tzinfo=LOCAL_TZ)


def _incident(session, opened_at):
    session.add(store.Incident(
        hazard="flood", level="village", area_code=f"v-{opened_at:%H%M}", area_name="Sangsit", village="Sangsit",
        district="Sawan", state="open", severity="low", posts=3, authors=3, notified_posts=3,
        opened_at=opened_at, last_activity_at=opened_at,
    ))


def digests(url: str) -> list[dict]:
    with store.session_scope(url) as session:
        return [r.payload for r in session.scalars(sa.select(store.OutboxMessage).order_by(store.OutboxMessage.id))]


def test_a_digest_run_by_hand_before_seven_leaves_no_hour_out_of_every_digest(sqlite_url, monkeypatch):
    """Triggered by hand at 06:00: it summarised 06:00 to 06:00 under the day's key; the 07:00
    run found the key taken and wrote nothing, and the flood opened at 06:30 was in no digest."""
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    with store.session_scope(sqlite_url) as session:
        _incident(session, SEVEN - timedelta(minutes=30))
    pipeline.digest(SEVEN - timedelta(days=1))  # yesterday's scheduled run
    pipeline.digest(SEVEN - timedelta(hours=1))  # by hand at 06:00
    pipeline.digest(SEVEN)  # today's scheduled run
    opened = [p["text"] for p in digests(sqlite_url) if "1 insiden dibuka" in p["text"]]
    assert len(opened) == 1


@hsettings(max_examples=50, deadline=None)
@given(minutes=st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60))
def test_the_digest_day_ends_at_the_last_seven_oclock_wita(minutes):
    now = SEVEN + timedelta(minutes=minutes)
    end = digest.day_end(now.astimezone(timezone.utc))
    assert end.astimezone(LOCAL_TZ).time() == digest.DIGEST_TIME
    assert end <= now < end + timedelta(days=1)


def test_the_pipeline_reports_the_aligned_period(sqlite_url, monkeypatch):
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    result = pipeline.digest(SEVEN + timedelta(hours=2, minutes=13))
    assert datetime.fromisoformat(result["period_end"]) == SEVEN
    assert datetime.fromisoformat(result["period_start"]) == SEVEN - timedelta(days=1)
