"""Place a post in Buleleng: village, kecamatan, road or landmark, or recognise it as elsewhere.

How it works, and why:
- Coordinates (the post's own, or a pair written in its text) are placed by point-in-polygon.
- Names are matched with Aho-Corasick automata (pyahocorasick), one pass each over the text
  whatever the gazetteer size (148 or 91.6k names). Buleleng's names and well-known places
  elsewhere are matched over the folded post with its spaces removed, so "Tinga-tinga",
  "Tingatinga" and "Busung Biu" all hit one pattern; the national list's lesser names are
  matched as whole words over the folded text. A hit counts only if it starts and ends on word
  boundaries, so "Les" (a village) is not found inside "lesehan".
- A name is a *mention*; whether it is a place is decided from context, because many Buleleng
  names are everyday words (Bila, Bukti, Les) or exist elsewhere too (Kerobokan in Badung): the
  word before it ("Desa", "Kec.", "di"), the place named right after it ("X, Sawan"), other
  Buleleng places in the post, places outside Buleleng in the post, and capitalisation (weak).
"""
from __future__ import annotations

import logging
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter, itemgetter
from pathlib import Path

import ahocorasick

from siaga import settings
from siaga.config_errors import ConfigError, present
from siaga.gazetteer import Gazetteer, PackedPlaces, is_common_word, load_gazetteer
from siaga.geodata import ROAD_PREFIXES, dictionary_file, Alias, District, OutsidePlace, Road, Village, short_name
from siaga.normalise import CLAUSE_BREAKS, SENTENCE_ENDS, Folded, LazyFolded, hashtag_at, address_spans, key, quick_fold, spaced
from siaga.vocabulary import PROVINCE_NAME, REGENCY_CODE, REGENCY_NAME

log = logging.getLogger(__name__)

VILLAGE_PREFIX = frozenset({"desa", "ds", "dsa", "kel", "kelurahan", "kelurahn", "lurah"})
DISTRICT_PREFIX = frozenset({"kec", "kecamatan", "kecamatn", "kcmtn", "kecmatan"})
REGENCY_PREFIX = frozenset({"kab", "kabupaten", "kabupatn", "pemkab", "kota"})
PROVINCE_PREFIX = frozenset({"provinsi", "prov", "propinsi"})
LOCATIVE = frozenset(
    {"di", "ke", "dari", "dr", "wilayah", "daerah", "kawasan", "seputaran", "seputar", "sekitar",
     "arah", "menuju", "sampai", "hingga", "dekat", "dkt", "area", "perbatasan", "antara", "lintas", "desa"}
)
# Words allowed between a place and the kecamatan/regency that qualifies it ("X, Kec. Sawan").
QUALIFIER_GAP = VILLAGE_PREFIX | DISTRICT_PREFIX | REGENCY_PREFIX
LOW_CONFIDENCE = 0.5
# Inside a hashtag's word (#BanjirSangsit, #infobuleleng) no space marks where a name starts or
# ends: a name this long counts anywhere in the tag (as a hazard term in the middle of one,
# `hazards._HASHTAG_INNER_MIN`) where a capital marks the break; a shorter one ("Les", "Bila")
# only as the whole word.
HASHTAG_NAME_MIN = 5
HASHTAG_RUN_MIN = 7  # ... where no capital marks the break (`_TagBreaks`)
# What ends a name written over several words: a clause break or a bracket between two words
# makes them two mentions ("Singaraja, Denpasar" is two towns, not the road Singaraja-Denpasar;
# "Banjar, Jawa Timur" is not the kelurahan Banjar Jawa). A full stop after a word of four
# letters or fewer is an abbreviation or an initial ("Jl. Jend. A. Yani"), not an end. A hashtag
# is no break: "kota #Magelang" is the town.
_NAME_BREAKS = (CLAUSE_BREAKS - {"."}) | frozenset("()[]{}")
_ABBREVIATION_MAX = 4
# Before a capital, what may stand between it and the end of the sentence before it: spaces of
# any kind (a line break is an end) and opening quotes or brackets ("Banjir.\u00a0Bila ...", "... selesai. “Bila ...").
_BEFORE_CAPITAL = frozenset("\"'([{“‘«「『")
# Between the two numbers of a coordinate pair: a comma, semicolon or slash with any whitespace
# around it, or whitespace holding a space (what `\s*[,;/ ]\s*` matches), written possessive:
# that spelling backtracked over every split of a whitespace run, quadratic in its length
# (".11" and 20,000 spaces, one post, took 6 s to tag).
_COORD_SEP = r"(?:\s*+[,;/]\s*+|[^\S ]*+ \s*+)"
# What every coordinate pair (_COORD) holds, without its look-arounds: most posts have none, and
# a time or a price ("08.41", "1.500") alone is not one.
_COORD_HINT = re.compile(r"\.\d\d++" + _COORD_SEP + r"-?\d{1,3}\.\d\d")
_ASCII_UPPER, _ASCII_LOWER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz"  # capitals, small letters in ASCII
_COORD = re.compile(r"(?<![\d.])(-?\d{1,3}\.\d{2,}+)" + _COORD_SEP + r"(-?\d{1,3}\.\d{2,}+)(?![\d.])")


