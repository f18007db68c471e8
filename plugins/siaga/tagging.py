"""Tag posts with their hazards and places: the single code path behind `siaga tag` and the
pipeline's tag stage (`tag_pending`), so what an operator sees on the command line is what the
DAG stores."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from siaga.geotag import Geotagger, GeotagResult, Place, default_geotagger
from siaga.hazards import HazardMatch, HazardSet
from siaga.normalise import quick_fold

if TYPE_CHECKING:  # the database is imported by the pipeline's tag stage, not by `siaga tag`
    from siaga.store import Geotag

# Posts tagged per transaction: a crash loses at most one batch's work, never a post.
TAG_BATCH = 500


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

    def to_json(self, post_id: Any) -> str:
        """`json.dumps(self.to_contract(post_id), ensure_ascii=False)`, the line `siaga tag`
        writes, without building the dict: most posts name no place, and their line is mostly
        constant (tests/test_tag_fast_path.py holds the two equal)."""
        names = tuple(m.hazard for m in self.hazards)
        hazards = _HAZARD_LISTS.get(names)
        if hazards is None:
            hazards = _HAZARD_LISTS[names] = _encode(list(names))
        places = self.geotag.places
        return (
            f'{{"id": {str(post_id) if type(post_id) is int else _encode(post_id)}, "hazards": {hazards}, '
            f'"places": {_encode([p.to_dict() for p in places]) if places else "[]"}, '
            f'"in_region": {"true" if self.geotag.in_region else "false"}}}'
        )


_encode = json.JSONEncoder(ensure_ascii=False).encode
_HAZARD_LISTS: dict[tuple[str, ...], str] = {}  # hazard names -> their JSON list (a few dozen combinations)


class Tagger:
    def __init__(self, hazards: HazardSet, geotagger: Geotagger | None = None):
        self.hazards = hazards
        self.geotagger = geotagger or default_geotagger()

    def tag(self, text: str, lat: float | None = None, lon: float | None = None) -> TagResult:
        """Hazards and places of one post, its text folded once for both."""
        folded = quick_fold(text)
        return TagResult(hazards=self.hazards.classify(folded), geotag=self.geotagger.tag(folded, lat=lat, lon=lon))

    def tag_reference(self, text: str, lat: float | None = None, lon: float | None = None) -> TagResult:
        """`tag` the straightforward way (each matcher folds the text itself, the exact fold for
        hazards, every post through the whole hazard matcher): what the fast path is checked
        against (tests/test_tag_fast_path.py) and measured beside (benchmarks/bench_tag.py)."""
        return TagResult(hazards=self.hazards.classify(text, fast=False), geotag=self.geotagger.tag(text, lat=lat, lon=lon))


def tag_pending(tagger: Tagger, now: datetime, db_url: str | None = None) -> int:
    """Geotag and classify posts created by `now` and not yet tagged, storing their places and
    hazard matches (stamped with the lists' fingerprint), in batches, each batch its own
    transaction. Returns how many posts were tagged."""
    from sqlalchemy import select

    from siaga.store import HazardMatchRow, Post, session_scope, utcnow

    total = 0
    fingerprint = tagger.hazards.fingerprint()
    while True:
        with session_scope(db_url) as session:
            batch = session.scalars(
                select(Post).where(Post.tagged_at.is_(None), Post.created_at <= now).order_by(Post.id).limit(TAG_BATCH)
            ).all()
            for post in batch:
                result = tagger.tag(post.text, lat=post.lat, lon=post.lon)
                for place in result.geotag.places:
                    session.add(_geotag_row(post.id, place))
                for match in result.hazards:
                    session.add(
                        HazardMatchRow(
                            post_id=post.id,
                            hazard=match.hazard,
                            terms=list(match.terms),
                            severity_cues=list(match.severity_cues),
                            via_road=match.via_road,
                            lists_fingerprint=fingerprint,
                        )
                    )
                post.tagged_at = utcnow()
                post.in_region = result.geotag.in_region
        total += len(batch)
        if len(batch) < TAG_BATCH:
            return total


def _geotag_row(post_id: int, place: Place) -> Geotag:
    from siaga.store import Geotag

    return Geotag(
        post_id=post_id,
        kind=place.kind,
        name=place.name,
        village=place.village,
        district=place.district,
        code=place.code,
        lon=place.lon,
        lat=place.lat,
        confidence=place.confidence,
        span_start=place.span[0] if place.span else None,
        span_end=place.span[1] if place.span else None,
        reason=place.reason,
        low_confidence=place.low_confidence,
        in_region=place.in_region,
    )
