"""Which Slack channel gets which alert: a declarative route tree and quiet hours.

Operators change routing more often than code, so it lives in one YAML file
(config/routing.yaml) read the way Prometheus Alertmanager reads its route tree, which many
operations teams already know. See that file for the label vocabulary and matching rules.
Silences ("snooze flooding in Sukasada until 18:00") are data, not config: the store keeps them
and `silences.py` matches an incident change's labels against them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import jsonschema

from siaga.config_errors import ConfigError, Document, document_of, read_document, schema_problems
from siaga.hazard_config import agencies
from siaga.vocabulary import ALERT_KINDS, ALERT_LABELS, LEVELS, LOCAL_TZ_NAME, SEVERITIES, time_zone

if TYPE_CHECKING:  # the database is needed only by `in_force`, which imports it when called
    from sqlalchemy.orm import Session

_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_NAME = r"^[a-z][a-z0-9_-]*$"
# A matcher names labels alerts carry, and `match` only values they can have: a typo ("agncy",
# "dishubb") matched nothing, and Dishub's traffic went to BPBD with the check saying "ok".
_LABEL_NAMES = {"enum": list(ALERT_LABELS)}
_MATCH_RE = {"type": "object", "additionalProperties": {"type": "string"}, "propertyNames": _LABEL_NAMES}
_MATCH = {**_MATCH_RE, "properties": {
    "kind": {"enum": list(ALERT_KINDS)},
    "agency": {"enum": list(agencies())},
    "level": {"enum": list(LEVELS)},
    "severity": {"enum": list(SEVERITIES)},
    "on_road": {"enum": ["true", "false"]},
}}

_ROUTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "receiver": {"type": "string"},
        "match": _MATCH,
        "match_re": _MATCH_RE,
        "continue": {"type": "boolean"},
        "routes": {"type": "array", "items": {"$ref": "#/$defs/route"}},
    },
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["severities", "receivers", "route"],
    "$defs": {"route": _ROUTE_SCHEMA},
    "properties": {
        "timezone": {"type": "string"},
        "severities": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}},
        "receivers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "channel"],
                "properties": {
                    "name": {"type": "string", "pattern": _NAME},
                    # A channel name ("#bpbd-siaga") or id ("C0123ABCD"); never a token.
                    "channel": {"type": "string", "pattern": r"^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{6,})$"},
                    "quiet_hours": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["start", "end", "hold"],
                        "properties": {
                            "start": {"type": "string", "pattern": _HHMM},
                            "end": {"type": "string", "pattern": _HHMM},
                            # What the agency lets wait until morning, named: nothing else is held.
                            "hold": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "minProperties": 1,
                                    "properties": {"match": _MATCH, "match_re": _MATCH_RE},
                                },
                            },
                            "override_severity": {"type": "string"},
                        },
                    },
                },
            },
        },
        "route": {"$ref": "#/$defs/route"},
    },
}


class RoutingConfigError(ConfigError):
    """The routing file is wrong; the message names the file, line, column and field."""


@dataclass(frozen=True)
class HoldRule:
    """One kind of alert an agency lets wait through its quiet hours (e.g. low-severity traffic)."""

    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, re.Pattern[str]] = field(default_factory=dict)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k, "") == v for k, v in self.match.items()) and all(
            p.fullmatch(labels.get(k, "")) for k, p in self.match_re.items()
        )


@dataclass(frozen=True)
class QuietHours:
    """A receiver's quiet period. It holds only alerts matching one of `hold` (what the agency
    named), and of those only ones below `override_severity`: a quiet period can never swallow
    an alert nobody chose to delay, such as a disaster at night."""

    start: time
    end: time
    override_severity: str | None = None
    hold: tuple[HoldRule, ...] = ()

    def holds(self, labels: Mapping[str, str]) -> bool:
        return any(rule.matches(labels) for rule in self.hold)

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # wraps midnight (22:00-06:00)


@dataclass(frozen=True)
class Receiver:
    name: str
    channel: str
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True)
class Route:
    receiver: str
    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    continue_: bool = False
    routes: tuple["Route", ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k, "") == v for k, v in self.match.items()) and all(
            p.fullmatch(labels.get(k, "")) for k, p in self.match_re.items()
        )


class Router:
    def __init__(self, root: Route, receivers: Mapping[str, Receiver], severities: tuple[str, ...],
                 tz: tzinfo) -> None:
        self.root = root
        self.receivers = dict(receivers)
        self.severities = severities
        self.tz = tz

    @classmethod
    def load(cls, path: str | Path) -> "Router":
        return cls.from_document(read_document(path, RoutingConfigError))

    @classmethod
    def in_force(cls, session: Session, path: str | Path) -> "Router":
        """`load`, or the last good routing.yaml when the file is refused (`last_good`): a typo
        must not stop every alert."""
        from siaga import last_good

        return last_good.in_force(session, Path(path), cls.from_document, RoutingConfigError)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<routing>", text: str | None = None) -> "Router":
        """A router from parsed data; `text`, when given, places errors at their line."""
        return cls.from_document(document_of(data, source, text, RoutingConfigError))

    @classmethod
    def from_document(cls, doc: Document) -> "Router":
        """A router from a file read with positions: every schema error at once, then the first
        error the schema cannot express (unknown receiver, bad regex, ...)."""
        data = doc.data

        def fail(where: list[Any], message: str) -> RoutingConfigError:
            return RoutingConfigError([doc.at(where, message)])

        problems = schema_problems(doc, _validator())
        if problems:
            raise RoutingConfigError(problems)

        try:
            tz = time_zone(data.get("timezone", LOCAL_TZ_NAME))
        except ValueError as exc:
            raise fail(["timezone"], str(exc)) from exc
        severities = tuple(data["severities"])
        if severities != SEVERITIES:  # incidents are given these: any other list fails at the first alert
            raise fail(["severities"], f"must be {list(SEVERITIES)} (the severities Siaga assigns, ascending), not {list(severities)}")

        receivers: dict[str, Receiver] = {}
        for i, r in enumerate(data["receivers"]):
            if r["name"] in receivers:
                raise fail(["receivers", i, "name"], f"duplicate receiver {r['name']!r}")
            quiet = None
            if "quiet_hours" in r:
                q = r["quiet_hours"]
                if q["start"] == q["end"]:
                    raise fail(["receivers", i, "quiet_hours"], "start and end are equal")
                override = q.get("override_severity")
                if override is not None and override not in severities:
                    raise fail(["receivers", i, "quiet_hours", "override_severity"],
                               f"{override!r} is not one of severities {list(severities)}")
                holds = []
                for k, rule in enumerate(q["hold"]):
                    patterns = {}
                    for label, rx in rule.get("match_re", {}).items():
                        try:
                            patterns[label] = re.compile(rx)
                        except re.error as exc:
                            raise fail(["receivers", i, "quiet_hours", "hold", k, "match_re", label],
                                       f"bad regular expression {rx!r}: {exc}") from exc
                    holds.append(HoldRule(dict(rule.get("match", {})), patterns))
                quiet = QuietHours(time.fromisoformat(q["start"]), time.fromisoformat(q["end"]), override, tuple(holds))
            receivers[r["name"]] = Receiver(name=r["name"], channel=r["channel"], quiet_hours=quiet)

        def build(node: Mapping[str, Any], where: list[Any], inherited: str | None) -> Route:
            receiver = node.get("receiver", inherited)
            if receiver is None:
                raise fail(where + ["receiver"], "the root route needs a receiver")
            if receiver not in receivers:
                raise fail(where + ["receiver"], f"unknown receiver {receiver!r}; known: {sorted(receivers)}")
            patterns = {}
            for label, rx in node.get("match_re", {}).items():
                try:
                    patterns[label] = re.compile(rx)
                except re.error as exc:
                    raise fail(where + ["match_re", label], f"bad regular expression {rx!r}: {exc}") from exc
            children = tuple(build(c, where + ["routes", i], receiver) for i, c in enumerate(node.get("routes", [])))
            return Route(receiver=receiver, match=dict(node.get("match", {})), match_re=patterns,
                         continue_=bool(node.get("continue", False)), routes=children)

        root_node = data["route"]
        if root_node.get("match") or root_node.get("match_re"):
            raise fail(["route", "match"], "the root route matches every alert; put matchers on child routes")
        return cls(build(root_node, ["route"], None), receivers, severities, tz)

    # --- routing ---------------------------------------------------------------------------------
    def route(self, labels: Mapping[str, str]) -> list[Receiver]:
        """Receivers for an alert, in tree order, each once."""
        names = _walk(self.root, labels)
        seen: dict[str, Receiver] = {}
        for name in names:
            seen.setdefault(name, self.receivers[name])
        return list(seen.values())

    def receiver(self, name: str) -> Receiver:
        try:
            return self.receivers[name]
        except KeyError:
            raise KeyError(f"no receiver {name!r} in routing config; known: {sorted(self.receivers)}") from None

    # --- quiet hours -------------------------------------------------------------------------------
    def severity_rank(self, severity: str) -> int:
        try:
            return self.severities.index(severity)
        except ValueError:
            raise ValueError(f"unknown severity {severity!r}; routing config knows {list(self.severities)}") from None

    def in_quiet_hours(self, receiver: Receiver | str, when: datetime, severity: str,
                       labels: Mapping[str, str] | None = None) -> bool:
        """True when `receiver` should not be disturbed now by this alert: it is inside the quiet
        period, matches one of the kinds the receiver chose to hold (`labels`, with `severity`
        filled in) and is below the override severity. Without labels nothing is held."""
        rec = self.receiver(receiver) if isinstance(receiver, str) else receiver
        _require_aware(when, "when")
        rank = self.severity_rank(severity)
        quiet = rec.quiet_hours
        if quiet is None or not quiet.contains(when.astimezone(self.tz).time()):
            return False
        if not quiet.holds({**(labels or {}), "severity": severity}):
            return False
        return quiet.override_severity is None or rank < self.severity_rank(quiet.override_severity)

    def quiet_hours_end(self, receiver: Receiver | str, when: datetime) -> datetime | None:
        """When the quiet period containing `when` ends (to hold alerts until then), else None."""
        rec = self.receiver(receiver) if isinstance(receiver, str) else receiver
        _require_aware(when, "when")
        local = when.astimezone(self.tz)
        quiet = rec.quiet_hours
        if quiet is None or not quiet.contains(local.time()):
            return None
        end = datetime.combine(local.date(), quiet.end, tzinfo=self.tz)
        if end <= local:
            end += timedelta(days=1)
        return end


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


def _walk(route: Route, labels: Mapping[str, str]) -> list[str]:
    """Alertmanager's rule: the deepest matching routes win; `continue` keeps trying siblings."""
    found: list[str] = []
    for child in route.routes:
        if child.matches(labels):
            found.extend(_walk(child, labels))
            if not child.continue_:
                break
    return found or [route.receiver]


def _require_aware(when: datetime, name: str) -> None:
    if when.tzinfo is None:
        raise ValueError(f"{name}: naive datetime; give a time zone")
