"""`siaga slack-listen`: the long-running Socket Mode listener behind the alert buttons.

Socket Mode lets Slack push button clicks over a WebSocket the app opens itself, so BPBD's
server needs no public URL. slack-sdk's builtin `SocketModeClient` (standard library only, with
reconnects and pings) does the protocol; this module acknowledges each envelope at once (Slack
redelivers what is not acknowledged within 3 seconds, and handling may take longer: database,
then `chat.update` per channel) and hands `block_actions` to `slackactions`, which is idempotent,
so a redelivered click changes nothing.

Credentials: the app-level token (`xapp-…`, scope `connections:write`) from env
SIAGA_SLACK_APP_TOKEN or the Airflow connection `slack_socket_mode` (token in the password); the
bot token for editing messages as for delivery (`slackclient.make_client`).
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any, Sequence

from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web import WebClient

from siaga import settings, slackactions, store
from siaga.redaction import redact_token_logs, redact_url
from siaga.routing import Router
from siaga.slackclient import SlackConfigError, make_client

log = logging.getLogger(__name__)
# slack-sdk's Socket Mode client logs through this logger, answers it could not use included: a
# proxy or gateway may quote the request's "Authorization: Bearer xapp-..." back in one
redact_token_logs(__name__)
HANDLED_KEPT = 1000


def app_token(conn_id: str | None = settings.SLACK_APP_CONN_ID) -> str:
    """The app-level token: env SIAGA_SLACK_APP_TOKEN first, then the Airflow connection."""
    token = settings.slack_app_token(conn_id)
    if not token:
        raise SlackConfigError(
            f"no Slack app-level token: set {settings.SLACK_APP_TOKEN_ENV} or the Airflow connection {conn_id!r} "
            "(an xapp- token with connections:write, in the password)"
        )
    if not token.startswith("xapp-"):
        raise SlackConfigError(f"{settings.SLACK_APP_TOKEN_ENV}/{conn_id}: an app-level token starts with 'xapp-' (is this the bot token?)")
    return token


class Listener:
    """A connected Socket Mode client whose clicks go to `slackactions`."""

    def __init__(self, token: str, web_client: WebClient, ctx: slackactions.ActionContext,
                 client: SocketModeClient | None = None) -> None:
        self.ctx = ctx
        self.client = client or SocketModeClient(app_token=token, web_client=web_client, logger=log)
        self.client.socket_mode_request_listeners.append(self._on_request)
        # the latest outcomes (tests and debugging read them); bounded, the listener runs for months
        self.handled: deque[slackactions.ActionOutcome] = deque(maxlen=HANDLED_KEPT)
        self._lock = threading.Lock()

    def start(self) -> "Listener":
        self.client.connect()
        return self

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Listener":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_request(self, client: Any, request: SocketModeRequest) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type != "interactive" or request.payload.get("type") != "block_actions":
            log.debug("ignoring Socket Mode %s envelope", request.type)
            return
        try:
            outcomes = slackactions.handle_block_actions(request.payload, self.ctx)
        except Exception:  # a bug or a database outage must not kill the listener thread
            log.exception("handling a Slack action failed (envelope %s)", request.envelope_id)
            return
        with self._lock:
            self.handled.extend(outcomes)
        for o in outcomes:
            log.info("slack action %s on incident %s by %s: %s", o.action_id, o.incident_id, o.user,
                     o.error or ("changed" if o.changed else "no change"))


def build_listener(db_url: str | None = None, routing: str | None = None, token: str | None = None,
                   web_client: WebClient | None = None) -> Listener:
    """A Listener wired to the configured store, routing and Slack credentials."""
    token = token or app_token()  # first: without it nothing else is worth setting up
    web_client = web_client or make_client()
    with store.session_scope(db_url) as session:  # a refused edit leaves the last good file in force
        router = Router.in_force(session, Path(routing) if routing else settings.config_dir() / "routing.yaml")
    ctx = slackactions.ActionContext(client=web_client, db_url=db_url, router=router)
    return Listener(token, web_client, ctx)


def run(db_url: str | None = None, routing: str | None = None, verbose: bool = False) -> int:
    """Listen until SIGINT/SIGTERM. Exit 2 when Slack credentials are missing, 1 (with one line
    on stderr) when the database or Slack cannot be reached at start."""
    logging.disable(logging.NOTSET)  # the CLI mutes INFO for one-shot commands; a listener says what it does
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # this listener's own lines (connected, each click) but not the libraries'
        logging.getLogger().setLevel(logging.WARNING)
        log.setLevel(logging.INFO)
    try:
        check_database(db_url)
        listener = build_listener(db_url, routing)
    except SlackConfigError as exc:
        print(f"siaga slack-listen: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    quiet_start = logging.getLogger("slack_sdk").level
    if not verbose:  # slack-sdk logs every failed try; one line below says what happened
        logging.getLogger("slack_sdk").setLevel(logging.CRITICAL)
    try:
        listener.start()
    except Exception as exc:
        listener.close()
        from siaga.cli.common import slack_failure

        why = slack_failure(exc)
        if why is None:
            raise
        base_url = settings.slack_credentials()[1] or "https://slack.com/api/"
        print(f"siaga slack-listen: {why} (Slack Web API at {redact_url(base_url)})", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("slack_sdk").setLevel(quiet_start)
    try:
        log.info("listening for Slack actions (Socket Mode)")
        stop.wait()
    finally:
        listener.close()
    return 0


def check_database(db_url: str | None) -> None:
    """Connect once before listening: a listener that cannot record a click must not start."""
    from sqlalchemy import text

    from siaga import store

    with store.engine(db_url).connect() as conn:
        conn.execute(text("SELECT 1"))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m siaga.socketmode [--db URL] [--routing FILE]`: the same as `siaga slack-listen`."""
    from siaga.cli import main as cli_main

    return cli_main(["slack-listen", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
