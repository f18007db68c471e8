"""The commands that read or change Siaga's database: `siaga db migrate`, `siaga outbox`,
`siaga quarantine` and `siaga export`.

`outbox` and `quarantine` only read: they load SQLAlchemy and the module that owns the rows,
nothing of Airflow, pandas or the geotagger, so they answer in well under a second."""
from __future__ import annotations

import argparse
import functools
import sys
from datetime import datetime
from pathlib import Path

from siaga.cli.common import CommandError, add_db, add_json, database_url, existing_database_url, plural, print_json, table, sentence, whole_number
from siaga.files import write_atomically
from siaga.redaction import redact_db_url
from siaga.timelines.formats import FORMATS as EXPORT_FORMATS


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    summary = "Siaga's database"
    db = sub.add_parser("db", parents=[parent], help=summary, description=(
        f"Commands for {summary} (SQLite or PostgreSQL). `siaga db migrate` creates it or brings it to the newest schema."))
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    summary = "create the database or upgrade it to the newest schema"
    migrate = db_sub.add_parser("migrate", parents=[parent], help=summary, description=f"{sentence(summary)} (Alembic migrations).")
    add_db(migrate)
    add_json(migrate, "the database and its schema revision")
    migrate.set_defaults(func=_cmd_db_migrate)

    summary = "Slack delivery: messages per state and the dead letters"
    outbox = sub.add_parser("outbox", parents=[parent], help=summary, description=(
        f"{sentence(summary)}. A dead letter is a message Slack refused for good or that failed "
        "every attempt; `--retry ID` queues it again (delivery asks Slack first, so it is never doubled)."))
    outbox.add_argument("--retry", type=whole_number(1), metavar="ID", help="re-queue the dead letter with this id")
    add_db(outbox)
    add_json(outbox, "states and dead letters")
    outbox.set_defaults(func=_cmd_outbox)

    summary = "bad input the sources kept instead of storing: counts per source, where and why"
    quarantine = sub.add_parser("quarantine", parents=[parent], help=summary, description=(
        f"Show {summary}. Every record a source could not use is kept here with its file and line "
        "(or item id), the field and the error, so nothing is lost silently."))
    quarantine.add_argument("--latest", type=whole_number(0), default=10, metavar="N", help="how many of the latest records to show (default 10)")
    add_db(quarantine)
    add_json(quarantine, "counts and latest records")
    quarantine.set_defaults(func=_cmd_quarantine)

    summary = "export incidents as CSV, GeoJSON or CAP 1.2"
    export = sub.add_parser("export", parents=[parent], help=summary, description=(
        f"{sentence(summary)}: one incident (--incident ID) or those of a period (--from/--to). "
        "A CAP export of a period holds only the incidents still open, as a CAP feed does."))
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--incident", type=whole_number(1), metavar="ID", help="one incident id")
    which.add_argument("--from", dest="start", type=_day, metavar="DAY", help="period start (YYYY-MM-DD, WITA)")
    export.add_argument("--to", dest="end", type=_end_day, metavar="DAY", help="period end, included (YYYY-MM-DD, WITA)")
    export.add_argument("--format", choices=list(EXPORT_FORMATS), default="csv", help="what to write (default csv)")
    export.add_argument("--out", default="-", metavar="PATH", help="file to write, or - for standard output (default)")
    add_db(export)
    export.set_defaults(func=functools.partial(_cmd_export, parser=export))


def _day(value: str, end: bool = False) -> datetime:
    from siaga.timelines.filters import parse_day

    try:
        return parse_day(value, end=end)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _end_day(value: str) -> datetime:
    return _day(value, end=True)


def _cmd_db_migrate(args: argparse.Namespace) -> int:
    from siaga import store

    url = database_url(args)
    store.migrate(url)
    revision = _revision(url)
    if args.json:
        print_json({"database": redact_db_url(url), "revision": revision})
    else:
        print(f"Database {redact_db_url(url)} is at the newest schema (revision {revision}).")
    return 0


