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
_NGG = re.compile(r"ngg")
_LETTER_RUN = re.compile(r"(.)\1*")


class HazardConfigError(ValueError):
    """A hazard file is invalid; the message names file, line and field."""


@dataclass(frozen=True)
class RoadRule:
    raises: str
    cues: tuple[str, ...]
    # A fallback rule ("the hazard is on a road") fires only when the post has no direct match for
    # a hazard of the raised hazard's agency: Dishub must hear, but once a jam or an accident is
    # reported in so many words, a guessed consequence would only add noise.
    fallback: bool = False


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
    # Hazards that, reported in the same post, carry this one as their consequence ("the
    # accident left a 4 km queue"): the post is theirs, and their alert reaches the same agency.
    subsumed_by: tuple[str, ...] = ()
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
        road_consequence=tuple(RoadRule(r["raises"], tuple(r["cues"]), bool(r.get("fallback", False)))
                               for r in data.get("road_consequence", [])),
        subsumed_by=tuple(data.get("subsumed_by", [])),
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
    agencies = {item.hazard.id: item.hazard.agency for item in good if item.hazard}
    for item in good:
        hz = item.hazard
        assert hz is not None
        for i, other in enumerate(hz.subsumed_by):
            where = f"{hz.source}:{_line_of(item.lines, ('subsumed_by', i))}: field subsumed_by[{i}]"
            if other not in agencies:
                errors.append(f"{where}: unknown hazard '{other}'")
            elif other == hz.id:
                errors.append(f"{where}: a hazard cannot subsume itself")
            elif agencies[other] != hz.agency:
                errors.append(f"{where}: '{other}' goes to {agencies[other]}, not {hz.agency}: that agency would not hear")
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
        self._real_doubles: dict[str, re.Pattern[str]] = {}
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
                    self._note_real_doubles(phrase, key)
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

    def _note_real_doubles(self, phrase: str, key: str) -> None:
        """Phrases are matched squeezed ("banjirr", "kecelakan" find their words), but squeezing
        merges the two meN- forms: "mengenang" (meN- + kenang, remembering) would find
        "menggenang" (meN- + genang, pooling). So for a phrase with "ngg" the written word must
        keep the double g; other doubles stay typo-tolerant."""
        folded = fold(phrase).text
        if squeeze(folded) == key and _NGG.search(folded):
            parts = []
            for run in _LETTER_RUN.finditer(folded):
                ch, n = run.group(1), len(run.group(0))
                if ch.isalpha():
                    parts.append(re.escape(ch) + ("{2,}" if n > 1 else "+"))
                else:
                    parts.append(re.escape(run.group(0)))
            self._real_doubles[phrase] = re.compile("".join(parts))

    def _spelled_right(self, phrase: str, mt: MatchText, start: int, end: int) -> bool:
        rx = self._real_doubles.get(phrase)
        if rx is None:
            return True
        written = mt.folded.text[mt.folded_start[start]:mt.folded_end[end - 1]]
        if squeeze(written) != mt.text[start:end]:
            return True  # reached through an abbreviation or "kata2": not a spelling question
        return rx.fullmatch(written) is not None

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
                if ((bounded and not tag_only) or in_tag) and self._spelled_right(phrase, mt, start, end):
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
        denial = _Denial(mt)
        all_exclusions = [h for h in hits if h.kind == _EXCL]
        direct: dict[str, HazardMatch] = {}
        for hid, kinds in by_hazard.items():
            terms = kinds.get(_TERM, [])
            if not terms:
                continue
            wild = [
                _Hit(_EXCL, hid, phrase, m.start(), m.end())
                for phrase, rx in self._wild_exclusions.get(hid, ())
                for m in rx.finditer(mt.text)
            ]
            all_exclusions.extend(wild)
            exclusions = kinds.get(_EXCL, []) + wild
            alive, vetoes, denials = [], [], []
            for t in terms:
                veto = [e for e in exclusions if e.start < t.end and t.start < e.end]
                denied_by = denial.of_term(t)
                if veto:
                    vetoes.extend(veto)
                elif denied_by:
                    denials.append((t.start, denied_by))
                else:
                    alive.append(t)
            alive.sort(key=lambda h: (h.start, h.end))
            vetoed_by = [(e.start, e.phrase) for e in vetoes] + denials
            direct[hid] = HazardMatch(
                hazard=hid,
                terms=_unique(h.phrase for h in alive),
                spans=tuple(mt.span(h.start, h.end) for h in alive),
                vetoed_by=_unique(p for _, p in sorted(vetoed_by)),
                severity_cues=(),
            )
        for hid, match in direct.items():
            cues = [h for h in by_hazard[hid].get(_SEV, []) if not denial.of_cue(h, all_exclusions)]
            direct[hid] = _with_cues(match, cues)
        results = dict(direct) if include_vetoed else {k: m for k, m in direct.items() if m.terms}
        heard = {self.hazards[k].agency for k, m in direct.items() if m.terms and k in self.hazards}
        for hid, match in list(direct.items()):
            if not match.terms:
                continue
            road_hits = sorted((h for h in by_hazard[hid].get(_ROAD, []) if not denial.of_term(h)),
                               key=lambda h: h.start)
            for r, rule in enumerate(self.hazards[hid].road_consequence):
                # Rules are ordered, most specific first: the first whose cues appear decides
                # (a blocked road is a closure, not also a jam).
                cues = [h for h in road_hits if h.rule == r]
                target = rule.raises
                if not cues:
                    continue
                if target not in self.hazards or (target in results and results[target].terms):
                    break
                if rule.fallback and self.hazards[target].agency in heard:
                    break
                results[target] = _with_cues(HazardMatch(
                    hazard=target,
                    terms=_unique(h.phrase for h in cues),
                    spans=tuple(mt.span(h.start, h.end) for h in cues),
                    vetoed_by=(),
                    severity_cues=(),
                    via_road=True,
                ), [h for h in by_hazard[target].get(_SEV, []) if not denial.of_cue(h, all_exclusions)])
                heard.add(self.hazards[target].agency)
                break
        results = self._without_subsumed(results, include_vetoed)
        return sorted(results.values(), key=lambda m: self._order.get(m.hazard, len(self._order)))

    def _without_subsumed(self, results: dict[str, HazardMatch], include_vetoed: bool) -> dict[str, HazardMatch]:
        """Drop a hazard the post reports only as the consequence of another (explain keeps it,
        with no terms and the reason)."""
        reported = {k for k, m in results.items() if m.terms}
        out = dict(results)
        for hid in reported:
            by = [o for o in self.hazards[hid].subsumed_by if o in reported] if hid in self.hazards else []
            if not by:
                continue
            if include_vetoed:
                m = results[hid]
                out[hid] = HazardMatch(hid, (), (), _unique([*m.vetoed_by, *(f"subsumed by {o}" for o in by)]), m.severity_cues, m.via_road)
            else:
                del out[hid]
        return out

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


