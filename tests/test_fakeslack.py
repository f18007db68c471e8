"""The fake Slack Web API must behave like Slack where delivery depends on it, or the delivery
tests prove nothing."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from siaga_dev.fakeslack import DEFAULT_TOKEN, FakeSlack, validate_blocks


@pytest.fixture
def fake():
    with FakeSlack() as server:
        yield server


def bare_client(fake: FakeSlack, token: str = DEFAULT_TOKEN, timeout: int = 5) -> WebClient:
    """A client with no retry handlers, to see each raw answer."""
    return WebClient(token=token, base_url=fake.base_url, timeout=timeout, retry_handlers=[])


def raw_post(fake: FakeSlack, method: str, body: dict, token: str | None = DEFAULT_TOKEN):
    data = urllib.parse.urlencode(body).encode()
    req = urllib.request.Request(fake.base_url + method, data=data, method="POST")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def test_base_url_is_loopback_and_ends_with_slash(fake):
    assert fake.base_url.startswith("http://127.0.0.1:")
    assert fake.base_url.endswith("/")


def test_refuses_non_loopback_host():
    with pytest.raises(ValueError, match="loopback"):
        FakeSlack(host="0.0.0.0")


def test_bearer_token_checked(fake):
    with pytest.raises(SlackApiError) as err:
        bare_client(fake, token="xoxb-wrong").chat_postMessage(channel="#x", text="hi")
    assert err.value.response["error"] == "invalid_auth"
    assert raw_post(fake, "auth.test", {}, token=None)[2]["error"] == "not_authed"
    assert fake.messages() == []
    assert bare_client(fake).auth_test()["ok"] is True


def test_form_body_token_accepted(fake):
    status, _, body = raw_post(fake, "chat.postMessage", {"token": DEFAULT_TOKEN, "channel": "#x", "text": "hi",
                                                          "blocks": json.dumps([{"type": "divider"}])}, token=None)
    assert body["ok"] is True
    assert fake.messages("#x")[0]["blocks"] == [{"type": "divider"}]  # JSON string in a form body parsed


def test_post_returns_unique_increasing_ts_and_channel_id(fake):
    client = bare_client(fake)
    answers = [client.chat_postMessage(channel="#bpbd-siaga", text=f"m{i}") for i in range(5)]
    ts = [a["ts"] for a in answers]
    assert len(set(ts)) == 5
    assert sorted(ts, key=float) == ts
    assert all(a["channel"] == fake.channel_id("#bpbd-siaga") for a in answers)
    assert answers[0]["channel"].startswith("C")
    assert [m["text"] for m in fake.messages("bpbd-siaga")] == [f"m{i}" for i in range(5)]


def test_threads_broadcast_history_and_replies(fake):
    client = bare_client(fake)
    parent = client.chat_postMessage(channel="#bpbd-siaga", text="parent",
                                     metadata={"event_type": "siaga_outbox", "event_payload": {"outbox_id": "1"}})
    cid = parent["channel"]
    client.chat_postMessage(channel=cid, text="quiet reply", thread_ts=parent["ts"])
    client.chat_postMessage(channel=cid, text="loud reply", thread_ts=parent["ts"], reply_broadcast=True)

    history = client.conversations_history(channel=cid)["messages"]
    assert [m["text"] for m in history] == ["loud reply", "parent"]  # newest first, quiet reply hidden
    assert "metadata" not in history[1]
    with_meta = client.conversations_history(channel=cid, include_all_metadata=True)["messages"]
    assert with_meta[1]["metadata"]["event_payload"]["outbox_id"] == "1"

    thread = client.conversations_replies(channel=cid, ts=parent["ts"])["messages"]
    assert [m["text"] for m in thread] == ["parent", "quiet reply", "loud reply"]
    assert thread[0]["reply_count"] == 2

    stored = fake.messages(cid)
    assert stored[0]["thread_ts"] is None
    assert stored[2]["thread_ts"] == parent["ts"] and stored[2]["reply_broadcast"] is True
    assert stored[1]["reply_broadcast"] is False


def test_reply_to_unknown_thread_refused(fake):
    with pytest.raises(SlackApiError) as err:
        bare_client(fake).chat_postMessage(channel="#x", text="r", thread_ts="1.000001")
    assert err.value.response["error"] == "thread_not_found"


def test_history_and_update_need_channel_id_like_slack(fake):
    client = bare_client(fake)
    posted = client.chat_postMessage(channel="#dishub-siaga", text="before")
    with pytest.raises(SlackApiError) as err:
        client.conversations_history(channel="#dishub-siaga")
    assert err.value.response["error"] == "channel_not_found"
    client.chat_update(channel=posted["channel"], ts=posted["ts"], text="after")
    assert fake.messages("#dishub-siaga")[0]["text"] == "after"
    assert "edited" in fake.messages("#dishub-siaga")[0]


def test_history_oldest_and_pagination(fake):
    client = bare_client(fake)
    ts = [client.chat_postMessage(channel="#p", text=str(i))["ts"] for i in range(7)]
    cid = fake.channel_id("#p")
    newer = client.conversations_history(channel=cid, oldest=ts[4])["messages"]
    assert [m["text"] for m in newer] == ["6", "5"]  # oldest is exclusive
    seen, cursor = [], None
    while True:
        page = client.conversations_history(channel=cid, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == [str(i) for i in reversed(range(7))]


def test_conversations_list(fake):
    with FakeSlack(channels=["#bpbd-siaga", "dishub-siaga"]) as server:
        names = {c["name"] for c in bare_client(server).conversations_list()["channels"]}
    assert names == {"bpbd-siaga", "dishub-siaga"}


def test_unknown_channel_when_not_auto_creating():
    with FakeSlack(channels=["#bpbd-siaga"], auto_create_channels=False) as server:
        with pytest.raises(SlackApiError) as err:
            bare_client(server).chat_postMessage(channel="#nope", text="x")
    assert err.value.response["error"] == "channel_not_found"


def test_ratelimit_mode_sends_retry_after_and_stores_nothing(fake):
    fake.fail("chat.postMessage", "ratelimit", times=2, seconds=7)
    for _ in range(2):
        status, headers, body = raw_post(fake, "chat.postMessage", {"channel": "#x", "text": "t"})
        assert status == 429 and headers["Retry-After"] == "7" and body["error"] == "ratelimited"
    assert raw_post(fake, "chat.postMessage", {"channel": "#x", "text": "t"})[0] == 200
    assert len(fake.messages()) == 1
    assert [r.outcome for r in fake.requests("chat.postMessage")] == ["ratelimit", "ratelimit", "handled"]


def test_failures_are_per_method_and_queued_in_order(fake):
    fake.fail("chat.postMessage", "server_error", status=503)
    fake.fail("chat.postMessage", "error", error="channel_not_found")
    assert raw_post(fake, "auth.test", {})[0] == 200  # other methods unaffected
    assert raw_post(fake, "chat.postMessage", {"channel": "#x", "text": "t"})[0] == 503
    assert raw_post(fake, "chat.postMessage", {"channel": "#x", "text": "t"})[2]["error"] == "channel_not_found"
    assert raw_post(fake, "chat.postMessage", {"channel": "#x", "text": "t"})[2]["ok"] is True
    assert len(fake.messages()) == 1


def test_drop_stores_the_message_but_the_client_sees_an_error(fake):
    fake.fail("chat.postMessage", "drop")
    with pytest.raises(Exception) as err:
        bare_client(fake).chat_postMessage(channel="#x", text="landed anyway")
    assert "closed connection" in str(err.value) or isinstance(err.value, ConnectionError)
    assert [m["text"] for m in fake.messages("#x")] == ["landed anyway"]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_stored_server_error_stores_the_message_then_answers_5xx(fake, status):
    fake.fail("chat.postMessage", "stored_server_error", status=status)
    fake.fail("chat.postMessage", "server_error", status=status)
    for text in ("landed anyway", "never"):
        assert raw_post(fake, "chat.postMessage", {"channel": "#x", "text": text})[0] == status
    assert [m["text"] for m in fake.messages("#x")] == ["landed anyway"]
    assert [r.outcome for r in fake.requests("chat.postMessage")] == ["stored_server_error", "server_error"]


def test_redirect_answers_with_a_location_and_stores_nothing(fake):
    fake.fail("chat.postMessage", "redirect", status=302, location="http://127.0.0.1:9/api/chat.postMessage")
    req = urllib.request.Request(fake.base_url + "chat.postMessage", data=b"channel=%23x&text=t", method="POST",
                                 headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    conn = urllib.request.build_opener(NoRedirect()).open
    with pytest.raises(urllib.error.HTTPError) as err:
        conn(req, timeout=5)
    assert err.value.code == 302 and err.value.headers["Location"] == "http://127.0.0.1:9/api/chat.postMessage"
    assert fake.messages() == []
    with pytest.raises(ValueError, match="3xx status and a location"):
        fake.fail("chat.postMessage", "redirect", status=500, location="http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="redirect"):
        fake.chaos("chat.postMessage", {"redirect": 0.1})


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let a 3xx surface as an HTTPError, to look at it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def test_hang_times_out_the_client_and_stores_nothing(fake):
    fake.fail("chat.postMessage", "hang", seconds=30)
    with pytest.raises(TimeoutError):
        bare_client(fake, timeout=1).chat_postMessage(channel="#x", text="never")
    assert fake.messages() == []
    assert fake.requests_count("chat.postMessage") == 1


def test_reset_aborts_the_connection_and_stores_nothing(fake):
    fake.fail("chat.postMessage", "reset")
    with pytest.raises(ConnectionResetError):
        bare_client(fake).chat_postMessage(channel="#x", text="never")
    assert fake.messages() == [] and fake.requests("chat.postMessage")[0].outcome == "reset"
    assert bare_client(fake).chat_postMessage(channel="#x", text="after")["ok"] is True


def test_chaos_draws_failures_at_the_given_rates_after_queued_ones(fake):
    fake.fail("chat.postMessage", "error", error="channel_not_found")
    fake.chaos("chat.postMessage", {"server_error": 0.3, "ratelimit": 0.2}, {"ratelimit": 3}, seed=7)
    answers = [raw_post(fake, "chat.postMessage", {"channel": "#x", "text": "t"}) for _ in range(400)]
    assert answers[0][2]["error"] == "channel_not_found"
    outcomes = [r.outcome for r in fake.requests("chat.postMessage")[1:]]
    assert 90 <= outcomes.count("server_error") <= 150 and 50 <= outcomes.count("ratelimit") <= 110
    assert all(a[1]["Retry-After"] == "3" for a in answers if a[0] == 429)
    assert len(fake.messages()) == outcomes.count("handled")
    assert raw_post(fake, "auth.test", {})[0] == 200  # other methods unaffected
    fake.clear_failures()
    assert raw_post(fake, "chat.postMessage", {"channel": "#x", "text": "t"})[0] == 200
    with pytest.raises(ValueError, match="unknown failure mode"):
        fake.chaos("chat.postMessage", {"boom": 0.1})
    with pytest.raises(ValueError, match="add up"):
        fake.chaos("chat.postMessage", {"hang": 0.6, "reset": 0.6})


def test_delay_then_success(fake):
    fake.fail("chat.postMessage", "delay", seconds=0.2)
    assert bare_client(fake).chat_postMessage(channel="#x", text="late")["ok"] is True
    assert [m["text"] for m in fake.messages()] == ["late"]


def test_bad_failure_mode_named():
    with FakeSlack() as server, pytest.raises(ValueError, match="unknown failure mode 'boom'"):
        server.fail("chat.postMessage", "boom")


def test_block_limits_enforced_like_slack(fake):
    client = bare_client(fake)
    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="#x", text="t", blocks=too_many)
    assert err.value.response["error"] == "invalid_blocks"
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    assert validate_blocks(long_section) == "blocks[0].text longer than 3000"
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="#x", text="t", blocks=long_section)
    assert fake.messages() == []


def test_command_line_demo_prints_messages_and_dumps_json(tmp_path):
    dump = tmp_path / "received.json"
    proc = subprocess.Popen([sys.executable, "-m", "siaga_dev.fakeslack", "--port", "0", "--dump", str(dump)],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        base_url = first.split(" at ", 1)[1].split()[0]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/")
        client = WebClient(token=DEFAULT_TOKEN, base_url=base_url)
        parent = client.chat_postMessage(channel="#bpbd-siaga", text="Banjir di Sukasada")
        client.chat_postMessage(channel=parent["channel"], text="update", thread_ts=parent["ts"],
                                reply_broadcast=True)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "#bpbd-siaga new message" in out and "Banjir di Sukasada" in out
    assert f"reply in thread {parent['ts']} (broadcast)" in out
    data = json.loads(dump.read_text())
    assert [m["text"] for m in data["messages"]] == ["Banjir di Sukasada", "update"]
    assert data["requests"][0]["method"] == "chat.postMessage"
