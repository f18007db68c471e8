"""The operators' commands for the config folder: `siaga check`, `siaga hazards check`,
`siaga backtest` and `siaga terms`."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from siaga.cli.common import CommandError, add_db, add_json, existing_database_url, print_json, sentence, whole_number


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    summary = "validate every file of a config folder before it goes live"
    check_all = sub.add_parser("check", parents=[parent], help=summary, description=(
        f"{sentence(summary)}: hazard lists, routing, sources, aliases, abbreviations, detection "
        "settings and roads, each by the code that loads it. Problems read file:line:column: field: "
        "message; exit 1 when the DAGs would refuse the folder."))
    check_all.add_argument("directory", nargs="?", type=Path, help="config folder (default: SIAGA_CONFIG_DIR or config/)")
    add_json(check_all, "errors and warnings")
    check_all.set_defaults(func=_cmd_check)

    summary = "the hazard keyword lists (config/hazards/)"
    hazards = sub.add_parser("hazards", parents=[parent], help=summary, description=(
        f"Commands for {summary}. `siaga hazards check` validates them alone; `siaga check` validates the whole folder."))
    hazards_sub = hazards.add_subparsers(dest="hazards_command", required=True, metavar="COMMAND")
    summary = "validate a folder of hazard lists"
    check = hazards_sub.add_parser("check", parents=[parent], help=summary, description=(
        f"{sentence(summary)}: every problem at file:line: field, warnings for terms that add nothing."))
    check.add_argument("directory", nargs="?", type=Path,
                       help="a folder of hazard lists, or a config folder (its hazards/); default: the config folder's hazards/")
    add_json(check, "errors and warnings")
    check.set_defaults(func=_cmd_hazards_check)

    summary = "replay stored posts with candidate hazard lists and say which alerts change, and why"
    backtest = sub.add_parser("backtest", parents=[parent], help=summary, description=(
        f"{sentence(summary)}. Compares the lists in force with a candidate config folder over a "
        "period of stored posts: alerts added, removed or changed, what each changed term matches, "
        "and scores against officers' verdicts."))
    backtest.add_argument("--config", type=Path, required=True, help="candidate config folder (with hazards/) or hazards folder")
    backtest.add_argument("--from", dest="start", type=when, required=True, help="period start, ISO 8601 (Bali time when no zone)")
    backtest.add_argument("--to", dest="end", type=when, required=True, help="period end, ISO 8601 (Bali time when no zone)")
    add_json(backtest, "the alerts added, removed and changed, with their reasons")
    add_db(backtest)
    backtest.set_defaults(func=_cmd_backtest)

    summary = "per hazard term: posts matched, incidents it fed, share officers called false alarms"
    terms = sub.add_parser("terms", parents=[parent], help=summary, description=(
        f"{sentence(summary)}, over the last N days, worst first: where to start tightening a list."))
    terms.add_argument("--days", type=whole_number(1, None), default=30, help="how many days back (default 30)")
    terms.add_argument("--until", type=when, default=None, help="end of the period, ISO 8601 (default: now; Bali time when no zone)")
    add_json(terms, "one object per term")
    add_db(terms)
    terms.set_defaults(func=_cmd_terms)


def when(value: str) -> datetime:
    from siaga.vocabulary import LOCAL_TZ

    from siaga.timelines.filters import EARLIEST, LATEST

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)
    # the pages' and exports' range: a period reaching year 1 or 9999 made the commands'
    # arithmetic on it fail with a traceback
    if not EARLIEST <= moment < LATEST:
        raise argparse.ArgumentTypeError(f"{value!r} is out of range: use a time from {EARLIEST.astimezone(LOCAL_TZ):%Y-%m-%dT%H:%M} to before "
                                         f"{LATEST.astimezone(LOCAL_TZ):%Y-%m-%dT%H:%M} (WITA)")
    return moment


def _cmd_check(args: argparse.Namespace) -> int:
    from siaga import config_check

    report = config_check.check_folder(args.directory)
    return config_check.print_report(report, as_json=args.json)


def _cmd_hazards_check(args: argparse.Namespace) -> int:
    from siaga.hazard_config import HazardConfigError, check_directory, default_hazard_dir, hazards_dir_of

    try:
        directory = hazards_dir_of(args.directory) if args.directory else default_hazard_dir()
    except HazardConfigError as exc:
        raise CommandError(str(exc)) from None
    report = check_directory(directory)
    if args.json:
        print_json({"directory": str(directory), "ok": not report.errors,
                    "errors": [str(e) for e in report.errors], "warnings": [str(w) for w in report.warnings]})
        return 1 if report.errors else 0
    for warning in report.warnings:
        print(f"warning: {warning}")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if report.errors:
        print(f"{directory}: {len(report.errors)} error(s); these lists would be refused", file=sys.stderr)
        return 1
    print(f"{directory}: ok ({len(report.warnings)} warning(s))")
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from siaga import backtest, detection_config
    from siaga.hazard_config import HazardConfigError

    try:
        backtest.check_range(args.start, args.end)
    except backtest.BacktestRangeError as exc:
        raise CommandError(str(exc), status=2) from None
    try:
        candidate = backtest.candidate_lists(args.config)
    except HazardConfigError as exc:
        raise CommandError(f"the candidate lists are invalid:\n{exc}") from None
    try:
        settings = detection_config.load()
        candidate_settings = backtest.candidate_settings(args.config, settings)
    except detection_config.DetectionConfigError as exc:
        raise CommandError(f"the detection settings are invalid:\n{exc}") from None
    url = existing_database_url(args)  # read, never created or migrated: `siaga db migrate` does that
    result = backtest.run_backtest(candidate, args.start, args.end, db_url=url, settings=settings,
                                   candidate_settings=candidate_settings)
    if result.held is not None:
        raise CommandError(backtest.format_result(result, args.start, args.end))
    if args.json:
        print_json(_backtest_doc(result, args.start, args.end))
    else:
        print(backtest.format_result(result, args.start, args.end))
    return 0


def _backtest_doc(result: Any, start: datetime, end: datetime) -> dict[str, Any]:
    """The backtest's verdict for scripts: each added, removed or changed alert episode with
    the reasons the text report gives."""
    def episode(e: Any) -> dict[str, Any]:
        return {"hazard": e.hazard, "level": e.level, "area_code": e.area_code, "area_name": e.area_name,
                "first": e.first.isoformat(), "last": e.last.isoformat(), "peak_posts": e.peak_observed,
                "peak_authors": e.peak_authors, "post_ids": sorted(e.post_ids), "why": result.why(e)}

    return {"from": start.isoformat(), "to": end.isoformat(), "posts": result.posts,
            "added": [episode(e) for e in result.added], "removed": [episode(e) for e in result.removed],
            "changed": [{"in_force": episode(a), "candidate": episode(b)} for a, b in result.changed]}


def _cmd_terms(args: argparse.Namespace) -> int:
    from siaga import hazard_lists, store, terms
    from siaga.vocabulary import local_iso

    until = args.until or store.utcnow()
    try:
        since = until - timedelta(days=args.days)
    except OverflowError:  # more days back than the calendar holds: every post there can be
        from siaga.timelines.filters import EARLIEST

        since = min(EARLIEST, until)
    url = existing_database_url(args)  # read, never created or migrated: `siaga db migrate` does that
    with store.session_scope(url) as session:
        stats = terms.term_report(session, since, until, hazard_lists.in_force(session, remember=False))
    if args.json:
        print(json.dumps({"since": local_iso(since), "until": local_iso(until), "terms": [s.as_dict() for s in stats]},
                         ensure_ascii=False, indent=2))
    else:
        print(terms.format_table(stats, since, until))
    return 0
