"""The managers' daily digest: what happened in the last day, per hazard and kecamatan, and
what Siaga failed to deliver.

Managers do not watch the duty channels; once a day they want the counts (incidents opened,
resolved, called false alarms, still open), where, the dead letters someone must look at, and
the terms behind the past week's false alarms (`siaga terms`), so someone tightens them. A road
incident counts in the kecamatan its road and posts placed it in (`incidents.kecamatan_of`),
with the road named. Every sentence comes from `catalogue`.
The digest goes through the same outbox as alerts (routed by the label `kind: digest`, see
config/routing.yaml), so it gets the same retry and never-twice guarantees; its de-duplication
key is the WITA date of the period's end, so a re-run or a manual trigger the same morning
writes nothing new. The period always ends at DIGEST_TIME (07:00 WITA, when the DAG runs),
whenever the run happens: see `day_end`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siaga import hazard_lists, outbox, terms
from siaga.catalogue import say, wita
from siaga.hazards import HazardSet
from siaga.incidents import kecamatan_of
from siaga.messages import escape, one_line, truncate
from siaga.routing import Router
from siaga.store import Incident, IncidentEvent
from siaga.vocabulary import DIGEST_TIME, LIVE_STATES, LOCAL_TZ, SLACK_MAX_BLOCKS, SLACK_SECTION_TEXT, local

KIND = "digest"
MAX_DEAD_LISTED = 5
NOISY_TERMS_PERIOD = timedelta(days=7)
MAX_NOISY_TERMS = 5
NO_DISTRICT = "—"


@dataclass
class AreaCounts:
    opened: int = 0
    resolved: int = 0
    false_alarm: int = 0
    still_open: int = 0
    roads: set[str] = field(default_factory=set)  # the roads of the road incidents counted here

    def any(self) -> bool:
        return bool(self.opened or self.resolved or self.false_alarm or self.still_open)


@dataclass
class DigestSummary:
    day_start: datetime
    day_end: datetime
    # (hazard, kecamatan) -> counts
    areas: dict[tuple[str, str], AreaCounts] = field(default_factory=dict)
    silenced: int = 0  # changes held back by silences in the period
    dead_total: int = 0
    dead: list[dict[str, Any]] = field(default_factory=list)  # the first MAX_DEAD_LISTED
    # terms behind false alarms in the NOISY_TERMS_PERIOD before day_end, the worst first
    noisy_terms: list[terms.TermStat] = field(default_factory=list)

    def totals(self) -> AreaCounts:
        out = AreaCounts()
        for c in self.areas.values():
            out.opened += c.opened
            out.resolved += c.resolved
            out.false_alarm += c.false_alarm
            out.still_open += c.still_open
        return out


def summarise(session: Session, day_start: datetime, day_end: datetime, lists: HazardSet | None = None) -> DigestSummary:
    """Counts for [day_start, day_end). Closings are counted from the timeline, so an incident
    resolved, reopened and resolved again in one day counts once per hazard and place. With the
    `lists` in force, also the terms behind the past week's false alarms."""
    if day_start.tzinfo is None or day_end.tzinfo is None:
        raise ValueError("digest period: give timezone-aware times")
    if day_end <= day_start:
        raise ValueError("digest period: day_end must be after day_start")
    summary = DigestSummary(day_start, day_end)
    areas: dict[tuple[str, str], AreaCounts] = defaultdict(AreaCounts)

    def key(incident: Incident) -> tuple[str, str]:
        places = kecamatan_of(session, incident)
        counts_key = (incident.hazard, places[0] if places else NO_DISTRICT)
        if incident.road:
            areas[counts_key].roads.add(incident.road)
        return counts_key

    for incident in session.scalars(select(Incident).where(Incident.opened_at >= day_start, Incident.opened_at < day_end)):
        areas[key(incident)].opened += 1
    for kind in ("resolved", "false_alarm"):
        closed = session.scalars(
            select(Incident).where(Incident.id.in_(
                select(IncidentEvent.incident_id).where(
                    IncidentEvent.kind == kind, IncidentEvent.at >= day_start, IncidentEvent.at < day_end)))
        )
        for incident in closed:
            counts = areas[key(incident)]
            setattr(counts, kind, getattr(counts, kind) + 1)
    for incident in session.scalars(select(Incident).where(Incident.state.in_(LIVE_STATES), Incident.opened_at < day_end)):
        areas[key(incident)].still_open += 1
    summary.areas = dict(sorted(areas.items(), key=lambda kv: (-kv[1].opened, -kv[1].still_open, kv[0])))
    summary.silenced = session.scalar(
        select(func.count()).select_from(IncidentEvent).where(
            IncidentEvent.kind == "silenced", IncidentEvent.at >= day_start, IncidentEvent.at < day_end)
    ) or 0
    dead = outbox.dead_letters(session, newest_first=True)
    summary.dead_total = len(dead)
    summary.dead = dead[:MAX_DEAD_LISTED]
    if lists is not None:
        report = terms.term_report(session, day_end - NOISY_TERMS_PERIOD, day_end, lists)
        summary.noisy_terms = [t for t in report if t.false_alarms][:MAX_NOISY_TERMS]
    return summary


def _label(hazard_set: HazardSet, hazard: str) -> str:
    h = hazard_set.hazards.get(hazard)
    if h is None:
        return escape(truncate(one_line(hazard), 120))
    local, english = escape(one_line(h.label_id)), escape(one_line(h.label_en))
    return f"{local} ({english})" if english and english.lower() != local.lower() else local


