"""The Socket Mode listener end to end: slack-sdk's own SocketModeClient opens a connection
through `apps.connections.open` on the fake, receives a click over the WebSocket, acknowledges the
envelope, and the incident, its timeline and the Slack message change."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from support.fakesocketmode import APP_TOKEN, FakeSocketMode
from siaga import settings, messages, slackactions, socketmode, store
from siaga.slackclient import SlackConfigError
from test_slackactions import DUTY, T0, TOKEN, click, client_for, events, posted_incident, state_text  # noqa: F401


def wait_until(predicate, timeout=10.0):
    """Poll: the listener's own records notify nobody."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def fake():
    with FakeSocketMode(token=TOKEN, app_token=APP_TOKEN) as server:
        yield server


@pytest.fixture
def listener(fake, db_url, router, hazard_set):
    web = client_for(fake)
    ctx = slackactions.ActionContext(client=web, db_url=db_url, router=router, hazard_set=hazard_set)
    with socketmode.Listener(APP_TOKEN, web, ctx) as running:
        assert fake.wait_connected(), "the listener never connected"
        yield running


def test_a_click_over_socket_mode_acknowledges_the_incident(db_url, fake, router, hazard_set, listener):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    assert fake.connections_opened == 1
    at = T0 + timedelta(minutes=3)
    envelope = fake.send_interactive(click(messages.ACTION_ACK, str(incident_id), at=at))
    assert fake.wait_ack(envelope) == {"envelope_id": envelope}
    assert fake.wait_for(lambda: fake.requests_count("chat.update") == 2), "the alert was not edited"
    for message in fake.messages():
        assert "ditangani (acknowledged)" in state_text(message) and f"<@{DUTY}>" in state_text(message)
    (ack,) = events(db_url, incident_id, "acknowledged")
    assert (ack.actor, ack.at) == (DUTY, at)
    with store.session_scope(db_url) as session:
        assert session.get(store.Incident, incident_id).state == "acknowledged"


def test_a_redelivered_envelope_is_acked_and_changes_nothing(db_url, fake, router, hazard_set, listener):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    payload = click(messages.ACTION_ACK, str(incident_id))
    first = fake.send_interactive(payload, envelope_id="env-1")
    assert fake.wait_ack(first)
    assert wait_until(lambda: len(listener.handled) == 1)
    fake.send_interactive(payload, envelope_id="env-1", retry_attempt=1)  # Slack retries the same envelope
    assert wait_until(lambda: len(listener.handled) == 2)
    assert fake.wait_for(lambda: len(fake.acks) == 2)
    assert [a["envelope_id"] for a in fake.acks] == ["env-1", "env-1"]
    assert [o.changed for o in listener.handled] == [True, False]
    assert fake.requests_count("chat.update") == 2 and len(events(db_url, incident_id, "acknowledged")) == 1


def test_an_invalid_click_gets_an_ephemeral_answer_and_the_listener_keeps_going(db_url, fake, router, hazard_set, listener):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    channel = fake.channel_id("#bpbd-siaga")
    fake.send_interactive(click(messages.ACTION_FALSE_ALARM, str(incident_id), channel=channel))
    assert wait_until(lambda: len(listener.handled) == 1)
    bad = fake.send_interactive(click(messages.ACTION_RESOLVE, str(incident_id), channel=channel, at=T0 + timedelta(hours=1)))
    assert fake.wait_ack(bad)
    assert fake.wait_for(lambda: len(fake.ephemerals) == 1)
    assert "cannot become resolved" in fake.ephemerals[0]["text"] and fake.ephemerals[0]["user"] == DUTY
    # other envelope types are acknowledged and ignored
    other = fake.send_interactive({"type": "view_submission", "view": {}})
    assert fake.wait_ack(other)
    ok = fake.send_interactive(click(messages.ACTION_SNOOZE, f"{incident_id}:1h", select=True))
    assert fake.wait_ack(ok) and wait_until(lambda: len(listener.handled) == 3)
    with store.session_scope(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.SilenceRow)) == 1


def test_a_wrong_app_token_cannot_connect(fake, sqlite_url):
    web = client_for(fake)
    ctx = slackactions.ActionContext(client=web, db_url=sqlite_url)
    listener = socketmode.Listener("xapp-1-wrong", web, ctx)
    try:
        with pytest.raises(Exception, match="invalid_auth"):
            listener.start()
    finally:
        listener.close()
    assert fake.refused_opens == 1 and fake.connections_opened == 0


