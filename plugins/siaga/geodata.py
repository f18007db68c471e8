"""Reading the geodata files: Buleleng's village and kecamatan polygons, the national list of
administrative names, the hand-kept and OpenStreetMap roads, and the operators' aliases.

One home for every file in `geodata/` and `config/aliases.yaml` (plus PySastrawi's list of
Indonesian root words), so the geotagger's index (`gazetteer.py`) and the managers' maps
(`timelines`) read the same places the same way. The checks here name the file and the feature,
line or item that is wrong.
"""
from __future__ import annotations

import csv
import gzip
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator
from sys import intern

from siaga.config_errors import ConfigError, read_yaml, schema_problems
from siaga.normalise import key, spaced
from siaga.vocabulary import PROVINCE_NAME, REGENCY_CODE, REGENCY_NAME

if TYPE_CHECKING:  # shapely is imported where geometry is built or used, not by every tagger start
    from shapely.geometry.base import BaseGeometry

VILLAGES_FILE = "buleleng_villages.geojson"
DISTRICTS_FILE = "buleleng_districts.geojson"
BALI_FILE = "bali_admin_gazetteer.csv"
NATIONAL_FILE = "indonesia_admin_names.csv.gz"
ROADS_FILE = "roads.yaml"
OSM_ROADS_FILE = "roads_osm.geojson"

# Sastrawi ships the Indonesian root-word list; a place name that is a dictionary word ("bila",
# "bukti", "tembok") needs context before it counts as a place.
_SASTRAWI_WORDS = "Sastrawi/Stemmer/data/kata-dasar.txt"

# Name prefixes that say what level a name is, stripped to get the name people actually write.
_ADMIN_PREFIXES = (
    "kabupaten administrasi ",
    "kota administrasi ",
    "kabupaten ",
    "kota ",
    "daerah khusus ibukota ",
    "daerah istimewa ",
)


def short_name(name: str) -> str:
    """'Kabupaten Badung' -> 'Badung', 'Daerah Khusus Ibukota Jakarta' -> 'Jakarta'."""
    folded = spaced(name)
    for prefix in _ADMIN_PREFIXES:
        if folded.startswith(prefix):
            return " ".join(name.split()[len(prefix.split()):]) or name
    return name


class Geometry:
    """A shapely geometry field that can be pickled as WKB and is read back only when used.

    The geotagger is loaded from the matcher cache at every start, and importing shapely (with
    numpy) would be most of that start; a post without coordinates never needs a polygon."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.slot)  # no class-level default: the dataclass field is required
        value = obj.__dict__[self.slot]
        if type(value) is bytes:
            from shapely import wkb

            value = obj.__dict__[self.slot] = wkb.loads(value)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value


def geometry_state(obj: Any, *names: str) -> dict[str, Any]:
    """`obj`'s pickled state with its geometry fields as WKB."""
    state = dict(obj.__dict__)
    for name in names:
        value = state.get("_" + name)
        if value is not None and type(value) is not bytes:
            state["_" + name] = value.wkb
    return state


@dataclass(frozen=True, eq=False)
class Village:
    name: str
    district: str
    code: str  # Kemendagri, e.g. 51.08.01.2001
    code_bps: str
    type: str  # desa | kelurahan
    alt_names: tuple[str, ...]
    lon: float
    lat: float
    polygon: BaseGeometry = Geometry()  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        return geometry_state(self, "polygon")


@dataclass(frozen=True, eq=False)
class District:
    name: str
    code: str
    code_bps: str
    lon: float
    lat: float
    polygon: BaseGeometry = Geometry()  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        return geometry_state(self, "polygon")


@dataclass(frozen=True, eq=False)
class Road:
    id: str
    name: str
    names: tuple[str, ...]  # every spelling people write, without "Jl."/"Jalan" prefixes
    village_codes: tuple[str, ...]
    highway: str
    ref: str | None
    generic: bool  # a street name found in many towns ("Ahmad Yani"): needs Buleleng context
    approximate: bool
    source: str
    line: BaseGeometry | None = Geometry()  # type: ignore[assignment]

    @cached_property
    def point(self) -> tuple[float, float] | None:
        """The middle of the road (where a road place is put), kept in the pickled state."""
        from shapely.geometry import Point

        if self.line is None or self.line.is_empty:
            return None
        if isinstance(self.line, Point):
            return (self.line.x, self.line.y)
        p = self.line.interpolate(0.5, normalized=True)
        return (p.x, p.y)

    def __getstate__(self) -> dict[str, Any]:
        state = geometry_state(self, "line")
        state["point"] = self.point
        return state