def _revision(url: str) -> str | None:
    from sqlalchemy import text

    from siaga import store

    with store.engine(url).connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _cmd_outbox(args: argparse.Namespace) -> int:
    from siaga import outbox, store

    url = existing_database_url(args)
    with store.session_scope(url) as session:
        if args.retry is not None:
            done = outbox.requeue(session, args.retry, store.utcnow())
            row = None if done else session.get(store.OutboxMessage, args.retry)
            if not done and row is None:
                # a mistyped id was "not a dead letter, nothing changed", exit 0: as if it were a row
                raise CommandError(f"no outbox message {args.retry} in {redact_db_url(url)}; `siaga outbox` lists the dead letters",
                                   status=2)
            if args.json:
                print_json({"id": args.retry, "requeued": done, **({} if done else {"state": row.state})})
            else:
                print(f"Outbox message {args.retry}: " + ("queued again; the next delivery run sends it (after asking Slack "
                                                           "whether an earlier attempt landed)." if done else
                                                           f"not a dead letter (it is {row.state}), nothing changed."))
            return 0 if done else 1
        states = outbox.summary(session)
        dead = outbox.dead_letters(session)
    if args.json:
        print_json({"states": states, "dead": dead})
        return 0
    total = sum(states.values())
    if not total:
        print(f"The outbox of {redact_db_url(url)} is empty: no message has been queued for Slack yet.")
        return 0
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items(), key=lambda kv: -kv[1]))
    print(f"Outbox: {plural(total, 'message')} ({counts}).")
    if dead:
        print(f"\n{plural(len(dead), 'dead letter')} (re-queue one with `siaga outbox --retry ID`):")
        print(table(([d["id"], d["incident"] or "-", d["channel"], d["kind"], d["attempts"], _short(d["error"])] for d in dead),
                    ["id", "incident", "channel", "kind", "attempts", "last error"]))
    else:
        print("No dead letters.")
    return 0


def _cmd_quarantine(args: argparse.Namespace) -> int:
    from siaga import ingest, store

    url = existing_database_url(args)
    with store.session_scope(url) as session:
        report = ingest.quarantine_summary(session, latest=args.latest)
    if args.json:
        print_json(report)
        return 0
    per_source = report["per_source"]
    if not per_source:
        print("Nothing quarantined: every record the sources read could be stored.")
        return 0
    print(f"Quarantined: {plural(sum(per_source.values()), 'record')} from {plural(len(per_source), 'source')}.")
    print(table(sorted(per_source.items(), key=lambda kv: -kv[1]), ["source", "records"]))
    print(f"\nLatest {len(report['latest'])}:")
    print(table(([_local(q["at"]), q["source"], _short(q["location"], 10_000), _short(q["reason"], 90)] for q in report["latest"]),
                ["when (WITA)", "source", "where", "why"]))
    return 0


def _local(iso: str) -> str:
    from siaga.vocabulary import LOCAL_TZ

    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        from datetime import timezone

        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _short(text: str | None, width: int = 70) -> str:
    """One line of at most `width` characters, without control characters: a quarantined
    record's place and reason quote what a source sent, and its escape sequences would otherwise
    act on the operator's terminal."""
    from siaga.messages import one_line

    text = one_line(text or "-") or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """One incident or a period, to a file or stdout."""
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
    url = existing_database_url(args)
    places = load_places()
    with store.session_scope(url) as session:
        states = LIVE_STATES if (args.format == "cap" and args.incident is None) else None
        reports = reports_for(session, places, args.incident, args.start, args.end, states)
        if args.incident is not None and not reports:
            raise CommandError(f"no incident with id {args.incident} in {redact_db_url(url)}", status=2)
        # Only CAP names the hazards, and reading the lists in force takes seconds.
        hazards = hazards_in_force(session) if args.format == "cap" else {}
        text = render(args.format, reports, hazards, places)
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.out)
    database = store.sqlite_path(url)
    if database is not None and path.exists() and database.exists() and path.samefile(database):
        raise CommandError(f"{path} is the database the export reads: give another --out", status=2)
    try:  # all or nothing: an export re-run on a full disk must not leave half a file over the last one
        write_atomically(path, lambda out: out.write(text.encode("utf-8")))
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None
    print(f"Wrote {plural(len(reports), 'incident')} as {args.format} to {path.resolve()} ({len(text.encode('utf-8')):,} bytes).")
    return 0
