"""Silences ("snooze flooding in Sawan for 6 hours"): what one is, how it is stored and looked
up, and the one place an incident change's labels are matched against them (`matching`), both
before a change is written to the outbox (`alerts.enqueue`) and when a Slack message shows that
its incident is snoozed (`slackactions`).

A silence mutes a change whose labels equal every one of its matchers while it is active (from
its start, if any, until its end), as Alertmanager's silences do; `check_matchers` limits what
people may silence on, so a typo cannot mute nothing or everything.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from siaga.store import Incident, SilenceRow, conflict_insert
from siaga.vocabulary import ALERT_LABELS

# Labels a silence may match on: those alerts.incident_labels gives every incident change.
MATCHER_LABELS = tuple(label for label in ALERT_LABELS if label != "kind")
SNOOZE_CHOICES = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24)}
MAX_DURATION = timedelta(days=30)  # a forgotten silence must not mute an area for ever


@dataclass(frozen=True)
class Silence:
    """Mute changes whose labels equal all `matchers` (e.g. hazard × district) until `ends_at`;
    `id` and `created_by` say on the timeline which silence held a change back."""

    matchers: Mapping[str, str]
    ends_at: datetime
    starts_at: datetime | None = None
    created_by: str = ""
    comment: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("Silence.matchers: empty; a silence must name a hazard and/or an area")
        for name, t in (("ends_at", self.ends_at), ("starts_at", self.starts_at)):
            if t is not None and t.tzinfo is None:
                raise ValueError(f"Silence.{name}: naive datetime; give a time zone")
        if self.starts_at is not None and self.starts_at >= self.ends_at:
            raise ValueError("Silence: starts_at must be before ends_at")

    def active(self, when: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= when) and when < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.matchers.items())


class SilenceError(ValueError):
    """A silence that cannot be created; the message names the field."""


def check_matchers(matchers: Mapping[str, Any]) -> dict[str, str]:
    """Matchers as plain strings, refusing unknown labels and empty values: a typo ("hazrd")
    would otherwise create a silence that matches nothing, or one that matches everything."""
    if not isinstance(matchers, Mapping) or not matchers:
        raise SilenceError("matchers: give at least one label (e.g. hazard and district)")
    out: dict[str, str] = {}
    for key, value in matchers.items():
        if key not in MATCHER_LABELS:
            raise SilenceError(f"matchers.{key}: unknown label; use one of {', '.join(MATCHER_LABELS)}")
        if not isinstance(value, str) or not value.strip():
            raise SilenceError(f"matchers.{key}: needs a non-empty string, got {value!r}")
        out[key] = value
    if set(out) <= {"level", "severity", "on_road", "agency"}:
        raise SilenceError("matchers: name a hazard or an area (hazard, district or area_code), not only "
                           f"{', '.join(sorted(out))}")
    return out


def create_silence(
    session: Session,
    matchers: Mapping[str, Any],
    ends_at: datetime,
    created_by: str,
    *,
    starts_at: datetime,
    reason: str | None = None,
    dedup_key: str | None = None,
) -> tuple[SilenceRow, bool]:
    """(silence, created). With `dedup_key`, asking twice returns the first silence and False,
    so a Slack click delivered twice creates one silence."""
    if dedup_key is not None:
        existing = session.scalar(select(SilenceRow).where(SilenceRow.dedup_key == dedup_key))
        if existing is not None:
            return existing, False
    clean = check_matchers(matchers)
    if not created_by or not created_by.strip():
        raise SilenceError("created_by: a silence needs the person who made it")
    for name, t in (("starts_at", starts_at), ("ends_at", ends_at)):
        if t.tzinfo is None:
            raise SilenceError(f"{name}: naive datetime; give a time zone")
    if ends_at <= starts_at:
        raise SilenceError("ends_at: must be after starts_at")
    if ends_at - starts_at > MAX_DURATION:
        raise SilenceError(f"ends_at: a silence lasts at most {MAX_DURATION.days} days")
    values = {"matchers": clean, "starts_at": starts_at, "ends_at": ends_at, "created_by": created_by[:128],
              "reason": (reason or "")[:1000] or None, "created_at": starts_at, "dedup_key": dedup_key}
    if dedup_key is None:
        row = SilenceRow(**values)
        session.add(row)
        session.flush()
        return row, True
    # Two listeners handling the same click at once: the unique key lets exactly one insert win.
    result = session.execute(conflict_insert(session, SilenceRow).values(**values).on_conflict_do_nothing())
    row = session.scalars(select(SilenceRow).where(SilenceRow.dedup_key == dedup_key)).one()
    return row, bool(result.rowcount)


def active_silences(session: Session, when: datetime) -> list[Silence]:
    """Silences in force at `when` (with their ids)."""
    rows = session.scalars(
        select(SilenceRow).where(SilenceRow.starts_at <= when, SilenceRow.ends_at > when).order_by(SilenceRow.id)
    )
    return [to_silence(r) for r in rows]


def to_silence(row: SilenceRow) -> Silence:
    return Silence(matchers=dict(row.matchers), ends_at=row.ends_at, starts_at=row.starts_at,
                   created_by=row.created_by, comment=row.reason or "", id=row.id)


def matching(labels: Mapping[str, str], silences: Iterable[Silence], when: datetime) -> Silence | None:
    """The first active silence matching `labels` (the one named on the timeline), else None."""
    if when.tzinfo is None:
        raise ValueError("when: naive datetime; give a time zone")
    return next((s for s in silences if s.active(when) and s.matches(labels)), None)


def snooze_matchers(incident: Incident) -> dict[str, str]:
    """What "snooze this alert" silences: its hazard in its kecamatan (neighbouring villages of
    one event usually share one), or its exact area when it has no kecamatan (a regency-wide or
    cross-district road incident)."""
    if incident.district:
        return {"hazard": incident.hazard, "district": incident.district}
    return {"hazard": incident.hazard, "level": incident.level, "area_code": incident.area_code}


def expire(session: Session, silence_id: int, at: datetime) -> SilenceRow:
    """End a silence now (an operator lifting a snooze early)."""
    row = session.get(SilenceRow, silence_id)
    if row is None:
        raise LookupError(f"no silence {silence_id}")
    if row.ends_at > at:
        row.ends_at = max(at, row.starts_at + timedelta(microseconds=1))
    return row
