"""The hazard keyword lists as operators write them: loading and validating `config/hazards/*.yaml`.

Each `config/hazards/<id>.yaml` is one hazard: labels, the agency it routes to, terms, Indonesian
roots matched through affixes, exclusions that veto a match in context, severity cues, the traffic
consequence when the hazard sits on a road, the hazards that subsume it, and the spike-detection
settings. Operators change these files live, so a directory is validated as a whole before any of
it is used (JSON Schema in `hazard_schema.json`, then the checks a schema cannot express: file
name, empty phrases, roots, cross-references), and every error names the file, the line and the
field, all of them at once so an operator fixes them in one go. `siaga hazards check` prints the
same report, plus warnings about terms that add nothing (repeated, or vetoed wherever they occur),
count for several hazards, or are written as regular expressions (they are matched as literal
words). Errors read `file:line:column: field: message` (`siaga.config_errors`). The matcher built
from a valid directory is `siaga.hazards.HazardSet`; which lists are in force is
`siaga.hazard_lists`.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siaga.config_errors import (
    ConfigError, ConfigProblem, ConfigSyntaxError, Document, did_you_mean, present, read_yaml, schema_problems,
)
from siaga.normalise import fold, load_abbreviations, match_key, stem

if TYPE_CHECKING:
    import jsonschema

SCHEMA_PATH = Path(__file__).with_name("hazard_schema.json")
# Files that mark a config folder (the hazard lists then live in its hazards/).
CONFIG_FOLDER_FILES = ("routing.yaml", "sources.yaml", "detection.yaml")
_PHRASE_FIELDS = ("terms", "roots", "exclusions", "severity_cues")


class HazardConfigError(ConfigError):
    """A hazard file is invalid; the message names file, line, column and field of each error."""


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
    # category -> patterns of talk that is not an event (`siaga.non_event`)
    non_event: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Strikes an area, not a point (`areal`): a regency-wide spike reported from several
    # kecamatan is one regional incident (`siaga.regional`). A fire stays one per place.
    areal: bool = False
    # Felt by everyone at once where it strikes (`felt_authors`): this many distinct accounts
    # reporting it make it at least high severity (`severity.reach_severity`); None: not felt.
    felt_authors: int | None = None
    # `detection.incident_gap_minutes`: how far apart two spikes may be and still be one
    # incident, for a hazard that lasts days; None: config/detection.yaml's, as for the others.
    incident_gap_minutes: int | None = None
    source: str = ""

    def incident_gap(self, default: timedelta) -> timedelta:
        """This hazard's incident gap: its own when its file sets one, else `default` (the
        deployment's, config/detection.yaml). A drought reported over a day is one event; two
        floods three hours apart are two."""
        return default if self.incident_gap_minutes is None else timedelta(minutes=self.incident_gap_minutes)


@dataclass(frozen=True)
class CheckReport:
    """What `siaga hazards check` prints: errors refuse the whole set, warnings do not."""

    errors: list[ConfigProblem]
    warnings: list[ConfigProblem]

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


def hazards_dir_of(path: Path) -> Path:
    """The hazard lists a `--config` option means: a config folder's `hazards/`, or the folder
    itself when it holds the lists. Raises HazardConfigError, naming the path, for anything
    else (a file, a missing path, a config folder without hazards/)."""
    path = Path(path)
    if (path / "hazards").is_dir():
        return path / "hazards"
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder"
        raise HazardConfigError([ConfigProblem(str(path), 0, 0, "(directory)",
                                               f"{what}: give a config folder (with hazards/) or a folder of hazard lists")])
    if any((path / name).is_file() for name in CONFIG_FOLDER_FILES):
        raise HazardConfigError([ConfigProblem(str(path), 0, 0, "(directory)",
                                               "a config folder without hazards/: the hazard lists go in hazards/<id>.yaml")])
    return path


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def agencies() -> tuple[str, ...]:
    """The agencies a hazard list may name (the schema's `agency` enum): routing matches on them."""
    return tuple(_schema()["properties"]["agency"]["enum"])


def hazard_files(directory: Path) -> list[Path]:
    """The hazard lists of `directory`, in name order: every `*.yaml` / `*.yml` entry but a hidden
    one. A folder, a device, a pipe or a dangling link named flood.yaml is refused at its file by
    `read_config_text`, not skipped, which silently took flood out of the lists in force (Docker
    makes a folder of a bind-mounted file that is missing on the host). Editors keep their locks
    and copies beside the file being edited under a leading dot (Emacs' `.#flood.yaml`, a link to
    nowhere while a buffer is unsaved); read as lists, they refused the whole set, and the valid
    edits saved meanwhile with it. A hazard's file is named by its id, which never starts with a
    dot."""
    return sorted(p for p in Path(directory).iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))