def test_app_token_from_the_environment(monkeypatch):
    monkeypatch.setenv(settings.SLACK_APP_TOKEN_ENV, APP_TOKEN)
    assert socketmode.app_token(conn_id=None) == APP_TOKEN
    monkeypatch.setenv(settings.SLACK_APP_TOKEN_ENV, "xoxb-bot-token")
    with pytest.raises(SlackConfigError, match="xapp-"):
        socketmode.app_token(conn_id=None)
    monkeypatch.delenv(settings.SLACK_APP_TOKEN_ENV)
    with pytest.raises(SlackConfigError, match=settings.SLACK_APP_TOKEN_ENV):
        socketmode.app_token(conn_id=None)


def test_main_without_credentials_exits_2(monkeypatch, capsys, sqlite_url):
    monkeypatch.delenv(settings.SLACK_APP_TOKEN_ENV, raising=False)
    monkeypatch.setattr(settings, "airflow_connection", lambda conn_id: None)  # no Airflow connection either
    assert socketmode.main(["--db", sqlite_url]) == 2
    assert settings.SLACK_APP_TOKEN_ENV in capsys.readouterr().err


def test_the_command_runs_until_interrupted(sqlite_url, fake, router, hazard_set):
    """`main()` as the lead's `siaga slack-listen` runs it: in its own process, credentials from the
    environment, a click handled, a clean exit on SIGINT."""
    import os
    import signal
    import subprocess
    import sys

    incident_id = posted_incident(sqlite_url, fake, router, hazard_set)
    env = {**os.environ, settings.SLACK_APP_TOKEN_ENV: APP_TOKEN, "SIAGA_SLACK_TOKEN": TOKEN,
           "SIAGA_SLACK_BASE_URL": fake.base_url, "SIAGA_DB_URL": sqlite_url}
    proc = subprocess.Popen([sys.executable, "-m", "siaga.socketmode"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert fake.wait_connected(timeout=60), "the command never connected"
        envelope = fake.send_interactive(click(messages.ACTION_ACK, str(incident_id)))
        assert fake.wait_ack(envelope)
        assert fake.wait_for(lambda: fake.requests_count("chat.update") == 2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert len(events(sqlite_url, incident_id, "acknowledged")) == 1


def test_the_outcomes_a_listener_keeps_are_bounded():
    """The listener runs for months: it kept every click's outcome in a list that only grew."""
    from slack_sdk.socket_mode.request import SocketModeRequest

    class Wire:  # the Socket Mode client's two members the listener uses
        socket_mode_request_listeners: list = []

        def send_socket_mode_response(self, response):
            pass

    ctx = slackactions.ActionContext(client=None, db_url=None)
    listener = socketmode.Listener("xapp-1", None, ctx, client=Wire())
    for n in range(socketmode.HANDLED_KEPT + 50):
        payload = click(messages.ACTION_ACK, f"not-an-id-{n}")  # refused before any database work
        listener._on_request(listener.client, SocketModeRequest("interactive", f"e{n}", payload))
    assert len(listener.handled) == socketmode.HANDLED_KEPT
    assert "not-an-id-1049" in listener.handled[-1].error


def test_what_slack_sdk_logs_through_the_listener_holds_no_token(caplog):
    """slack-sdk's Socket Mode client logs an answer it could not use through the listener's
    logger; a gateway quoting the request's "Authorization: Bearer xapp-..." put the app token
    on stderr."""
    with caplog.at_level("ERROR", logger="siaga.socketmode"):
        socketmode.log.error("Failed to retrieve WSS URL: %s", {"error": "invalid_auth", "detail": "token Bearer xapp-1-A111-222-SECRETAPP is bad"})
    assert "Failed to retrieve WSS URL" in caplog.text and "SECRETAPP" not in caplog.text


@pytest.mark.parametrize("base_url, says", [
    ("not a url", "is not an http(s) URL"),
    ("http://user:BasePW@127.0.0.1:1/api/?token=QTOKEN", "Slack Web API at http://user:***@127.0.0.1:1/api/?token=***"),
])
def test_a_bad_or_secret_holding_slack_address_is_one_line_without_its_secrets(monkeypatch, capsys, sqlite_url, base_url, says):
    monkeypatch.setattr(settings, "airflow_connection", lambda conn_id: None)
    monkeypatch.setenv(settings.SLACK_APP_TOKEN_ENV, APP_TOKEN)
    monkeypatch.setenv("SIAGA_SLACK_TOKEN", TOKEN)
    monkeypatch.setenv("SIAGA_SLACK_BASE_URL", base_url)
    code = socketmode.main(["--db", sqlite_url])
    err = capsys.readouterr().err
    assert code in (1, 2) and says in err and "BasePW" not in err and "QTOKEN" not in err, err
    assert "Traceback" not in err
