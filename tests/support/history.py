"""The demo morning as stored history, and as the officers judged it: for the backtest and the
term report, which read both."""
from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from siaga import detect, incidents, ingest, settings, store
from siaga.routing import Router
from siaga.sources import ReplaySource
from siaga_dev.scenario import HOURS, START

REPO = Path(__file__).resolve().parents[2]
# When the officers gave their verdicts (12:30 WITA), after the detect runs at 09:00 and 12:00.
VERDICT_AT = (START + timedelta(hours=6, minutes=30)).astimezone(timezone.utc)


def store_demo(url: str) -> None:
    """The demo scenario stored, as the ingest DAG would have stored it."""
    ingest.ingest(ReplaySource("demo", REPO / "scenarios" / "demo.jsonl"), START + timedelta(hours=HOURS), url)


def judge_demo(url: str) -> dict[str, int]:
    """The stored demo morning through the real detect runs, then the officers' verdicts: the jam
    on Jalan Ahmad Yani called a false alarm, the flood in Sangsit resolved (confirmed). Returns
    the incident id per hazard."""
    router = Router.load(settings.config_dir() / "routing.yaml")
    for hours in (3, 6):
        detect.run((START + timedelta(hours=hours)).astimezone(timezone.utc), router, url)
    with store.session_scope(url) as session:
        found = {i.hazard: i for i in session.scalars(sa.select(store.Incident))}
        jam, flood = found["traffic_jam"], found["flood"]
        if jam.state == "resolved":  # resolved by itself when it went quiet: an officer reopens it first
            incidents.transition(session, jam.id, "open", "U_DISHUB", VERDICT_AT)
        incidents.transition(session, jam.id, "false_alarm", "U_DISHUB", VERDICT_AT + timedelta(minutes=1), note="pawai, bukan macet")
        incidents.transition(session, flood.id, "resolved", "U_BPBD", VERDICT_AT + timedelta(minutes=2))
        return {hazard: incident.id for hazard, incident in found.items()}
