"""The `siaga` command: what operators run by hand.

    siaga tag [--explain]          tag JSON Lines posts from stdin (the measured contract)
    siaga check [DIR]              validate a whole config folder before it goes live
    siaga hazards check [DIR]      validate keyword lists before they go live
    siaga backtest --config DIR --from T --to T
                                   alerts candidate lists would have added/removed/changed
    siaga terms [--days N]         per term: posts matched, incidents, share called false alarms
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
import functools
import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, TextIO

from siaga.timelines.formats import FORMATS as EXPORT_FORMATS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="siaga", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    tag = sub.add_parser("tag", help="tag JSON Lines posts from standard input")
    tag.add_argument("--explain", action="store_true", help="print why, for a person, instead of JSON")
    tag.add_argument("--config", type=Path, help="config folder (with hazards/) or hazard lists folder (default: config/)")
    tag.set_defaults(func=_cmd_tag)

    check_all = sub.add_parser("check", help="validate every file of a config folder (hazard lists, routing, sources, "
                                             "aliases, abbreviations, detection, roads)")
    check_all.add_argument("directory", nargs="?", type=Path, help="config folder (default: SIAGA_CONFIG_DIR or config/)")
    check_all.add_argument("--json", action="store_true", help="errors and warnings as JSON, for scripts")
    check_all.set_defaults(func=_cmd_check)

    hazards = sub.add_parser("hazards", help="hazard keyword lists")
    hazards_sub = hazards.add_subparsers(dest="hazards_command", required=True)
    check = hazards_sub.add_parser("check", help="validate a directory of hazard lists")
    check.add_argument("directory", nargs="?", type=Path, help="a folder of hazard lists, or a config folder (its hazards/)")
    check.set_defaults(func=_cmd_hazards_check)

    backtest = sub.add_parser("backtest", help="replay stored posts with candidate hazard lists and diff the alerts")
    backtest.add_argument("--config", type=Path, required=True, help="candidate config directory (with hazards/) or hazards directory")
    backtest.add_argument("--from", dest="start", type=_when, required=True, help="ISO 8601 time (Bali time when no zone)")
    backtest.add_argument("--to", dest="end", type=_when, required=True, help="ISO 8601 time (Bali time when no zone)")
    backtest.set_defaults(func=_cmd_backtest)

    terms = sub.add_parser("terms", help="per hazard term over the last N days: posts matched, incidents it contributed "
                                         "to, share of those officers called false alarms")
    terms.add_argument("--days", type=_positive_int, default=30, help="how many days back (default 30)")
    terms.add_argument("--until", type=_when, default=None, help="end of the period, ISO 8601 (default: now; Bali time when no zone)")
    terms.add_argument("--json", action="store_true", help="one JSON object per term, for scripts")
    terms.add_argument("--db", default=None, help="database URL (default: SIAGA_DB_URL / settings)")
    terms.set_defaults(func=_cmd_terms)

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

    export = sub.add_parser("export", help="export incidents (CSV, GeoJSON, CAP 1.2); `siaga export -h` for its options",
                            description="Export incidents as CSV, GeoJSON or CAP 1.2")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--incident", type=int, help="one incident id")
    which.add_argument("--from", dest="start", type=_day, help="period start (YYYY-MM-DD, WITA)")
    export.add_argument("--to", dest="end", type=_end_day, help="period end, included (YYYY-MM-DD, WITA)")
    export.add_argument("--format", choices=list(EXPORT_FORMATS), default="csv")
    export.add_argument("--out", default="-", help="file path, or - for stdout")
    export.add_argument("--db", default=None, help="database URL (default: SIAGA_DB_URL / settings)")
    export.set_defaults(func=functools.partial(_cmd_export, parser=export))

    sub.add_parser("slack-listen", help="handle the alert buttons through Slack Socket Mode; `siaga slack-listen -h`")

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["slack-listen"]:  # its own parser takes every option after the word
        from siaga import socketmode

        return socketmode.main(argv[1:])
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _cmd_tag(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    from siaga.hazard_config import HazardConfigError, default_hazard_dir, hazards_dir_of
    from siaga.hazards import HazardSet
    from siaga.tagging import Tagger

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        tagger = Tagger(HazardSet.load(hazards_dir_of(args.config) if args.config else default_hazard_dir()))
    except HazardConfigError as exc:
        print(f"siaga tag: the hazard lists cannot be used:\n{exc}", file=sys.stderr)
        return 2
    failures = 0
    line_no = 0
    for batch in _stdin_batches(stdin):
        out: list[str] = []
        for line in batch:
            line_no += 1
            if not line.strip():
                continue
            try:  # whatever one line holds or makes the tagger do, it costs that line only
                post = _read_plain_post(line) if isinstance(line, bytes) else None
                checked = post is not None  # no escapes: no lone surrogate can reach the output
                if post is None:
                    post = _read_post(line)
                result = tagger.tag(post["text"], lat=post.get("lat"), lon=post.get("lon"))
                if args.explain:
                    text = _explain(post, result, tagger)
                else:
                    text = result.to_json(post.get("id"))
                if not checked:
                    text.encode("utf-8")  # a lone surrogate (in an id) must fail here, not half-way through a write
            except Exception as exc:  # noqa: BLE001
                from siaga.sources.records import describe

                failures += 1
                reason = describe(exc)
                print(f"siaga tag: stdin line {line_no}: {reason}", file=sys.stderr)
                out.append(json.dumps({"id": None, "error": f"line {line_no}: {reason}"}) + "\n")
                continue
            out.append(text + "\n")
        if out:
            stdout.write("".join(out))
            stdout.flush()
    return 1 if failures else 0


def _stdin_batches(stdin: TextIO) -> Iterator[list[str | bytes]]:
    """Lines split at "\\n" only, in batches of what has arrived: as bytes from a real stream
    (so a line that is not UTF-8 is reported as such, not a crash of the whole stream), else as
    the text given, one line a batch. Answers are written and flushed a batch at a time: a
    piped stream gets each answer as soon as its line is in, without a write per line when
    lines arrive by the thousand."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:
        for line in stdin:
            yield [line]
        return
    read = getattr(buffer, "read1", buffer.read)
    pending: list[bytes] = []
    while True:
        data = read(1 << 16)
        if not data:
            if pending:
                yield [b"".join(pending)]
            return
        if b"\n" not in data:
            pending.append(data)
            continue
        lines = data.split(b"\n")
        if pending:
            lines[0] = b"".join(pending) + lines[0]
        rest = lines.pop()
        pending = [rest] if rest else []
        yield [line + b"\n" for line in lines]


