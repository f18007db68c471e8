"""Incidents as CSV for spreadsheets: one row per incident, or one row per timeline event.

Text in these files comes from posts and people, so a cell that a spreadsheet would run as a
formula is defused.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from siaga.timelines.report import IncidentReport, incident_row
from siaga.vocabulary import local_iso

CSV_COLUMNS = [
    "incident_id", "hazard", "level", "area_code", "area_name", "village", "kecamatan", "road", "state",
    "severity", "posts", "authors", "opened_at", "last_activity_at", "closed_at", "first_delivered_at",
    "channels", "acknowledged_at", "acknowledged_by", "alerts", "lon", "lat",
]
TIMELINE_COLUMNS = ["incident_id", "hazard", "area_name", "at", "kind", "what", "actor", "detail"]


def csv_safe(value: Any) -> Any:
    """Spreadsheets run a cell starting with = + - @ (or a tab or carriage return) as a formula;
    a leading quote makes it text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(reports: list[IncidentReport]) -> str:
    """One row per incident: what happened, where, and who was told when."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        writer.writerow({k: csv_safe(v) for k, v in incident_row(report).items()})
    return buf.getvalue()


def to_timeline_csv(reports: list[IncidentReport]) -> str:
    """One row per timeline event, for reading an incident's story line by line: `at` in ISO
    8601 with WITA's offset, `kind` for programs, `what` and `detail` in words (bilingual)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=TIMELINE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        inc = report.incident
        for line in report.lines:
            writer.writerow({k: csv_safe(v) for k, v in {
                "incident_id": inc.id, "hazard": inc.hazard, "area_name": inc.area_name, "at": local_iso(line.at),
                "kind": line.kind, "what": line.label, "actor": line.actor, "detail": line.text,
            }.items()})
    return buf.getvalue()
