"""An incident's timeline in sentences: what each event means, said the same way on the page and
in the timeline CSV, Indonesian first, times in WITA.

Timeline events keep structured details for programs (`IncidentEvent.detail`); a person reads a
sentence built from them here, never the JSON. Sentences come from `siaga.catalogue`; anything
taken from a post or a person stays plain text for the caller to escape.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from siaga.catalogue import evidence_sentence, has, join, say, say_in, why_text
from siaga.store import IncidentEvent
from siaga.vocabulary import AUTO_ACTOR, SEVERITIES, STATES



def event_label(kind: str) -> str:
    """A timeline event's name, bilingual ("Insiden dibuka (incident opened)")."""
    key = f"event.{kind}"
    return say(key) if has(key) else say("event.unknown", kind=kind.replace("_", " "))


def actor_name(actor: str | None) -> str:
    """Who did it, for people: "Siaga" for the machine."""
    return "Siaga" if not actor or actor == AUTO_ACTOR else actor


def state_label(state: str | None) -> str:
    return say(f"state.{state}") if state in STATES else str(state or "?")


def severity_label(severity: str | None) -> str:
    return say(f"severity.{severity}") if severity in SEVERITIES else str(severity or "?")


def evidence_text(authors: int, posts: int, minutes: int, expected: float | None) -> str:
    """`catalogue.evidence_sentence` in both languages."""
    return join(*(evidence_sentence(lang, authors, posts, minutes, expected) for lang in ("id", "en")), long=True)


def _window(detail: Mapping[str, Any], lang: str) -> str:
    authors = int(detail.get("window_authors", detail.get("authors", 0)) or 0)
    observed = int(detail.get("observed", authors) or 0)
    minutes = int(detail.get("window_minutes", 0) or 0)
    expected = detail.get("expected")
    return evidence_sentence(lang, authors, observed, minutes, float(expected) if expected is not None else None)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def event_sentence(event: IncidentEvent) -> str:
    """One timeline event as a bilingual sentence. A detail this code cannot read (written by
    an older version, or by hand) is shown field by field rather than lost or shown as JSON."""
    try:
        return join(*(_sentence(event, lang) for lang in ("id", "en")), long=True)
    except (AttributeError, KeyError, TypeError, ValueError):
        return _plain(event.detail if isinstance(event.detail, dict) else {"detail": event.detail})


def _sentence(event: IncidentEvent, lang: str) -> str:
    d: Mapping[str, Any] = event.detail or {}
    kind = event.kind
    if kind == "opened":
        severity = say_in(lang, f"severity.{d['severity']}") if d.get("severity") in SEVERITIES else _text(d.get("severity", "?"))
        why = why_text(lang, d.get("why"))
        return say_in(lang, "timeline.opened", severity=f"{severity} {why}".strip(), evidence=_window(d, lang))
    if kind == "grew":
        new = say_in(lang, "change.posts", new_posts=len(d.get("post_ids") or []), posts=int(d.get("posts", 0)),
                     authors=int(d.get("authors", 0)))
        return say_in(lang, "timeline.late", evidence=new) if d.get("late") else new
    if kind == "area_added":
        names = ", ".join(_text(a.get("name") or a.get("code")) for a in d.get("areas") or [])
        return say_in(lang, "timeline.area_added", names=names)
    if kind == "escalated":
        sev = lambda s: say_in(lang, f"severity.{s}") if s in SEVERITIES else _text(s)  # noqa: E731
        return say_in(lang, "timeline.escalated", before=sev(d.get("from")), after=sev(d.get("to")), why=why_text(lang, d.get("why"))).rstrip()
    if kind == "reopened" and event.actor == AUTO_ACTOR:
        minutes = int(d.get("after_minutes", 0) or 0)
        return say_in(lang, "timeline.reopened_auto", after=_duration(lang, timedelta(minutes=minutes)))
    if kind == "resolved" and (d.get("automatic") or event.actor == AUTO_ACTOR):
        quiet = timedelta(minutes=int(d.get("quiet_minutes", 0) or 0)) if "quiet_minutes" in d else None
        return say_in(lang, "timeline.auto_resolved", quiet=_duration(lang, quiet) if quiet else _text(d.get("reason", "?")))
    if kind in STATES or kind == "reopened":
        state = lambda s: say_in(lang, f"state.{s}") if s in STATES else _text(s)  # noqa: E731
        text = say_in(lang, "timeline.state", before=state(d.get("from")), after=state(d.get("to", kind)), who=actor_name(event.actor))
        return f"{text}: {_text(d['note'])}" if d.get("note") else text
    if kind == "silenced":
        until = _when(d.get("until"))
        return say_in(lang, "timeline.silenced", kind=_text(d.get("kind", "?")), silence=_text(d.get("silence_id", "?")),
                      until=until) if until else say_in(lang, "event.silenced")
    if kind == "held":
        until = _when(d.get("until"))
        return say_in(lang, "timeline.held", receiver=_text(d.get("receiver", "?")), until=until) if until else say_in(lang, "event.held")
    if kind == "delivered":
        return say_in(lang, "timeline.delivered", channel=_text(d.get("channel", "?"))) + (
            f" · {say_in(lang, 'kind.' + d['kind'])}" if has(f"kind.{d.get('kind')}") else "")
    if kind == "delivery_failed":
        return say_in(lang, "timeline.delivery_failed", channel=_text(d.get("channel", "?")), error=_text(d.get("error", "?")))
    if d.get("note") or d.get("reason"):
        return say_in(lang, "timeline.note", note=_text(d.get("note") or d.get("reason")))
    return _plain(d)


def _duration(lang: str, span: timedelta) -> str:
    minutes = int(span / timedelta(minutes=1))
    hours, rest = divmod(minutes, 60)
    if lang == "id":
        return " ".join(p for p in (f"{hours} jam" if hours else "", f"{rest} menit" if rest or not hours else "") if p)
    return " ".join(p for p in (f"{hours} h" if hours else "", f"{rest} min" if rest or not hours else "") if p)


def _plain(detail: Mapping[str, Any]) -> str:
    """An event of a kind this module does not know yet: its fields as "name: value" pairs, so a
    person still reads it and no JSON reaches a page or a CSV."""
    return "; ".join(f"{str(key).replace('_', ' ')}: {_text(detail[key])}" for key in sorted(detail, key=str))


def _text(value: Any) -> str:
    """Any stored value as words: nested mappings and lists flattened to "name=value" pairs, so a
    hand-edited or older detail never shows as a Python or JSON literal."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)