@dataclass(frozen=True, eq=False)
class Alias:
    """An informal name or landmark an operator mapped to a Buleleng place."""

    name: str
    variants: tuple[str, ...]
    target: str  # village | district | regency
    village_code: str | None
    district: str | None
    lon: float | None
    lat: float | None
    confidence: float
    note: str


@dataclass(frozen=True, eq=False)
class OutsidePlace:
    """A place outside Buleleng regency (from the national list or the operator's list)."""

    level: str  # province | regency | district | village | abroad
    name: str
    code: str | None
    district: str | None
    regency: str | None
    province: str | None

    @cached_property
    def where(self) -> str:
        """'Kerobokan, Kuta Utara, Kabupaten Badung, Bali' (the place and its parents). Kept:
        the geotagger gives it as the reason of every post that names a place elsewhere."""
        return ", ".join(p for p in (self.name, self.district, self.regency, self.province) if p)

    @cached_property
    def own_keys(self) -> frozenset[str]:
        """Keys a post may use for this place itself ('kotadenpasar', 'denpasar')."""
        return frozenset((key(self.name), key(short_name(self.name))))

    @cached_property
    def parent_keys(self) -> frozenset[str]:
        # The province is left out: Buleleng is in Bali too, so "Bali" says nothing.
        names = [n for n in (self.district, self.regency, self.province) if n and n != PROVINCE_NAME]
        return frozenset(key(short_name(n)) for n in names) | frozenset(key(n) for n in names)


def _read_geojson(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read GeoJSON: {exc}") from exc
    feats = data.get("features")
    if not isinstance(feats, list):
        raise ValueError(f"{path}: not a FeatureCollection (no 'features' list)")
    return feats


def load_villages(path: Path) -> list[Village]:
    from shapely.geometry import shape

    out = []
    for i, feat in enumerate(_read_geojson(path)):
        p = feat.get("properties") or {}
        for field_name in ("name", "kecamatan", "code_kemendagri"):
            if not p.get(field_name):
                raise ValueError(f"{path}: feature {i}: missing property {field_name!r}")
        poly = shape(feat["geometry"])
        rp = poly.representative_point()
        out.append(
            Village(
                name=p["name"],
                district=p["kecamatan"],
                code=p["code_kemendagri"],
                code_bps=p.get("code_bps", ""),
                type=p.get("type", ""),
                alt_names=tuple(a for a in p.get("alt_names") or () if a),
                lon=round(rp.x, 6),
                lat=round(rp.y, 6),
                polygon=poly,
            )
        )
    return out


def load_districts(path: Path) -> dict[str, District]:
    from shapely.geometry import shape

    out = {}
    for i, feat in enumerate(_read_geojson(path)):
        p = feat.get("properties") or {}
        if not p.get("name") or not p.get("code_kemendagri"):
            raise ValueError(f"{path}: feature {i}: missing 'name' or 'code_kemendagri'")
        poly = shape(feat["geometry"])
        rp = poly.representative_point()
        out[p["name"]] = District(p["name"], p["code_kemendagri"], p.get("code_bps", ""), round(rp.x, 6), round(rp.y, 6), poly)
    return out


def dictionary_file() -> Path | None:
    """Where PySastrawi's root-word list is, found without importing the package (the matcher
    cache takes it into its key), or None if the package is missing."""
    import importlib.util

    spec = importlib.util.find_spec("Sastrawi")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]).parent / _SASTRAWI_WORDS if locations else None


def load_dictionary() -> frozenset[str]:
    """Indonesian root words (PySastrawi's list), or an empty set if the package is missing."""
    try:
        import Sastrawi  # noqa: PLC0415

        path = Path(Sastrawi.__file__).parent.parent / _SASTRAWI_WORDS
        return frozenset(path.read_text(encoding="utf-8").split())
    except (ImportError, OSError):
        return frozenset()


