"""The real slack-sdk WebClient from make_client against the fake server: retries that help,
no retry that could post twice, and the check that settles an unknown outcome."""
from __future__ import annotations

import json
import logging
import threading
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from slack_sdk.errors import SlackApiError

from siaga import slackclient
from siaga_dev.fakeslack import FakeSlack
from siaga.slackclient import (
    SlackConfigError,
    SlackRedirectError,
    classify_error,
    find_posted,
    make_client,
    outbox_metadata,
    post_message,
    resolve_channel,
)

TOKEN = "xoxb-siaga-client-test-7f3a9c"
MESSAGE = {"text": "Banjir (flood) — Sukasada", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}


@pytest.fixture
def fake():
    with FakeSlack(token=TOKEN) as server:
        yield server


@pytest.fixture
def sleeps(monkeypatch):
    """Record the retry handlers' sleeps instead of sleeping (slack-sdk sleeps via time.sleep)."""
    recorded: list[float] = []
    monkeypatch.setattr("slack_sdk.http_retry.builtin_handlers.time.sleep", recorded.append)
    return recorded


def client_for(fake: FakeSlack, **kwargs):
    kwargs.setdefault("conn_id", None)
    return make_client(token=TOKEN, base_url=fake.base_url, **kwargs)


def test_ratelimit_retry_after_is_honoured(fake, sleeps):
    fake.fail("chat.postMessage", "ratelimit", times=2, seconds=7)
    ts = post_message(client_for(fake), "#bpbd-siaga", MESSAGE)
    assert fake.requests_count("chat.postMessage") == 3
    assert [m["ts"] for m in fake.messages()] == [ts]
    assert len(sleeps) == 2 and all(7 <= s < 8 for s in sleeps)  # Retry-After plus sdk jitter < 1 s


def test_ratelimit_retries_are_bounded(fake, sleeps):
    fake.fail("chat.postMessage", "ratelimit", times=10, seconds=1)
    with pytest.raises(SlackApiError) as err:
        post_message(client_for(fake, rate_limit_retries=3), "#bpbd-siaga", MESSAGE)
    assert err.value.response.status_code == 429
    assert classify_error(err.value) == "transient"
    assert fake.requests_count("chat.postMessage") == 4  # first try + 3 retries
    assert fake.messages() == []


def test_long_retry_after_is_not_slept_in_the_task(fake, sleeps):
    fake.fail("chat.postMessage", "ratelimit", seconds=600)
    with pytest.raises(SlackApiError) as err:
        post_message(client_for(fake, max_retry_after=60), "#bpbd-siaga", MESSAGE)
    assert classify_error(err.value) == "transient"
    assert sleeps == [] and fake.requests_count("chat.postMessage") == 1


def test_server_errors_on_a_read_are_retried_with_backoff(fake, sleeps):
    client = client_for(fake, server_error_retries=2)
    ts = post_message(client, "#bpbd-siaga", MESSAGE, metadata=outbox_metadata(3))
    fake.fail("conversations.history", "server_error", times=2)
    assert find_posted(client, "#bpbd-siaga", "3") == ts
    assert fake.requests_count("conversations.history") == 3
    assert len(sleeps) == 2


def test_server_error_on_a_read_that_persists_surfaces_as_transient(fake, sleeps):
    client = client_for(fake, server_error_retries=2)
    post_message(client, "#bpbd-siaga", MESSAGE)
    fake.fail("conversations.history", "server_error", times=5, status=503)
    with pytest.raises(SlackApiError) as err:
        find_posted(client, "#bpbd-siaga", "1")
    assert err.value.response.status_code == 503
    assert classify_error(err.value) == "transient"  # a read changed nothing: just try again
    assert fake.requests_count("conversations.history") == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("stored", [True, False], ids=["stored", "not-stored"])
def test_a_server_error_on_a_post_is_not_resent_and_is_an_unknown_outcome(fake, sleeps, status, stored):
    """A gateway's 5xx can come after Slack stored the post: re-sending it (slack-sdk's
    ServerErrorRetryHandler did, for 500 and 503) or calling it transient (the outbox then posted
    again without a look) showed the alert twice. Either way Slack is asked first."""
    client = client_for(fake, server_error_retries=2)
    fake.fail("chat.postMessage", "stored_server_error" if stored else "server_error", status=status)
    with pytest.raises(SlackApiError) as err:
        post_message(client, "#bpbd-siaga", MESSAGE, metadata=outbox_metadata(41))
    assert err.value.response.status_code == status
    assert classify_error(err.value) == "unknown_outcome"
    assert fake.requests_count("chat.postMessage") == 1 and sleeps == []
    assert len(fake.messages()) == (1 if stored else 0)
    assert find_posted(client, "#bpbd-siaga", "41") == (fake.messages()[0]["ts"] if stored else None)