# Words that deny what follows: "tidak ada korban jiwa", "tidak berpotensi tsunami", "no flood".
# Chat spellings (gak, nggak, tak, tdk, tusing) arrive here as "tidak" via config/abbreviations.csv.
_NEGATORS = frozenset({"tidak", "bukan", "tanpa", "belum", "jangan", "no", "not", "never", "without"})
# Words that may stand between a negator and the hazard it denies ("tidak ada banjir", "belum
# pernah terjadi longsor", "tidak berpotensi tsunami"); "tidak hanya banjir" is no denial, so
# "hanya" is deliberately absent.
_DENIAL_FILLERS = frozenset({
    "ada", "terjadi", "terdapat", "pernah", "lagi", "sampai", "akan", "berpotensi", "menimbulkan",
    "memicu", "mengakibatkan", "menyebabkan", "mengalami", "terkena", "kena", "terdampak",
    "ditemukan", "dilaporkan", "laporan", "a", "any", "there", "is", "was", "sign", "of",
})
_FILLERS_MAX = 2
# A severity cue is denied by a negator up to this many words before it in the same clause
# ("belum ada laporan korban jiwa"), or by "nihil" right after it ("korban jiwa nihil").
_CUE_DENIAL_REACH = 4
_AFTER_DENIALS = frozenset({"nihil"})
_CLAUSE_BREAK = re.compile(r"[.,;:!?\n]")


class _Denial:
    """Negation in one post, so "tidak ada banjir" raises no flood and "tidak ada korban jiwa" or
    "tidak berpotensi tsunami" adds no severity. Operators still list explicit denials as
    exclusions; this catches the open-ended rest ("tidak terjadi longsor", "belum ada laporan
    korban") without a phrase per hazard and per verb."""

    def __init__(self, mt: MatchText) -> None:
        self.mt = mt
        self.starts = [tok.start for tok in mt.tokens]
        self.words = [tok.text for tok in mt.tokens]
        self.has_negator = any(w in _NEGATORS for w in self.words)

    def _tok(self, pos: int) -> int:
        return bisect_right(self.starts, pos) - 1

    def _same_clause(self, first_tok: int, pos: int) -> bool:
        """No clause punctuation in the original between token first_tok and MatchText pos."""
        tok = self.mt.tokens[first_tok]
        a = self.mt.span(tok.start, tok.end)[1]
        b = self.mt.span(pos, pos + 1)[0] if pos < len(self.mt.text) else len(self.mt.folded.original)
        return not _CLAUSE_BREAK.search(self.mt.folded.original, a, max(a, b))

    def _phrase(self, first: int, last: int) -> str:
        return " ".join(self.words[first:last + 1])

    def of_term(self, hit: "_Hit") -> str:
        """The denying words before a term ("tidak ada"), or "" when it is not denied."""
        if not self.has_negator:
            return ""
        t = self._tok(hit.start)
        if self.words[t] in _NEGATORS:
            return ""  # the phrase carries its own negation ("tidak bisa dilewati")
        k, fillers = t - 1, 0
        while k >= 0 and self.words[k] in _DENIAL_FILLERS and fillers < _FILLERS_MAX:
            k, fillers = k - 1, fillers + 1
        if k >= 0 and self.words[k] in _NEGATORS and self._same_clause(k, hit.start):
            return self._phrase(k, t - 1)
        return ""

    def of_cue(self, hit: "_Hit", exclusions: list["_Hit"]) -> bool:
        """A severity cue inside a denial or an exclusion does not count."""
        if any(e.start < hit.end and hit.start < e.end for e in exclusions):
            return True
        last = self._tok(hit.end - 1)
        if last + 1 < len(self.words) and self.words[last + 1] in _AFTER_DENIALS:
            return True
        if not self.has_negator:
            return False
        t = self._tok(hit.start)
        if self.words[t] in _NEGATORS:
            return False
        for k in range(t - 1, max(-1, t - 1 - _CUE_DENIAL_REACH), -1):
            if self.words[k] in _NEGATORS:
                return self._same_clause(k, hit.start)
        return False


def _with_cues(match: HazardMatch, cues: list["_Hit"]) -> HazardMatch:
    from dataclasses import replace

    return replace(match, severity_cues=_unique(h.phrase for h in sorted(cues, key=lambda h: h.start)))


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