@dataclass(frozen=True, slots=True, init=False)
class Place:
    kind: str  # "village" | "district" | "road" | "landmark" | "regency"
    name: str
    village: str | None
    district: str | None
    code: str | None
    lon: float | None
    lat: float | None
    confidence: float
    span: tuple[int, int] | None
    reason: str
    in_region: bool = True
    low_confidence: bool = False

    def __init__(self, kind: str, name: str, village: str | None, district: str | None, code: str | None,
                 lon: float | None, lat: float | None, confidence: float, span: tuple[int, int] | None, reason: str,
                 in_region: bool = True, low_confidence: bool = False) -> None:
        # A frozen dataclass's own __init__ sets each field through `object.__setattr__`, a
        # look-up and a call per field: half the cost of placing a post that names a place.
        # The slots' setters do the same work directly (frozen still refuses assignment after).
        put = _PLACE_SLOTS
        put[0](self, kind)
        put[1](self, name)
        put[2](self, village)
        put[3](self, district)
        put[4](self, code)
        put[5](self, lon)
        put[6](self, lat)
        put[7](self, confidence)
        put[8](self, span)
        put[9](self, reason)
        put[10](self, in_region)
        put[11](self, low_confidence)

    def to_dict(self) -> dict:
        """The `siaga tag` contract keys, JSON-ready."""
        return {
            "kind": self.kind,
            "name": self.name,
            "village": self.village,
            "district": self.district,
            "code": self.code,
            "lon": self.lon,
            "lat": self.lat,
            "confidence": round(self.confidence, 3),
            "span": list(self.span) if self.span is not None else None,
            "reason": self.reason,
        }


_PLACE_SLOTS = tuple(getattr(Place, name).__set__ for name in Place.__slots__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True, init=False)
class GeotagResult:
    places: list[Place]
    in_region: bool  # any place found lies in Buleleng regency

    def __init__(self, places: list[Place], in_region: bool) -> None:
        # one per post: set through the slots, as `Place`
        _set_places(self, places)
        _set_in_region(self, in_region)


_set_places, _set_in_region = GeotagResult.places.__set__, GeotagResult.in_region.__set__  # type: ignore[attr-defined]


class _Entry:
    """One thing a matched name can mean."""

    __slots__ = ("kind", "ref", "strength", "k")

    def __init__(self, kind: str, ref: object, strength: str = "strong") -> None:
        self.k = key(ref[0].name) if kind == "village" else ""  # type: ignore[index]
        self.kind = kind  # village | district | regency | landmark | road | outside
        self.ref = ref  # tuple[Village] | District | Alias | Road | OutsidePlace | None
        self.strength = strength  # outside: strong | capital | weak; road: street | corridor


class _Case:
    """What capitals say in one post, found when a decision asks (`_Mention.caps`)."""

    __slots__ = ("folded", "informative")

    def __init__(self, folded: Folded) -> None:
        self.folded = folded
        self.informative: bool | None = None

    def capitalised(self, fs: int) -> bool:
        """Is the name at folded offset `fs` capitalised mid-sentence, in a post whose case is
        informative?"""
        folded = self.folded
        original = folded.original
        if original.isascii() and folded.text[fs].upper() not in original:
            # In ASCII the letter there is the folded one or its capital: no capital of it in the
            # post answers without locating the name in the original (which builds its word map).
            return False
        if not original[folded.index(fs)].isupper():
            return False
        if self.informative is None:
            self.informative = _case_is_informative(original)
        return self.informative and _capitalised_mid_sentence(folded, fs)


class _Mention:
    __slots__ = ("ti", "tj", "fs", "fe", "entries", "buleleng", "settled", "prefix", "prefix2", "_case", "_caps", "qualifies",
                 "qualified_by")

    def __init__(self, ti: int, tj: int, fs: int, fe: int, entries: tuple[_Entry, ...], buleleng: bool, case: _Case,
                 settled: OutsidePlace | None = None) -> None:
        self.ti, self.tj, self.fs, self.fe, self.entries = ti, tj, fs, fe, entries
        self.buleleng = buleleng  # some meaning of the name is a Buleleng place
        self.settled = settled  # the outside place it stands for whatever the context (`_settled_outside`)
        self.prefix = self.prefix2 = ""
        self._case = case
        self._caps: bool | None = None
        self.qualifies: _Mention | None = None  # the mention this one qualifies ("X, Sawan")
        self.qualified_by: _Mention | None = None

    @property
    def caps(self) -> bool:
        """Capitalised mid-sentence in a post whose case is informative. Found on first ask:
        only capital-strength names and everyday words weigh it, and finding where a name
        starts in the original post costs more than the rest of most mentions."""
        if self._caps is None:
            self._caps = self._case.capitalised(self.fs)
        return self._caps

    def of(self, kind: str) -> list[_Entry]:
        return [e for e in self.entries if e.kind == kind]



class _WeakTable:
    """The weak names' payloads, one packed string per automaton value, decoded on first hit."""

    __slots__ = ("_rows", "decoded")

    def __init__(self, rows: list[str]) -> None:
        self._rows = rows
        self.decoded: dict[int, tuple[int, tuple[_Entry, ...]]] = {}  # the rows decoded so far

    @staticmethod
    def row(flen: int, entries: tuple[_Entry, ...]) -> str:
        packed = [PackedPlaces.pack_one(e.ref) for e in entries]  # type: ignore[arg-type]
        if any(p is None for p in packed):
            raise ValueError(f"a place name holds a control character: {[e.ref for e in entries]!r}")
        return "\x1d".join([str(flen), *packed])  # type: ignore[list-item]

    def __getitem__(self, index: int) -> tuple[int, tuple[_Entry, ...]]:
        got = self.decoded.get(index)
        if got is None:
            flen, *rows = self._rows[index].split("\x1d")
            got = (int(flen), tuple(_Entry("outside", PackedPlaces.unpack_one(r), "weak") for r in rows))
            self.decoded[index] = got
        return got

    def __getstate__(self) -> list[str]:
        return self._rows

    def __setstate__(self, rows: list[str]) -> None:
        self._rows, self.decoded = rows, {}


