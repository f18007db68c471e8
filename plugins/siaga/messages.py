"""Slack messages for incident alerts: Block Kit blocks plus a plain-text fallback.

A duty officer must see what, where, how sure and why at a glance, and nothing quoted from a
public post may act inside Slack. Every piece of dynamic text goes through `escape` (Slack's own
rule: `&`, `<`, `>` become entities), so `<!channel>`, `<@U123>` or `<https://evil|klik>` arrive as
inert characters; the only `<…>` syntax in a message is links this module builds from URLs it has
checked. Quoted posts go out as `plain_text` objects, so Slack's own markup in a post (`*bold*`,
`_x_`, `~x~`, code fences) stays the characters typed; the rest is `mrkdwn` with `verbatim: true`
so Slack does not auto-link bare URLs or channel names either, and `slackclient.post_message`
turns unfurling off. Every sentence comes from `catalogue` (Indonesian first, times in WITA).
Bidi overrides and zero-width characters are removed because they let a post disguise what it
shows ("‮gpj.exe").
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from siaga.catalogue import evidence_sentence, in_both, say, say_in, why_text, wita
from siaga.links import safe_url
from siaga.vocabulary import CHANGE_KINDS, SEVERITIES, SLACK_FIELD_TEXT, SLACK_MAX_BLOCKS, SLACK_SECTION_TEXT, STATES

if TYPE_CHECKING:
    from siaga.incidents import WhatChanged

ACTION_ACK = "siaga_ack"
ACTION_RESOLVE = "siaga_resolve"
ACTION_FALSE_ALARM = "siaga_false_alarm"
ACTION_SNOOZE = "siaga_snooze"
# Snooze choices: option value "<incident id>:<key>"; silences.SNOOZE_CHOICES gives the durations.
SNOOZE_OPTIONS = tuple((key, say(f"snooze.{key}")) for key in ("1h", "6h", "24h"))

MAX_EVIDENCE = 3
EXCERPT_CHARS = 280
FALLBACK_LIMIT = 3000  # Slack truncates `text` past 40k and advises ~4k; stay well within
NAME_CHARS = 120  # place names, labels: longer is noise or an attack

_KIND_EMOJI = {
    "new": ":rotating_light:",
    "update": ":arrows_counterclockwise:",
    "escalation": ":warning:",
    "resolved": ":white_check_mark:",
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
    window_minutes: int = 0  # the detection window `observed` was counted in
    posts: int | None = None  # the incident's posts and authors (`incidents.incident_posts`)
    incident_authors: int | None = None
    why: Mapping[str, Any] | None = None  # the cue that raised the severity (`incidents._severity_why`)
    what: "WhatChanged | None" = None  # what changed since the last message (thread updates)
    # a regional incident's kecamatan (names), listed when it has no single village or kecamatan
    areas: Sequence[str] = field(default_factory=tuple)
    regency: str | None = None

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
    """At most `limit` characters, cut at a word boundary when one is near, with an ellipsis;
    never inside a grapheme (`whole_graphemes`)."""
    if len(text) <= limit:
        return text
    cut = text[: whole_graphemes(text, limit - 1)]
    space = cut.rfind(" ")
    if space >= limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def whole_graphemes(text: str, end: int) -> int:
    """`end`, or the start of the grapheme `end` falls inside, so `text[:end]` is whole
    graphemes (Unicode's UAX #29, by wcwidth, which Airflow's prompt_toolkit already installs:
    the standard library has no grapheme rules). A cut by code points split a flag into a
    lone regional indicator (🇮🇩 -> 🇮, shown as a boxed "I"), a skin-toned emoji into the
    emoji and a colour swatch, a letter from its combining mark."""
    if end <= 0 or end >= len(text):
        return max(0, min(end, len(text)))
    from wcwidth import grapheme_boundary_before

    return min(grapheme_boundary_before(text, end + 1), end)  # where the grapheme of text[end] starts


def link(url: object, label: str) -> str | None:
    """A Slack link to the URL when `links.safe_url` lets it be followed, else None: the caller
    shows a URL it refuses as plain text (`_plain`), never in mrkdwn, where `*x*`, `_x_`, `~x~`,
    a backtick or `:emoji:` in it would still format the alert."""
    good = safe_url(url)
    if good is None:
        return None
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


def _fmt_time(value: datetime | str | None, lang: str = "id") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("EvidencePost.created_at: naive datetime; give a time zone")
        return wita(value, "short", lang)
    return _name(value)


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
        parts.append(say("place.village", name=_name(view.village)))
    if view.district:
        parts.append(say("place.district", name=_name(view.district)))
    if view.road:
        parts.append(_name(view.road))
    if view.regency:  # a regional incident: the regency, then its kecamatan
        listed = ", ".join(parts) or ", ".join(f"Kec. {_name(a)}" for a in list(view.areas)[:MAX_LISTED_AREAS])
        more = len(view.areas) - MAX_LISTED_AREAS
        listed += f" +{more}" if more > 0 and not parts else ""
        return f"Kab. {_name(view.regency)}" + (f" — {listed}" if listed else " (seluruh kabupaten / regency-wide)")
    return ", ".join(parts) or say("place.unknown")


MAX_LISTED_AREAS = 9  # Buleleng has nine kecamatan


def counts_text(view: AlertView) -> str:
    """The evidence in plain words: "4 warga melapor dalam 30 menit; biasanya hampir tidak ada",
    then the incident's total posts and accounts."""
    minutes = view.window_minutes or 0
    if minutes:
        text = in_both(lambda lang: evidence_sentence(lang, int(view.authors), int(view.observed), minutes, view.expected))
    else:
        text = say("posts.count", posts=int(view.observed), authors=int(view.authors))
    if view.posts is not None and view.incident_authors is not None and (view.posts, view.incident_authors) != (view.observed, view.authors):
        text += "\n" + say("evidence.incident_total", posts=int(view.posts), authors=int(view.incident_authors))
    return text


