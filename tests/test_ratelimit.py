"""`Retry-After`, read once for Slack and the sources: delta-seconds, the three HTTP-date formats of
RFC 9110, list-valued headers, garbage; and both clients waiting what it says."""
from __future__ import annotations

import email.utils
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from hypothesis import given, strategies as st
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from siaga.ratelimit import retry_after
from siaga.slackclient import BoundedRateLimitRetryHandler
from siaga.sources import http

NOW = datetime(1994, 11, 6, 8, 47, 37, tzinfo=timezone.utc)  # two minutes before RFC 9110's example date


@pytest.mark.parametrize("value, seconds", [
    ("120", 120.0),
    (" 7 ", 7.0),
    ("0", 0.0),
    ("-5", 0.0),  # a negative wait can only mean "now"
    ("Sun, 06 Nov 1994 08:49:37 GMT", 120.0),  # IMF-fixdate
    ("Sunday, 06-Nov-94 08:49:37 GMT", 120.0),  # obsolete RFC 850
    ("Sun Nov  6 08:49:37 1994", 120.0),  # obsolete asctime, no zone: GMT
    ("Sun, 06 Nov 1994 16:49:37 +0800", 120.0),  # same instant, written in WITA
    ("Sun, 06 Nov 1994 08:00:00 GMT", 0.0),  # already past
])
def test_delta_seconds_and_http_dates(value, seconds):
    assert retry_after({"Retry-After": value}, now=NOW) == seconds


@pytest.mark.parametrize("value", ["soon", "", "  ", "1.5", "0x10", "²", "١٢", "Sun, 32 Nov 1994 08:49:37 GMT",
                                   "Sun, 06 Nov 99999 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 +9999", None, [], 3.5])
def test_garbage_is_none(value):
    assert retry_after({"Retry-After": value}, now=NOW) is None


def test_header_name_in_any_case_and_list_values_as_slack_sdk_keeps_them():
    assert retry_after({"retry-after": ["30", "99"]}) == 30.0
    assert retry_after({"RETRY-AFTER": "3"}) == 3.0
    assert retry_after(requests.structures.CaseInsensitiveDict({"Retry-After": "4"})) == 4.0
    assert retry_after({"Retry-After": 5}) == 5.0
    assert retry_after({"Retry-After": b"6"}) == 6.0
    assert retry_after({"X-RateLimit-Reset": "60"}) is None
    assert retry_after({}) is None


def test_a_number_too_long_for_int_is_a_very_long_wait():
    assert retry_after({"Retry-After": "9" * 5000}) > 10 ** 100


def test_an_http_date_is_measured_against_the_current_time_by_default():
    soon = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 27 <= retry_after({"Retry-After": soon}) <= 30


@given(st.text())
def test_any_text_is_none_or_a_wait_never_an_error(value):
    wait = retry_after({"Retry-After": value}, now=NOW)
    assert wait is None or wait >= 0


@given(st.integers(min_value=0, max_value=10 ** 30))
def test_any_delta_seconds_reads_back(n):
    assert retry_after({"Retry-After": str(n)}) == float(n)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(timezone.utc)),
       st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(timezone.utc)))
def test_any_imf_fixdate_reads_back_to_the_second(when, now):
    wait = retry_after({"Retry-After": email.utils.format_datetime(when, usegmt=True)}, now=now)
    assert wait == max((when.replace(microsecond=0) - now).total_seconds(), 0.0)


# --- the two clients wait what it says ----------------------------------------------------------


def _handler_decision(value: str, sleeps: list[float], max_wait: float = 60.0) -> bool:
    handler = BoundedRateLimitRetryHandler(max_retry_count=3, max_wait=max_wait)
    state = RetryState()
    request = HttpRequest(method="POST", url="https://slack.test/api/chat.postMessage", headers={})
    response = HttpResponse(status_code=429, headers={"retry-after": value})
    if not handler.can_retry(state=state, request=request, response=response):
        return False
    handler.prepare_for_next_attempt(state=state, request=request, response=response)
    assert state.next_attempt_requested and state.current_attempt == 1
    return True


@pytest.fixture
def sleeps(monkeypatch):
    recorded: list[float] = []
    monkeypatch.setattr("siaga.slackclient.time.sleep", recorded.append)
    return recorded


def test_slack_waits_for_an_http_date_and_gives_up_on_a_far_one(sleeps):
    in_20s = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    in_10min = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(minutes=10), usegmt=True)
    assert _handler_decision(in_20s, sleeps)
    assert len(sleeps) == 1 and 17 <= sleeps[0] < 21  # the wait plus slack-sdk's jitter under 1 s
    assert not _handler_decision(in_10min, sleeps) and len(sleeps) == 1


def test_slack_waits_about_a_second_when_the_header_is_unreadable(sleeps):
    assert _handler_decision("soon", sleeps)
    assert _handler_decision("-3", sleeps)
    assert len(sleeps) == 2 and 1 <= sleeps[0] < 2 and 0 <= sleeps[1] < 1


class _RateLimitedOnce(BaseHTTPRequestHandler):
    retry_after_value = ""
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).hits += 1
        if type(self).hits == 1:
            self.send_response(429)
            self.send_header("Retry-After", self.retry_after_value)
            self.end_headers()
            return
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_source_waits_for_an_http_date_before_asking_again():
    handler = type("Handler", (_RateLimitedOnce,), {
        "retry_after_value": email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=3), usegmt=True),
    })
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    slept: list[float] = []
    try:
        resp = http.request(http.make_session(), f"http://127.0.0.1:{server.server_address[1]}/feed",
                            policy=http.HttpPolicy(attempts=2, max_wait=10), sleep=slept.append)
    finally:
        server.shutdown()
        server.server_close()
    assert resp.json() == {"ok": True} and handler.hits == 2
    assert len(slept) == 1 and 0 < slept[0] <= 3
