"""The hazard keyword lists as operators write them: loading and validating `config/hazards/*.yaml`.

Each `config/hazards/<id>.yaml` is one hazard: labels, the agency it routes to, terms, Indonesian
roots matched through affixes, exclusions that veto a match in context, severity cues, the traffic
consequence when the hazard sits on a road, the hazards that subsume it, and the spike-detection
settings. Operators change these files live, so a directory is validated as a whole before any of
it is used (JSON Schema in `hazard_schema.json`, then the checks a schema cannot express: file
name, empty phrases, roots, cross-references), and every error names the file, the line and the
field, all of them at once so an operator fixes them in one go. `siaga hazards check` prints the
same report, plus warnings about terms that add nothing (repeated, or vetoed wherever they occur)
or count for several hazards. The matcher built from a valid directory is
`siaga.hazards.HazardSet`; which lists are in force is `siaga.hazard_lists`.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import jsonschema
import yaml

from siaga.config_errors import dotted
from siaga.normalise import fold, load_abbreviations, match_key, stem

SCHEMA_PATH = Path(__file__).with_name("hazard_schema.json")
_PHRASE_FIELDS = ("terms", "roots", "exclusions", "severity_cues")


class HazardConfigError(ValueError):
    """A hazard file is invalid; the message names file, line and field."""


@dataclass(frozen=True)
class RoadRule:
    """One `road_consequence` rule: the hazard this one raises when its cues appear in the post.
    Rules are ordered; the first whose cues appear decides."""

    raises: str
    cues: tuple[str, ...]
    # A fallback rule ("the hazard is on a road") fires only when the post has no direct match for
    # a hazard of the raised hazard's agency: Dishub must hear, but once a jam or an accident is
    # reported in so many words, a guessed consequence would only add noise.
    fallback: bool = False


@dataclass(frozen=True)
class Hazard:
    """One hazard file, validated; `source` is its path, for messages."""

    id: str
    label_id: str
    label_en: str
    agency: str
    cap_category: str  # CAP 1.2 <category>: exports read it here, so a new hazard needs no code
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
class CheckReport:
    """What `siaga hazards check` prints: errors refuse the whole set, warnings do not."""

    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class HazardConfig:
    """A valid directory of hazard files, ready to compile into a matcher."""

    hazards: dict[str, Hazard]  # in file-name order: the order classify reports hazards in
    abbreviations: dict[str, str]
    # (file name, the file's data as written): what the lists' fingerprint is taken over.
    files: list[tuple[str, dict[str, Any]]]
    # file name -> the text that was validated, read once: what is kept as the last good set (a
    # second read could catch an operator's next, unvalidated save).
    texts: dict[str, str]


def default_hazard_dir() -> Path:
    """SIAGA_CONFIG_DIR (default: the repository's config/) / "hazards"."""
    from siaga.settings import config_dir

    return config_dir() / "hazards"


def read_directory(directory: Path) -> HazardConfig:
    """Load and validate a directory of hazard files; raise HazardConfigError listing every
    error (file:line: field ...) so an operator fixes them all in one go."""
    report, loaded, abbreviations = _check(Path(directory))
    if report.errors:
        raise HazardConfigError("\n".join(report.errors))
    good = [item for item in loaded if item.hazard]
    return HazardConfig(
        hazards={item.hazard.id: item.hazard for item in good if item.hazard},
        abbreviations=abbreviations,
        files=[(Path(item.hazard.source).name, item.data) for item in good if item.hazard and item.data],
        texts={Path(item.hazard.source).name: item.text for item in good if item.hazard},
    )


def check_directory(directory: Path) -> CheckReport:
    """Validate every hazard file in `directory` (for `siaga hazards check [DIR]`)."""
    report, _, _ = _check(Path(directory))
    return report


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


def _fields_of(err: jsonschema.ValidationError) -> list[Path_]:
    """The fields an error is about: a missing required field is named itself, not only the
    mapping it is missing from, so the operator reads "field cap_category" and knows what to add."""
    epath = tuple(err.absolute_path)
    if err.validator == "required" and isinstance(err.instance, dict):
        return [epath + (name,) for name in err.validator_value if name not in err.instance]
    return [epath]


def _dotted(path: Sequence[Any]) -> str:
    return dotted(path) or "(top level)"


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
    text: str = ""


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
        errors.extend(f"{where}:{_line_of(lines, epath)}: field {_dotted(path)}: {err.message}"
                      for path in _fields_of(err))
    if errors:
        return _Loaded(None, data, lines, errors)
    errors = _semantic_errors(path, data, lines)
    if errors:
        return _Loaded(None, data, lines, errors)
    return _Loaded(_hazard_of(data, where), data, lines, text=text)


def _semantic_errors(path: Path, data: dict[str, Any], lines: dict[Path_, int]) -> list[str]:
    """What one schema-valid file can still get wrong: checks JSON Schema cannot express."""
    where = str(path)
    errors = []
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
    return errors


def _hazard_of(data: dict[str, Any], where: str) -> Hazard:
    det = data["detection"]
    return Hazard(
        id=data["id"],
        label_id=data["labels"]["id"],
        label_en=data["labels"]["en"],
        agency=data["agency"],
        cap_category=data["cap_category"],
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


def _abbreviations_for(directory: Path) -> dict[str, str]:
    """The abbreviation table next to the hazard directory, else the deployment's one: a
    candidate directory (`siaga backtest --config`) brings its own table with it."""
    from siaga.settings import config_dir

    for candidate in (directory.parent / "abbreviations.csv", config_dir() / "abbreviations.csv"):
        if candidate.is_file():
            return load_abbreviations(candidate)
    return {}


# ------------------------------------------------------------------------------------------
# A directory as a whole
# ------------------------------------------------------------------------------------------


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
        abbreviations = _abbreviations_for(directory)
    except (OSError, ValueError) as exc:
        errors.append(f"{exc}")
        abbreviations = {}
    loaded = [_load_file(p) for p in files]
    for item in loaded:
        errors.extend(item.errors)
    good = [item for item in loaded if item.hazard]
    errors.extend(_reference_errors(good, loaded))
    warnings.extend(_term_warnings(good, abbreviations))
    return CheckReport(errors, warnings), loaded, abbreviations


def _reference_errors(good: list[_Loaded], loaded: list[_Loaded]) -> list[str]:
    """Road consequences and subsumptions must name hazards that exist, not the hazard itself,
    and a subsuming hazard must reach the same agency, or that agency would stop hearing."""
    errors: list[str] = []
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
    return errors


def _term_warnings(good: list[_Loaded], abbreviations: dict[str, str]) -> list[str]:
    """Terms that add nothing: repeated in one file, vetoed wherever they occur by one of their
    own exclusions, or listed under several hazards (a post would count for each)."""
    warnings = []
    owners: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for item in good:
        hz = item.hazard
        assert hz is not None
        seen: dict[str, int] = {}
        for i, term in enumerate(hz.terms):
            key = match_key(term, abbreviations)
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
                ekey = match_key(exc, abbreviations)
                if f" {ekey} " in padded:
                    warnings.append(
                        f"{hz.source}:{line}: field terms[{i}]: {term!r} is shadowed by exclusions[{j}] {exc!r} (every occurrence is vetoed)"
                    )
    for key, where in owners.items():
        if len(where) > 1:
            names = ", ".join(f"{h} ({src}:{line})" for h, src, line in where)
            warnings.append(f"{where[0][1]}:{where[0][2]}: field terms: {key!r} is listed under {len(where)} hazards: {names}")
    return warnings