def severity_text(view: AlertView) -> str:
    """"*tingkat tinggi (severity high)*", and for a new alert the cue that raised it."""
    def label(lang: str) -> str:
        name = say_in(lang, f"severity.{view.severity}") if view.severity in SEVERITIES else _name(view.severity)
        return say_in(lang, "slack.severity", severity=name)
    text = f"*{in_both(label, long=False)}*"
    if view.kind == "new" and view.why:
        text += " — " + in_both(lambda lang: why_text(lang, view.why, quote=_name))
    return text


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str) -> dict[str, Any]:
    """Text Slack shows as typed: no bold, italics, strike, code or links from a post."""
    return {"type": "plain_text", "text": text, "emoji": False}


def _who(actor: str | None) -> str:
    """A Slack user as a mention (an id from the interaction payload, checked), else escaped."""
    if actor and _SLACK_USER_ID.match(actor):
        return f"<@{actor}>"
    if actor and ":" in actor and _SLACK_USER_ID.match(actor.split(":", 1)[0]):
        return f"<@{actor.split(':', 1)[0]}>"
    return "Siaga" if not actor or actor == "siaga" else _name(actor)


def _state(lang: str, state: str) -> str:
    return say_in(lang, f"state.{state}") if state in STATES else _name(state)


def _sev(lang: str, severity: str | None) -> str:
    return say_in(lang, f"severity.{severity}") if severity in SEVERITIES else _name(severity)


def changes_lines(view: AlertView) -> list[str]:
    """What changed since the last message, one bilingual line each (escaped)."""
    what = view.what
    if what is None:
        return []
    lines: list[str] = []
    if what.new_post_ids:
        posts = what.posts if what.posts is not None else view.posts or 0
        authors = what.authors if what.authors is not None else view.incident_authors or 0
        lines.append(say("change.posts", new_posts=len(what.new_post_ids), posts=int(posts), authors=int(authors)))
        new_accounts = (what.authors - what.authors_before) if what.authors is not None and what.authors_before is not None else 0
        if 0 < new_accounts != len(what.new_post_ids):  # "2 new posts, now 5 from 5" already says it otherwise
            lines.append(say("change.new_authors", count=int(new_accounts)))
    if what.areas:
        lines.append(say("change.areas", names=", ".join(_name(a) for a in what.areas)))
    if what.severity:
        before, after = what.severity
        lines.append(in_both(lambda lang: say_in(lang, "change.severity", before=_sev(lang, before), after=_sev(lang, after),
                                                 why=why_text(lang, what.severity_why, quote=_name)).rstrip()))
    for before, after, actor in what.states:
        lines.append(in_both(lambda lang: say_in(lang, "change.state", before=_state(lang, before), after=_state(lang, after),
                                                 who=_who(actor)), long=False))
    if what.reopened:
        lines.append(say("change.reopened"))
    if what.resolved is not None:
        last = what.resolved.get("last_activity_at")
        try:
            when = datetime.fromisoformat(last) if isinstance(last, str) else None
        except ValueError:
            when = None
        if when is not None:
            lines.append(say("change.auto_resolved", last=when))
    if view.kind == "resolved":  # how it ended comes first
        closing = [line for line in lines if line.startswith(("status", "selesai otomatis"))]
        lines = closing + [line for line in lines if line not in closing]
    return lines