def _counts_text(c: AreaCounts) -> str:
    parts = [say("digest.opened", n=c.opened)]
    if c.resolved:
        parts.append(say("digest.resolved", n=c.resolved))
    if c.false_alarm:
        parts.append(say("digest.false_alarm", n=c.false_alarm))
    if c.still_open:
        parts.append(say("digest.still_open", n=c.still_open))
    text = ", ".join(parts)
    if c.roads:
        text += " · " + say("digest.roads", roads=", ".join(escape(truncate(one_line(r), 120)) for r in sorted(c.roads)))
    return text


def _section(text: str) -> dict[str, Any]:
    if len(text) > SLACK_SECTION_TEXT:
        text = text[: SLACK_SECTION_TEXT - 2].rsplit("\n", 1)[0] + "\n…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _noisy_terms_text(noisy: list[terms.TermStat], hazard_set: HazardSet) -> str:
    listed = "\n".join(
        f"• '{escape(truncate(one_line(t.term), 80))}' ({_label(hazard_set, t.hazard)}): "
        + say("digest.noisy_term", false_alarms=t.false_alarms, incidents=t.incidents)
        for t in noisy)
    return (f":mag: *{say('digest.noisy_terms', days=NOISY_TERMS_PERIOD.days)}*\n{listed}\n"
            + say("digest.noisy_advice"))


def build_message(summary: DigestSummary, hazard_set: HazardSet) -> dict[str, Any]:
    """`{"text", "blocks"}` for chat.postMessage. Place names are escaped like any alert's."""
    period = f"{wita(summary.day_start, 'short')} – {wita(summary.day_end, 'short')}"
    t = summary.totals()
    headline = say("digest.headline", opened=t.opened, resolved=t.resolved, false_alarm=t.false_alarm,
                   still_open=t.still_open, dead=summary.dead_total)
    blocks: list[dict[str, Any]] = [
        _section(f":bar_chart: *{say('digest.title')}* · {period}\n{headline}"),
    ]
    by_hazard: dict[str, list[str]] = defaultdict(list)
    for (hazard, district), counts in summary.areas.items():
        if counts.any():
            place = say("place.no_district") if district == NO_DISTRICT else say("place.district", name=escape(truncate(one_line(district), 120)))
            by_hazard[hazard].append(f"• {place}: {_counts_text(counts)}")
    if not by_hazard:
        blocks.append(_section(say("digest.no_incidents")))
    for hazard, lines in list(by_hazard.items())[:40]:
        blocks.append(_section(f"*{_label(hazard_set, hazard)}*\n" + "\n".join(lines)))
    if summary.silenced:
        blocks.append(_section(f":zzz: {say('digest.silenced', n=summary.silenced)}"))
    if summary.dead_total:
        listed = "\n".join(
            f"• outbox #{d['id']} → {escape(d['channel'])} ({escape(d['kind'])}"
            + (f", insiden #{d['incident']}" if d["incident"] is not None else "")
            + f", {d['attempts']}×): {escape(truncate(one_line(d['error'] or '?'), 200))}"
            for d in summary.dead)
        more = f"\n{say('digest.more', n=summary.dead_total - len(summary.dead))}: `siaga outbox`" if summary.dead_total > len(summary.dead) else ""
        blocks.append(_section(f":x: *{say('digest.dead_letters', n=summary.dead_total)}*\n{listed}{more}"))
    if summary.noisy_terms:
        blocks.append(_section(_noisy_terms_text(summary.noisy_terms, hazard_set)))
    text = f"{say('digest.title')} {period}: {headline}"
    return {"text": text, "blocks": blocks[:SLACK_MAX_BLOCKS]}


def day_end(now: datetime) -> datetime:
    """The end of the last digest day at `now`: the latest DIGEST_TIME (WITA) at or before it.
    A run triggered by hand, or with no interval (Airflow gives such a run the moment it was
    triggered), summarised the day before that moment: at 06:00 it took 06:00 to 06:00 under
    the day's key, the 07:00 run then found the key taken, and what happened between 06:00 and
    07:00 was in no digest."""
    at = local(now)
    end = datetime.combine(at.date(), DIGEST_TIME, tzinfo=LOCAL_TZ)
    return end if end <= at else end - timedelta(days=1)


def digest_key(router: Router, receiver: str, day_end: datetime) -> str:
    """One digest per receiver and WITA day (`router` is kept for the callers' sake)."""
    return f"{KIND}:{local(day_end):%Y-%m-%d}:{receiver}"


def enqueue_digest(
    session: Session, router: Router, day_start: datetime, day_end: datetime, now: datetime,
    hazard_set: HazardSet | None = None,
) -> int:
    """Outbox rows (no incident) for the digest of [day_start, day_end) to every receiver the
    label `kind: digest` routes to, at most one per receiver and local day. Returns rows written."""
    labels = {"kind": KIND}
    receivers = [r for r in router.route(labels)]
    pending = [r for r in receivers if not outbox.exists(session, digest_key(router, r.name, day_end))]
    if not pending:
        return 0
    hazard_set = hazard_set or hazard_lists.in_force(session)
    message = build_message(summarise(session, day_start, day_end, hazard_set), hazard_set)
    written = sum(
        outbox.enqueue(session, dedup_key=digest_key(router, receiver.name, day_end), receiver=receiver.name,
                       channel=receiver.channel, kind=KIND, payload=message, due=now, now=now)
        for receiver in pending
    )
    session.flush()
    return written