@pytest.mark.parametrize("error", ["internal_error", "fatal_error"])
def test_slack_errors_that_may_have_taken_effect_are_unknown_on_a_write_transient_on_a_read(fake, error):
    """Slack documents both as "it's possible some aspect of the operation succeeded"."""
    client = client_for(fake)
    fake.fail("chat.postMessage", "error", error=error)
    with pytest.raises(SlackApiError) as err:
        post_message(client, "#bpbd-siaga", MESSAGE)
    assert classify_error(err.value) == "unknown_outcome"
    fake.fail("auth.test", "error", error=error)
    with pytest.raises(SlackApiError) as err:
        client.auth_test()
    assert classify_error(err.value) == "transient"
    fake.fail("chat.postMessage", "error", error="service_unavailable")  # Slack did nothing
    with pytest.raises(SlackApiError) as err:
        post_message(client, "#bpbd-siaga", MESSAGE)
    assert classify_error(err.value) == "transient"


def test_call_budget_covers_every_request_and_sleep_of_one_call(fake, sleeps):
    """Delivery leases a claim for this long: the client must never take longer on one call.
    The worst call is a read, which every handler may retry."""
    client = client_for(fake, timeout=2, rate_limit_retries=3, max_retry_after=5, server_error_retries=2,
                        connection_retries=1, backoff_factor=0.5)
    # slack-sdk shares one retry count among its handlers: at most 1 + 3 requests, 3 sleeps of
    # at most Retry-After 5 s + 1 s of jitter
    assert slackclient.call_budget(client) == 2 * 4 + 3 * 6
    post_message(client, "#bpbd-siaga", MESSAGE)
    channel = fake.channel_id("#bpbd-siaga")
    for mode in ("ratelimit", "server_error", "ratelimit", "server_error", "ratelimit"):
        fake.fail("conversations.history", mode, seconds=5)
    with pytest.raises(SlackApiError):
        client.conversations_history(channel=channel)
    requests = fake.requests_count("conversations.history")
    assert requests == 4 and len(sleeps) == 3
    assert requests * 2 + sum(sleeps) <= slackclient.call_budget(client)
    for mode in ("ratelimit", "server_error", "ratelimit"):  # a write stops at the 5xx
        fake.fail("chat.postMessage", mode, seconds=5)
    with pytest.raises(SlackApiError):
        post_message(client, "#bpbd-siaga", MESSAGE)
    assert fake.requests_count("chat.postMessage") == 1 + 2
    assert slackclient.call_budget(client_for(fake, timeout=1, rate_limit_retries=0, server_error_retries=0,
                                              connection_retries=0)) == 1


def test_hang_surfaces_a_timeout_and_is_not_resent(fake):
    fake.fail("chat.postMessage", "hang", seconds=30)
    with pytest.raises(TimeoutError) as err:
        post_message(client_for(fake, timeout=1), "#bpbd-siaga", MESSAGE)
    assert classify_error(err.value) == "unknown_outcome"
    assert fake.requests_count("chat.postMessage") == 1  # re-sending could post twice
    assert fake.messages() == []


def test_success_after_a_delay(fake):
    fake.fail("chat.postMessage", "delay", seconds=0.3)
    ts = post_message(client_for(fake, timeout=10), "#bpbd-siaga", MESSAGE)
    assert fake.messages()[0]["ts"] == ts
    assert fake.requests_count("chat.postMessage") == 1


def test_dropped_post_is_not_resent_but_is_found(fake):
    client = client_for(fake)
    parent_ts = post_message(client, "#bpbd-siaga", MESSAGE, metadata=outbox_metadata(16))
    fake.fail("chat.postMessage", "drop")
    with pytest.raises(Exception) as err:
        post_message(client, "#bpbd-siaga", MESSAGE, thread_ts=parent_ts, metadata=outbox_metadata(17))
    assert classify_error(err.value) == "unknown_outcome"
    assert fake.requests_count("chat.postMessage") == 2  # not retried by the client
    landed = fake.messages("#bpbd-siaga")[-1]
    assert find_posted(client, "#bpbd-siaga", "17", thread_ts=parent_ts) == landed["ts"]
    assert find_posted(client, "#bpbd-siaga", "16") == parent_ts
    assert find_posted(client, "#bpbd-siaga", "17") is None  # a quiet reply lives only in its thread