class Geotagger:
    """Tags posts with Buleleng places; build once, call `tag` per post."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gaz = gazetteer
        point = gazetteer.regency_polygon.representative_point()
        self._regency_point = (round(point.x, 6), round(point.y, 6))
        self._weak_automaton: ahocorasick.Automaton | None = None
        self._automaton = self._build_automaton()

    @classmethod
    def from_paths(cls, geodata_dir: Path, aliases_path: Path | None = None, national: bool = False) -> "Geotagger":
        return cls(load_gazetteer(Path(geodata_dir), Path(aliases_path) if aliases_path else None, national=national))

    # ------------------------------------------------------------------------- automaton

    def _build_automaton(self) -> ahocorasick.Automaton:
        table: dict[str, tuple[set[str], list[_Entry]]] = {}

        def add(name: str, entry: _Entry) -> None:
            form = spaced(name)
            k = form.replace(" ", "")
            if len(k) < 2:
                return
            forms, entries = table.setdefault(k, (set(), []))
            forms.add(form)
            if entry not in entries:
                entries.append(entry)

        gaz = self.gaz
        by_key: dict[str, list[Village]] = {}
        for v in gaz.villages:
            for n in (v.name, *v.alt_names):
                by_key.setdefault(key(n), [])
                if v not in by_key[key(n)]:
                    by_key[key(n)].append(v)
        village_entries = {k: _Entry("village", tuple(vs)) for k, vs in by_key.items()}
        for k, e in village_entries.items():
            e.k = k  # the spelling matched ("dapdapputih"), which decides word/namesake checks
        for v in gaz.villages:
            for n in (v.name, *v.alt_names):
                add(n, village_entries[key(n)])
        for d in gaz.districts.values():
            add(d.name, _Entry("district", d))
        regency = _Entry("regency", None)
        add(REGENCY_NAME, regency)
        for a in gaz.aliases:
            e = _Entry("regency" if a.target == "regency" else "landmark", a)
            for n in (a.name, *a.variants):
                add(n, e)
        for r in gaz.roads:
            e = _Entry("road", r, "street" if r.generic else "corridor")
            for name in r.names:
                # "Jalan Ahmad Yani (Singaraja)": the town in brackets tells streets apart in the
                # gazetteer; in a post it is a place of its own (context), not part of the name.
                n = re.sub(r"\([^)]*\)", " ", name)
                folded = spaced(n)
                has_prefix = any(folded.startswith(p + " ") for p in ROAD_PREFIXES)
                if not r.generic or has_prefix:
                    add(n, e)
                if not has_prefix:
                    for p in ROAD_PREFIXES:
                        add(f"{p} {n}", e)
        for o in gaz.outside:
            self._add_outside(add, o)
        # Two automata: Buleleng and well-known names over the space-free text (any spacing of a
        # name matches), and the national list's weak names over the spaced text with their word
        # breaks as written. Space-free matching reports every name inside every word ("anca" in
        # "lancar"); with 90k short names that would be most of the work, so they match whole
        # words only.
        automaton = ahocorasick.Automaton()
        # The weak names' automaton stores an index into a packed table, not objects: it is
        # loaded from the matcher cache at every start, and 90k payload objects would take most
        # of a second to unpickle.
        weak_automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        weak_rows: list[str] = []
        for k, (forms, entries) in table.items():
            strong_entries = tuple(e for e in entries if e.kind != "outside" or e.strength != "weak")
            weak_entries = tuple(e for e in entries if e.kind == "outside" and e.strength == "weak")
            if strong_entries:
                buleleng = any(e.kind != "outside" for e in strong_entries)
                settled = None if buleleng else _settled_outside(strong_entries)
                automaton.add_word(k, (len(k), frozenset(forms), strong_entries, buleleng, settled))
            for form in forms if weak_entries else ():
                weak_automaton.add_word(f" {form} ", len(weak_rows))
                weak_rows.append(_WeakTable.row(len(form), weak_entries))
        automaton.make_automaton()
        if len(weak_automaton):
            weak_automaton.make_automaton()
            self._weak_automaton = weak_automaton
            self._weak_table = _WeakTable(weak_rows)
        return automaton

    def _add_outside(self, add, o: OutsidePlace) -> None:
        dictionary = self.gaz.dictionary
        if o.level in ("abroad",) or (o.code is None):
            add(o.name, _Entry("outside", o, "capital" if is_common_word(o.name, dictionary) else "strong"))
            return
        bali = o.code.startswith("51")
        if o.level in ("province", "regency"):
            add(o.name, _Entry("outside", o, "strong"))
            short = short_name(o.name)
            if short != o.name:
                add(short, _Entry("outside", o, "capital" if is_common_word(short, dictionary) else "strong"))
        elif bali and o.level == "district":
            add(o.name, _Entry("outside", o, "capital" if is_common_word(o.name, dictionary) else "strong"))
        elif bali:
            add(o.name, _Entry("outside", o, "capital"))
        elif len(key(o.name)) >= 4 and not is_common_word(o.name, dictionary):
            # Short names ("Ie", "Ara") and word names ("Lancar", "Simpang") of far-away villages
            # cannot be told from ordinary text; they would only add noise.
            add(o.name, _Entry("outside", o, "weak"))

    # ------------------------------------------------------------------------------ tag

    def tag(self, text: str | Folded | LazyFolded, lat: float | None = None, lon: float | None = None) -> GeotagResult:
        """Places in (or outside) Buleleng that the post names or whose coordinates it carries.
        `text` may come folded already (`normalise.quick_fold`), as the tagger shares it with
        the hazard matcher."""
        if text is None or isinstance(text, str):
            text = text or ""
            folded = quick_fold(text)
        else:
            folded, text = text, text.original
        places: list[Place] = []
        region_votes: list[bool] = []
        if lat is not None and lon is not None:
            self._place_point(float(lon), float(lat), places, region_votes, "coordinates of the post")
        if _COORD_HINT.search(text):
            for m in _COORD.finditer(text):
                pair = _as_lon_lat(float(m.group(1)), float(m.group(2)))
                if pair:
                    self._place_point(pair[0], pair[1], places, region_votes, "coordinates in the text")
        mentions = self._mentions(folded)
        if mentions:
            self._resolve(folded, mentions, places, region_votes)
        if places:
            places = _dedupe(places)
        return GeotagResult(places=places, in_region=any(region_votes))

    def _place_point(self, lon: float, lat: float, places: list[Place], votes: list[bool], what: str) -> None:
        v = self.gaz.village_at(lon, lat)
        if v is None:
            votes.append(False)
            return
        places.append(Place("village", v.name, v.name, v.district, v.code, v.lon, v.lat, 0.99, None, f"point in polygon ({what})"))
        votes.append(True)

    def _mentions(self, folded: Folded) -> list[_Mention]:
        """Every name hit on word boundaries; overlaps resolved longest-first, Buleleng first.

        Hot path (issue 14: every post pays it, two in three have some hit, few hits survive):
        the compact automaton runs over the folded text itself with spaces skipped, so a hit's
        end is already in folded coordinates and a hit that does not end a word ("anca" in
        "lancar", most of them) is dropped by looking at one character, before any word table
        is built. The word list is split only for a post with a surviving name."""
        ftext = folded.text
        if not ftext:
            return []
        n = len(ftext)
        count = ftext.count
        raw = []
        original = folded.original
        # a name may stand inside a hashtag's word (`_TagBreaks`)
        tags = _TagBreaks(folded) if "#" in original or "\uff03" in original else None
        # Words before a hit: the spaces before its start, counted on from the last hit's start
        # (hits come in text order, a start at most a name's length back), not from the text's
        # start for every hit, which made a long text of many names quadratic.
        at = before = 0
        for end, (klen, forms, entries, buleleng, settled) in self._automaton.iter(ftext, 0, n, True):
            fe = end + 1
            if fe != n and ftext[fe] != " ":
                if not (tags and klen >= HASHTAG_NAME_MIN and tags.allow(fe, klen)):
                    continue  # does not end a word
            fs = fe - klen
            spaces = count(" ", fs, fe)
            if spaces:  # the name spans words: widen to klen letters (never past its first letter)
                while True:
                    wider = fe - klen - spaces
                    if wider == fs:
                        break
                    fs = wider
                    spaces = count(" ", fs, fe)
            if fs and ftext[fs - 1] != " " and not (tags and not spaces and klen >= HASHTAG_NAME_MIN and tags.allow(fs, klen)):
                continue  # does not start a word
            if spaces and ftext[fs:fe] not in forms and min(map(len, ftext[fs:fe].split(" "))) < 3:
                continue  # a join of short words ("ke lapa") is not a spelling of the name
            if spaces and _written_across_a_break(folded, fs, fe):
                continue  # two names in a row, not one
            if fs >= at:
                before += count(" ", at, fs)
            else:
                before -= count(" ", fs, at)
            at, ti = fs, before
            raw.append((0, -spaces, -klen, ti, ti + spaces, fs, fe, entries, buleleng, settled))
        addresses = address_spans(folded.original) if raw else None
        if addresses:
            raw = _outside_addresses(folded, raw, addresses)
        weak_automaton = self._weak_automaton
        if weak_automaton is not None:
            weak = None
            table = self._weak_table
            decoded = table.decoded  # read directly: a method call per hit cost more than the look-up
            at = before = 0
            for end, row in weak_automaton.iter(f" {ftext} "):
                got = decoded.get(row)
                flen, entries = table[row] if got is None else got
                fs = end - flen - 1  # end is the trailing space in the padded text
                # the word it starts (a weak name starts a word), counted on as above
                if fs >= at:
                    before += count(" ", at, fs)
                else:
                    before -= count(" ", fs, at)
                at, ti = fs, before
                spaces = count(" ", fs, fs + flen)
                if spaces and _written_across_a_break(folded, fs, fs + flen):
                    continue  # two names in a row, not one
                if weak is None:
                    weak = []
                weak.append((1, -spaces, -flen, ti, ti + spaces, fs, fs + flen, entries, False, None))
            if weak is not None:
                if addresses is None:
                    addresses = address_spans(folded.original)
                if addresses:
                    weak = _outside_addresses(folded, weak, addresses)
                # Names known only from the national list count with an admin word before them or
                # a place right after them (their parent); keep just those, the rest is noise.
                begins = {r[3] for r in raw}
                begins.update(r[3] for r in weak)
                for r in weak:
                    ti, tj, fs = r[3], r[4], r[5]
                    if (ti and ftext[ftext.rfind(" ", 0, fs - 1) + 1 : fs - 1] in QUALIFIER_GAP) or (
                        tj + 1 in begins or tj + 2 in begins or tj + 3 in begins
                    ):
                        raw.append(r)
        if not raw:
            return []
        case = _Case(folded)
        if len(raw) == 1:  # the usual post with a name: no overlaps or neighbours to sort out
            _, _, _, ti, tj, fs, fe, entries, buleleng, settled = raw[0]
            m = _Mention(ti, tj, fs, fe, entries, buleleng, case, settled)
            if fs and ftext[fs - 1] != " ":
                _hashtag_prefix(m, ftext)
            elif ti:  # the one or two words before it, found back from its start
                start = ftext.rfind(" ", 0, fs - 1) + 1
                m.prefix = ftext[start : fs - 1]
                if ti >= 2:
                    m.prefix2 = ftext[ftext.rfind(" ", 0, start - 1) + 1 : start - 1]
            return [m]
        words = ftext.split(" ")
        raw.sort(key=_RAW_ORDER)
        taken = [False] * len(words)
        out = []
        for _, _, _, ti, tj, fs, fe, entries, buleleng, settled in raw:
            if any(taken[ti : tj + 1]):
                continue
            for i in range(ti, tj + 1):
                taken[i] = True
            m = _Mention(ti, tj, fs, fe, entries, buleleng, case, settled)
            m.prefix = words[ti - 1] if ti >= 1 else ""
            m.prefix2 = words[ti - 2] if ti >= 2 else ""
            if fs and ftext[fs - 1] != " ":
                _hashtag_prefix(m, ftext)
            out.append(m)
        out.sort(key=_BY_WORD)
        for a, b in zip(out, out[1:]):
            gap = words[a.tj + 1 : b.ti]
            if len(gap) <= 2 and all(w in QUALIFIER_GAP for w in gap):
                b.qualifies, a.qualified_by = a, b
        return out

    # -------------------------------------------------------------------------- resolve

    def _resolve(self, folded: Folded, mentions: list[_Mention], places: list[Place], votes: list[bool]) -> None:
        outside_keys: set[str] = set()
        outside_places: list[tuple[_Mention, OutsidePlace]] = []
        buleleng = False
        for m in mentions:
            if m.buleleng:
                buleleng = True
                continue
            o = self._accepted_outside(m)
            if o is not None:
                outside_places.append((m, o))
                if not _is_home_province(o):  # "Kayuputih, Bali": Buleleng is in Bali, so Bali says nothing
                    outside_keys |= o.own_keys
        # Buleleng anchors: mentions that are Buleleng places whatever the context (most posts
        # with a name name only places elsewhere: nothing to decide).
        anchors = [m for m in mentions if m.buleleng and self._is_anchor(m)] if buleleng else []
        for m in mentions if buleleng else ():
            if not m.buleleng:
                continue
            other_anchor = any(id(a) != id(m) for a in anchors)
            place = self._decide(folded, m, other_anchor, outside_keys, anchors)
            if place is None:
                continue
            places.append(place)
            votes.append(place.in_region and not place.low_confidence)
            if place.kind == "road" and not place.low_confidence:
                for village in self._villages_in_road_name(folded, m, place):
                    places.append(village)
                    votes.append(True)
        for m, o in outside_places:
            span = folded.span(m.fs, m.fe)
            kind = _OUTSIDE_KIND.get(o.level, "regency")
            reason = f"the province {REGENCY_NAME} is in, not a place in it" if _is_home_province(o) else f"outside Buleleng: {o.where}"
            places.append(Place(kind, o.name, None, None, o.code, None, None, 0.8, span, reason, in_region=False))
            votes.append(False)

    def _villages_in_road_name(self, folded: Folded, m: _Mention, road: Place) -> list[Place]:
        """A road named by a village along it ("jalan raya Kubutambahan") places that village
        too: the road's name was the only place the post gave, and it says where on the road."""
        r = next((e.ref for e in m.of("road") if getattr(e.ref, "id", None) == road.code), None)
        if r is None:
            return []
        # only a name that is the village alone ("raya Kubutambahan"); a corridor named by its
        # ends ("Seririt-Gilimanuk") says nothing about where along it
        words = spaced(folded.text[m.fs:m.fe]).split()
        while words and words[0] in _ROAD_WORDS:
            words = words[1:]
        span = folded.span(m.fs, m.fe)
        for code in r.village_codes:
            v = self.gaz.village(code)
            if spaced(v.name).split() == words:
                return [self._village_place(v, 0.8, span, f"village named in the road's name ({r.name})")]
        return []

    def _accepted_outside(self, m: _Mention) -> OutsidePlace | None:
        """The outside place a mention stands for, if its strength and context allow."""
        if m.settled is not None:
            return m.settled
        best = None
        qualifier_keys: frozenset[str] = frozenset()
        if m.qualified_by is not None:
            qualifier_keys = frozenset().union(*(q.ref.own_keys for q in m.qualified_by.of("outside")))
        for e in m.entries:
            o: OutsidePlace = e.ref  # type: ignore[assignment]
            ok = e.strength == "strong"
            if e.strength == "capital":
                ok = m.caps or _prefix_fits(m.prefix, o.level)
            elif e.strength == "weak":
                ok = _prefix_fits(m.prefix, o.level) or bool(qualifier_keys and qualifier_keys & o.parent_keys)
            if ok and (best is None or _LEVEL_RANK[o.level] < _LEVEL_RANK[best.level]):
                best = o
        return best

    def _is_anchor(self, m: _Mention) -> bool:
        """A mention that is a Buleleng place without needing the rest of the post."""
        for e in m.entries:
            if e.kind == "regency" or e.kind == "landmark" and e.ref.confidence >= LOW_CONFIDENCE:
                return True
            if e.kind == "road" and e.strength == "corridor":
                return True
        k = village_key(m)
        if k in self.gaz.common_words or k in self.gaz.shared_names:
            return self._own_qualifier(m) is not None or (m.prefix in VILLAGE_PREFIX | DISTRICT_PREFIX and k not in self.gaz.shared_names)
        if m.of("district") and m.prefix in DISTRICT_PREFIX:
            return True
        vs = m.of("village")
        if vs:
            return k not in self.gaz.namesakes or len(vs[0].ref) == 1 and self._own_qualifier(m) is not None
        return bool(m.of("district"))

    def _districts_of(self, m: _Mention) -> list[str]:
        out = []
        for e in m.entries:
            if e.kind == "village":
                out.extend(v.district for v in e.ref)
            elif e.kind == "district":
                out.append(e.ref.name)
            elif e.kind == "landmark" and e.ref.district:
                out.append(e.ref.district)
        return out

    def _qualifies_district(self, m: _Mention) -> bool:
        """Is m a kecamatan that contains the place named just before it?"""
        ds = m.of("district")
        return bool(ds) and ds[0].ref.name in self._districts_of(m.qualifies) and m.qualifies.of("village") != []

    def _own_qualifier(self, m: _Mention) -> str | None:
        """'Kerobokan, Sawan' / 'Kerobokan Kec. Sawan' / 'Bila, Buleleng': the qualifying name."""
        q = m.qualified_by
        if q is None:
            return None
        mine = set(self._districts_of(m))
        for e in q.entries:
            if e.kind == "district" and e.ref.name in mine:
                return e.ref.name
            if e.kind == "regency" or (e.kind == "landmark" and e.ref.name == "Singaraja"):
                return REGENCY_NAME
        return None

    def _decide(self, folded: Folded, m: _Mention, other_anchor: bool, outside_keys: set[str],
                anchors: list[_Mention]) -> Place | None:
        """The place a Buleleng-name mention stands for in this post, or None if it is a word."""
        span = folded.span(m.fs, m.fe)
        gaz = self.gaz
        prefix = m.prefix
        # 1. Explicit level words choose the meaning.
        if prefix in DISTRICT_PREFIX and m.of("district"):
            return self._district_place(m.of("district")[0].ref, 0.95, span, f"'{prefix}' prefix")
        if prefix in REGENCY_PREFIX and m.of("regency") and not m.of("landmark"):
            return self._regency_place(0.95, span, f"'{prefix}' prefix")
        # A kecamatan (or the regency) right after a place qualifies it ("X, Sawan").
        if m.qualifies is not None and m.qualifies.buleleng and m.of("regency"):
            return self._regency_place(0.9, span, "regency named after a place")
        if m.qualifies is not None and m.qualifies.buleleng and self._qualifies_district(m):
            return self._district_place(m.of("district")[0].ref, 0.85, span, "kecamatan named after a place")
        for kind in ("regency", "landmark", "road"):
            for e in m.of(kind):
                if kind == "regency":
                    return self._regency_place(0.9, span, "regency named" if e.ref is None else f"alias of the regency ({e.ref.name})")
                if kind == "landmark":
                    return self._landmark_place(e.ref, span)
                return self._road_place(e, span, other_anchor, bool(outside_keys))
        vs = m.of("village")
        if not vs:
            ds = m.of("district")
            if ds:
                return self._district_place(ds[0].ref, 0.85, span, "kecamatan named")
            return None
        villages: tuple[Village, ...] = vs[0].ref
        k = village_key(m)
        common = k in gaz.common_words
        shared = k in gaz.shared_names
        namesakes = gaz.namesakes.get(k, [])
        own_q = self._own_qualifier(m)
        strong_prefix = prefix in VILLAGE_PREFIX
        if own_q and own_q != REGENCY_NAME:
            villages = tuple(v for v in villages if v.district == own_q) or villages
        # 2. Names also used outside Buleleng: a namesake's parent named in the post decides.
        if namesakes and own_q is None:
            hit = next((o for o in namesakes if o.parent_keys & outside_keys), None)
            if hit is not None:
                return Place("village", hit.name, None, None, hit.code, None, None, 0.8, span,
                             f"outside Buleleng: {hit.where}", in_region=False)
        # 3. Everyday words need place context.
        if common and not own_q:
            weak_cue = prefix in LOCATIVE or m.caps or prefix2_locative(m)
            preposition_places_it = prefix in LOCATIVE and k in gaz.preposition_enough
            if not (strong_prefix or preposition_places_it or (other_anchor and weak_cue)):
                return None
        if own_q:
            picked = villages[0] if len(villages) == 1 else self._pick(villages, anchors, m)
            if picked is None:  # "Kayuputih, Buleleng": both are in Buleleng, which says neither
                return _same_named(villages, span, 0.4)
            return self._village_place(picked, 0.95, span, "kecamatan named in post" if own_q != REGENCY_NAME else "Buleleng named after it")
        conf, reason, low = 0.9, "village name", False
        if shared:
            if other_anchor:
                conf, reason = 0.75, "name also outside Buleleng; other Buleleng places in post"
            elif outside_keys:
                return None
            else:
                conf, reason, low = 0.4, "name also outside Buleleng, no context", True
        # 4. Same-named Buleleng villages (Kayuputih): nearby places decide, else report the name.
        if len(villages) > 1:
            picked = self._pick(villages, anchors, m)
            if picked is None:
                return _same_named(villages, span, min(conf, 0.4))
            villages = (picked,)
            if not low:
                reason = "nearby places pick the kecamatan"
        v = villages[0]
        if low or conf < 0.9:
            return self._village_place(v, conf, span, reason, low=low)
        if outside_keys and namesakes and not other_anchor:
            return self._village_place(v, 0.45, span, "name also elsewhere; post names places outside Buleleng", low=True)
        if common:
            if strong_prefix:
                reason = f"'{prefix}' prefix"
            elif other_anchor:
                reason = "other Buleleng places in post"
            else:
                reason = f"'{prefix}' before a name whose everyday sense never follows it"
            return self._village_place(v, 0.85 if strong_prefix else 0.75, span, reason)
        if strong_prefix:
            return self._village_place(v, 0.95, span, f"'{prefix}' prefix")
        return self._village_place(v, 0.85 if namesakes else 0.9, span, "village name")

    def _pick(self, villages: tuple[Village, ...], anchors: list[_Mention], m: _Mention) -> Village | None:
        """The one of several same-named villages that the post's other places point to."""
        scored = sorted(((self._support(v, anchors, m), i) for i, v in enumerate(villages)), reverse=True)
        if scored[0][0] > scored[1][0]:
            return villages[scored[0][1]]
        return None

    def _support(self, v: Village, anchors: list[_Mention], m: _Mention) -> int:
        adj = set(self.gaz.adjacent_villages(v.code))
        score = 0
        for a in anchors:
            if a is m:
                continue
            for e in a.entries:
                if e.kind == "district" and e.ref.name == v.district:
                    score += 3
                elif e.kind == "village":
                    for other in e.ref:
                        score += 2 if other.code in adj else (1 if other.district == v.district else 0)
                elif e.kind == "landmark" and e.ref.district == v.district:
                    score += 1
        return score

    # ------------------------------------------------------------------------- builders

    def _village_place(self, v: Village, conf: float, span, reason: str, low: bool = False) -> Place:
        return Place("village", v.name, v.name, v.district, v.code, v.lon, v.lat, conf, span, reason,
                     low_confidence=low or conf < LOW_CONFIDENCE)

    def _district_place(self, d: District, conf: float, span, reason: str) -> Place:
        return Place("district", d.name, None, d.name, d.code, d.lon, d.lat, conf, span, reason)

    def _regency_place(self, conf: float, span, reason: str) -> Place:
        lon, lat = self._regency_point
        return Place("regency", REGENCY_NAME, None, None, REGENCY_CODE, lon, lat, conf, span, reason)

    def _landmark_place(self, a: Alias, span) -> Place:
        village = self.gaz.village(a.village_code) if a.village_code else None
        district = self.gaz.districts.get(a.district) if a.district else None
        lon = a.lon if a.lon is not None else (village.lon if village else district.lon if district else None)
        lat = a.lat if a.lat is not None else (village.lat if village else district.lat if district else None)
        code = village.code if village else (district.code if district else None)
        return Place("landmark", a.name, village.name if village else None, a.district, code, lon, lat,
                     a.confidence, span, "landmark/alias" + (f" ({a.note})" if a.note and len(a.note) < 60 else ""),
                     low_confidence=a.confidence < LOW_CONFIDENCE)

    def _road_place(self, e: _Entry, span, other_anchor: bool, outside: bool) -> Place | None:
        r: Road = e.ref  # type: ignore[assignment]
        pt = r.point
        lon, lat = (round(pt[0], 6), round(pt[1], 6)) if pt else (None, None)
        village = district = None
        if len(r.village_codes) == 1:
            v = self.gaz.village(r.village_codes[0])
            village, district = v.name, v.district
        approx = " (approximate line)" if r.approximate else ""
        if e.strength == "corridor":
            return Place("road", r.name, village, district, r.id, lon, lat, 0.85, span, "named Buleleng road" + approx)
        if other_anchor:
            return Place("road", r.name, village, district, r.id, lon, lat, 0.7, span, "street name; Buleleng places in post" + approx)
        if outside:
            return None
        return Place("road", r.name, village, district, r.id, lon, lat, 0.4, span,
                     "street name found in many towns; no Buleleng context", low_confidence=True)


