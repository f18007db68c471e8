"""How the pages show things to people: times in Buleleng's time, colours per severity, names
of timeline events, and only links that are safe to follow."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

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


def safe_url(url: str | None) -> str | None:
    """Only http(s) links to a host, for pages and every export: autoescaping does not stop a
    `javascript:` href in a hostile post, and a GIS or spreadsheet opening an export escapes
    nothing. Whitespace or control characters inside are refused too (browsers drop them, so
    "java\tscript:" would run)."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None
