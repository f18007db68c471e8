"""HTTP for connectors: one session shape, bounded waits, and errors that fail the task cleanly.

Retries are hand-written rather than urllib3's `Retry` on purpose: `Retry` sleeps for whatever
`Retry-After` says inside the adapter (an X rate limit can say 15 minutes), cannot turn an
over-long wait into "fail this task and let Airflow retry later", and does not read the
`X-RateLimit-*` family of headers, which tell us to stop paging *before* a 429. Here a wait longer
than `max_wait` raises `SourceError`, so one source never holds a worker slot hostage.

The connect and read timeouts bound each wait on the socket, not a response: a server that sends
a byte every few seconds never trips them. `response_timeout` bounds the whole response, from
the request to its last byte: its status line and headers under a timer that shuts the socket
at the deadline (`_Watched`), its body checked as each piece arrives; past it the response is a
`ResponseTimeout`.
"""
from __future__ import annotations

import logging
import random
import socket
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

import requests
import urllib3
from requests.adapters import HTTPAdapter

from siaga.ratelimit import retry_after
from siaga.redaction import redact_echo, redact_library_logs, redact_url, secrets_of
from siaga.sources.parsing import load_json

log = logging.getLogger(__name__)
# urllib3 logs each request's path and query (a feed's ?token=) at DEBUG, and redirects' URLs.
redact_library_logs("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry")

USER_AGENT = "siaga/0.1 (+https://github.com/siaga; disaster watch for BPBD Buleleng)"
# The most of one response body read (after decompression): a page of posts or a feed is at most
# a few MB (`rss.MAX_FEED_BYTES` is 5 MB), and a body without end must fail the request, not fill
# the worker's memory.
MAX_RESPONSE_BYTES = 16_000_000


class SourceError(RuntimeError):
    """A source could not be read this run (outage, rate limit, bad credentials). The task fails
    and Airflow retries it; the cursor stays where it was, so the next run backfills the gap."""


class ResponseTimeout(SourceError):
    """A response took longer than `HttpPolicy.response_timeout` in all (a server dripping its
    body). Not retried within the run: a server doing this does it again, and each try would
    hold the worker for the whole timeout; the task's own retries come later."""


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    response_timeout: float = 60.0  # the whole response, request to last byte
    attempts: int = 4  # tries per request, including the first
    backoff: float = 1.0  # first wait after a 5xx or timeout; doubles, with jitter
    max_wait: float = 60.0  # longest single wait we accept (Retry-After or backoff)


@dataclass(frozen=True)
class RateLimit:
    """What the API says is left of the current window; None where it did not say."""

    remaining: int | None
    reset_at: datetime | None

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


# When the response `request` is waiting for must be complete (`time.monotonic()`), for `_Watched`.
_DEADLINE: ContextVar[float | None] = ContextVar("siaga_http_deadline", default=None)


class _Watched:
    """urllib3's connection, whose reading of a response's status line and headers ends at the
    deadline of the `request` making it: a timer shuts the socket down then, so a server
    dripping its headers byte by byte (each within the read timeout) cannot hold the poll.
    The body is then read by `_read_capped`, which checks the same deadline."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = _DEADLINE.get()
        if deadline is None or self.sock is None:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        shut = threading.Event()
        timer = threading.Timer(max(deadline - time.monotonic(), 0.0), _shut, (self.sock, shut))
        timer.daemon = True
        timer.start()
        try:
            response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
        finally:
            timer.cancel()
        if shut.is_set():  # http.client takes the end of the stream for the end of the headers
            raise TimeoutError("status line and headers not read by the response's deadline")
        return response


def _shut(sock: socket.socket, shut: threading.Event) -> None:
    shut.set()
    try:
        sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns
    except OSError:
        pass


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter with pools of `_Watched` connections (not through a proxy, whose
    manager builds its own pools: there only the body is held to the deadline)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def make_session(user_agent: str = USER_AGENT) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _WatchedAdapter())
    session.mount("https://", _WatchedAdapter())
    session.headers["User-Agent"] = user_agent
    session.headers["Accept"] = "application/json"
    return session


Sleep = Callable[[float], None]


def request(
    session: requests.Session,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    policy: HttpPolicy = HttpPolicy(),
    ok: tuple[int, ...] = (200,),
    sleep: Sleep = time.sleep,
    what: str = "",
) -> requests.Response:
    """GET with bounded retries on 429/5xx/timeouts; any other status or exhaustion is a
    `SourceError` naming `what`, else the URL without its secrets (`redaction.redact_url`)."""
    label = what or redact_url(url)
    delay = policy.backoff
    last = ""
    for attempt in range(1, policy.attempts + 1):
        deadline = time.monotonic() + policy.response_timeout
        watch = _DEADLINE.set(deadline)
        try:
            resp = session.get(
                url, params=params, headers=headers, timeout=(policy.connect_timeout, policy.read_timeout), stream=True
            )
            _read_capped(resp, label, deadline, policy.response_timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            if time.monotonic() >= deadline:  # the socket was shut at the deadline (`_Watched`)
                raise ResponseTimeout(_too_slow(label, policy.response_timeout)) from None
            last = f"{type(exc).__name__}"
            wait = _jitter(delay)
        else:
            if resp.status_code in ok:
                return resp
            if resp.status_code == 429 or resp.status_code == 503 and "Retry-After" in resp.headers:
                wait_for = retry_after(resp.headers)
                if wait_for is None:
                    wait_for = _until(rate_limit(resp.headers).reset_at)
                if wait_for is None:
                    wait_for = delay
                if wait_for > policy.max_wait:
                    raise SourceError(f"{label}: rate limited for {wait_for:.0f}s (more than {policy.max_wait:.0f}s)")
                last = f"HTTP {resp.status_code}"
                wait = wait_for
            elif resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                wait = _jitter(delay)
            else:
                raise SourceError(f"{label}: HTTP {resp.status_code}: {_excerpt(resp, url)!r}")
        finally:
            _DEADLINE.reset(watch)
        if attempt == policy.attempts:
            break
        wait = min(wait, policy.max_wait)
        log.info("%s: %s, retrying in %.1fs (attempt %d/%d)", label, last, wait, attempt, policy.attempts)
        sleep(wait)
        delay = min(delay * 2, policy.max_wait)
    raise SourceError(f"{label}: gave up after {policy.attempts} attempts ({last})")


def _excerpt(resp: requests.Response, url: str) -> str:
    """The start of an error body, for the message, without the request's secrets (those of
    its URL, the credentials of the Authorization header sent: a bearer token, or the Basic
    encoding of the URL's user and password): a server may quote back what it refused."""
    sent = resp.request.headers.get("Authorization", "") if resp.request is not None else ""
    return redact_echo(resp.text[:1000], secrets_of(url) + sent.split()[1:])[:200]