_RAW_ORDER = itemgetter(0, 1, 2, 3)  # a raw hit's sort key: strong first, longest first, then where
_BY_WORD = attrgetter("ti")
_OUTSIDE_KIND = {"district": "district", "village": "village"}  # an outside place's kind by level; else "regency"
_LEVEL_RANK = {"province": 1, "regency": 0, "abroad": 0, "district": 2, "village": 3}


def _settled_outside(entries: tuple[_Entry, ...]) -> OutsidePlace | None:
    """What `Geotagger._accepted_outside` answers for a name whose meanings are all strong places
    outside Buleleng ("Jogja", "Magelang": most names a post holds), worked out once when the
    automaton is built; None when a meaning's strength leaves it to the context."""
    if not entries or any(e.kind != "outside" or e.strength != "strong" for e in entries):
        return None
    best = None
    for e in entries:
        if best is None or _LEVEL_RANK[e.ref.level] < _LEVEL_RANK[best.level]:
            best = e.ref
    return best


class _TagBreaks:
    """Where a name may start, or end just before, inside a word of one post (`_mentions` asks
    hit by hit, in text order): only in a hashtag, and only where its capitals mark the break
    (#BanjirSangsit) or the name is long enough not to be the end of another word by chance
    (#banjirsangsit; not "tista" in #BoikotInulDaratista, nor "ngada" in #beritainyangada).
    The word a position is in is found on from the last one asked, and whether it is a hashtag
    once per word: looked up from each hit, a long word of many names was read again for each
    (quadratic)."""

    __slots__ = ("folded", "text", "at", "start", "tagged")

    def __init__(self, folded: Folded) -> None:
        self.folded, self.text = folded, folded.text
        self.at = self.start = 0  # the last position asked, and where its word starts
        self.tagged: dict[int, bool] = {}  # word start -> written as "#word"

    def allow(self, at: int, klen: int) -> bool:
        if at >= self.at:
            space = self.text.rfind(" ", self.at, at)
            if space >= 0:
                self.start = space + 1
            self.at = at
            start = self.start
        elif at >= self.start:  # back inside the same word
            start = self.start
        else:
            start = self.text.rfind(" ", 0, at) + 1
        tagged = self.tagged.get(start)
        if tagged is None:
            tagged = self.tagged[start] = hashtag_at(self.folded, start)
        if not tagged:
            return False
        return klen >= HASHTAG_RUN_MIN or self.folded.original[self.folded.index(at)].isupper()


