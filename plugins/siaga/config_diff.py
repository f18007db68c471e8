"""What a candidate config changes against the one in force, in an operator's words.

A backtest's alert diff alone ("CHANGED: 0") does not say what was changed: the operator may have
edited the wrong copy, or a term may be spelt so that it folds to one already listed. This lists
the hazards added and removed, per hazard the phrases added and removed (compared as the matcher
sees them, so "Banjir" for "banjir" is no change) and the settings changed, both each hazard's
detection fields and config/detection.yaml.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from siaga.detection_config import FILE_NAME as DETECTION_FILE, DetectSettings, minutes_field
from siaga.hazards import HazardSet
from siaga.normalise import match_key

PHRASE_FIELDS = ("terms", "roots", "exclusions", "severity_cues")
# a hazard file's settings: those under its `detection:` are shown as "detection.<name>"
DETECTION_SETTINGS = ("window_minutes", "min_posts", "min_authors", "sensitivity", "incident_gap_minutes")
HAZARD_SETTINGS = ("agency", "areal", "felt_authors", *DETECTION_SETTINGS)


@dataclass(frozen=True)
class PhraseChange:
    hazard: str
    field: str  # one of PHRASE_FIELDS
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class SettingChange:
    where: str  # a hazard id, or "detection.yaml"
    name: str  # "min_posts", "detection.min_posts" style for hazards is left to the formatter
    before: Any
    after: Any

    def __str__(self) -> str:
        in_hazard_detection = self.where != DETECTION_FILE and self.name in DETECTION_SETTINGS
        prefix = f"{self.where}: detection.{self.name}" if in_hazard_detection else f"{self.where}: {self.name}"
        return f"{prefix} {self.before} -> {self.after}"


@dataclass
class ConfigDiff:
    hazards_added: list[str] = field(default_factory=list)
    hazards_removed: list[str] = field(default_factory=list)
    phrases: list[PhraseChange] = field(default_factory=list)
    settings: list[SettingChange] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # "flood: road_consequence changed"

    @property
    def empty(self) -> bool:
        return not (self.hazards_added or self.hazards_removed or self.phrases or self.settings or self.other)

    def phrases_of(self, kind: str, change: str) -> list[tuple[str, str]]:
        """(hazard, phrase) pairs of one field ("terms") and change ("added" or "removed")."""
        return [(c.hazard, p) for c in self.phrases if c.field == kind for p in getattr(c, change)]


def compare(now: HazardSet, new: HazardSet, settings_now: DetectSettings, settings_new: DetectSettings) -> ConfigDiff:
    """The candidate (`new`, `settings_new`) against what is in force (`now`, `settings_now`)."""
    diff = ConfigDiff(
        hazards_added=[h for h in new.hazards if h not in now.hazards],
        hazards_removed=[h for h in now.hazards if h not in new.hazards],
    )
    for hid in (h for h in new.hazards if h in now.hazards):
        before, after = now.hazards[hid], new.hazards[hid]
        for name in PHRASE_FIELDS:
            added, removed = _phrase_diff(getattr(before, name), getattr(after, name), now.abbreviations, new.abbreviations)
            if added or removed:
                diff.phrases.append(PhraseChange(hid, name, added, removed))
        for name in HAZARD_SETTINGS:
            if getattr(before, name) != getattr(after, name):
                diff.settings.append(SettingChange(hid, name, _as_written(getattr(before, name)),
                                                   _as_written(getattr(after, name))))
        for name in ("road_consequence", "subsumed_by", "cap_category", "label_id", "label_en"):
            if getattr(before, name) != getattr(after, name):
                diff.other.append(f"{hid}: {name} changed")
    for f in fields(DetectSettings):
        a, b = getattr(settings_now, f.name), getattr(settings_new, f.name)
        if a != b:
            diff.settings.append(SettingChange(DETECTION_FILE, minutes_field(f.name), _shown(a), _shown(b)))
    return diff


def _phrase_diff(before: tuple[str, ...], after: tuple[str, ...], abbr_before: dict[str, str],
                 abbr_after: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys_before = {match_key(p, abbr_before) for p in before}
    keys_after = {match_key(p, abbr_after) for p in after}
    added = tuple(p for p in after if match_key(p, abbr_after) not in keys_before)
    removed = tuple(p for p in before if match_key(p, abbr_before) not in keys_after)
    return added, removed


def _shown(value: Any) -> Any:
    """Durations in whole minutes, as detection.yaml writes them."""
    return int(value / timedelta(minutes=1)) if isinstance(value, timedelta) else value


def _as_written(value: Any) -> Any:
    """A hazard setting as its file writes it: true/false, and "unset" for an optional field the
    file leaves out (no felt_authors: not felt; no incident_gap_minutes: detection.yaml's)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