def test_slow_success_past_the_timeout_is_found(fake):
    client = client_for(fake, timeout=1)
    fake.fail("chat.postMessage", "delay", seconds=2)
    with pytest.raises(TimeoutError):
        post_message(client, "#dishub-siaga", MESSAGE, metadata=outbox_metadata(99))
    assert fake.wait_idle()  # the slow handler goes on and stores the message
    assert [m["metadata"]["event_payload"]["outbox_id"] for m in fake.messages("#dishub-siaga")] == ["99"]
    assert find_posted(client, "#dishub-siaga", "99") == fake.messages("#dishub-siaga")[0]["ts"]


def test_find_posted_none_when_nothing_landed_and_pages_through_history(fake):
    client = client_for(fake)
    assert find_posted(client, "#never-used", "1") is None
    first = post_message(client, "#bpbd-siaga", MESSAGE, metadata=outbox_metadata(1))
    for i in range(2, 450):
        post_message(client, "#bpbd-siaga", MESSAGE, metadata=outbox_metadata(i))
    assert find_posted(client, "#bpbd-siaga", "1") == first  # oldest of 449: third page of 200
    assert fake.requests_count("conversations.history") == 3
    assert find_posted(client, "#bpbd-siaga", "1", oldest=first) is None  # oldest is exclusive
    assert find_posted(client, "#bpbd-siaga", "450") is None


def test_lead_style_metadata_with_int_id_is_found(fake):
    client = client_for(fake)
    ts = post_message(client, "#bpbd-siaga", MESSAGE,
                      metadata={"event_type": "siaga_outbox", "event_payload": {"outbox_id": 17}})
    assert find_posted(client, "#bpbd-siaga", "17") == ts


def test_read_only_calls_are_retried_after_a_dropped_connection(fake):
    client = client_for(fake)
    ts = post_message(client, "#bpbd-siaga", MESSAGE, metadata=outbox_metadata(5))
    fake.fail("conversations.history", "drop")
    assert find_posted(client, "#bpbd-siaga", "5") == ts
    assert fake.requests_count("conversations.history") == 2


def test_connection_refused_is_retried_and_transient(sleeps):
    with FakeSlack(token=TOKEN) as server:
        url = server.base_url
    client = make_client(token=TOKEN, base_url=url, conn_id=None, connection_retries=2)
    with pytest.raises(urllib.error.URLError) as err:
        post_message(client, "#bpbd-siaga", MESSAGE)
    assert classify_error(err.value) == "transient"
    assert len(sleeps) == 2  # both retries were attempted


def test_post_message_options_reach_slack(fake):
    client = client_for(fake)
    parent = post_message(client, "#bpbd-siaga", MESSAGE)
    post_message(client, "#bpbd-siaga", MESSAGE, thread_ts=parent, broadcast=True)
    post_message(client, "#bpbd-siaga", MESSAGE, thread_ts=parent)
    post_message(client, "#bpbd-siaga", MESSAGE, broadcast=True)  # no thread: plain message
    stored = fake.messages("#bpbd-siaga")
    assert [(m["thread_ts"], m["reply_broadcast"]) for m in stored] == [
        (None, False), (parent, True), (parent, False), (None, False)]
    assert all(m["unfurl_links"] is False and m["link_names"] is False for m in stored)
    assert stored[0]["blocks"] == MESSAGE["blocks"]
    with pytest.raises(ValueError, match="text"):
        post_message(client, "#bpbd-siaga", {"blocks": []})


def test_permanent_errors_classified(fake):
    fake.fail("chat.postMessage", "error", error="channel_not_found")
    with pytest.raises(SlackApiError) as err:
        post_message(client_for(fake), "#bpbd-siaga", MESSAGE)
    assert classify_error(err.value) == "permanent"
    with pytest.raises(SlackApiError) as err:
        post_message(make_client(token="xoxb-wrong", base_url=fake.base_url, conn_id=None), "#x", MESSAGE)
    # a refused token is the deployment's, not the message's: retried later, as an outage is
    # (tests/test_delivery.py, a refused token)
    assert err.value.response["error"] == "invalid_auth" and classify_error(err.value) == "transient"


def test_update_message_resolves_the_channel_name(fake):
    client = client_for(fake)
    ts = post_message(client, "#bpbd-siaga", MESSAGE)
    slackclient.update_message(client, "#bpbd-siaga", ts, {"text": "acknowledged", "blocks": []})
    assert fake.messages("#bpbd-siaga")[0]["text"] == "acknowledged"
    assert resolve_channel(client, "#bpbd-siaga") == fake.channel_id("#bpbd-siaga")