def _is_home_province(o: OutsidePlace) -> bool:
    return o.level == "province" and o.name == PROVINCE_NAME


def _same_named(villages: tuple[Village, ...], span, conf: float) -> Place:
    """Same-named Buleleng villages the post does not choose between: the name, no kecamatan."""
    names = " and ".join(v.district for v in villages)
    return Place("village", villages[0].name, villages[0].name, None, None, None, None, conf, span,
                 f"{villages[0].name}: same name in kecamatan {names}", low_confidence=True)


def _written_across_a_break(folded: Folded, fs: int, fe: int) -> bool:
    """Whether the post wrote the words of folded text[fs:fe] with a break between them
    (`_NAME_BREAKS`): folding turns punctuation into spaces, so the automaton cannot tell."""
    start, end = folded.span(fs, fe)
    piece = folded.original[start:end]
    for i, ch in enumerate(piece):
        if ch in _NAME_BREAKS:
            return True
        if ch == ".":
            word = i
            while word > 0 and piece[word - 1].isalpha():
                word -= 1
            if i - word > _ABBREVIATION_MAX or i == word:
                return True
    return False


def _hashtag_prefix(m: _Mention, ftext: str) -> None:
    """A name inside a hashtag's word ("#BanjirSangsit", "#DesaSangsit"): what the tag holds
    before it is the word before it ("banjir", "desa"), the post's word before the tag the one
    before that."""
    start = ftext.rfind(" ", 0, m.fs) + 1
    m.prefix2 = m.prefix if m.ti else ""
    m.prefix = ftext[start : m.fs]
    if m.ti and not m.prefix2:
        m.prefix2 = ftext[ftext.rfind(" ", 0, start - 1) + 1 : start - 1]


