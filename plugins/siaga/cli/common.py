"""What every `siaga` subcommand shares: the `--db`, `--json` and `-v` options, tables for
people, and the one-line failures (database or Slack out of reach, a closed pipe) that replace
tracebacks.

Nothing here imports SQLAlchemy, slack-sdk or Airflow at module level: `siaga outbox` must
answer in well under a second, and the libraries are loaded by the commands that use them.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from typing import Any, Iterable, Sequence, TextIO

from siaga.redaction import redact_db_url, redact_tokens

DB_HELP = "Siaga's database URL (default: SIAGA_DB_URL, else the Airflow connection siaga_db, else var/siaga.db)"


# The largest row id: the store's ids are Integer columns, 32-bit on PostgreSQL.
MAX_ROW_ID = 2**31 - 1


def whole_number(low: int, high: int | None = MAX_ROW_ID) -> Any:
    """An argparse type: a whole number from `low` to `high` (no upper bound when None). A row id
    larger than the database's reached it and came back as an OverflowError traceback (SQLite)
    instead of a usage error."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if high is None and number < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {number}")
        if high is not None and not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return number

    return parse


class CommandError(Exception):
    """A failure the command explains in one line (printed as `siaga <command>: <message>`)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def common_options() -> argparse.ArgumentParser:
    """A parent parser: `-v` on every subcommand, so it may follow the command's name."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="store_true", help="also print the libraries' log lines (Alembic, Airflow, Slack)")
    return parent


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", default=None, help=DB_HELP)


def add_json(parser: argparse.ArgumentParser, what: str = "the same facts") -> None:
    parser.add_argument("--json", action="store_true", help=f"{what} as one JSON document, for scripts")


def database_url(args: argparse.Namespace) -> str:
    """The URL the command works on: its `--db`, else the configured one."""
    from siaga import settings

    return getattr(args, "db", None) or settings.database_url()


def existing_database_url(args: argparse.Namespace) -> str:
    """`database_url`, for a command that only reads: a SQLite file that does not exist is
    refused with its path before anything opens it (opening would create it empty)."""
    from siaga import store

    url = database_url(args)
    try:
        store.require_existing(url)
    except store.MissingDatabase as exc:
        raise CommandError(str(exc)) from None
    return url


def print_json(doc: Any, out: TextIO | None = None) -> None:
    json.dump(doc, out or sys.stdout, ensure_ascii=False, indent=2, default=str)
    (out or sys.stdout).write("\n")


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain text table (tabulate: aligned columns a person can scan)."""
    from tabulate import tabulate

    return tabulate(list(rows), headers=list(headers), tablefmt="simple", disable_numparse=True)


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def database_failure(exc: BaseException, url: str | None) -> str | None:
    """One line saying why the database could not be used, when `exc` is SQLAlchemy's way of
    saying so (unreachable server, unreadable file, bad URL, missing driver, missing tables);
    None for anything else, which is a bug and keeps its traceback."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy import exc as sa

    store = sys.modules.get("siaga.store")
    if store is not None and isinstance(exc, store.UnusableDatabaseURL):
        return str(exc)  # names the URL, without its password
    where = f"the database {redact_db_url(url)}" if url else "the database"
    if isinstance(exc, sa.NoSuchModuleError):
        return f"{where}: unknown database kind ({first_line(str(exc))}); expected sqlite:/// or postgresql://"
    if isinstance(exc, sa.ArgumentError):
        return f"not a database URL: {first_line(str(exc))}"
    if isinstance(exc, (sa.ProgrammingError, sa.OperationalError)) and _missing_table(exc):
        return f"{where} has no Siaga tables yet: run `siaga db migrate`"
    if isinstance(exc, (sa.ProgrammingError, sa.OperationalError)) and _missing_column(exc):
        return f"{where} is at an older schema than this Siaga ({first_line(str(getattr(exc, 'orig', None) or exc))}): run `siaga db migrate`"
    if isinstance(exc, (sa.OperationalError, sa.InterfaceError)):
        return f"cannot use {where}: {first_line(str(getattr(exc, 'orig', None) or exc))}"
    if isinstance(exc, sa.DBAPIError):
        return f"{where} refused the command: {first_line(str(getattr(exc, 'orig', None) or exc))}"
    return None


def _missing_table(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _missing_column(exc: BaseException) -> bool:
    """A column this code reads is not in the table: a database at an older revision."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "no such column" in text or ("column" in text and "does not exist" in text)


def slack_failure(exc: BaseException) -> str | None:
    """One line when `exc` says Slack could not be reached or refused the token."""
    import urllib.error

    if "slack_sdk" in sys.modules:
        from slack_sdk.errors import SlackApiError, SlackClientError

        if isinstance(exc, SlackApiError):
            from siaga.slackclient import answer_error

            # an answer that is not JSON is quoted: it may be a proxy's page quoting the token back
            return redact_tokens(f"Slack refused: {answer_error(exc) if exc.response is not None else first_line(str(exc))}")
        if isinstance(exc, SlackClientError):
            return f"cannot reach Slack: {first_line(str(exc))}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach Slack: {exc.reason}"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return f"cannot reach Slack: {first_line(str(exc)) or type(exc).__name__}"
    return None


def file_failure(exc: BaseException) -> str | None:
    """One line when `exc` is the operating system refusing a path the command was given (a
    name too long, no permission, a loop of links): `siaga check <name of 300 characters>` was
    a traceback from pathlib. None for anything else."""
    if not isinstance(exc, OSError) or exc.filename is None:
        return None
    name = str(exc.filename)
    shown = name if len(name) <= 120 else name[:119] + "…"
    return f"cannot use {shown!r}: {exc.strerror or type(exc).__name__}"


# What writing a command's output can fail with besides a closed pipe: the disk or the user's
# quota full, a file size limit, a failing device.
_WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def output_failure(exc: BaseException) -> str | None:
    """One line when `exc` is a write refused for want of room (`siaga export > file` on a full
    disk wrote its answer with an `OSError: [Errno 28]` traceback, as did every command); None
    for anything else. The files a command opens itself say so where they are written (`export
    --out`) or only cost speed (the matcher cache), so such a failure reaching `main` is its
    standard output's."""
    if not isinstance(exc, OSError) or exc.filename is not None or exc.errno not in _WRITE_FAILURES:
        return None
    return f"cannot write its output: {exc.strerror or exc}"


def discard_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so the interpreter's final flush of what stdout
    still holds neither raises nor reaches a reader who left."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ is not None else 1)
    os.close(devnull)


def hold_closed_stdout() -> None:
    """Started with standard output closed (`siaga tag >&-`): descriptor 1 is given /dev/null,
    so the first file the command opens (the database) does not become descriptor 1, where
    any library writing to "stdout" would write into it. `sys.stdout` stays None: a command
    that has an answer to write refuses (`siaga tag`), the others' prints are dropped."""
    try:
        os.fstat(1)
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != 1:
            os.dup2(devnull, 1)
            os.close(devnull)


def sentence(text: str) -> str:
    """`text` with its first letter capitalised (str.capitalize would lower "Slack" and "DAGs")."""
    return text[:1].upper() + text[1:]
