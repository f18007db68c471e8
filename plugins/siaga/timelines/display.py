"""How the pages show things to people: times in Buleleng's time, colours per severity, names
of timeline events."""
from __future__ import annotations

from datetime import datetime

from siaga import catalogue
from siaga.vocabulary import LOCAL_TZ, LOCAL_TZ_LABEL

SEVERITY_COLOURS = {"low": "#6b8e23", "medium": "#d4a017", "high": "#e8590c", "critical": "#c92a2a"}


def wita(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Times as the duty officers in Buleleng read them ("–" when unknown)."""
    return value.astimezone(LOCAL_TZ).strftime(fmt) + " " + LOCAL_TZ_LABEL if value else "–"


def severity_colour(severity: str) -> str:
    return SEVERITY_COLOURS.get(severity, "#868e96")


def event_label(kind: str) -> str:
    """A timeline event's name from the catalogue, Indonesian first ("Ditangani (acknowledged)");
    a kind it does not name is spelt out ("area_grew" -> "Area grew")."""
    if catalogue.has(f"event.{kind}"):
        return catalogue.say(f"event.{kind}")
    return kind.replace("_", " ").capitalize()