def read_directory(directory: Path) -> HazardConfig:
    """Load and validate a directory of hazard files; raise HazardConfigError listing every
    error (file:line:column: field: ...) so an operator fixes them all in one go."""
    report, loaded, abbreviations = _check(Path(directory))
    if report.errors:
        raise HazardConfigError(report.errors)
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
# Loading with positions
# ------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # imported when lists are validated, not by every process that tags

    return jsonschema.Draft202012Validator(_schema())


@dataclass
class _Loaded:
    hazard: Hazard | None
    data: dict[str, Any] | None
    doc: Document | None
    errors: list[ConfigProblem] = field(default_factory=list)
    text: str = ""


def _load_file(path: Path) -> _Loaded:
    try:
        doc = read_yaml(path)
    except ConfigSyntaxError as exc:
        return _Loaded(None, None, None, [exc.problem])
    if doc.data is None:
        return _Loaded(None, None, doc, [doc.at((), "file is empty")])
    errors = schema_problems(doc, _validator())
    if errors:
        return _Loaded(None, doc.data if isinstance(doc.data, dict) else None, doc, errors)
    errors = _semantic_errors(path, doc)
    if errors:
        return _Loaded(None, doc.data, doc, errors)
    return _Loaded(_hazard_of(doc.data, str(path)), doc.data, doc, text=doc.text)


def _semantic_errors(path: Path, doc: Document) -> list[ConfigProblem]:
    """What one schema-valid file can still get wrong: checks JSON Schema cannot express."""
    data = doc.data
    errors = []
    if data["id"] != path.stem:
        errors.append(doc.at(("id",), f"'{data['id']}' must equal the file name '{path.stem}'"))
    for name in _PHRASE_FIELDS:
        for i, phrase in enumerate(data.get(name, [])):
            if not fold(phrase).text:
                errors.append(doc.at((name, i), f"{phrase!r} has no letters or digits"))
    for i, phrase in enumerate(data.get("exclusions", [])):
        if "*" in phrase and (phrase.strip().startswith("*") or phrase.strip().endswith("*")):
            errors.append(doc.at(("exclusions", i), f"{phrase!r}: '*' stands for one word between words, not at either end"))
    for category, phrases in data.get("non_event", {}).items():
        for i, phrase in enumerate(phrases):
            if not fold(phrase).text:
                errors.append(doc.at(("non_event", category, i), f"{phrase!r} has no letters or digits"))
    for r, rule in enumerate(data.get("road_consequence", [])):
        for i, phrase in enumerate(rule["cues"]):
            if not fold(phrase).text:
                errors.append(doc.at(("road_consequence", r, "cues", i), f"{phrase!r} has no letters or digits"))
    for i, root in enumerate(data.get("roots", [])):
        folded = fold(root).text
        if " " in folded or stem(folded) != folded:
            errors.append(doc.at(("roots", i), f"{root!r} must be one Indonesian root word (its stem is {stem(folded)!r})"))
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
        non_event=tuple((category, tuple(phrases)) for category, phrases in data.get("non_event", {}).items()),
        areal=bool(data.get("areal", False)),
        felt_authors=data.get("felt_authors"),
        incident_gap_minutes=det.get("incident_gap_minutes"),
        source=where,
    )


def _abbreviations_for(directory: Path) -> dict[str, str]:
    """The abbreviation table next to the hazard directory, else the deployment's one: a
    candidate directory (`siaga backtest --config`) brings its own table with it. Anything at
    the path counts as present, as `siaga check` reads it: a folder there is refused with its
    path (ConfigError) rather than skipped, which compiled the lists without the table and made
    that the last good set."""
    from siaga.settings import config_dir

    for candidate in (directory.parent / "abbreviations.csv", config_dir() / "abbreviations.csv"):
        if present(candidate):
            return load_abbreviations(candidate)
    return {}


# ------------------------------------------------------------------------------------------
# A directory as a whole
# ------------------------------------------------------------------------------------------