def _state_line(view: AlertView) -> str:
    line = f"{say_in('id', 'slack.incident_no', id=_name(str(view.incident_id)))} · status: *{in_both(lambda lang: _state(lang, view.state), long=False)}*"
    if view.state_by and _SLACK_USER_ID.match(view.state_by):
        line += f" {say_in('id', 'slack.by', who=f'<@{view.state_by}>')}"  # a Slack user id from the interaction payload, checked
    elif view.state_by:  # a person acting from the incident page: their Airflow user name, escaped
        line += f" {say_in('id', 'slack.by', who=escape(view.state_by))}"
    if view.state_at is not None:
        line += f" · {_fmt_time(view.state_at)}"
    if view.silenced_until is not None:
        line += f" · :zzz: {say('slack.snoozed_until')} {_fmt_time(view.silenced_until)}"
    page = link(view.timeline_url, say("slack.incident_page"))
    if page:
        line += f" · {page}"
    return line


def evidence_quote(post: EvidencePost) -> str:
    """The post's text, cleaned, on one line, capped and escaped, in quotes: sent as plain text."""
    return f"“{escape(truncate(one_line(post.text), EXCERPT_CHARS))}”"


def evidence_meta(post: EvidencePost) -> list[dict[str, Any]]:
    """Who, when and the link of a quoted post, as a context block's elements: the author as
    plain text, as the post's words are (a handle is the post's too: in mrkdwn "*BPBD*" or
    "_info_" turned bold or italic, and a backtick opened a code span), the time and the link
    in mrkdwn (the link is one `links.safe_url` let through); a URL it refused is shown after
    them as plain text, for the same reason as the author."""
    elements: list[dict[str, Any]] = []
    if post.author:
        elements.append(_plain(escape(truncate(one_line(post.author), NAME_CHARS))))
    meta = []
    if post.created_at is not None:
        meta.append(_fmt_time(post.created_at))
    linked = link(post.url, say("slack.link"))
    if linked:
        meta.append(linked)
    if meta:
        elements.append(_mrkdwn(_cut_escaped(("· " if elements else "") + " · ".join(meta), SLACK_SECTION_TEXT)))
    if post.url and not linked:
        refused = escape(truncate(one_line(post.url), NAME_CHARS))
        elements.append(_plain(("· " if elements else "") + refused))
    return elements


def _buttons(view: AlertView) -> dict[str, Any]:
    value = str(view.incident_id)
    elements: list[dict[str, Any]] = []
    if view.state != "acknowledged":
        elements.append({"type": "button", "action_id": ACTION_ACK, "value": value, "style": "primary",
                         "text": {"type": "plain_text", "text": say("button.ack")}})
    elements.append({"type": "button", "action_id": ACTION_RESOLVE, "value": value,
                     "text": {"type": "plain_text", "text": say("button.resolve")}})
    elements.append({"type": "button", "action_id": ACTION_FALSE_ALARM, "value": value, "style": "danger",
                     "text": {"type": "plain_text", "text": say("button.false_alarm")},
                     "confirm": {"title": {"type": "plain_text", "text": say_in("id", "button.false_alarm_title")},
                                 "text": {"type": "plain_text", "text": say("button.false_alarm_confirm")},
                                 "confirm": {"type": "plain_text", "text": say("button.yes")},
                                 "deny": {"type": "plain_text", "text": say("button.cancel")}}})
    return {"type": "actions", "block_id": f"siaga_actions_{value}"[:255], "elements": elements}


def snooze_select(view: AlertView) -> dict[str, Any]:
    """"Snooze" menu in its own actions block (the buttons block stays as it was): silences this
    hazard in this area for the chosen time."""
    value = str(view.incident_id)
    return {"type": "actions", "block_id": f"siaga_snooze_{value}"[:255], "elements": [{
        "type": "static_select", "action_id": ACTION_SNOOZE,
        "placeholder": {"type": "plain_text", "text": say("button.snooze") + "…"},
        "options": [{"text": {"type": "plain_text", "text": label}, "value": f"{value}:{key}"}
                    for key, label in SNOOZE_OPTIONS],
    }]}


