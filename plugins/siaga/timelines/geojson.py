"""Incidents as GeoJSON for a GIS: each incident as its area's polygon, its evidence posts as
points."""
from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry import mapping

from siaga.links import safe_url
from siaga.timelines.places import Places
from siaga.timelines.report import IncidentReport, incident_row
from siaga.vocabulary import local_iso


def rfc7946_rings(geometry: Any) -> Any:
    """`geometry` with each polygon's outer ring counterclockwise and its holes clockwise, as RFC
    7946 (section 3.1.6) asks: the boundaries come as OpenStreetMap drew them, mostly clockwise,
    and a tool that follows the RFC (d3-geo, for one) reads a clockwise ring as the whole globe
    outside the village."""
    return shapely.orient_polygons(geometry, exterior_cw=False)


def to_geojson(reports: list[IncidentReport], places: Places, with_evidence: bool = True) -> dict[str, Any]:
    """A FeatureCollection: per incident, its affected area simplified to about 30 m (else its
    point, else no geometry) with the CSV row's fields (less lon/lat) and the affected villages'
    names as properties; then, unless `with_evidence` is False, every post the incident counts
    (its `posts`), as a point where it has coordinates and without geometry where it has none.
    Times are ISO 8601 with WITA's offset. Post text is kept verbatim: it is data here, and
    whoever displays it must escape it; a post's link leaves only when it is http(s) (`safe_url`), as
    GIS tools turn any URL property into a clickable link."""
    features = []
    for report in reports:
        inc = report.incident
        area = places.area(report.village_codes, report.district_codes)
        if area is not None and not area.is_empty:
            geometry = mapping(rfc7946_rings(area.simplify(0.0003, preserve_topology=True)))
        elif inc.lon is not None and inc.lat is not None:
            geometry = {"type": "Point", "coordinates": [inc.lon, inc.lat]}
        else:
            geometry = None
        props = {k: v for k, v in incident_row(report).items() if k not in ("lon", "lat")}
        props["feature"] = "incident"
        props["villages"] = [places.villages[c].name for c in report.village_codes]
        features.append({"type": "Feature", "id": f"incident-{inc.id}", "geometry": geometry, "properties": props})
        if not with_evidence:
            continue
        for post in report.posts:
            placed = post.lon is not None and post.lat is not None
            features.append({
                "type": "Feature", "id": f"incident-{inc.id}-post-{post.id}",
                "geometry": {"type": "Point", "coordinates": [post.lon, post.lat]} if placed else None,
                "properties": {"feature": "evidence", "incident_id": inc.id, "post_id": post.id, "source": post.source,
                               "created_at": local_iso(post.created_at), "text": post.text, "url": safe_url(post.url), "places": post.places},
            })
    return {"type": "FeatureCollection", "features": features}
