"""Incidents as CSV for spreadsheets: one row per incident, or one row per timeline event.

Text in these files comes from posts and people, so a cell that a spreadsheet would run as a
formula is defused.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from siaga.timelines.report import IncidentReport, incident_row, utc_iso

CSV_COLUMNS = [
    "incident_id", "hazard", "level", "area_code", "area_name", "village", "kecamatan", "road", "state",
    "severity", "posts", "authors", "opened_at", "last_activity_at", "closed_at", "first_delivered_at",
    "channels", "acknowledged_at", "acknowledged_by", "alerts", "lon", "lat",
]
TIMELINE_COLUMNS = ["incident_id", "hazard", "area_name", "at", "kind", "actor", "detail"]


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
    """One row per timeline event, for reading an incident's story line by line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=TIMELINE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        inc = report.incident
        for e in report.events:
            writer.writerow({k: csv_safe(v) for k, v in {
                "incident_id": inc.id, "hazard": inc.hazard, "area_name": inc.area_name, "at": utc_iso(e.at),
                "kind": e.kind, "actor": e.actor, "detail": json.dumps(e.detail or {}, ensure_ascii=False, sort_keys=True),
            }.items()})
    return buf.getvalue()