# --- redirects ------------------------------------------------------------------------------------
class Elsewhere:
    """A second loopback server, where a redirect points: records every request's method, path
    and Authorization header, and answers as a successful post would (so a client that followed
    the redirect would also take a stranger's answer for Slack's)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
                pass

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.seen.append((self.command, self.path, self.headers.get("Authorization")))
                body = json.dumps({"ok": True, "channel": "C0ELSEWHERE", "ts": "1700000099.000100"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Elsewhere":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


REDIRECTED_CALLS = {
    "chat.postMessage": lambda client: post_message(client, "#bpbd-siaga", MESSAGE, metadata=outbox_metadata(8)),
    "conversations.history": lambda client: client.conversations_history(channel="C0SOMEWHERE"),
    "auth.test": lambda client: client.auth_test(),
}


@pytest.mark.parametrize("method", sorted(REDIRECTED_CALLS))
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_the_token_never_leaves(fake, sleeps, method, status):
    """slack-sdk's urllib followed a 301/302/303 to any host, Authorization header and all.
    Slack's API never redirects: the call fails with a clear error, nothing reaches the other
    host, and a write counts as not done (Slack answered instead of handling it)."""
    error: BaseException | None = None
    with Elsewhere() as elsewhere:
        fake.fail(method, "redirect", status=status, location=elsewhere.url + method)
        try:
            REDIRECTED_CALLS[method](client_for(fake))
        except Exception as exc:  # checked below, after what reached the other host
            error = exc
    assert [auth for _, _, auth in elsewhere.seen if auth and TOKEN in auth] == []  # the token never left
    assert elsewhere.seen == []  # nor did anything else
    assert isinstance(error, SlackRedirectError)
    assert f"HTTP {status}" in str(error) and elsewhere.url.rsplit("/api/", 1)[0] in str(error)
    assert TOKEN not in str(error)
    assert classify_error(error) == "transient"
    assert fake.requests_count(method) == 1 and fake.messages() == []


def test_a_redirect_slack_sdk_reports_as_an_answer_is_transient(fake):
    """A plain slack-sdk client turns a 307 to a POST into an HTTP 307 answer (urllib will not
    re-send a body): Slack did not handle it either."""
    from slack_sdk import WebClient

    fake.fail("chat.postMessage", "redirect", status=307, location=fake.base_url + "chat.postMessage")
    with pytest.raises(SlackApiError) as err:
        WebClient(token=TOKEN, base_url=fake.base_url, retry_handlers=[]).chat_postMessage(channel="#x", text="t")
    assert err.value.response.status_code == 307
    assert classify_error(err.value) == "transient" and fake.messages() == []


# --- credentials ----------------------------------------------------------------------------------
def test_env_credentials_and_trailing_slash(fake, monkeypatch):
    monkeypatch.setenv("SIAGA_SLACK_TOKEN", TOKEN)
    monkeypatch.setenv("SIAGA_SLACK_BASE_URL", fake.base_url.rstrip("/"))
    client = make_client(conn_id=None)
    assert client.base_url == fake.base_url
    assert client.auth_test()["ok"] is True


def test_missing_token_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SIAGA_SLACK_TOKEN", raising=False)
    with pytest.raises(SlackConfigError, match="SIAGA_SLACK_TOKEN"):
        make_client(conn_id=None)


def test_airflow_connection_is_preferred(fake, monkeypatch):
    pytest.importorskip("airflow.sdk")
    monkeypatch.setenv("SIAGA_SLACK_TOKEN", "xoxb-from-env-wrong")
    monkeypatch.setenv("AIRFLOW_CONN_SIAGA_TEST_SLACK", json.dumps(
        {"conn_type": "slack", "password": TOKEN, "extra": {"base_url": fake.base_url.rstrip("/")}}))
    client = make_client(conn_id="siaga_test_slack")
    assert client.base_url == fake.base_url
    assert client.auth_test()["ok"] is True


def test_absent_airflow_connection_falls_back_to_env(fake, monkeypatch):
    pytest.importorskip("airflow.sdk")
    monkeypatch.setenv("SIAGA_SLACK_TOKEN", TOKEN)
    monkeypatch.setenv("SIAGA_SLACK_BASE_URL", fake.base_url)
    client = make_client(conn_id="siaga_no_such_connection")
    assert client.auth_test()["ok"] is True


def test_token_never_logged(fake, caplog, sleeps):
    caplog.set_level(logging.DEBUG)
    client = client_for(fake)
    fake.fail("auth.test", "server_error")  # retried: a read
    client.auth_test()
    post_message(client, "#bpbd-siaga", MESSAGE)
    assert caplog.records  # the client did log (incl. slack-sdk debug lines)
    assert TOKEN not in caplog.text