def _outside_addresses(folded: Folded, hits: list[tuple], addresses: list[tuple[int, int]]) -> list[tuple]:
    """The name hits (`_mentions`' rows, folded start at 5) that start outside every link,
    e-mail address and @mention (`normalise.address_spans`, in order, not overlapping)."""
    starts = [start for start, _ in addresses]
    kept = []
    for hit in hits:
        at = folded.index(hit[5])
        k = bisect_right(starts, at) - 1
        if k < 0 or at >= addresses[k][1]:
            kept.append(hit)
    return kept


def village_key(m: _Mention) -> str:
    """Key of the Buleleng village name a mention matched ('' if none)."""
    for e in m.entries:
        if e.kind == "village":
            return e.k
    return ""


def prefix2_locative(m: _Mention) -> bool:
    return m.prefix in VILLAGE_PREFIX or (m.prefix2 in LOCATIVE and m.prefix in VILLAGE_PREFIX)


def _prefix_fits(prefix: str, level: str) -> bool:
    if level in ("regency",):
        return prefix in REGENCY_PREFIX
    if level == "province":
        return prefix in PROVINCE_PREFIX
    if level == "district":
        return prefix in DISTRICT_PREFIX
    if level == "village":
        return prefix in VILLAGE_PREFIX
    return False


