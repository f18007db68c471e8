"""The `siaga` command: what operators run by hand.

    siaga tag [--explain]          tag JSON Lines posts from stdin (the measured contract)
    siaga check [DIR]              validate a whole config folder before it goes live
    siaga hazards check [DIR]      validate keyword lists before they go live
    siaga backtest --config DIR --from T --to T
                                   alerts candidate lists would have added/removed/changed
    siaga terms [--days N]         per term: posts matched, incidents, share called false alarms
    siaga db migrate               create or upgrade the database
    siaga outbox [--retry ID]      delivery state, dead letters, re-queue a dead letter
    siaga quarantine               bad input kept by the sources: counts and the latest
    siaga export ...               incident exports: CSV, GeoJSON, CAP 1.2
    siaga slack-listen             handle the alert buttons (Slack Socket Mode)
    siaga scenario                 print the synthetic demo scenario (JSON Lines)
    siaga demo                     run the DAGs over the demo scenario against a fake Slack
    siaga live                     Airflow standalone, the fake Slack and the scenario on the live clock

Every command answers a person first (sentences and tables); `--json` gives scripts the same
facts. Commands that read or write Siaga's database take `--db URL`. `-v` shows the libraries'
log lines. When the database or Slack cannot be reached the command says so in one line on
stderr and exits 1.

The subcommands live in small modules named for what they hold (`tag_cmd`, `config_cmds`,
`data_cmds`, `slack_cmd`, `dev_cmds`); each imports what it needs only when it runs, so a
command that needs no Airflow (or no pandas) never loads it.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from siaga import settings
from siaga.cli import common, config_cmds, data_cmds, dev_cmds, slack_cmd, tag_cmd
# tests and benchmarks/bench_tag.py drive the tag command and its readers with their own streams
from siaga.cli.tag_cmd import _cmd_tag, _fast_decoder, _read_plain_post, _read_post, _stdin_batches  # noqa: F401

REGISTRARS: tuple[Callable[[argparse._SubParsersAction, argparse.ArgumentParser], None], ...] = (
    tag_cmd.register, config_cmds.register, data_cmds.register, slack_cmd.register, dev_cmds.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siaga", description=__doc__.split("\n\nThe subcommands")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parent = common.common_options()
    for register in REGISTRARS:
        register(sub, parent)
    return parser


# Commands that run with standard output closed: a listener and the dev runs log on stderr or
# into files; `siaga tag` says itself which stream is closed.
_NO_ANSWER_ON_STDOUT = frozenset({"slack-listen", "demo", "live", "tag"})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    verbose = bool(getattr(args, "verbose", False))
    if not verbose:
        logging.disable(logging.INFO)  # library chatter (Alembic's "Context impl ...") only with -v
    else:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    common.hold_closed_stdout()
    if sys.stdout is None and args.command not in _NO_ANSWER_ON_STDOUT:
        # its answer is the point: `siaga outbox --json >&-` was an AttributeError traceback,
        # `siaga outbox >&-` a silent success
        print(f"siaga {args.command}: standard output is closed: nowhere to write the answer", file=sys.stderr)
        return 1
    try:
        status = int(args.func(args) or 0)
        if sys.stdout is not None:
            sys.stdout.flush()  # what it could not write is said below, not by the interpreter's exit
        return status
    except BrokenPipeError:
        # The reader went away (`siaga scenario | head`): what it wanted it has. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again (Python's own advice).
        common.discard_stdout()
        return 1
    except KeyboardInterrupt:
        print(f"siaga {args.command}: interrupted", file=sys.stderr)
        return 130
    except common.CommandError as exc:
        print(f"siaga {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except Exception as exc:
        unwritten = common.output_failure(exc)
        if unwritten is not None:
            # a full disk, a file size limit: what was not written is dropped, as the interpreter's
            # final flush would otherwise fail on it again, with a traceback
            common.discard_stdout()
            print(f"siaga {args.command}: {unwritten}", file=sys.stderr)
            return 1
        if isinstance(exc, settings.SettingsError):
            # SIAGA_GAZETTEER=nasional, a broken AIRFLOW_CONN_SIAGA_DB: the variable named, no traceback
            print(f"siaga {args.command}: {exc}", file=sys.stderr)
            return 2
        if _is_config_error(exc):
            # a config file the command reads besides its own (aliases.yaml for the geotagger,
            # routing.yaml, detection.yaml): every problem at file:line:column, not a traceback
            print(f"siaga {args.command}: the config cannot be used:\n{exc}", file=sys.stderr)
            return 2
        why = common.database_failure(exc, _url_of(args)) or common.slack_failure(exc) or common.file_failure(exc)
        if why is None or verbose:
            raise
        print(f"siaga {args.command}: {why}", file=sys.stderr)
        return 1
    finally:
        if not verbose:
            logging.disable(logging.NOTSET)


def _is_config_error(exc: BaseException) -> bool:
    config_errors = sys.modules.get("siaga.config_errors")  # nothing read a config file if not loaded
    return config_errors is not None and isinstance(exc, config_errors.ConfigError)


def _url_of(args: argparse.Namespace) -> str | None:
    try:
        return common.database_url(args)
    except Exception:  # the URL itself may be what is wrong
        return getattr(args, "db", None)


if __name__ == "__main__":
    sys.exit(main())