def _open_csv(path: Path) -> Iterator[dict]:
    if not path.exists():
        raise ValueError(f"{path}: missing (copy it from the shared geodata, see geodata/SOURCES.md)")
    raw = gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix == ".gz" else open(path, encoding="utf-8", newline="")
    with raw as handle:
        reader = csv.DictReader(handle)
        missing = {"level", "code", "name"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: header lacks {sorted(missing)}")
        for lineno, row in enumerate(reader, start=2):
            if not row.get("name") or not row.get("level"):
                raise ValueError(f"{path}: line {lineno}: empty name or level")
            yield row


def _interned(value: str | None) -> str | None:
    return intern(value) if value else None


def load_outside_names(
    geodata_dir: Path, buleleng_keys: set[str], national: bool
) -> tuple[list[OutsidePlace], dict[str, list[OutsidePlace]]]:
    """Places outside Buleleng, and, for each Buleleng name, its namesakes elsewhere.

    Always: all provinces and regencies of Indonesia and every Bali place (so posts about
    Denpasar or Surabaya are recognised). With `national`, also every kecamatan and village of
    Indonesia (the 91.6k-name scale)."""
    outside: list[OutsidePlace] = []
    namesakes: dict[str, list[OutsidePlace]] = defaultdict(list)
    for row in _open_csv(Path(geodata_dir) / NATIONAL_FILE):
        code = row["code"]
        if code == REGENCY_CODE or code.startswith(REGENCY_CODE + "."):
            continue
        # One string object per distinct level, kecamatan, regency and province name (sys.intern),
        # not one per row: the csv module makes a new string for every field, and over the
        # national list's 91.6k rows those repeats were ~20 MB of a detect task that builds its
        # matchers (issue 14).
        level = intern(row["level"])
        place = OutsidePlace(
            level=level,
            name=row["name"],
            code=code,
            district=_interned(row.get("district")),
            regency=_interned(row.get("regency")),
            province=_interned(row.get("province")),
        )
        k = key(row["name"])
        if k in buleleng_keys:
            namesakes[k].append(place)
        if national or level in ("province", "regency") or code.startswith("51."):
            outside.append(place)
    return outside, dict(namesakes)


# ------------------------------------------------------------------------------ aliases


def empty_alias_config() -> dict:
    return {"aliases": [], "outside": [], "common_words": frozenset(), "shared_names": frozenset(), "preposition_enough": frozenset()}


_NAMES = {"type": "array", "items": {"type": ["string", "number"]}}
ALIAS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "landmarks": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "variants": _NAMES,
                    "village": {"type": "string"},
                    "district": {"type": "string"},
                    "regency": {"type": "string"},
                    "lon": {"type": "number", "minimum": -180, "maximum": 180},
                    "lat": {"type": "number", "minimum": -90, "maximum": 90},
                    "confidence": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                    "note": {"type": "string"},
                },
            },
        },
        "outside": {"type": "object", "additionalProperties": _NAMES},
        "common_words": _NAMES,
        "shared_names": _NAMES,
        "preposition_enough": _NAMES,
    },
}


def load_alias_config(path: Path, villages: list[Village], districts: dict[str, District]) -> dict:
    """Read config/aliases.yaml: landmarks/informal names, outside places, word lists. Every
    problem is refused at its line (ConfigError, `file:line:column: field: message`)."""
    doc = read_yaml(path)
    doc.data = {} if doc.data is None else doc.data
    problems = schema_problems(doc, ALIAS_SCHEMA)
    if problems:
        raise ConfigError(problems)
    data = doc.data
    aliases = []
    for i, item in enumerate(data.get("landmarks") or []):
        try:
            aliases.append(_parse_alias(i, item, villages, districts))
        except _FieldError as exc:
            problems.append(doc.at(exc.path, exc.message))
    outside = []
    for where, names in (data.get("outside") or {}).items():
        for n in names:
            outside.append(OutsidePlace("abroad" if where == "abroad" else "regency", str(n), None, None, None if where == "abroad" else str(where), None))
    common = frozenset(key(str(w)) for w in data.get("common_words") or [])
    shared = frozenset(key(str(w)) for w in data.get("shared_names") or [])
    enough = frozenset(key(str(w)) for w in data.get("preposition_enough") or [])
    for i, word in enumerate(data.get("preposition_enough") or []):
        if key(str(word)) not in common:
            problems.append(doc.at(("preposition_enough", i), f"{word!r} must also be listed in common_words"))
    if problems:
        raise ConfigError(problems)
    return {"aliases": aliases, "outside": outside, "common_words": common, "shared_names": shared, "preposition_enough": enough}