def _check(directory: Path) -> tuple[CheckReport, list[_Loaded], dict[str, str]]:
    errors: list[ConfigProblem] = []
    warnings: list[ConfigProblem] = []
    directory = Path(directory)
    if not directory.is_dir():
        return CheckReport([ConfigProblem(str(directory), 0, 0, "(directory)", "not a directory")], []), [], {}
    files = hazard_files(directory)
    if not files:
        errors.append(ConfigProblem(str(directory), 0, 0, "(directory)", "no *.yaml hazard files"))
    try:
        abbreviations = _abbreviations_for(directory)
    except ConfigError as exc:
        errors.extend(exc.problems)
        abbreviations = {}
    loaded = [_load_file(p) for p in files]
    for item in loaded:
        errors.extend(item.errors)
    good = [item for item in loaded if item.hazard]
    errors.extend(_duplicate_ids(good))
    errors.extend(_reference_errors(good, loaded))
    warnings.extend(_term_warnings(good, abbreviations))
    warnings.extend(_regex_warnings(good, abbreviations))
    return CheckReport(errors, sorted(warnings)), loaded, abbreviations


def _duplicate_ids(good: list[_Loaded]) -> list[ConfigProblem]:
    """One file per hazard: flood.yaml beside a stale flood.yml both passed (the id matches each
    file's name), and the one read last silently replaced the other, edits and all."""
    errors: list[ConfigProblem] = []
    first: dict[str, str] = {}
    for item in good:
        hz, doc = item.hazard, item.doc
        assert hz is not None and doc is not None
        if hz.id in first:
            errors.append(doc.at(("id",), f"hazard '{hz.id}' is also defined by {first[hz.id]}: keep one file per hazard"))
        else:
            first[hz.id] = Path(hz.source).name
    return errors


def _reference_errors(good: list[_Loaded], loaded: list[_Loaded]) -> list[ConfigProblem]:
    """Road consequences and subsumptions must name hazards that exist, not the hazard itself,
    and a subsuming hazard must reach the same agency, or that agency would stop hearing."""
    errors: list[ConfigProblem] = []
    ids = {item.hazard.id for item in good if item.hazard}
    for item in good:
        hz, doc = item.hazard, item.doc
        assert hz is not None and doc is not None
        for r, rule in enumerate(hz.road_consequence):
            where = ("road_consequence", r, "raises")
            if rule.raises not in ids and not any(i.data and i.data.get("id") == rule.raises for i in loaded):
                errors.append(doc.at(where, f"unknown hazard '{rule.raises}'{did_you_mean(rule.raises, ids)}"))
            if rule.raises == hz.id:
                errors.append(doc.at(where, "a hazard cannot raise itself"))
    agencies = {item.hazard.id: item.hazard.agency for item in good if item.hazard}
    subsumers = {item.hazard.id: item.hazard.subsumed_by for item in good if item.hazard}
    for item in good:
        hz, doc = item.hazard, item.doc
        assert hz is not None and doc is not None
        for i, other in enumerate(hz.subsumed_by):
            where = ("subsumed_by", i)
            if other not in agencies:
                errors.append(doc.at(where, f"unknown hazard '{other}'{did_you_mean(other, agencies)}"))
            elif other == hz.id:
                errors.append(doc.at(where, "a hazard cannot subsume itself"))
            elif agencies[other] != hz.agency:
                errors.append(doc.at(where, f"'{other}' goes to {agencies[other]}, not {hz.agency}: that agency would not hear"))
            else:
                loop = _subsumption_path(subsumers, other, hz.id)
                if loop:
                    cycle = " → ".join([hz.id, *loop])
                    errors.append(doc.at(where, f"a loop ({cycle}): a post that finds them all reports none of them"))
    return errors