_PLAIN_VALUE = (str, int, bool, type(None))


def _read_plain_post(line: bytes) -> dict[str, Any] | None:
    """The post of an ordinary line, or None when `_read_post` must look (and name what is
    wrong). Ordinary: UTF-8, an object of plain values, no escape sequence (only an escape can
    put a NUL or a lone surrogate into a string: raw, they are not UTF-8 or not JSON), lat/lon
    numbers on the globe. Every check of `_read_post` then holds, and `siaga tag` need not
    import the sources' schema (and the database models it is measured against)."""
    if b"\\u" in line:
        return None
    try:
        post = json.loads(line.decode("utf-8"))
    except Exception:  # noqa: BLE001 -- _read_post says what is wrong
        return None
    if type(post) is not dict or type(post.get("text")) is not str:
        return None
    for value in post.values():
        if not isinstance(value, _PLAIN_VALUE) and not (type(value) is float and math.isfinite(value)):
            return None
    for key, low, high in (("lat", -90, 90), ("lon", -180, 180)):
        value = post.get(key)
        if value is not None:
            if type(value) not in (int, float) or not low <= value <= high:
                return None
            post[key] = float(value)
    return post


def _read_post(line: str | bytes) -> dict[str, Any]:
    from siaga.sources.records import decode_line
    from siaga.sources.schema import check_number, check_string

    post = decode_line(line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass"))
    if not isinstance(post, dict) or not isinstance(post.get("text"), str):
        raise ValueError("expected an object with a string field 'text'")
    check_string(post["text"], "text", len(post["text"]))
    if isinstance(post.get("id"), str):  # echoed in the output: it must be writable
        check_string(post["id"], "id", len(post["id"]))
    for key, low, high in (("lat", -90, 90), ("lon", -180, 180)):
        if post.get(key) is not None:
            if isinstance(post[key], str):  # "-8.1" was accepted before: keep it
                try:
                    post[key] = float(post[key])
                except ValueError:
                    raise ValueError(f"field '{key}' is not a number") from None
            post[key] = check_number(post[key], key, low, high)
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
    from siaga.hazard_config import HazardConfigError, check_directory, default_hazard_dir, hazards_dir_of

    try:
        directory = hazards_dir_of(args.directory) if args.directory else default_hazard_dir()
    except HazardConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
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


def _cmd_check(args: argparse.Namespace) -> int:
    from siaga import config_check

    report = config_check.check_folder(args.directory)
    return config_check.print_report(report, as_json=args.json)


def _when(value: str) -> datetime:
    from siaga.vocabulary import LOCAL_TZ

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from siaga import backtest, detection_config, store
    from siaga.hazard_config import HazardConfigError

    try:
        backtest.check_range(args.start, args.end)
    except backtest.BacktestRangeError as exc:
        print(f"siaga backtest: {exc}", file=sys.stderr)
        return 2
    try:
        candidate = backtest.candidate_lists(args.config)
    except HazardConfigError as exc:
        print(f"siaga backtest: the candidate lists are invalid:\n{exc}", file=sys.stderr)
        return 1
    try:
        settings = detection_config.load()
        candidate_settings = backtest.candidate_settings(args.config, settings)
    except detection_config.DetectionConfigError as exc:
        print(f"siaga backtest: the detection settings are invalid:\n{exc}", file=sys.stderr)
        return 1
    store.migrate()
    result = backtest.run_backtest(candidate, args.start, args.end, settings=settings, candidate_settings=candidate_settings)
    if result.held is not None:
        print(f"siaga backtest: {backtest.format_result(result, args.start, args.end)}", file=sys.stderr)
        return 1
    print(backtest.format_result(result, args.start, args.end))
    return 0


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _cmd_terms(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from siaga import hazard_lists, store, terms
    from siaga.vocabulary import local_iso

    until = args.until or store.utcnow()
    since = until - timedelta(days=args.days)
    store.migrate(args.db)
    with store.session_scope(args.db) as session:
        stats = terms.term_report(session, since, until, hazard_lists.in_force(session, remember=False))
    if args.json:
        print(json.dumps({"since": local_iso(since), "until": local_iso(until), "terms": [s.as_dict() for s in stats]},
                         ensure_ascii=False, indent=2))
    else:
        print(terms.format_table(stats, since, until))
    return 0


def _day(value: str, end: bool = False) -> datetime:
    from siaga.timelines.filters import parse_day

    try:
        return parse_day(value, end=end)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _end_day(value: str) -> datetime:
    return _day(value, end=True)


def _cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """One incident or a period, to a file or stdout. A CAP export of a period holds only the
    incidents still open, as a CAP feed does."""
    from siaga import store
    from siaga.timelines.formats import render
    from siaga.timelines.labels import hazards_in_force
    from siaga.timelines.places import load_places
    from siaga.timelines.report import reports_for
    from siaga.vocabulary import LIVE_STATES

    if args.start is not None and args.end is None:
        parser.error("--from needs --to")
    if args.end is not None and args.start is not None and args.end <= args.start:
        parser.error("--to is before --from")
    places = load_places()
    with store.session_scope(args.db) as session:
        states = LIVE_STATES if (args.format == "cap" and args.incident is None) else None
        reports = reports_for(session, places, args.incident, args.start, args.end, states)
        if args.incident is not None and not reports:
            print(f"siaga export: no incident with id {args.incident}", file=sys.stderr)
            return 2
        # Only CAP names the hazards, and reading the lists in force takes seconds.
        hazards = hazards_in_force(session) if args.format == "cap" else {}
        text = render(args.format, reports, hazards, places)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8", newline="")  # CSV rows end in CR LF as written
        print(f"wrote {len(reports)} incident(s) to {args.out}", file=sys.stderr)
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
