"""Slack messages for incident alerts: Block Kit blocks plus a plain-text fallback.

A duty officer must see what, where, how sure and why at a glance, and nothing quoted from a
public post may act inside Slack. Every piece of dynamic text goes through `escape` (Slack's own
rule: `&`, `<`, `>` become entities), so `<!channel>`, `<@U123>` or `<https://evil|klik>` arrive as
inert characters; the only `<…>` syntax in a message is links this module builds from URLs it has
checked. Text objects are sent with `verbatim: true` so Slack does not auto-link bare URLs or
channel names inside quoted posts either, and `slackclient.post_message` turns unfurling off.
Bidi overrides and zero-width characters are removed because they let a post disguise what it
shows ("‮gpj.exe").
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from siaga.vocabulary import CHANGE_KINDS, LOCAL_TZ, SLACK_FIELD_TEXT, SLACK_MAX_BLOCKS, SLACK_SECTION_TEXT

ACTION_ACK = "siaga_ack"
ACTION_RESOLVE = "siaga_resolve"
ACTION_FALSE_ALARM = "siaga_false_alarm"
ACTION_SNOOZE = "siaga_snooze"
# Snooze choices: option value "<incident id>:<key>"; silences.SNOOZE_CHOICES gives the durations.
SNOOZE_OPTIONS = (("1h", "1 jam (1 h)"), ("6h", "6 jam (6 h)"), ("24h", "24 jam (24 h)"))

MAX_EVIDENCE = 3
EXCERPT_CHARS = 280
FALLBACK_LIMIT = 3000  # Slack truncates `text` past 40k and advises ~4k; stay well within
NAME_CHARS = 120  # place names, labels: longer is noise or an attack

_KIND_TITLE = {
    "new": ":rotating_light: Peringatan baru (new alert)",
    "update": ":arrows_counterclockwise: Pembaruan (update)",
    "escalation": ":warning: Eskalasi (escalation)",
    "resolved": ":white_check_mark: Selesai (resolved)",
}
_STATE_LABEL = {
    "open": "terbuka (open)",
    "acknowledged": "ditangani (acknowledged)",
    "resolved": "selesai (resolved)",
    "false_alarm": "alarm palsu (false alarm)",
}
# Zero-width, bidi embedding/override/isolate and other invisible format characters.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u00ad\u061c\u180e]")
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


@dataclass(frozen=True)
class EvidencePost:
    text: str
    url: str | None = None
    created_at: datetime | str | None = None
    author: str | None = None


@dataclass(frozen=True)
class AlertView:
    """What an alert shows, as plain data; the incident store fills it in."""

    incident_id: int | str
    kind: str  # one of CHANGE_KINDS
    hazard_id: str
    hazard_label_id: str  # Indonesian label, shown first
    hazard_label_en: str
    severity: str
    village: str | None = None
    district: str | None = None
    road: str | None = None
    lon: float | None = None
    lat: float | None = None
    observed: int = 0
    expected: float | None = None
    authors: int = 0
    confidence: str = ""
    evidence: Sequence[EvidencePost] = field(default_factory=tuple)
    timeline_url: str | None = None
    state: str = "open"
    state_by: str | None = None  # Slack user id of who acknowledged/resolved (from Socket Mode)
    state_at: datetime | None = None
    silenced_until: datetime | None = None  # a snooze (silence) on this hazard and area

    def __post_init__(self) -> None:
        if self.kind not in CHANGE_KINDS:
            raise ValueError(f"AlertView.kind: {self.kind!r} is not one of {CHANGE_KINDS}")


# --- hostile-text primitives -------------------------------------------------------------------
def clean(text: object) -> str:
    """Text with invisible/bidi format characters and control characters removed (newlines and
    tabs kept), NFC-normalised."""
    s = unicodedata.normalize("NFC", "" if text is None else str(text))
    s = _INVISIBLE.sub("", s)
    return "".join(ch for ch in s if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))


def escape(text: object) -> str:
    """Slack mrkdwn escaping of untrusted text (after `clean`). Already-escaped input is escaped
    again on purpose: "&lt;!channel&gt;" must show as typed, not turn into a mention."""
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def one_line(text: object) -> str:
    """Whitespace runs (newlines too) as one space, so a post cannot start a quote or fake a
    header line of its own."""
    return " ".join(clean(text).split())


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary when one is near, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def safe_url(url: object) -> str | None:
    """The URL if it can be put inside Slack's `<url|label>` syntax without changing meaning:
    http(s) only, no whitespace, no `|`, `<`, `>`; else None."""
    if not isinstance(url, str):
        return None
    if clean(url) != url or len(url) > 2000:
        return None
    if not re.match(r"^https?://[^\s/|<>]+", url, re.IGNORECASE):
        return None
    if any(ch in url for ch in "|<>") or any(ch.isspace() for ch in url):
        return None
    return url


def link(url: object, label: str) -> str:
    """A Slack link to a checked URL, else the escaped URL as plain text (label dropped)."""
    good = safe_url(url)
    if good is None:
        return escape(url) if url else escape(label)
    return f"<{good.replace('&', '&amp;')}|{escape(label)}>"


def osm_url(lat: float, lon: float) -> str:
    return f"https://www.openstreetmap.org/?mlat={lat:.5f}&mlon={lon:.5f}#map=14/{lat:.5f}/{lon:.5f}"


def _valid_point(lat: float | None, lon: float | None) -> bool:
    return (
        isinstance(lat, (int, float)) and isinstance(lon, (int, float))
        and math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180
    )


def _name(text: str | None) -> str:
    return escape(truncate(one_line(text), NAME_CHARS)) if text else ""


def _fmt_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("EvidencePost.created_at: naive datetime; give a time zone")
        return value.astimezone(LOCAL_TZ).strftime("%d %b %H:%M WITA")
    return _name(value)


def _fmt_number(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


# --- message parts --------------------------------------------------------------------------------
def hazard_label(view: AlertView) -> str:
    """Indonesian label first: "Banjir (flood)"."""
    local, english = _name(view.hazard_label_id), _name(view.hazard_label_en)
    if english and english.lower() != local.lower():
        return f"{local} ({english})"
    return local or _name(view.hazard_id)


def place_text(view: AlertView) -> str:
    parts = []
    if view.village:
        parts.append(f"Desa {_name(view.village)}")
    if view.district:
        parts.append(f"Kec. {_name(view.district)}")
    if view.road:
        parts.append(f"Jalan/road: {_name(view.road)}")
    return ", ".join(parts) or "lokasi belum pasti (place unknown)"


def counts_text(view: AlertView) -> str:
    expected = "?" if view.expected is None else _fmt_number(view.expected)
    return f"{int(view.observed)} teramati vs {expected} biasa (observed vs expected) · {int(view.authors)} akun berbeda (distinct authors)"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _state_line(view: AlertView) -> str:
    state = _STATE_LABEL.get(view.state, _name(view.state))
    line = f"Insiden #{_name(str(view.incident_id))} · status: *{state}*"
    if view.state_by and _SLACK_USER_ID.match(view.state_by):
        line += f" oleh <@{view.state_by}>"  # a Slack user id from the interaction payload, checked
    if view.state_at is not None:
        line += f" · {_fmt_time(view.state_at)}"
    if view.silenced_until is not None:
        line += f" · :zzz: ditunda s/d (snoozed until) {_fmt_time(view.silenced_until)}"
    if view.timeline_url:
        line += f" · {link(view.timeline_url, 'linimasa (timeline)')}"
    return line


def evidence_text(post: EvidencePost) -> str:
    excerpt = escape(truncate(one_line(post.text), EXCERPT_CHARS))
    meta = []
    if post.author:
        meta.append(_name(post.author))
    if post.created_at is not None:
        meta.append(_fmt_time(post.created_at))
    if post.url:
        meta.append(link(post.url, "tautan (link)"))
    text = f"“{excerpt}”" + (f"\n{' · '.join(meta)}" if meta else "")
    return text[:SLACK_SECTION_TEXT]  # cannot trigger: excerpt ≤ 5×280, names ≤ 5×120, url ≤ 2000


def _buttons(view: AlertView) -> dict[str, Any]:
    value = str(view.incident_id)
    elements: list[dict[str, Any]] = []
    if view.state != "acknowledged":
        elements.append({"type": "button", "action_id": ACTION_ACK, "value": value, "style": "primary",
                         "text": {"type": "plain_text", "text": "Tangani (Acknowledge)"}})
    elements.append({"type": "button", "action_id": ACTION_RESOLVE, "value": value,
                     "text": {"type": "plain_text", "text": "Selesai (Resolve)"}})
    elements.append({"type": "button", "action_id": ACTION_FALSE_ALARM, "value": value, "style": "danger",
                     "text": {"type": "plain_text", "text": "Alarm palsu (False alarm)"},
                     "confirm": {"title": {"type": "plain_text", "text": "Alarm palsu?"},
                                 "text": {"type": "plain_text", "text": "Tandai insiden ini sebagai alarm palsu (mark as false alarm)?"},
                                 "confirm": {"type": "plain_text", "text": "Ya (yes)"},
                                 "deny": {"type": "plain_text", "text": "Batal (cancel)"}}})
    return {"type": "actions", "block_id": f"siaga_actions_{value}"[:255], "elements": elements}


def snooze_select(view: AlertView) -> dict[str, Any]:
    """"Snooze" menu in its own actions block (the buttons block stays as it was): silences this
    hazard in this area for the chosen time."""
    value = str(view.incident_id)
    return {"type": "actions", "block_id": f"siaga_snooze_{value}"[:255], "elements": [{
        "type": "static_select", "action_id": ACTION_SNOOZE,
        "placeholder": {"type": "plain_text", "text": "Tunda (Snooze)…"},
        "options": [{"text": {"type": "plain_text", "text": label}, "value": f"{value}:{key}"}
                    for key, label in SNOOZE_OPTIONS],
    }]}


def fallback_text(view: AlertView) -> str:
    """The notification/accessibility text: one line with what, where and how bad."""
    title = _KIND_TITLE[view.kind].split(" ", 1)[1]
    text = (f"{title}: {hazard_label(view)} — {place_text(view)} — severity {_name(view.severity)}"
            f" — insiden #{_name(str(view.incident_id))}")
    return _cut_escaped(text, FALLBACK_LIMIT)


def _cut_escaped(text: str, limit: int) -> str:
    """Cap already-escaped text without leaving half an entity like "&am"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def build_message(view: AlertView) -> dict[str, Any]:
    """`{"text": fallback, "blocks": [...]}` ready for chat.postMessage / chat.update."""
    title = f"{_KIND_TITLE[view.kind]}: *{hazard_label(view)}* · tingkat (severity) *{_name(view.severity)}*"
    where = f"*Lokasi (place)*\n{place_text(view)}"
    if _valid_point(view.lat, view.lon):
        map_field = f"*Peta (map)*\n<{osm_url(view.lat, view.lon).replace('&', '&amp;')}|{view.lat:.4f}, {view.lon:.4f}>"  # type: ignore[arg-type]
    else:
        map_field = "*Peta (map)*\n—"
    fields = [
        _mrkdwn(_cut_escaped(where, SLACK_FIELD_TEXT)),
        _mrkdwn(map_field),
        _mrkdwn(_cut_escaped(f"*Jumlah (counts)*\n{counts_text(view)}", SLACK_FIELD_TEXT)),
        _mrkdwn(_cut_escaped(f"*Keyakinan (confidence)*\n{escape(truncate(one_line(view.confidence), 500)) or '—'}",
                             SLACK_FIELD_TEXT)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(_cut_escaped(title, SLACK_SECTION_TEXT))},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [_mrkdwn(_cut_escaped(_state_line(view), SLACK_SECTION_TEXT))]},
    ]
    posts = list(view.evidence)[:MAX_EVIDENCE]
    if posts:
        blocks.append({"type": "divider"})
        blocks.append({"type": "context", "elements": [_mrkdwn("*Bukti (evidence)*")]})
        blocks.extend({"type": "section", "text": _mrkdwn(evidence_text(p))} for p in posts)
    if view.kind == "new" and view.state in ("open", "acknowledged"):
        blocks.append(_buttons(view))
        blocks.append(snooze_select(view))
    return {"text": fallback_text(view), "blocks": blocks[:SLACK_MAX_BLOCKS]}
