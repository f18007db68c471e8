"""The export formats by name, as `siaga export --format` and the pages' download links offer
them: their media types and file name endings, and `render`, which writes any of them.

The writers (and shapely, SQLAlchemy) are imported when something is rendered, not with this
module: the `siaga` command lists the format names on every start, and `siaga tag` should not
pay a second for exports it never writes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from siaga.hazard_config import Hazard
    from siaga.timelines.places import Places
    from siaga.timelines.report import IncidentReport


@dataclass(frozen=True)
class ExportFormat:
    media_type: str
    extension: str


FORMATS = {
    "csv": ExportFormat("text/csv", "csv"),
    "timeline-csv": ExportFormat("text/csv", "timeline.csv"),
    "geojson": ExportFormat("application/geo+json", "geojson"),
    "cap": ExportFormat("application/cap+xml", "cap.xml"),
}


def render(fmt: str, reports: list[IncidentReport], hazards: Mapping[str, Hazard], places: Places) -> str:
    """`reports` written as `fmt`. CAP of exactly one report is a standalone alert; of any other
    number, an Atom feed of alerts."""
    if fmt == "csv":
        from siaga.timelines.csv_export import to_csv

        return to_csv(reports)
    if fmt == "timeline-csv":
        from siaga.timelines.csv_export import to_timeline_csv

        return to_timeline_csv(reports)
    if fmt == "geojson":
        from siaga.timelines.geojson import to_geojson

        return json.dumps(to_geojson(reports, places), ensure_ascii=False, indent=1)
    if fmt == "cap":
        from siaga.timelines.cap import cap_feed, cap_xml

        return cap_xml(reports[0], hazards, places) if len(reports) == 1 else cap_feed(reports, hazards, places)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