def _read_capped(resp: requests.Response, label: str, deadline: float, allowed: float) -> None:
    """Read the body of a streamed `resp` into it (`resp.content` then works as without
    streaming), at most MAX_RESPONSE_BYTES and until `deadline` (`time.monotonic()`, `allowed`
    seconds after the request); a longer or slower body is a `SourceError`, not retried."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in _arriving(resp):
            if time.monotonic() > deadline:
                raise ResponseTimeout(_too_slow(label, allowed))
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise SourceError(f"{label}: response larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
    finally:
        resp.close()
    resp._content = b"".join(chunks)  # what requests does itself when it reads a body whole


def _too_slow(label: str, allowed: float) -> str:
    return f"{label}: response not complete after {allowed:g}s (http.response_timeout)"


def _arriving(resp: requests.Response) -> Iterator[bytes]:
    """The decoded body of a streamed `resp` as it arrives: each piece after at most one read
    of the socket (urllib3's `read1`), where `iter_content` waits until a whole chunk is in,
    which a dripping server makes last for hours. urllib3's errors become the requests errors
    `iter_content` raises for them."""
    try:
        while chunk := resp.raw.read1(1 << 16, decode_content=True):
            yield chunk
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.ReadTimeout(exc) from None
    except urllib3.exceptions.HTTPError as exc:
        raise requests.ConnectionError(exc) from None


def get_json(session: requests.Session, url: str, **kwargs: Any) -> tuple[Any, requests.Response]:
    """`request` plus JSON decoding; a body that is not JSON is a `ValueError` naming the URL, so
    the caller can quarantine the page rather than crash.

    JSON is UTF-8 (RFC 8259): bytes that are not become lone surrogates and a value too deep or
    too long to build becomes `Unreadable` (`parsing.load_json`), so one bad item costs that item
    (the schema refuses it) and not the page around it."""
    resp = request(session, url, **kwargs)
    return json_body(resp, kwargs.get("what") or redact_url(url)), resp


def json_body(resp: requests.Response, label: str) -> Any:
    """The JSON body of `resp` (as `get_json` reads it), or a ValueError naming `label`."""
    try:
        return load_json(resp.content.decode("utf-8-sig", "surrogateescape"))
    except ValueError as exc:
        raise ValueError(f"{label}: response is not valid JSON ({exc})") from None


def rate_limit(headers: Mapping[str, str]) -> RateLimit:
    """Mastodon (`X-RateLimit-Reset` is ISO 8601), X (`x-rate-limit-reset`, epoch seconds) and
    Bluesky (`RateLimit-Reset`, epoch seconds) spell the same thing three ways."""
    remaining = reset = None
    for name in ("X-RateLimit-Remaining", "x-rate-limit-remaining", "RateLimit-Remaining"):
        if headers.get(name) is not None:
            try:
                remaining = int(float(headers[name]))
            except (ValueError, OverflowError):  # "nan", "inf", "1e400": not a count
                pass
            break
    for name in ("X-RateLimit-Reset", "x-rate-limit-reset", "RateLimit-Reset"):
        value = headers.get(name)
        if value is None:
            continue
        value = value.strip()
        try:
            reset = datetime.fromtimestamp(float(value), timezone.utc)
        except (ValueError, OverflowError, OSError):  # also "inf", "1e20": no time a clock holds
            try:
                reset = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                reset = None
        break
    return RateLimit(remaining, reset)


def _until(when: datetime | None) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _jitter(delay: float) -> float:
    return delay * (0.5 + random.random() / 2)


# The keys of a source's `http:` block (`config_file.SCHEMA` lists the same).
HTTP_OPTIONS = ("connect_timeout", "read_timeout", "response_timeout", "attempts", "backoff", "max_wait")


def policy_from_config(entry: Mapping[str, Any], where: str) -> HttpPolicy:
    """`http:` block of a source entry: timeouts, attempts, backoff, max_wait (seconds)."""
    from siaga.sources.base import SourceConfigError

    block = entry.get("http") or {}
    if not isinstance(block, Mapping):
        raise SourceConfigError(f"{where}.http: expected a mapping")
    known = set(HTTP_OPTIONS)
    unknown = set(block) - known
    if unknown:
        raise SourceConfigError(f"{where}.http: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    values: dict[str, Any] = {}
    for key, value in block.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise SourceConfigError(f"{where}.http.{key}: expected a positive number, got {value!r}")
        values[key] = int(value) if key == "attempts" else float(value)
    return HttpPolicy(**values)
