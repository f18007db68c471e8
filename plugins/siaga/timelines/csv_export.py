"""Incidents as CSV for spreadsheets: one row per incident, or one row per timeline event.

Text in these files comes from posts, people and OpenStreetMap imports, so a cell that a
spreadsheet would run as a formula is defused, and rows end in CR LF (RFC 4180): Python's csv
module quotes a field holding any character of the line terminator, so with CR LF a field with a
lone carriage return is quoted too (with "\n" alone it was written bare, and a spreadsheet started
a new row there, past the formula guard).
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


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")  # OWASP's list, and LF, which some readers trim


def csv_safe(value: Any) -> Any:
    """Spreadsheets run a cell starting with = + - @ (or a tab or carriage return) as a formula;
    a leading quote makes it text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _writer(buf: io.StringIO, columns: list[str]) -> csv.DictWriter:
    """The one dialect of every CSV export: RFC 4180's CR LF, so CR and LF inside a field are
    both quoted."""
    return csv.DictWriter(buf, fieldnames=columns, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)


def to_csv(reports: list[IncidentReport]) -> str:
    """One row per incident: what happened, where, and who was told when."""
    buf = io.StringIO()
    writer = _writer(buf, CSV_COLUMNS)
    writer.writeheader()
    for report in reports:
        writer.writerow({k: csv_safe(v) for k, v in incident_row(report).items()})
    return buf.getvalue()


def to_timeline_csv(reports: list[IncidentReport]) -> str:
    """One row per timeline event, for reading an incident's story line by line: `at` in ISO
    8601 with WITA's offset, `kind` for programs, `what` and `detail` in words (bilingual)."""
    buf = io.StringIO()
    writer = _writer(buf, TIMELINE_COLUMNS)
    writer.writeheader()
    for report in reports:
        inc = report.incident
        for line in report.lines:
            writer.writerow({k: csv_safe(v) for k, v in {
                "incident_id": inc.id, "hazard": inc.hazard, "area_name": inc.area_name, "at": local_iso(line.at),
                "kind": line.kind, "what": line.label, "actor": line.actor, "detail": line.text,
            }.items()})
    return buf.getvalue()
