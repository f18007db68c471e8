"""The index of places the geotagger matches against: Buleleng's villages and kecamatan with their
polygons, roads, operator aliases, and the names of places elsewhere in Indonesia, built from
what `geodata.py` reads (the pipeline and `siaga tag` build it once per process, through
`geotag.default_geotagger`).

The matcher (`geotag.py`) needs more than a list of names: it needs to know which names are also
everyday words, which ones exist elsewhere (and under which parents), where each place lies, and
which villages border each other. All of that is decided here, at load time, so that tagging a
post does no per-name work.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from siaga.geodata import (
    DISTRICTS_FILE,
    Geometry,
    VILLAGES_FILE,
    Alias,
    District,
    OutsidePlace,
    Road,
    Village,
    load_alias_config,
    load_dictionary,
    load_districts,
    load_outside_names,
    load_roads,
    load_villages,
    empty_alias_config,
    geometry_state,
)
from siaga.normalise import key, spaced
from siaga.vocabulary import PROVINCE_NAME, REGENCY_NAME

if TYPE_CHECKING:  # shapely is imported where geometry is built or used (see geodata.Geometry)
    from shapely import STRtree
    from shapely.geometry.base import BaseGeometry


@dataclass
class Gazetteer:
    villages: list[Village]
    districts: dict[str, District]
    regency_polygon: BaseGeometry = Geometry()  # type: ignore[assignment]
    roads: list[Road]
    aliases: list[Alias]
    outside: list[OutsidePlace]
    namesakes: dict[str, list[OutsidePlace]]  # key(name) of a Buleleng place -> places elsewhere
    common_words: frozenset[str]  # keys of Buleleng names that are everyday words
    shared_names: frozenset[str]  # keys of Buleleng names that are well known elsewhere too
    dictionary: frozenset[str]
    # everyday-word names whose everyday sense never follows "di/ke/dari": a preposition places them
    preposition_enough: frozenset[str] = frozenset()
    national: bool = False
    _tree: STRtree | None = field(init=False, repr=False, default=None)
    _by_code: dict[str, Village] = field(init=False, repr=False)
    _adjacent: dict[str, tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_code = {v.code: v for v in self.villages}
        self._adjacent = self._build_adjacency()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for the matcher cache (`matcher_cache`): the 91.6k outside places as one
        packed string (unpickling as many objects would take most of a second), geometry as
        WKB read back when used, the tree rebuilt when a point is placed."""
        state = geometry_state(self, "regency_polygon")
        state["_tree"] = None
        state["outside"] = PackedPlaces.pack(self.outside) or list(self.outside)
        return state

    @property
    def tree(self) -> STRtree:
        """The villages' polygons, indexed for point-in-polygon."""
        if self._tree is None:
            from shapely import STRtree

            self._tree = STRtree([v.polygon for v in self.villages])
        return self._tree

    def _build_adjacency(self) -> dict[str, tuple[str, ...]]:
        """Villages whose polygons touch or overlap (a small buffer absorbs digitising slivers)."""
        out: dict[str, list[str]] = defaultdict(list)
        for i, v in enumerate(self.villages):
            for j in self.tree.query(v.polygon.buffer(0.0005), predicate="intersects"):
                if j != i:
                    out[v.code].append(self.villages[j].code)
        return {code: tuple(sorted(codes)) for code, codes in out.items()}

    def village(self, code: str) -> Village:
        return self._by_code[code]

    def villages_named(self, name: str) -> list[Village]:
        k = key(name)
        return [v for v in self.villages if key(v.name) == k or any(key(a) == k for a in v.alt_names)]

    def adjacent_villages(self, code: str) -> list[str]:
        """Kemendagri codes of the villages bordering `code` (sorted)."""
        if code not in self._by_code:
            raise KeyError(f"unknown village code {code!r}")
        return list(self._adjacent.get(code, ()))

    def village_at(self, lon: float, lat: float) -> Village | None:
        """The village whose polygon holds the point, or None outside the regency."""
        from shapely.geometry import Point

        pt = Point(lon, lat)
        for i in self.tree.query(pt, predicate="intersects"):
            return self.villages[int(i)]
        return None

    def contains(self, lon: float, lat: float) -> bool:
        return self.village_at(lon, lat) is not None


