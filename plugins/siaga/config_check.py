"""`siaga check [CONFIG_DIR]`: a whole config folder checked before it goes live.

The running DAGs read several files from one folder (hazard lists, routing, sources, aliases,
abbreviations, detection settings) and the hand-kept roads from the geodata folder; a typo in
any of them shows only when the task that reads it fails, at 3 a.m. Here every file is checked
by the same code that loads it at run time (its schema and then the checks a schema cannot
express), so a folder the check passes is a folder the DAGs load, and every problem of every
file is listed at once as `file:line:column: field: message`. A few checks span files: a route
matching a hazard that no list defines would never fire.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from siaga import detection_config, geodata, hazard_config, settings
from siaga.config_errors import ConfigError, ConfigProblem, did_you_mean, file_problem, present, read_yaml
from siaga.normalise import key, load_abbreviations
from siaga.routing import Router, RoutingConfigError
from siaga.sources import InboxSource, ReplaySource, check_sources_file

HAZARDS = "hazards"
ROUTING = "routing.yaml"
SOURCES = "sources.yaml"
ALIASES = "aliases.yaml"
ABBREVIATIONS = "abbreviations.csv"
DETECTION = detection_config.FILE_NAME


@dataclass
class FolderReport:
    """What `siaga check` prints: errors refuse the folder, warnings do not."""

    directory: Path
    checked: list[str] = field(default_factory=list)
    errors: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def is_config_folder(path: Path) -> bool:
    """A folder laid out like config/ (hazard lists in hazards/, or the files beside them)."""
    path = Path(path)
    return (path / HAZARDS).is_dir() or any((path / name).is_file() for name in hazard_config.CONFIG_FOLDER_FILES)


def check_folder(directory: Path | None = None, geodata_dir: Path | None = None) -> FolderReport:
    """Every file of the config folder `directory` (default: the deployment's) and the roads
    file (the folder's own roads.yaml if it has one, else the geodata folder's)."""
    directory = Path(directory or settings.config_dir())
    geodata_dir = Path(geodata_dir or settings.geodata_dir())
    report = FolderReport(directory)
    if not directory.is_dir():
        report.errors.append(ConfigProblem(str(directory), 0, 0, "(directory)", "not a directory"))
        return report
    if not is_config_folder(directory):
        report.errors.append(ConfigProblem(
            str(directory), 0, 0, "(directory)",
            f"not a config folder (no {HAZARDS}/, {', '.join(hazard_config.CONFIG_FOLDER_FILES)}); for a folder of hazard lists alone, "
            "run `siaga hazards check DIR`"))
        return report
    hazard_ids = _check_hazards(directory / HAZARDS, report)
    _check_routing(directory / ROUTING, report, hazard_ids)
    _check_sources(directory / SOURCES, report)
    _check_optional(directory / ABBREVIATIONS, report, load_abbreviations)
    _check_optional(directory / DETECTION, report, detection_config.load)
    villages = geodata.load_villages(geodata_dir / geodata.VILLAGES_FILE)
    districts = geodata.load_districts(geodata_dir / geodata.DISTRICTS_FILE)
    _check_optional(directory / ALIASES, report, lambda p: geodata.load_alias_config(p, villages, districts))
    roads = directory / geodata.ROADS_FILE
    if not roads.is_file():
        roads = geodata_dir / geodata.ROADS_FILE
    place_keys = {key(v.name) for v in villages} | {key(d) for d in districts}
    _check_optional(roads, report, lambda p: geodata.load_road_yaml(p, villages, place_keys))
    # A file more than one loader reads (abbreviations.csv: the hazard lists' and its own
    # check) reports the same problem from each: every problem once.
    report.errors = sorted(dict.fromkeys(report.errors), key=_order)
    report.warnings = sorted(dict.fromkeys(report.warnings), key=_order)
    return report


def _order(problem: ConfigProblem) -> tuple[str, int, int]:
    return problem.file, problem.line, problem.column


def _check_hazards(directory: Path, report: FolderReport) -> set[str]:
    """The hazard lists; returns the hazard ids the files define (valid or not)."""
    report.checked.append(f"{HAZARDS}/")
    hazards = hazard_config.check_directory(directory)
    report.errors.extend(hazards.errors)
    report.warnings.extend(hazards.warnings)
    return {p.stem for p in hazard_config.hazard_files(directory)} if directory.is_dir() else set()


def _check_routing(path: Path, report: FolderReport, hazard_ids: set[str]) -> None:
    if not _present(path, report):
        return
    try:
        Router.load(path)
    except RoutingConfigError as exc:
        report.errors.extend(exc.problems)
        return
    if hazard_ids:
        report.warnings.extend(_unknown_hazard_routes(path, hazard_ids))


def _unknown_hazard_routes(path: Path, hazard_ids: set[str]) -> list[ConfigProblem]:
    """Routes matching `hazard: X` for an X no list defines: they would never fire."""
    doc = read_yaml(path)
    out: list[ConfigProblem] = []

    def walk(node: dict, where: tuple) -> None:
        wanted = (node.get("match") or {}).get("hazard")
        if wanted is not None and wanted not in hazard_ids:
            out.append(doc.at(where + ("match", "hazard"),
                              f"no hazard list defines {wanted!r}: this route never matches{did_you_mean(wanted, hazard_ids)}"))
        for i, child in enumerate(node.get("routes") or []):
            walk(child, where + ("routes", i))

    walk(doc.data["route"], ("route",))
    return out


def _check_sources(path: Path, report: FolderReport) -> None:
    if not _present(path, report):
        return
    problems, built = check_sources_file(path)
    report.errors.extend(problems)
    report.warnings.extend(_missing_source_files(path, built))


def _missing_source_files(path: Path, built: list[Any]) -> list[ConfigProblem]:
    """Enabled sources whose file or folder is not there now: a replay file's absence fails
    every ingest run; an inbox folder may be a volume mounted later, so both are warnings."""
    if not built:
        return []
    doc = read_yaml(path)
    index = {entry.get("name"): i for i, entry in enumerate(doc.data.get("sources") or [])}
    out = []
    for source in built:
        where = ("sources", index.get(source.name, 0), "path")
        if isinstance(source, ReplaySource) and not source.path.is_file():
            out.append(doc.at(where, f"no replay file at {source.path}: every ingest run will fail on {source.name!r}"))
        elif isinstance(source, InboxSource) and not source.folder.is_dir():
            out.append(doc.at(where, f"no folder at {source.folder}: {source.name!r} reads nothing until it exists "
                                     "(the workers and the triggerer must all see it)"))
    return out


def _present(path: Path, report: FolderReport) -> bool:
    """Whether anything is at `path` (a folder, a device, a dangling link too: the loader
    refuses it, as the DAGs' does); else the file is reported missing."""
    report.checked.append(path.name)
    if present(path):
        return True
    report.errors.append(file_problem(path, "missing: the DAGs read it from this folder"))
    return False


def _check_optional(path: Path, report: FolderReport, load: Callable[[Path], Any]) -> None:
    """A file the deployment can run without (defaults apply); checked when present. Present
    means as the loaders read it: anything at the path, a directory or a broken link too, is
    loaded (and refused)."""
    if not present(path):
        return
    report.checked.append(path.name if path.parent == report.directory else str(path))
    try:
        load(path)
    except ConfigError as exc:
        report.errors.extend(exc.problems)


def print_report(report: FolderReport, as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Warnings on stdout, errors on stderr (as `siaga hazards check`), or one JSON document on
    stdout; the exit status: 1 when the folder would be refused."""
    out, err = out or sys.stdout, err or sys.stderr
    if as_json:
        def rows(problems: list[ConfigProblem]) -> list[dict[str, object]]:
            return [asdict(p) for p in problems]

        json.dump({"directory": str(report.directory), "ok": report.ok, "checked": report.checked,
                   "errors": rows(report.errors), "warnings": rows(report.warnings)}, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0 if report.ok else 1
    for warning in report.warnings:
        print(f"warning: {warning}", file=out)
    for error in report.errors:
        print(f"error: {error}", file=err)
    checked = f" (checked {', '.join(report.checked)})" if report.checked else ""
    if report.errors:
        files = len({e.file for e in report.errors})
        print(f"{report.directory}: {len(report.errors)} error(s) in {files} file(s); this config would be refused{checked}", file=err)
        return 1
    print(f"{report.directory}: ok, {len(report.warnings)} warning(s){checked}", file=out)
    return 0
