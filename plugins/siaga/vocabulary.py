"""The words every part of Siaga shares: incident states and how they may change, severities,
area levels, outbox states, Buleleng's time zone and codes, how long a post may be, and Slack's
message limits.

Each of these was once written in several modules and the copies drifted (the incident page
offered a state no incident can have). They live here, once; everything else imports them.
"""
from __future__ import annotations

from datetime import datetime, time, tzinfo
from zoneinfo import ZoneInfo

# --- the region ----------------------------------------------------------------------------

# Buleleng keeps Central Indonesian Time (WITA, UTC+8) all year: Indonesia has no daylight
# saving, so hour-of-week profiles, quiet hours, dates typed by people and every time shown to
# a person are in this zone.
LOCAL_TZ: tzinfo = ZoneInfo("Asia/Makassar")
LOCAL_TZ_NAME = "Asia/Makassar"
LOCAL_TZ_LABEL = "WITA"
# When the managers' day ends and its digest goes out, WITA (the siaga_digest DAG's schedule,
# and the end of every digest's period: `digest.day_end`).
DIGEST_TIME = time(7, 0)
REGENCY_NAME = "Buleleng"
REGENCY_CODE = "51.08"  # Kemendagri code; its kecamatan are 51.08.NN, villages 51.08.NN.NNNN
PROVINCE_NAME = "Bali"


def time_zone(name: object) -> tzinfo:
    """The IANA zone `name` names (a config file's `timezone`); ValueError saying so when it
    names none. `ZoneInfo` raises a KeyError subclass for a typo ("Asia/Makasar"), ValueError for
    a path and OSError for a name too long for a file: one sentence for all of them."""
    from zoneinfo import ZoneInfoNotFoundError

    try:
        if not isinstance(name, str) or not name:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as {LOCAL_TZ_NAME!r})"[:200]) from None


def local(when: datetime) -> datetime:
    """`when` in Buleleng's time (refuses naive datetimes: their zone would be a guess)."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: give a time zone")
    return when.astimezone(LOCAL_TZ)


def local_iso(when: datetime | None) -> str:
    """Machine formats (CSV, GeoJSON, CAP, backtest output): ISO 8601 to the second with WITA's
    offset, "2026-01-15T08:25:00+08:00"; empty when unknown. A reader in Buleleng sees the local
    hour, a program still gets the exact instant."""
    if when is None:
        return ""
    return local(when).replace(microsecond=0).isoformat()


def district_code(area_code: str) -> str:
    """Kemendagri codes nest: village 51.08.06.2001 lies in kecamatan 51.08.06."""
    return ".".join(area_code.split(".")[:3])


# Where Airflow mounts the managers' pages (`siaga_plugin.py`); alerts link below it.
PAGES_PREFIX = "/siaga"

# --- incidents -----------------------------------------------------------------------------

STATES = ("open", "acknowledged", "resolved", "false_alarm")
LIVE_STATES = ("open", "acknowledged")
CLOSED_STATES = ("resolved", "false_alarm")
# What people may do (`incidents.transition`, from the Slack buttons); repeating the current
# state is a no-op.
TRANSITIONS = {
    "open": ("acknowledged", "resolved", "false_alarm"),
    "acknowledged": ("resolved", "false_alarm"),
    "resolved": ("open",),
    "false_alarm": ("open",),
}
SEVERITIES = ("low", "medium", "high", "critical")  # config/routing.yaml lists the same
# Area levels, finer first: a flood alert for a village makes one for its kecamatan redundant.
LEVELS = ("village", "road", "district", "regency")
# The labels every alert carries, which config/routing.yaml and silences match on
# (`alerts.incident_labels`; the daily digest carries `kind` alone): a matcher on any other
# name never matches, so the routing file refuses it.
ALERT_LABELS = ("kind", "hazard", "agency", "district", "level", "area_code", "severity", "on_road")
ALERT_KINDS = ("incident", "digest")
# Who acts when nobody pressed a button: automatic resolution, detection.
AUTO_ACTOR = "siaga"
# What an incident change is called in Slack and in the outbox.
CHANGE_KINDS = ("new", "update", "escalation", "resolved")


def higher_severity(a: str, b: str) -> str:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


# --- the outbox ----------------------------------------------------------------------------

# pending -> claimed -> sent; claimed -> pending (retry later) or dead (kept, reported)
OUTBOX_STATES = ("pending", "claimed", "sent", "dead")

# --- how long a post may be ----------------------------------------------------------------

# Characters of one post's text: sources cut HTML bodies to it and refuse longer JSON records,
# ingest refuses longer posts (`sources.schema`), `siaga tag` refuses a longer "text". Here
# rather than in `sources.schema`, which `siaga tag` does not import (it loads the database
# models), so both read the one figure.
MAX_TEXT = 20_000
# Bytes of one line of JSON Lines read whole (`siaga tag`): a text of MAX_TEXT characters with
# every one written as an escaped surrogate pair (12 bytes) is 240 kB; the rest is room for the
# fields around it. A longer line is refused without being held in memory.
MAX_LINE_BYTES = 1_000_000

# --- Slack's documented message limits -------------------------------------------------------

SLACK_MAX_BLOCKS = 50
SLACK_SECTION_TEXT = 3000  # a section's text
SLACK_SECTION_FIELDS = 10
SLACK_FIELD_TEXT = 2000  # each section field
SLACK_CONTEXT_ELEMENTS = 10
SLACK_ACTIONS_ELEMENTS = 25
SLACK_BUTTON_TEXT = 75
SLACK_BUTTON_VALUE = 2000
SLACK_MESSAGE_TEXT = 40000  # Slack truncates `text` past this
