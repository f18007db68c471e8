"""The shapes the maps and CAP areas are drawn from: Buleleng's villages and kecamatan by
Kemendagri code, the villages each hand-kept road passes through, and each road's line: the real
one from an OpenStreetMap import when there is one (`osm_roads.py`), else the hand-kept
corridor through its villages, which is only approximate and is drawn and labelled so.

Read through `siaga.geodata`, the one reader of the geodata files, so maps and exports show the
same village and kecamatan polygons the geotagger places posts in; the project's own polygons,
never a tile server, so they work offline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from siaga import settings
from siaga.geodata import DISTRICTS_FILE, ROADS_FILE, VILLAGES_FILE, District, Road, Village, load_districts, load_road_yaml, load_roads, load_villages
from siaga.normalise import key


@dataclass(frozen=True)
class Places:
    villages: dict[str, Village]  # by Kemendagri code
    districts: dict[str, District]  # by Kemendagri code
    road_villages: dict[str, tuple[str, ...]]  # road id -> codes of the villages it passes through
    roads: dict[str, Road] = field(default_factory=dict)  # road id -> the road as the geotagger knows it (OSM or hand-kept)

    def road_line(self, road_id: str, name: str | None = None) -> Road | None:
        """The road to draw for an incident on road `road_id` (named `name`): an OSM road of the
        same name when an import has one (it replaces the hand-kept trace), else the road itself."""
        road = self.roads.get(road_id)
        names = {key(n) for n in ((road.names if road else ()) + ((name,) if name else ())) if n}
        if road is None or road.approximate:
            exact = next((r for r in self.roads.values() if not r.approximate and names & {key(n) for n in r.names}), None)
            if exact is not None:
                return exact
        return road

    def district_named(self, name: str | None) -> District | None:
        """The kecamatan called `name`, in any case (incidents store their kecamatan by name)."""
        if not name:
            return None
        return next((d for d in self.districts.values() if d.name.lower() == name.lower()), None)

    def area(self, village_codes: Iterable[str], district_codes: Iterable[str]) -> BaseGeometry | None:
        """One geometry for the given villages and kecamatan (None when there are none)."""
        parts = [self.villages[c].polygon for c in village_codes] + [self.districts[c].polygon for c in district_codes]
        return unary_union(parts) if parts else None


@lru_cache(maxsize=2)
def load_places(directory: Path | None = None) -> Places:
    """The places of `directory` (default: `settings.geodata_dir()`), read once per process:
    the files change only with a release."""
    directory = directory or settings.geodata_dir()
    villages = load_villages(directory / VILLAGES_FILE)
    districts = load_districts(directory / DISTRICTS_FILE)
    # Only the hand-kept roads.yaml names the villages a road passes through (an OSM import
    # brings lines, not villages). The place keys decide whether a road name is generic, which
    # matters to the geotagger's matching, not to a map: none are given.
    roads = load_road_yaml(directory / ROADS_FILE, villages, place_keys=set())
    return Places(
        villages={v.code: v for v in villages},
        districts={d.code: d for d in districts.values()},
        road_villages={r.id: r.village_codes for r in roads},
        roads={r.id: r for r in load_roads(directory, villages, place_keys=set()) + roads},
    )
