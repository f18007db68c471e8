"""Tag one post with its hazards and places: the single code path behind `siaga tag` and the
pipeline's classify-and-geotag stage, so what an operator sees on the command line is what the
DAG does."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siaga.geotag import Geotagger, GeotagResult, default_geotagger
from siaga.hazards import HazardMatch, HazardSet


@dataclass(frozen=True)
class TagResult:
    hazards: list[HazardMatch]
    geotag: GeotagResult

    def to_contract(self, post_id: Any) -> dict[str, Any]:
        """The JSON object of the `siaga tag` contract."""
        return {
            "id": post_id,
            "hazards": [m.hazard for m in self.hazards],
            "places": [p.to_dict() for p in self.geotag.places],
            "in_region": self.geotag.in_region,
        }


class Tagger:
    def __init__(self, hazards: HazardSet, geotagger: Geotagger | None = None):
        self.hazards = hazards
        self.geotagger = geotagger or default_geotagger()

    def tag(self, text: str, lat: float | None = None, lon: float | None = None) -> TagResult:
        return TagResult(hazards=self.hazards.classify(text), geotag=self.geotagger.tag(text, lat=lat, lon=lon))