class _FieldError(ValueError):
    """A value that is wrong where it stands; the loader places it at its line."""

    def __init__(self, path: tuple, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def _parse_alias(i: int, item: dict, villages: list[Village], districts: dict[str, District]) -> Alias:
    at = ("landmarks", i)
    village_name, district = item.get("village"), item.get("district")
    village_code = None
    if item.get("regency"):
        if key(str(item["regency"])) != key(REGENCY_NAME):
            raise _FieldError(at + ("regency",), f"regency must be {REGENCY_NAME!r}")
        target = "regency"
    elif village_name:
        matches = [v for v in villages if key(v.name) == key(village_name) and (not district or v.district == district)]
        if len(matches) != 1:
            raise _FieldError(at + ("village",), f"village {village_name!r} (district {district!r}) is not exactly one Buleleng village")
        village_code, district, target = matches[0].code, matches[0].district, "village"
    elif district:
        if district not in districts:
            raise _FieldError(at + ("district",), f"unknown kecamatan {district!r}; one of {sorted(districts)}")
        target = "district"
    else:
        raise _FieldError(at, f"{item['name']!r}: give 'village' (+ 'district'), 'district' or 'regency'")
    lon, lat = item.get("lon"), item.get("lat")
    if (lon is None) != (lat is None):
        raise _FieldError(at + ("lon" if lon is not None else "lat",), "give both lon and lat or neither")
    if lon is not None:
        _check_landmark_point(at, float(lon), float(lat), villages, village_code, district, districts)
    conf = float(item.get("confidence", 0.85))
    variants = tuple(str(v) for v in item.get("variants") or [])
    return Alias(str(item["name"]), variants, target, village_code, district, lon, lat, conf, str(item.get("note", "")))


# How far (degrees, about 11 km each 0.1) a landmark's own point may lie from Buleleng's villages
# and from the centre of the place it stands for: a point at (0, 0), or one copied from another
# regency, put every alert of that landmark on the wrong map.
_LANDMARK_OFF_REGENCY = 0.1
_LANDMARK_OFF_TARGET = 0.25


def _check_landmark_point(at: tuple, lon: float, lat: float, villages: list[Village], village_code: str | None,
                          district: str | None, districts: dict[str, District]) -> None:
    lons, lats = [v.lon for v in villages], [v.lat for v in villages]
    if villages and not (min(lons) - _LANDMARK_OFF_REGENCY <= lon <= max(lons) + _LANDMARK_OFF_REGENCY
                         and min(lats) - _LANDMARK_OFF_REGENCY <= lat <= max(lats) + _LANDMARK_OFF_REGENCY):
        raise _FieldError(at + ("lon",), f"({lon}, {lat}) is not in {REGENCY_NAME}: a landmark's lon/lat must be where it is")
    target = next((v for v in villages if v.code == village_code), None) if village_code else districts.get(district or "")
    if target is not None and max(abs(lon - target.lon), abs(lat - target.lat)) > _LANDMARK_OFF_TARGET:
        where = f"village {target.name}" if village_code else f"kecamatan {target.name}"
        raise _FieldError(at + ("lon",), f"({lon}, {lat}) is far from {where} ({target.lon:.4f}, {target.lat:.4f}), "
                                         "which the landmark stands for")


# -------------------------------------------------------------------------------- roads


def load_roads(geodata_dir: Path, villages: list[Village], place_keys: set[str]) -> list[Road]:
    """OSM roads when an import exists (geodata/roads_osm.geojson), plus the hand-kept corridors;
    otherwise everything from the hand-kept roads.yaml."""
    yaml_roads = load_road_yaml(Path(geodata_dir) / ROADS_FILE, villages, place_keys)
    osm_path = Path(geodata_dir) / OSM_ROADS_FILE
    if not osm_path.exists():
        return yaml_roads
    osm = load_osm_roads(osm_path, place_keys)
    osm_keys = {key(n) for r in osm for n in r.names}
    # Hand-kept corridors carry informal names ("jalur Gilimanuk") OSM lacks; streets come from OSM.
    kept = [r for r in yaml_roads if not r.generic and not any(key(n) in osm_keys for n in r.names)]
    return osm + kept


def _is_generic(names: Iterable[str], place_keys: set[str]) -> bool:
    """A street name that mentions no Buleleng place could be in any Indonesian town."""
    for n in names:
        words = spaced(n).split()
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                if "".join(words[i:j]) in place_keys:
                    return False
    return True


ROAD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "roads": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "name"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "minLength": 1},
                    "variants": _NAMES,
                    "highway": {"type": "string"},
                    "ref": {"type": ["string", "null"]},
                    "villages": {"type": "array", "items": {"type": "string"}},
                    "generic": {"type": "boolean"},
                    # [lon, lat] on the globe: 400 digits there was an OverflowError traceback
                    # (shapely's float), and 1.0e+300 a road drawn nowhere
                    "point": {"type": "array", "minItems": 2, "maxItems": 2, "items": False,
                              "prefixItems": [{"type": "number", "minimum": -180, "maximum": 180},
                                              {"type": "number", "minimum": -90, "maximum": 90}]},
                },
            },
        },
    },
}


