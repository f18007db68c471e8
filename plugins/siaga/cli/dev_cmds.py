"""The commands that run the development tools (`siaga_dev`, imported only when they run, never
by the core): `siaga scenario`, `siaga demo` and `siaga live`."""
from __future__ import annotations

import argparse
import sys

from siaga.cli.common import sentence, whole_number

# A TCP port to listen on: `siaga live --port 70000` was an OverflowError traceback from bind().
PORT = whole_number(1, 65_535)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    summary = "print the synthetic demo scenario as JSON Lines"
    scenario = sub.add_parser("scenario", parents=[parent], help=summary, description=(
        f"{sentence(summary)}: a morning in Buleleng with chatter, a flood in Desa Sangsit and a jam "
        "on Jalan Ahmad Yani, seeded so it is reproducible (`siaga scenario > scenarios/demo.jsonl`)."))
    scenario.set_defaults(func=_cmd_scenario)

    summary = "run the DAGs over the demo scenario against a fake Slack and show what reached each channel"
    demo = sub.add_parser("demo", parents=[parent], help=summary, description=(
        f"{sentence(summary)} (what `make demo` runs). Uses Airflow's own runner (dag.test()) on "
        "SQLite; Airflow's task logs go to a file whose path is printed."))
    # 0 was a ZeroDivisionError traceback, a negative count a demo that ran nothing
    demo.add_argument("--steps", type=whole_number(1, 100), default=4, help="points of the replay clock at which the DAGs run (default 4)")
    demo.set_defaults(func=_cmd_demo)

    summary = "a live watch: Airflow standalone, the fake Slack and the demo scenario on the live clock"
    live = sub.add_parser("live", parents=[parent], help=summary, description=(
        f"{sentence(summary)} (what `make live` runs). Starts Airflow with the Siaga DAGs unpaused, "
        "prints the UI address, the login, the incident pages and each Slack message as it arrives; "
        "the first alert comes within about 2 minutes, an incident resolves within about 10. "
        "Ctrl-C stops everything."))
    live.add_argument("--port", type=PORT, default=8080, help="the Airflow UI's port on 127.0.0.1 (default 8080)")
    live.add_argument("--slack-port", type=PORT, default=8089, help="the fake Slack's port on 127.0.0.1 (default 8089)")
    live.add_argument("--speed", type=_speed, default=None,
                      help="how many times faster than real time the scenario plays (default: the live settings')")
    live.set_defaults(func=_cmd_live)


def _speed(value: str) -> float:
    """An argparse type: a replay speed the sources file accepts (`--speed nan` was a ValueError
    traceback, `inf` an OverflowError, and a negative or huge one a config the ingest task then
    refused)."""
    from siaga.sources.config_file import MAX_SPEED, MIN_SPEED  # only when --speed is given: it loads the connectors

    try:
        speed = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"must be from {MIN_SPEED:g} to {MAX_SPEED:g} times real time, got {value}")
    return speed


def _cmd_scenario(args: argparse.Namespace) -> int:
    from siaga_dev import scenario

    scenario.write(sys.stdout)
    sys.stdout.flush()  # a closed pipe is reported here, inside the command, not at exit
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from siaga_dev import demo

    return demo.main(steps=args.steps)


def _cmd_live(args: argparse.Namespace) -> int:
    from siaga_dev import live

    return live.main(port=args.port, slack_port=args.slack_port, speed=args.speed)