def _case_is_informative(text: str) -> bool:
    """Capitals say nothing in ALL-CAPS or all-lowercase posts."""
    if text.isascii():  # what the two patterns count, as two C passes over the bytes
        data = text.encode("ascii")
        upper = len(data) - len(data.translate(None, _ASCII_UPPER))
        lower = len(data) - len(data.translate(None, _ASCII_LOWER))
    else:  # capitals and small letters of any script: "é" or "ｅ" is no capital, Arabic neither
        upper = sum(map(str.isupper, text))
        lower = sum(map(str.islower, text))
    return upper > 0 and upper < 0.6 * (upper + lower)


def _capitalised_mid_sentence(folded: Folded, fs: int) -> bool:
    start = folded.index(fs)
    if not folded.original[start].isupper():
        return False
    original = folded.original
    i = start - 1
    while i >= 0 and (original[i] in _BEFORE_CAPITAL or original[i].isspace() and original[i] not in SENTENCE_ENDS):
        i -= 1
    return i >= 0 and original[i] not in SENTENCE_ENDS


def _as_lon_lat(a: float, b: float) -> tuple[float, float] | None:
    """A coordinate pair written lat,lon (usual) or lon,lat; None if it is not one."""
    if -90 <= a <= 90 and -180 <= b <= 180 and abs(b) > 90:
        return (b, a)
    if -90 <= b <= 90 and -180 <= a <= 180 and abs(a) > 90:
        return (a, b)
    return None


