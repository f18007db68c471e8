"""`siaga slack-listen`: the long-running listener behind the alert buttons (the work is in
`siaga.socketmode`)."""
from __future__ import annotations

import argparse

from siaga.cli.common import add_db, existing_database_url, sentence


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    summary = "handle the alert buttons (Acknowledge, Resolve, False alarm, Snooze) over Slack Socket Mode"
    listen = sub.add_parser("slack-listen", parents=[parent], help=summary, description=(
        f"{sentence(summary)}. Runs until Ctrl-C or SIGTERM. Needs the app-level token (xapp-…) in "
        "SIAGA_SLACK_APP_TOKEN or the Airflow connection slack_socket_mode, and the bot token as for "
        "delivery. Exits 1 with one line when the database or Slack cannot be reached, 2 when a token is missing."))
    add_db(listen)
    listen.add_argument("--routing", metavar="FILE", help="routing.yaml (default: config/routing.yaml)")
    listen.set_defaults(func=_cmd_slack_listen)


def _cmd_slack_listen(args: argparse.Namespace) -> int:
    from siaga import socketmode

    # a listener records each click in a database the pipeline made; it never creates one
    return socketmode.run(existing_database_url(args), args.routing, verbose=args.verbose)
