"""Hazard keyword lists that operators edit, and the classifier built from them.

Each `config/hazards/<id>.yaml` is one hazard: labels, the agency it routes to, terms, Indonesian
roots matched through affixes, exclusions that veto a match in context, severity cues, the traffic
consequence when the hazard sits on a road, and the spike-detection settings. Operators change
these files live, so loading validates everything up front and every error names the file, the
line and the field; the pipeline keeps the last good set when a new one is refused.

Classification runs on every post, so all phrases of all hazards go into one Aho-Corasick
automaton over the folded text (one pass per post, whatever the number of phrases) instead of a
loop of regexes; word boundaries are checked on each hit so "gempar" never counts as "gempa".
"""
from __future__ import annotations

import hashlib
from bisect import bisect_right
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import ahocorasick
import jsonschema
import yaml

from siaga.normalise import MatchText, fold, load_abbreviations, match_text, squeeze, stem

SCHEMA_PATH = Path(__file__).with_name("hazard_schema.json")
_PHRASE_FIELDS = ("terms", "roots", "exclusions", "severity_cues")
# Inside a hashtag (#infobanjirjakarta) there are no spaces to mark word boundaries. A term at
# the start or end of the tag counts; in the middle only if it is long enough not to be a
# fragment of another word by chance.
_HASHTAG_INNER_MIN = 5


class HazardConfigError(ValueError):
    """A hazard file is invalid; the message names file, line and field."""


@dataclass(frozen=True)
class RoadRule:
    raises: str
    cues: tuple[str, ...]