# Words a road's name starts with before the place it is named after ("jalan raya", "jl", "jalur").
_ROAD_WORDS = frozenset(w for p in ROAD_PREFIXES for w in p.split()) | {"raya"}


def _dedupe(places: list[Place]) -> list[Place]:
    if len(places) == 1:
        return places
    best: dict[tuple, int] = {}
    out: list[Place] = []
    for p in places:
        k = (p.kind, p.name, p.village, p.district, p.in_region)
        i = best.get(k)
        if i is None:
            best[k] = len(out)
            out.append(p)
        elif p.confidence > out[i].confidence:
            out[i] = p
    return out


# ------------------------------------------------------------------------------ default

@lru_cache(maxsize=1)
def default_geotagger() -> Geotagger:
    """The project's tagger: settings' geodata and config folders; SIAGA_GAZETTEER picks the size.

    A refused aliases.yaml (a typo at 3 a.m.) leaves its last good copy in force, kept beside
    the matcher cache (`matcher_cache.keep_last_good`), with the refusal logged at ERROR: every
    detect run tags with this, and a broken alias file must not stop them all. Without a good
    copy ever kept, the refusal is raised."""
    from siaga import matcher_cache

    national = settings.gazetteer_size() == "national"
    aliases = settings.config_dir() / "aliases.yaml"
    if not present(aliases):
        return cached_geotagger(settings.geodata_dir(), None, national=national)
    validated = matcher_cache.file_bytes(aliases)  # what the matcher is about to be built from
    try:
        tagger = cached_geotagger(settings.geodata_dir(), aliases, national=national)
    except (ConfigError, OSError) as exc:  # OSError: a folder where the file belongs
        kept = matcher_cache.last_good_path(aliases.name)
        if not kept.is_file():
            raise
        log.error("REFUSED %s: %s -- keeping its last good version in force (%s)", aliases, exc, kept)
        return cached_geotagger(settings.geodata_dir(), kept, national=national)
    matcher_cache.keep_last_good(aliases, validated)
    return tagger


def cached_geotagger(geodata_dir: Path, aliases_path: Path | None = None, national: bool = False) -> Geotagger:
    """`Geotagger.from_paths`, from the matcher cache when it was built from the same files by
    the same code (every file of the geodata folder, the alias file and PySastrawi's word list
    make the key), else built and cached."""
    from siaga import matcher_cache

    geodata_dir = Path(geodata_dir)
    files = sorted(p for p in geodata_dir.iterdir() if p.is_file()) if geodata_dir.is_dir() else []
    files += [Path(aliases_path)] if aliases_path else []
    files += [p for p in (dictionary_file(),) if p is not None]
    key = matcher_cache.fingerprint("geotagger", files, (str(geodata_dir.resolve()), str(aliases_path), national))
    return matcher_cache.cached("geotagger", key, lambda: Geotagger.from_paths(geodata_dir, aliases_path, national=national))

