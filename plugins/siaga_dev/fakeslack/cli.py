"""`python -m siaga_dev.fakeslack`: the fake Slack as a stand-alone server for a person watching
a local Airflow, printing each message as it arrives (and `--dump PATH` writes everything
received as JSON on exit). `describe` is also how `siaga demo` prints what reached Slack.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, TextIO

from siaga_dev.fakeslack.server import DEFAULT_TOKEN, FakeSlack


def describe(message: dict[str, Any]) -> str:
    """One readable line (plus indented text) for a received message."""
    where = f"#{message.get('channel_name') or message['channel']}"
    if message.get("thread_ts"):
        kind = f"reply in thread {message['thread_ts']}" + (" (broadcast)" if message.get("reply_broadcast") else "")
    else:
        kind = "new message"
    text = (message.get("text") or "").replace("\n", "\n    ")
    return f"[{message['ts']}] {where} {kind}\n    {text}"


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m siaga_dev.fakeslack",
                                     description="Fake Slack Web API on 127.0.0.1 for demos and tests.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--token", default=DEFAULT_TOKEN,
                        help="bearer token to accept (default %(default)s)")
    parser.add_argument("--any-token", action="store_true", help="accept any non-empty token")
    parser.add_argument("--dump", metavar="PATH", help="write everything received as JSON on exit")
    args = parser.parse_args(argv)

    def show(message: dict[str, Any]) -> None:
        print(describe(message), file=out, flush=True)

    fake = FakeSlack(token=None if args.any_token else args.token, port=args.port, on_message=show)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with fake:
        print(f"fake Slack listening at {fake.base_url} (Ctrl-C to stop)", file=out, flush=True)
        while not stop.wait(0.5):
            pass
        if args.dump:
            with open(args.dump, "w", encoding="utf-8") as fh:
                json.dump(fake.dump(), fh, ensure_ascii=False, indent=2)
            print(f"wrote {args.dump}", file=out, flush=True)
    return 0