def load_road_yaml(path: Path, villages: list[Village], place_keys: set[str]) -> list[Road]:
    """The hand-kept roads (none when the file is absent). Every problem is refused at its line
    (ConfigError, `file:line:column: field: message`)."""
    from shapely.geometry import LineString, Point

    if not path.exists():
        return []
    doc = read_yaml(path)
    doc.data = {} if doc.data is None else doc.data
    problems = schema_problems(doc, ROAD_SCHEMA)
    if problems:
        raise ConfigError(problems)
    roads = []
    seen: dict[str, int] = {}
    for i, item in enumerate(doc.data.get("roads") or []):
        if item["id"] in seen:
            problems.append(doc.at(("roads", i, "id"), f"duplicate id {item['id']!r} (first at roads[{seen[item['id']]}])"))
            continue
        seen[item["id"]] = i
        try:
            codes = tuple(_resolve_village(("roads", i, "villages", j), ref, villages) for j, ref in enumerate(item.get("villages") or []))
        except _FieldError as exc:
            problems.append(doc.at(exc.path, exc.message))
            continue
        names = (str(item["name"]),) + tuple(str(n) for n in item.get("variants") or [])
        pts = [(villages_by_code(villages)[c].lon, villages_by_code(villages)[c].lat) for c in codes]
        line = LineString(pts) if len(pts) >= 2 else (Point(pts[0]) if pts else None)
        if line is None and item.get("point"):
            line = Point(*item["point"])
        generic = bool(item.get("generic")) if "generic" in item else _is_generic(names, place_keys)
        roads.append(
            Road(
                id=str(item["id"]),
                name=str(item["name"]),
                names=names,
                village_codes=codes,
                highway=str(item.get("highway", "")),
                ref=item.get("ref"),
                generic=generic,
                approximate=True,
                source="roads.yaml",
                line=line,
            )
        )
    if problems:
        raise ConfigError(problems)
    return roads


_VILLAGE_REF = re.compile(r"^(?P<name>[^()]+?)\s*(?:\((?P<district>[^)]+)\))?$")
_VBC_CACHE: dict[int, dict[str, Village]] = {}


def villages_by_code(villages: list[Village]) -> dict[str, Village]:
    got = _VBC_CACHE.get(id(villages))
    if got is None or len(got) != len(villages):
        got = {v.code: v for v in villages}
        _VBC_CACHE[id(villages)] = got
    return got


def _resolve_village(where: tuple, ref: str, villages: list[Village]) -> str:
    """'Pemuteran' or 'Kayuputih (Sukasada)' -> the village's Kemendagri code."""
    m = _VILLAGE_REF.match(str(ref))
    if not m:
        raise _FieldError(where, f"bad village reference {ref!r}")
    k, district = key(m["name"]), m["district"]
    found = [v for v in villages if (key(v.name) == k or any(key(a) == k for a in v.alt_names)) and (not district or v.district == district)]
    if len(found) != 1:
        raise _FieldError(where, f"village {ref!r} matches {len(found)} Buleleng villages; write 'Name (Kecamatan)'")
    return found[0].code


def load_osm_roads(path: Path, place_keys: set[str]) -> list[Road]:
    """Named road lines written by `osm_roads.import_roads`, merged per name."""
    from shapely.geometry import MultiLineString, shape

    groups: dict[str, list[dict]] = defaultdict(list)
    for i, feat in enumerate(_read_geojson(path)):
        p = feat.get("properties") or {}
        if not p.get("name"):
            raise ValueError(f"{path}: feature {i}: road without 'name'")
        groups[p["name"]].append(feat)
    roads = []
    for name, feats in sorted(groups.items()):
        lines = []
        for f in feats:
            g = shape(f["geometry"])
            lines.extend(g.geoms if isinstance(g, MultiLineString) else [g])
        props = feats[0]["properties"]
        core = _strip_road_prefix(name)
        names = tuple(dict.fromkeys([name, core] + [n for f in feats for n in (f["properties"].get("alt_names") or [])]))
        roads.append(
            Road(
                id="osm:" + key(name),
                name=name,
                names=names,
                village_codes=(),
                highway=str(props.get("highway", "")),
                ref=props.get("ref"),
                generic=_is_generic([core], place_keys),
                approximate=False,
                source="osm",
                line=MultiLineString(lines) if len(lines) > 1 else lines[0],
            )
        )
    return roads


ROAD_PREFIXES = ("jalan raya", "jl raya", "jln raya", "jalan", "jl", "jln", "jalur", "ruas jalan", "ruas", "jalan jalur")


def _strip_road_prefix(name: str) -> str:
    folded = spaced(name)
    for p in ROAD_PREFIXES:
        if folded.startswith(p + " "):
            return " ".join(name.split()[len(p.split()):]) or name
    return name
