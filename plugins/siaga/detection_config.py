"""The detect run's settings (`DetectSettings`), read from config/detection.yaml.

How long a quiet incident stays open or how far apart two spikes may be and still be one event
are choices made with the agencies, not code: they live in config, next to routing.yaml, and are
checked against a JSON Schema. A wrong value is refused with `file:line:column: field: message`;
the detect run then goes on under the last good version of the file (`in_force`, as for a
wrong routing.yaml), never under settings nobody chose, and fails only when no version was
ever valid. A missing file or field means the defaults below.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from siaga import settings
from siaga.config_errors import ConfigError, Document, document_of, present, read_document, schema_problems

if TYPE_CHECKING:  # the database is needed only by `in_force`, which imports it when called
    from sqlalchemy.orm import Session

FILE_NAME = "detection.yaml"

_WEEK_MINUTES = 7 * 24 * 60
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # whole 5-minute buckets (spikes.BUCKET); every run reads the lookback's posts again
        "lookback_minutes": {"type": "integer", "minimum": 5, "maximum": 24 * 60, "multipleOf": 5},
        "baseline_days": {"type": "integer", "minimum": 1, "maximum": 365},
        "incident_gap_minutes": {"type": "integer", "minimum": 5, "maximum": _WEEK_MINUTES},
        "quiet_period_minutes": {"type": "integer", "minimum": 5, "maximum": _WEEK_MINUTES},
        "reopen_window_minutes": {"type": "integer", "minimum": 0, "maximum": _WEEK_MINUTES},
    },
}

# YAML field -> DetectSettings field, for the durations written in minutes
_MINUTES = {
    "lookback_minutes": "lookback",
    "incident_gap_minutes": "incident_gap",
    "quiet_period_minutes": "quiet_period",
    "reopen_window_minutes": "reopen_window",
}


def minutes_field(name: str) -> str:
    """The YAML field of a DetectSettings field ("incident_gap" -> "incident_gap_minutes")."""
    return next((key for key, field in _MINUTES.items() if field == name), name)


class DetectionConfigError(ConfigError):
    """The detection settings file is wrong; the message names the file, line, column and field."""


@dataclass(frozen=True)
class DetectSettings:
    """What the detect run needs besides the hazard lists (see config/detection.yaml)."""

    lookback: timedelta = timedelta(hours=3)  # windows ending this far back are evaluated
    baseline_days: int = 28  # history the baseline learns from
    incident_gap: timedelta = timedelta(hours=2)  # a spike joins an incident active this recently
    quiet_period: timedelta = timedelta(hours=3)  # an incident this quiet resolves itself
    reopen_window: timedelta = timedelta(hours=6)  # a spike this soon after auto-resolution reopens

    @classmethod
    def from_dict(cls, data: Any, source: str = "<detection>", text: str | None = None) -> DetectSettings:
        """Settings from parsed YAML (None, as from an empty file, means every default)."""
        return cls.from_document(document_of(data, source, text, DetectionConfigError))

    @classmethod
    def from_document(cls, doc: Document) -> DetectSettings:
        """Settings from a file read with positions; every error at once."""
        data = {} if doc.data is None else doc.data
        problems = schema_problems(replace(doc, data=data), jsonschema.Draft202012Validator(SCHEMA))
        if problems:
            raise DetectionConfigError(problems)
        given: dict[str, Any] = {field: timedelta(minutes=data[key]) for key, field in _MINUTES.items() if key in data}
        if "baseline_days" in data:
            given["baseline_days"] = int(data["baseline_days"])
        return cls(**given)


def in_force(session: Session, path: str | Path | None = None) -> DetectSettings:
    """`load`, or the last good detection.yaml when the file is refused (`last_good`): the
    detect run goes on under settings that were chosen and checked, with the refusal logged."""
    from siaga import last_good

    path = Path(path) if path is not None else settings.config_dir() / FILE_NAME
    if not present(path):
        return DetectSettings()
    return last_good.in_force(session, path, DetectSettings.from_document, DetectionConfigError)


def load(path: str | Path | None = None) -> DetectSettings:
    """The settings in `path` (default: detection.yaml in the config folder); the defaults when
    the file does not exist. Raises DetectionConfigError when it cannot be read or is wrong."""
    path = Path(path) if path is not None else settings.config_dir() / FILE_NAME
    if not present(path):
        return DetectSettings()
    return DetectSettings.from_document(read_document(path, DetectionConfigError))