@dataclass(frozen=True)
class Hazard:
    """One loaded YAML file."""

    id: str
    label_id: str
    label_en: str
    agency: str
    window_minutes: int
    min_posts: int
    min_authors: int
    sensitivity: float
    terms: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()
    severity_cues: tuple[str, ...] = ()
    road_consequence: tuple[RoadRule, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class HazardMatch:
    hazard: str
    terms: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    vetoed_by: tuple[str, ...]
    severity_cues: tuple[str, ...]
    via_road: bool = False


@dataclass(frozen=True)
class CheckReport:
    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def default_hazard_dir() -> Path:
    """SIAGA_CONFIG_DIR (default: the repository's config/) / "hazards"."""
    from siaga.settings import config_dir

    return config_dir() / "hazards"


# ------------------------------------------------------------------------------------------
# Loading with line numbers
# ------------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def _node_to_data(node: yaml.Node, path: Path_, lines: dict[Path_, int], where: str,
                  loader: yaml.SafeLoader | None = None) -> Any:
    """Plain Python data from a composed YAML node, recording the line of every field and item
    (PyYAML's safe_load forgets positions, and operators need them in error messages)."""
    loader = loader or yaml.SafeLoader("")
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node, deep=True))
            if key in out:
                raise HazardConfigError(f"{where}:{key_node.start_mark.line + 1}: field {_dotted(path + (key,))}: duplicate key")
            out[key] = _node_to_data(value_node, path + (key,), lines, where, loader)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_to_data(item, path + (i,), lines, where, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(lines: dict[Path_, int], path: Path_) -> int:
    path = tuple(path)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


@dataclass
class _Loaded:
    hazard: Hazard | None
    data: dict[str, Any] | None
    lines: dict[Path_, int]
    errors: list[str] = field(default_factory=list)


def _load_file(path: Path) -> _Loaded:
    where = str(path)
    lines: dict[Path_, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        return _Loaded(None, None, lines, [f"{where}:1: field (file): not UTF-8 text ({exc.reason})"])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return _Loaded(None, None, lines, [f"{where}:{line}: field (syntax): {getattr(exc, 'problem', exc)}"])
    if node is None:
        return _Loaded(None, None, lines, [f"{where}:1: field (top level): file is empty"])
    try:
        data = _node_to_data(node, (), lines, where)
    except HazardConfigError as exc:
        return _Loaded(None, None, lines, [str(exc)])
    except yaml.YAMLError as exc:
        return _Loaded(None, None, lines, [f"{where}:1: field (syntax): {exc}"])
    errors = []
    for err in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        epath = tuple(err.absolute_path)
        errors.append(f"{where}:{_line_of(lines, epath)}: field {_dotted(epath)}: {err.message}")
    if errors:
        return _Loaded(None, data, lines, errors)
    if data["id"] != path.stem:
        errors.append(f"{where}:{lines[('id',)]}: field id: '{data['id']}' must equal the file name '{path.stem}'")
    for name in _PHRASE_FIELDS:
        for i, phrase in enumerate(data.get(name, [])):
            if not fold(phrase).text:
                errors.append(f"{where}:{_line_of(lines, (name, i))}: field {name}[{i}]: {phrase!r} has no letters or digits")
    for i, phrase in enumerate(data.get("exclusions", [])):
        if "*" in phrase and (phrase.strip().startswith("*") or phrase.strip().endswith("*")):
            errors.append(f"{where}:{_line_of(lines, ('exclusions', i))}: field exclusions[{i}]: {phrase!r}: '*' stands for one word between words, not at either end")
    for r, rule in enumerate(data.get("road_consequence", [])):
        for i, phrase in enumerate(rule["cues"]):
            if not fold(phrase).text:
                errors.append(f"{where}:{_line_of(lines, ('road_consequence', r, 'cues', i))}: field road_consequence[{r}].cues[{i}]: {phrase!r} has no letters or digits")
    for i, root in enumerate(data.get("roots", [])):
        folded = fold(root).text
        if " " in folded or stem(folded) != folded:
            errors.append(f"{where}:{_line_of(lines, ('roots', i))}: field roots[{i}]: {root!r} must be one Indonesian root word (its stem is {stem(folded)!r})")
    if errors:
        return _Loaded(None, data, lines, errors)
    det = data["detection"]
    hazard = Hazard(
        id=data["id"],
        label_id=data["labels"]["id"],
        label_en=data["labels"]["en"],
        agency=data["agency"],
        window_minutes=det["window_minutes"],
        min_posts=det["min_posts"],
        min_authors=det["min_authors"],
        sensitivity=float(det["sensitivity"]),
        terms=tuple(data["terms"]),
        roots=tuple(data.get("roots", [])),
        exclusions=tuple(data.get("exclusions", [])),
        severity_cues=tuple(data.get("severity_cues", [])),
        road_consequence=tuple(RoadRule(r["raises"], tuple(r["cues"])) for r in data.get("road_consequence", [])),
        source=where,
    )
    return _Loaded(hazard, data, lines)


def _abbreviations_for(directory: Path) -> tuple[dict[str, str], Path | None]:
    """The abbreviation table next to the hazard directory, else the deployment's one."""
    from siaga.settings import config_dir

    for candidate in (directory.parent / "abbreviations.csv", config_dir() / "abbreviations.csv"):
        if candidate.is_file():
            return load_abbreviations(candidate), candidate
    return {}, None


def _check(directory: Path) -> tuple[CheckReport, list[_Loaded], dict[str, str]]:
    errors: list[str] = []
    warnings: list[str] = []
    directory = Path(directory)
    if not directory.is_dir():
        return CheckReport([f"{directory}:0: field (directory): not a directory"], []), [], {}
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        errors.append(f"{directory}:0: field (directory): no *.yaml hazard files")
    try:
        abbreviations, _ = _abbreviations_for(directory)
    except (OSError, ValueError) as exc:
        errors.append(f"{exc}")
        abbreviations = {}
    loaded = [_load_file(p) for p in files]
    for item in loaded:
        errors.extend(item.errors)
    good = [item for item in loaded if item.hazard]
    ids = {item.hazard.id for item in good if item.hazard}
    for item in good:
        hz = item.hazard
        assert hz is not None
        for r, rule in enumerate(hz.road_consequence):
            if rule.raises not in ids and not any(i.data and i.data.get("id") == rule.raises for i in loaded):
                errors.append(f"{hz.source}:{_line_of(item.lines, ('road_consequence', r, 'raises'))}: field road_consequence[{r}].raises: unknown hazard '{rule.raises}'")
            if rule.raises == hz.id:
                errors.append(f"{hz.source}:{_line_of(item.lines, ('road_consequence', r, 'raises'))}: field road_consequence[{r}].raises: a hazard cannot raise itself")
    warnings.extend(_term_warnings(good, abbreviations))
    return CheckReport(errors, warnings), loaded, abbreviations


def _norm(phrase: str, abbreviations: dict[str, str]) -> str:
    return match_text(fold(phrase), abbreviations).text


def _term_warnings(good: list[_Loaded], abbreviations: dict[str, str]) -> list[str]:
    warnings = []
    owners: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for item in good:
        hz = item.hazard
        assert hz is not None
        seen: dict[str, int] = {}
        for i, term in enumerate(hz.terms):
            key = _norm(term, abbreviations)
            line = _line_of(item.lines, ("terms", i))
            if key in seen:
                warnings.append(f"{hz.source}:{line}: field terms[{i}]: {term!r} repeats terms[{seen[key]}]")
                continue
            seen[key] = i
            owners[key].append((hz.id, hz.source, line))
            padded = f" {key} "
            for j, exc in enumerate(hz.exclusions):
                if "*" in exc:
                    continue
                ekey = _norm(exc, abbreviations)
                if f" {ekey} " in padded:
                    warnings.append(
                        f"{hz.source}:{line}: field terms[{i}]: {term!r} is shadowed by exclusions[{j}] {exc!r} (every occurrence is vetoed)"
                    )
    for key, where in owners.items():
        if len(where) > 1:
            names = ", ".join(f"{h} ({src}:{line})" for h, src, line in where)
            warnings.append(f"{where[0][1]}:{where[0][2]}: field terms: {key!r} is listed under {len(where)} hazards: {names}")
    return warnings


def check_directory(directory: Path) -> CheckReport:
    """Validate every hazard file in `directory` (for `siaga hazards check [DIR]`)."""
    report, _, _ = _check(Path(directory))
    return report


# ------------------------------------------------------------------------------------------
# Classification
# ------------------------------------------------------------------------------------------

_TERM, _EXCL, _SEV, _ROAD, _ROOT = "term", "exclusion", "severity", "road", "root"


@dataclass(frozen=True)
class _Hit:
    kind: str
    hazard: str
    phrase: str  # as written in the YAML
    start: int  # MatchText coordinates
    end: int
    rule: int = -1


class HazardSet:
    """All hazard lists of one directory, compiled into one automaton."""

    def __init__(self, hazards: dict[str, Hazard], abbreviations: dict[str, str] | None = None) -> None:
        self.hazards = dict(hazards)
        self.abbreviations = dict(abbreviations or {})
        self._order = {hid: i for i, hid in enumerate(self.hazards)}
        self._automaton = ahocorasick.Automaton()
        self._root_index: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._wild_exclusions: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        entries: dict[str, list[tuple[str, str, str, int, bool]]] = defaultdict(list)
        for hz in self.hazards.values():
            plain_exclusions = tuple(e for e in hz.exclusions if "*" not in e)
            wild = [e for e in hz.exclusions if "*" in e]
            if wild:
                self._wild_exclusions[hz.id] = [(e, _wildcard_regex(e, self.abbreviations)) for e in wild]
            groups = [(_TERM, hz.terms, -1), (_EXCL, plain_exclusions, -1), (_SEV, hz.severity_cues, -1)]
            groups += [(_ROAD, rule.cues, r) for r, rule in enumerate(hz.road_consequence)]
            for kind, phrases, rule in groups:
                for phrase in phrases:
                    key = _norm(phrase, self.abbreviations)
                    entries[key].append((kind, hz.id, phrase, rule, False))
                    if " " in key and kind in (_TERM, _EXCL):
                        # "#pohontumbang": the phrase written without spaces, valid only in hashtags
                        entries[key.replace(" ", "")].append((kind, hz.id, phrase, rule, True))
            for root in hz.roots:
                key = squeeze(fold(root).text)
                self._root_index[key].append((hz.id, root))
                entries[key].append((_ROOT, hz.id, root, -1, False))
        for key, payload in entries.items():
            self._automaton.add_word(key, (len(key), tuple(payload)))
        if entries:
            self._automaton.make_automaton()
        self._empty = not entries

    @classmethod
    def load(cls, directory: Path) -> "HazardSet":
        """Load and validate a directory of hazard files; raise HazardConfigError listing every
        error (file:line: field ...) so an operator fixes them all in one go."""
        report, loaded, abbreviations = _check(Path(directory))
        if report.errors:
            raise HazardConfigError("\n".join(report.errors))
        hazards = {item.hazard.id: item.hazard for item in loaded if item.hazard}
        hs = cls(hazards, abbreviations)
        hs._fingerprint_data = [(Path(item.hazard.source).name, item.data) for item in loaded if item.hazard]
        return hs

    # -- matching ------------------------------------------------------------------------------

    def _hits(self, mt: MatchText) -> list[_Hit]:
        if self._empty or not mt.text:
            return []
        text = mt.text
        starts = [tok.start for tok in mt.tokens]

        def tok_of(pos: int) -> int:
            return bisect_right(starts, pos) - 1

        hits: list[_Hit] = []
        root_tokens: dict[int, list[tuple[str, str]]] = {}
        for end_idx, (length, payload) in self._automaton.iter(text):
            start, end = end_idx - length + 1, end_idx + 1
            first, last = mt.tokens[tok_of(start)], mt.tokens[tok_of(end_idx)]
            bounded = first.start == start and last.end == end
            in_tag = first is last and first.hashtag and (
                start == first.start or end == first.end or length >= _HASHTAG_INNER_MIN
            )
            for kind, hid, phrase, rule, tag_only in payload:
                if kind == _ROOT:
                    # A root inside a longer word ("kebanjiran", "tergenang"): confirm by stemming
                    # below, and only these few candidate words are ever stemmed.
                    if not bounded:
                        root_tokens.setdefault(tok_of(start), []).append((hid, phrase))
                    continue
                if (bounded and not tag_only) or in_tag:
                    hits.append(_Hit(kind, hid, phrase, start, end, rule))
        if root_tokens:
            covered = {(h.hazard, tok_of(h.start)) for h in hits if h.kind == _TERM}
            for t_index, candidates in root_tokens.items():
                tok = mt.tokens[t_index]
                # Stem the word as written too: squeezing can break a suffix ("kemacetannya").
                written = mt.folded.text[mt.folded_start[tok.start]:mt.folded_end[tok.end - 1]]
                found_roots = {squeeze(stem(tok.text)), squeeze(stem(written))}
                for hid, phrase in candidates:
                    if squeeze(fold(phrase).text) in found_roots and (hid, t_index) not in covered:
                        hits.append(_Hit(_TERM, hid, tok.text, tok.start, tok.end))
        return hits

    def _matches(self, text: str, include_vetoed: bool) -> list[HazardMatch]:
        mt = match_text(fold(text), self.abbreviations)
        hits = self._hits(mt)
        by_hazard: dict[str, dict[str, list[_Hit]]] = defaultdict(lambda: defaultdict(list))
        for h in hits:
            by_hazard[h.hazard][h.kind].append(h)
        direct: dict[str, HazardMatch] = {}
        for hid, kinds in by_hazard.items():
            terms = kinds.get(_TERM, [])
            if not terms:
                continue
            exclusions = kinds.get(_EXCL, []) + [
                _Hit(_EXCL, hid, phrase, m.start(), m.end())
                for phrase, rx in self._wild_exclusions.get(hid, ())
                for m in rx.finditer(mt.text)
            ]
            alive, vetoes = [], []
            for t in terms:
                veto = [e for e in exclusions if e.start < t.end and t.start < e.end]
                if veto:
                    vetoes.extend(veto)
                else:
                    alive.append(t)
            alive.sort(key=lambda h: (h.start, h.end))
            direct[hid] = HazardMatch(
                hazard=hid,
                terms=_unique(h.phrase for h in alive),
                spans=tuple(mt.span(h.start, h.end) for h in alive),
                vetoed_by=_unique(e.phrase for e in sorted(vetoes, key=lambda h: h.start)),
                severity_cues=_unique(h.phrase for h in sorted(kinds.get(_SEV, []), key=lambda h: h.start)),
            )
        results = dict(direct) if include_vetoed else {k: m for k, m in direct.items() if m.terms}
        for hid, match in list(direct.items()):
            if not match.terms:
                continue
            road_hits = sorted(by_hazard[hid].get(_ROAD, []), key=lambda h: h.start)
            for r, rule in enumerate(self.hazards[hid].road_consequence):
                # Rules are ordered, most specific first: the first whose cues appear decides
                # (a blocked road is a closure, not also a jam).
                cues = [h for h in road_hits if h.rule == r]
                target = rule.raises
                if not cues:
                    continue
                if target not in self.hazards or (target in results and results[target].terms):
                    break
                results[target] = HazardMatch(
                    hazard=target,
                    terms=_unique(h.phrase for h in cues),
                    spans=tuple(mt.span(h.start, h.end) for h in cues),
                    vetoed_by=(),
                    severity_cues=_unique(h.phrase for h in sorted(by_hazard[target].get(_SEV, []), key=lambda h: h.start)),
                    via_road=True,
                )
                break
        return sorted(results.values(), key=lambda m: self._order.get(m.hazard, len(self._order)))

    def classify(self, text: str) -> list[HazardMatch]:
        """The hazards a post is about (exclusion-vetoed ones dropped), in the set's order."""
        return self._matches(text, include_vetoed=False)

    def explain(self, text: str) -> list[HazardMatch]:
        """Like classify, plus hazards whose every occurrence was vetoed (their terms empty), so
        `siaga tag --explain` can show an operator which exclusion silenced a post."""
        return self._matches(text, include_vetoed=True)

    def fingerprint(self) -> str:
        """sha256 of the loaded lists and abbreviations: the pipeline records which were in force."""
        data = getattr(self, "_fingerprint_data", None)
        if data is None:
            data = [(hid, _hazard_dict(hz)) for hid, hz in sorted(self.hazards.items())]
        blob = json.dumps({"hazards": data, "abbreviations": sorted(self.abbreviations.items())},
                          sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _wildcard_regex(phrase: str, abbreviations: dict[str, str]) -> re.Pattern[str]:
    """An exclusion with `*` words ("harga * longsor"): each `*` stands for exactly one word.
    Rare, so a regex run only for posts that already hit the hazard, not part of the automaton."""
    parts = [r"\S+" if piece.strip() == "" else re.escape(_norm(piece, abbreviations))
             for piece in _split_wild(phrase)]
    return re.compile(r"(?<!\S)" + " ".join(parts) + r"(?!\S)")


def _split_wild(phrase: str) -> list[str]:
    out: list[str] = []
    for k, chunk in enumerate(phrase.split("*")):
        if k:
            out.append("")
        if chunk.strip():
            out.append(chunk)
    return out


def _hazard_dict(hz: Hazard) -> dict[str, Any]:
    from dataclasses import asdict

    out = asdict(hz)
    out.pop("source", None)
    return out


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
