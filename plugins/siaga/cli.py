"""The `siaga` command: what operators run by hand.

    siaga tag [--explain]          tag JSON Lines posts from stdin (the measured contract)
    siaga hazards check [DIR]      validate keyword lists before they go live
    siaga backtest --config DIR --from T --to T
                                   alerts candidate lists would have added/removed/changed
    siaga db migrate               create or upgrade the database
    siaga scenario                 print the synthetic demo scenario (JSON Lines)
    siaga demo                     run the DAGs over the demo scenario against a fake Slack
    siaga outbox [--retry ID]      delivery state, dead letters, re-queue a dead letter
    siaga quarantine               bad input kept by the sources: counts and the latest
    siaga export ...               incident exports: CSV, GeoJSON, CAP 1.2 (see `siaga export -h`)
    siaga slack-listen             handle the alert buttons (Socket Mode; see `siaga slack-listen -h`)
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="siaga", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    tag = sub.add_parser("tag", help="tag JSON Lines posts from standard input")
    tag.add_argument("--explain", action="store_true", help="print why, for a person, instead of JSON")
    tag.add_argument("--config", type=Path, help="hazard lists directory (default: config/hazards)")
    tag.set_defaults(func=_cmd_tag)

    hazards = sub.add_parser("hazards", help="hazard keyword lists")
    hazards_sub = hazards.add_subparsers(dest="hazards_command", required=True)
    check = hazards_sub.add_parser("check", help="validate a directory of hazard lists")
    check.add_argument("directory", nargs="?", type=Path)
    check.set_defaults(func=_cmd_hazards_check)

    backtest = sub.add_parser("backtest", help="replay stored posts with candidate hazard lists and diff the alerts")
    backtest.add_argument("--config", type=Path, required=True, help="candidate config directory (with hazards/) or hazards directory")
    backtest.add_argument("--from", dest="start", type=_when, required=True, help="ISO 8601 time (Bali time when no zone)")
    backtest.add_argument("--to", dest="end", type=_when, required=True, help="ISO 8601 time (Bali time when no zone)")
    backtest.set_defaults(func=_cmd_backtest)

    db = sub.add_parser("db", help="database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="create or upgrade the schema").set_defaults(func=_cmd_db_migrate)

    sub.add_parser("scenario", help="print the synthetic demo scenario").set_defaults(func=_cmd_scenario)

    demo = sub.add_parser("demo", help="run the DAGs over the demo scenario against a fake Slack")
    demo.add_argument("--steps", type=int, default=4, help="replay clock steps through the scenario")
    demo.set_defaults(func=_cmd_demo)

    outbox = sub.add_parser("outbox", help="delivery state and dead letters")
    outbox.add_argument("--retry", type=int, metavar="ID", help="re-queue a dead-lettered message")
    outbox.set_defaults(func=_cmd_outbox)

    sub.add_parser("quarantine", help="bad input the sources kept: counts per source and the latest").set_defaults(func=_cmd_quarantine)

    sub.add_parser("export", help="export incidents (CSV, GeoJSON, CAP 1.2); `siaga export -h` for its options")
    sub.add_parser("slack-listen", help="handle the alert buttons through Slack Socket Mode; `siaga slack-listen -h`")

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:  # these own parsers take every option after the word
        from siaga.exports import export_main

        return export_main(argv[1:])
    if argv[:1] == ["slack-listen"]:
        from siaga import socketmode

        return socketmode.main(argv[1:])
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _cmd_tag(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    from siaga.hazards import HazardSet, default_hazard_dir
    from siaga.tagging import Tagger

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    tagger = Tagger(HazardSet.load(args.config or default_hazard_dir()))
    failures = 0
    for line_no, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        try:
            post = _read_post(line)
        except ValueError as exc:
            failures += 1
            print(f"siaga tag: stdin line {line_no}: {exc}", file=sys.stderr)
            stdout.write(json.dumps({"id": None, "error": f"line {line_no}: {exc}"}) + "\n")
            continue
        result = tagger.tag(post["text"], lat=post.get("lat"), lon=post.get("lon"))
        if args.explain:
            stdout.write(_explain(post, result, tagger) + "\n")
        else:
            stdout.write(json.dumps(result.to_contract(post.get("id")), ensure_ascii=False) + "\n")
        stdout.flush()
    return 1 if failures else 0


def _read_post(line: str) -> dict[str, Any]:
    try:
        post = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(post, dict) or not isinstance(post.get("text"), str):
        raise ValueError("expected an object with a string field 'text'")
    for key in ("lat", "lon"):
        if post.get(key) is not None:
            try:
                post[key] = float(post[key])
            except (TypeError, ValueError):
                raise ValueError(f"field '{key}' is not a number") from None
    return post


def _explain(post: dict[str, Any], result: Any, tagger: Any) -> str:
    lines = [f"post {post.get('id')!r}: {post['text']}"]
    explained = tagger.hazards.explain(post["text"])
    if not explained:
        lines.append("  hazards: none")
    for match in explained:
        verdict = "MATCH" if match.hazard in {m.hazard for m in result.hazards} else "vetoed"
        lines.append(f"  hazard {match.hazard}: {verdict}")
        lines.append(f"    terms: {', '.join(match.terms) or '-'}")
        if match.vetoed_by:
            lines.append(f"    vetoed by: {', '.join(match.vetoed_by)}")
        if match.severity_cues:
            lines.append(f"    severity cues: {', '.join(match.severity_cues)}")
        if match.via_road:
            lines.append("    added as the traffic consequence of a hazard on a road")
    if not result.geotag.places:
        lines.append("  places: none")
    for place in result.geotag.places:
        where = ", ".join(x for x in (place.village, place.district) if x) or "-"
        flag = " (low confidence)" if place.low_confidence else ""
        span = post["text"][place.span[0]:place.span[1]] if place.span else "coordinates"
        lines.append(
            f"  place {place.kind} {place.name!r} [{where}] from {span!r}: confidence {place.confidence:.2f}{flag}; {place.reason}"
        )
    lines.append(f"  in region: {'yes' if result.geotag.in_region else 'no'}")
    return "\n".join(lines)


def _cmd_hazards_check(args: argparse.Namespace) -> int:
    from siaga.hazards import check_directory, default_hazard_dir

    directory = args.directory or default_hazard_dir()
    report = check_directory(directory)
    for warning in report.warnings:
        print(f"warning: {warning}")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if report.errors:
        print(f"{directory}: {len(report.errors)} error(s); these lists would be refused", file=sys.stderr)
        return 1
    print(f"{directory}: ok ({len(report.warnings)} warning(s))")
    return 0


def _when(value: str) -> datetime:
    from siaga.vocabulary import LOCAL_TZ

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from siaga import backtest, store
    from siaga.hazards import HazardConfigError

    try:
        candidate = backtest.candidate_lists(args.config)
    except HazardConfigError as exc:
        print(f"siaga backtest: the candidate lists are invalid:\n{exc}", file=sys.stderr)
        return 1
    store.migrate()
    result = backtest.run_backtest(candidate, args.start, args.end)
    print(backtest.format_result(result, args.start, args.end))
    return 0


def _cmd_db_migrate(args: argparse.Namespace) -> int:
    from siaga import settings, store

    store.migrate()
    print(f"database at the newest schema: {_redact(settings.database_url())}")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _cmd_scenario(args: argparse.Namespace) -> int:
    # The development package is imported only when its commands run: the core never needs it.
    from siaga_dev import scenario

    scenario.write(sys.stdout)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from siaga_dev import demo

    return demo.main(steps=args.steps)


def _cmd_outbox(args: argparse.Namespace) -> int:
    from siaga import outbox, store

    store.migrate()
    with store.session_scope() as session:
        if args.retry is not None:
            done = outbox.requeue(session, args.retry, store.utcnow())
            print(f"outbox {args.retry}: {'re-queued' if done else 'not a dead letter'}")
            return 0 if done else 1
        print(json.dumps({"states": outbox.summary(session), "dead": outbox.dead_letters(session)}, indent=2))
    return 0


def _cmd_quarantine(args: argparse.Namespace) -> int:
    from siaga import ingest, store

    store.migrate()
    with store.session_scope() as session:
        print(json.dumps(ingest.quarantine_summary(session), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