def title_text(view: AlertView) -> str:
    """"Peringatan baru (new alert)": what kind of message this is."""
    return say(f"kind.{view.kind}")


def fallback_text(view: AlertView) -> str:
    """The notification/accessibility text: what, where, how bad and, for an update, the first
    thing that changed."""
    text = (f"{title_text(view)}: {hazard_label(view)} — {place_text(view)} — {in_both(lambda lang: _sev(lang, view.severity), long=False)}"
            f" — {say_in('id', 'slack.incident_no', id=_name(str(view.incident_id)))}")
    changed = changes_lines(view)
    if changed:
        text += f" — {changed[0]}"
    return _cut_escaped(text, FALLBACK_LIMIT)


def _cut_escaped(text: str, limit: int) -> str:
    """Cap already-escaped text without leaving half an entity like "&am"."""
    if len(text) <= limit:
        return text
    cut = text[: whole_graphemes(text, limit - 1)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def build_message(view: AlertView) -> dict[str, Any]:
    """`{"text": fallback, "blocks": [...]}` ready for chat.postMessage / chat.update."""
    title = f"{_KIND_EMOJI[view.kind]} {title_text(view)}: *{hazard_label(view)}* · {severity_text(view)}"
    where = f"*{say('slack.place')}*\n{place_text(view)}"
    if _valid_point(view.lat, view.lon):
        map_field = f"*{say('slack.map')}*\n<{osm_url(view.lat, view.lon).replace('&', '&amp;')}|{view.lat:.4f}, {view.lon:.4f}>"  # type: ignore[arg-type]
    else:
        map_field = f"*{say('slack.map')}*\n—"
    fields = [
        _mrkdwn(_cut_escaped(where, SLACK_FIELD_TEXT)),
        _mrkdwn(map_field),
        _mrkdwn(_cut_escaped(f"*{say('slack.counts')}*\n{counts_text(view)}", SLACK_FIELD_TEXT)),
        _mrkdwn(_cut_escaped(f"*{say('slack.confidence')}*\n{escape(truncate(one_line(view.confidence), 500)) or '—'}",
                             SLACK_FIELD_TEXT)),
    ]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _mrkdwn(_cut_escaped(title, SLACK_SECTION_TEXT))}]
    changed = changes_lines(view)
    if changed:
        listed = "\n".join(f"• {line}" for line in changed)
        blocks.append({"type": "section", "text": _mrkdwn(_cut_escaped(f"*{say('slack.what_changed')}*\n{listed}", SLACK_SECTION_TEXT))})
    blocks += [
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [_mrkdwn(_cut_escaped(_state_line(view), SLACK_SECTION_TEXT))]},
    ]
    posts = list(view.evidence)[:MAX_EVIDENCE]
    if posts:
        blocks.append({"type": "divider"})
        blocks.append({"type": "context", "elements": [_mrkdwn(f"*{say('slack.evidence')}*")]})
        for post in posts:
            blocks.append({"type": "section", "text": _plain(evidence_quote(post))})
            meta = evidence_meta(post)
            if meta:
                blocks.append({"type": "context", "elements": meta})
    if view.kind == "new" and view.state in ("open", "acknowledged"):
        blocks.append(_buttons(view))
        blocks.append(snooze_select(view))
    return {"text": fallback_text(view), "blocks": blocks[:SLACK_MAX_BLOCKS]}


HOLD_KEY = "siaga_held"  # payload key (not sent to Slack) marking a message quiet hours held


def with_hold_note(message: dict[str, Any], since: datetime, until: datetime) -> dict[str, Any]:
    """`message` with a line saying quiet hours held it (from when until when, in WITA as every
    time a person reads: the catalogue's), so whoever reads it in the morning knows it is not
    fresh; the outbox puts "released" on the timeline when it goes out (`HOLD_KEY` tells it the
    message was held). The note once wrote its times itself: no zone, English month names, and
    in routing.yaml's `timezone`, so "05:00" could be WIB in an alert whose other times are WITA."""
    note = "⏸ " + say("message.held", since=since, until=until)
    blocks = list(message.get("blocks") or [])
    blocks.insert(1, {"type": "context", "elements": [_mrkdwn(escape(note))]})
    return {**message, "text": f"{note}. {message.get('text', '')}", "blocks": blocks[:SLACK_MAX_BLOCKS],
            HOLD_KEY: {"since": since.isoformat(), "until": until.isoformat()}}