def _subsumption_path(subsumers: dict[str, tuple[str, ...]], start: str, goal: str) -> list[str]:
    """The hazards from `start` to `goal` following subsumed_by, or [] when `goal` is not reached."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop()
        if path[-1] == goal:
            return path
        for nxt in subsumers.get(path[-1], ()):
            if nxt not in seen:
                seen.add(nxt)
                paths.append(path + [nxt])
    return []


def _term_warnings(good: list[_Loaded], abbreviations: dict[str, str]) -> list[ConfigProblem]:
    """Terms that add nothing: repeated in one file, vetoed wherever they occur by one of their
    own exclusions, or listed under several hazards (a post would count for each)."""
    warnings = []
    owners: dict[str, list[tuple[str, ConfigProblem]]] = defaultdict(list)
    for item in good:
        hz, doc = item.hazard, item.doc
        assert hz is not None and doc is not None
        seen: dict[str, int] = {}
        # folded once per hazard, not once per term and exclusion
        exclusion_keys = [(j, exc, match_key(exc, abbreviations)) for j, exc in enumerate(hz.exclusions) if "*" not in exc]
        for i, term in enumerate(hz.terms):
            key = match_key(term, abbreviations)
            if key in seen:
                warnings.append(doc.at(("terms", i), f"{term!r} repeats terms[{seen[key]}]"))
                continue
            seen[key] = i
            owners[key].append((hz.id, doc.at(("terms", i), "")))
            padded = f" {key} "
            for j, exc, ekey in exclusion_keys:
                if f" {ekey} " in padded:
                    warnings.append(doc.at(("terms", i), f"{term!r} is shadowed by exclusions[{j}] {exc!r} (every occurrence is vetoed)"))
    for key, where in owners.items():
        if len(where) > 1:
            names = ", ".join(f"{h} ({at.file}:{at.line})" for h, at in where)
            first = where[0][1]
            warnings.append(ConfigProblem(first.file, first.line, first.column, "terms",
                                          f"{key!r} is listed under {len(where)} hazards: {names}"))
    return warnings


# ------------------------------------------------------------------------------------------
# Phrases written as regular expressions
# ------------------------------------------------------------------------------------------

_GROUP = re.compile(r"\(([^()]*\|[^()]*)\)")
_REGEX_SIGNS = (
    (re.compile(r"\|"), "'|'"),
    (re.compile(r"\.[*+?]"), "'.*'"),
    (re.compile(r"\[[^\]]*\]"), "a character class '[...]'"),
    (re.compile(r"\\[a-zA-Z]"), "an escape like '\\b' or '\\d'"),
    (re.compile(r"[)\]][*+?]|\w[+?]|\{\d+(,\d*)?\}"), "a repeat ('+', '?', '{n}')"),
    (re.compile(r"^\s*\^|\$\s*$"), "an anchor '^' or '$'"),
)


def _regex_advice(phrase: str, field_name: str, abbreviations: dict[str, str]) -> str | None:
    """Why a phrase that looks like a regular expression does not do what it seems, and how to
    say it; None for a plain phrase. Phrases are matched as literal words (an automaton, not
    regexes: see hazards.py), so "(air|banjir) bah" matches only the words "air banjir bah"."""
    signs = [name for rx, name in _REGEX_SIGNS if rx.search(phrase)]
    if "*" in phrase and field_name != "exclusions" and not any("'.*'" == s for s in signs):
        signs.append("'*'")
    if not signs:
        return None
    literal = match_key(phrase, abbreviations)
    advice = []
    if "'|'" in signs:
        alternatives = _alternatives(phrase)
        advice.append("list each alternative as its own phrase" + (f" ({', '.join(map(repr, alternatives))})" if alternatives else ""))
    if "'.*'" in signs or "'*'" in signs:
        if field_name == "exclusions":
            advice.append("in exclusions '*' stands for exactly one word ('harga * longsor')")
        else:
            advice.append("words in between are not skipped: list the phrases people write, or veto with an "
                          "exclusion where '*' stands for exactly one word ('harga * longsor')")
    if any(s.startswith(("a character class", "a repeat", "an escape")) for s in signs):
        advice.append("numbers and letters match only as written: list the forms people write ('50 cm', '1 meter')")
    if any(s.startswith("an anchor") for s in signs):
        advice.append("a phrase matches anywhere in a post, always as whole words")
    where = f"only the words {literal!r}" if literal else "nothing"
    return f"{phrase!r} looks like a regular expression ({', '.join(signs)}) but is matched as literal words: it matches {where}; {'; '.join(advice)}"


def _alternatives(phrase: str) -> list[str]:
    """"(air|banjir) bah" -> ["air bah", "banjir bah"]; "a|b" -> ["a", "b"] (simple cases only)."""
    group = _GROUP.search(phrase)
    if group:
        return [" ".join((phrase[:group.start()] + alt + phrase[group.end():]).split()) for alt in group.group(1).split("|")][:4]
    if "(" not in phrase:
        return [" ".join(alt.split()) for alt in phrase.split("|") if alt.strip()][:4]
    return []


def _regex_warnings(good: list[_Loaded], abbreviations: dict[str, str]) -> list[ConfigProblem]:
    warnings = []
    for item in good:
        doc = item.doc
        assert doc is not None and item.data is not None
        fields: list[tuple[tuple[Any, ...], str, str]] = [
            ((name, i), name, phrase) for name in _PHRASE_FIELDS for i, phrase in enumerate(item.data.get(name, []))
        ]
        fields += [(("road_consequence", r, "cues", i), "cues", phrase)
                   for r, rule in enumerate(item.data.get("road_consequence", [])) for i, phrase in enumerate(rule["cues"])]
        for path, name, phrase in fields:
            advice = _regex_advice(phrase, name, abbreviations)
            if advice:
                warnings.append(doc.at(path, advice))
    return warnings