class PackedPlaces(Sequence):
    """Outside places kept as one string, unpacked into `OutsidePlace`s on first use: the
    cached gazetteer's `outside` list, which tagging never reads (its names are already in the
    automata)."""

    _FIELD, _RECORD, _NONE = "\x1f", "\x1e", "\x00"

    def __init__(self, packed: str, count: int) -> None:
        self._packed, self._count = packed, count
        self._places: list[OutsidePlace] | None = None

    @classmethod
    def pack(cls, places: Sequence[OutsidePlace]) -> "PackedPlaces | None":
        """None when a name holds one of the separators (then the places are pickled as they are)."""
        if isinstance(places, PackedPlaces):
            return places
        rows = [cls.pack_one(o) for o in places]
        if any(r is None for r in rows):
            return None
        return cls(cls._RECORD.join(rows), len(rows))  # type: ignore[arg-type]

    @classmethod
    def pack_one(cls, o: OutsidePlace) -> str | None:
        values = (o.level, o.name, o.code, o.district, o.regency, o.province)
        if any(v is not None and (not isinstance(v, str) or any(c in v for c in "\x00\x1d\x1e\x1f")) for v in values):
            return None
        return cls._FIELD.join(cls._NONE if v is None else v for v in values)

    @classmethod
    def unpack_one(cls, row: str) -> OutsidePlace:
        values = [None if v == cls._NONE else v for v in row.split(cls._FIELD)]
        return OutsidePlace(*values)  # type: ignore[arg-type]

    def _unpacked(self) -> list[OutsidePlace]:
        if self._places is None:
            rows = self._packed.split(self._RECORD) if self._count else []
            self._places = [self.unpack_one(row) for row in rows]
        return self._places

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self._unpacked()[index]

    def __iter__(self) -> Iterator[OutsidePlace]:
        return iter(self._unpacked())

    def __getstate__(self) -> tuple[str, int]:
        return self._packed, self._count

    def __setstate__(self, state: tuple[str, int]) -> None:
        self._packed, self._count = state
        self._places = None


# --------------------------------------------------------------------------------- loading


def load_gazetteer(geodata_dir: Path, aliases_path: Path | None = None, national: bool = False) -> Gazetteer:
    """Everything the matcher needs from `geodata_dir` (and the operator alias file)."""
    geodata_dir = Path(geodata_dir)
    villages = load_villages(geodata_dir / VILLAGES_FILE)
    districts = load_districts(geodata_dir / DISTRICTS_FILE)
    from shapely.ops import unary_union

    regency_polygon = unary_union([d.polygon for d in districts.values()])
    config = load_alias_config(aliases_path, villages, districts) if aliases_path else empty_alias_config()
    dictionary = load_dictionary()
    buleleng_keys = _buleleng_keys(villages, districts)
    outside, namesakes = load_outside_names(geodata_dir, buleleng_keys, national=national)
    outside.extend(config["outside"])
    common = frozenset(
        k for k in buleleng_keys if _is_dictionary_phrase(k, villages, dictionary)
    ) | config["common_words"]
    shared = frozenset(
        k for k, places in namesakes.items() if _well_known_elsewhere(places)
    ) | config["shared_names"]
    roads = load_roads(geodata_dir, villages, buleleng_keys | {key(a.name) for a in config["aliases"]})
    return Gazetteer(
        villages=villages,
        districts=districts,
        regency_polygon=regency_polygon,
        roads=roads,
        aliases=config["aliases"],
        outside=outside,
        namesakes=namesakes,
        common_words=common,
        shared_names=shared,
        dictionary=dictionary,
        preposition_enough=config["preposition_enough"],
        national=national,
    )


def is_common_word(text: str, dictionary: frozenset[str]) -> bool:
    """True when every word of `text` is an Indonesian word (or a plain suffixed form of one), so
    that seeing it in a post says nothing by itself about a place."""
    words = spaced(text).split()
    return bool(words) and all(_word_in_dictionary(w, dictionary) for w in words)


def _word_in_dictionary(word: str, dictionary: frozenset[str]) -> bool:
    if word in dictionary:
        return True
    for suffix in ("an", "kan", "nya", "i"):
        if word.endswith(suffix) and word[: -len(suffix)] in dictionary and len(word) - len(suffix) >= 3:
            return True
    return False


def _buleleng_keys(villages: list[Village], districts: dict[str, District]) -> set[str]:
    keys = {key(REGENCY_NAME)} | {key(d) for d in districts}
    for v in villages:
        keys.add(key(v.name))
        keys.update(key(a) for a in v.alt_names)
    return keys


def _is_dictionary_phrase(k: str, villages: list[Village], dictionary: frozenset[str]) -> bool:
    for v in villages:
        for n in (v.name, *v.alt_names):
            if key(n) == k:
                return all(w in dictionary for w in spaced(n).split())
    return k in dictionary


def _well_known_elsewhere(places: list[OutsidePlace]) -> bool:
    """A namesake matters when it is in Bali, is a kecamatan or larger, or the name is common."""
    return (
        any(p.province == PROVINCE_NAME for p in places)
        or any(p.level in ("district", "regency", "province") for p in places)
        or len(places) >= 5
    )
