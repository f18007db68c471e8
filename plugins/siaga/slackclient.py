"""The Slack Web API client Siaga posts through, and the few calls delivery and the alert
buttons need (post, find a post, edit a post).

`slack_sdk.WebClient` retries only connection errors by default; alerts must survive 429s and
5xx without a human, so `make_client` attaches bounded retry handlers (a 429 waits what
`Retry-After` says, read by `ratelimit.retry_after`, up to a limit). Re-sending a
`chat.postMessage` whose request may already have reached Slack can post it twice, so a write is
re-sent here only when Slack certainly did not act on it: after a 429, or a connection that
failed before the request was sent. A 5xx, a timeout or a dropped connection after sending may
come after Slack stored the post (a gateway's 502 in front of a Slack that did its work), so on a
write they are not retried in the client; they surface as an error that `classify_error` calls
"unknown_outcome", and the sender asks `find_posted` before posting again. Calls that only read
(`READ_ONLY_METHODS`) are retried either way.

The client never follows an HTTP redirect (`SiagaWebClient`): urllib would re-send the bot token
to whatever host the redirect names, and the real Slack API never redirects.

Each outbound message can carry Slack message metadata (`outbox_metadata`), which
`conversations.history`/`conversations.replies` return with `include_all_metadata`; that is the
marker `find_posted` looks for. Reading history needs the `channels:history` (and
`groups:history` for private channels) scope, listing channels `channels:read` (and
`groups:read`).
"""
from __future__ import annotations

import http.client
import logging
import random
import re
import socket
import time
from typing import Any, Callable, Iterator, Mapping, NoReturn
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import HTTPRedirectHandler, HTTPSHandler, ProxyHandler, Request, build_opener

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from siaga import settings
from siaga.links import safe_url
from siaga.ratelimit import retry_after
from siaga.redaction import redact_token_logs, redact_tokens, redact_url

log = logging.getLogger(__name__)
# slack-sdk logs the start of an answer that is not JSON at ERROR; a proxy's page may quote the
# bot token back (`describe_error` takes it out of what Siaga itself records)
redact_token_logs("slack_sdk.web.base_client")

SLACK_BASE_URL = "https://slack.com/api/"
OUTBOX_EVENT = "siaga_outbox"
MARKER_KEY = "outbox_id"
# Beside the row's id, a key of what the row is (`outbox.marker_key`): ids start again in a
# database restored from a backup or re-created, and a look in a channel's whole history found
# the earlier database's post of the same id, took it for this row's and never posted this one.
MARKER_CHECK = "outbox_key"

# Methods that change nothing: safe to re-send after any connection failure.
READ_ONLY_METHODS = frozenset({"auth.test", "conversations.history", "conversations.replies", "conversations.list"})
# Slack `error` codes that mean "try again later" rather than "this message is wrong": Slack did
# not act on the call (rate limited, down, the body cut short, a migration under way)...
TRANSIENT_ERRORS = frozenset({"ratelimited", "service_unavailable", "request_timeout", "team_added_to_org"})
# ...and those after which, in Slack's words, "it's possible some aspect of the operation
# succeeded before the error was raised": transient for a read, an unknown outcome for a write.
MAYBE_DONE_ERRORS = frozenset({"internal_error", "fatal_error"})
# Refusals of the credentials, not of the message: a token mistyped, revoked or rotated, an app
# missing a scope. Every message fails alike until an operator fixes the token, and each goes out
# once it is fixed: so they are retried later like an outage (and dead-lettered only after
# outbox.MAX_ATTEMPTS, about an hour), not dead-lettered at the first refusal, which silently
# gave up every alert of the hour the token was wrong.
CREDENTIAL_ERRORS = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
                               "missing_scope", "not_allowed_token_type", "team_access_not_granted",
                               "org_login_required", "ekm_access_denied"})
# Refusals of a message's blocks (a layout Slack's validation is stricter about than ours), after
# which Slack posted nothing: `post_message` sends the message's text alone.
BLOCKS_REFUSED = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long"})
# A reply's thread is gone: its first message was deleted in Slack (one without replies leaves no
# trace). Slack posted nothing; the reply can only go out on its own (`delivery`).
THREAD_GONE = "thread_not_found"
_AFTER_SEND_ERRORS = (TimeoutError, socket.timeout, ConnectionResetError, BrokenPipeError,
                      http.client.RemoteDisconnected, http.client.IncompleteRead)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# slack-sdk's `error` for a body that is not JSON (a proxy's page, a reply cut short): no answer
# from Slack, so whether the call took effect is unknown.
_NOT_JSON = "Received a response in a non-JSON format"


# How long after the client gave up on a post Slack may still store it (a request that was slow,
# not lost). Until then a look in Slack that finds nothing proves nothing, so a post whose outcome
# is unknown is neither looked up nor re-posted before this has passed (`outbox.record_outcome`).
LATE_STORE_SECONDS = 60.0


class SlackConfigError(RuntimeError):
    """No usable Slack credentials."""


class SlackRedirectError(SlackRequestError):
    """Slack's address answered a call with an HTTP redirect, which Siaga does not follow.

    The real Slack Web API never redirects. A 3xx comes from something that is not Slack, or is
    not Slack's API: a `base_url` with the wrong scheme or host, a proxy, a captive portal, a
    hijacked name. Following it would send the bot token (the Authorization header, which urllib
    copies onto the redirected request) to whatever host it names, and would take that host's
    answer for Slack's. A server answers with a redirect *instead of* handling the request, so a
    redirected `chat.postMessage` was not posted: `classify_error` calls it "transient" (retried
    later by the outbox, never sent twice; a redirect that persists, a setup error, ends as a
    visible dead letter after `outbox.MAX_ATTEMPTS`). The message names the status and the
    redirect's origin only (scheme, host, port), not its path or query."""

    def __init__(self, url: str, status: int, location: str) -> None:
        target = urlsplit(location)
        where = f"{target.scheme}://{target.netloc}" if target.netloc else "a relative address"
        super().__init__(f"{_url_method(url)}: the Slack API address answered HTTP {status}, a redirect to {where}; "
                         f"not followed (Slack's API never redirects and the bot token must not leave it): "
                         f"check the Slack base_url")
        self.status = status
        self.location = location


class _RefuseRedirects(HTTPRedirectHandler):
    """urllib's redirect handler, refusing every redirect (301, 302, 303, 307, 308) before a
    new request is made."""

    def redirect_request(self, req: Request, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> NoReturn:
        fp.close()
        raise SlackRedirectError(req.full_url, code, newurl)


if not callable(getattr(WebClient, "_perform_urllib_http_request_internal", None)):  # pragma: no cover
    # SiagaWebClient's guard would silently stop working: fail loudly instead.
    raise ImportError("slack_sdk.WebClient no longer has _perform_urllib_http_request_internal: "
                      "siaga.slackclient.SiagaWebClient's redirect guard needs porting to this slack-sdk")


class SiagaWebClient(WebClient):
    """slack-sdk's WebClient that never follows an HTTP redirect (see `SlackRedirectError`).

    slack-sdk opens each request with `urllib.request.urlopen` (or a proxy opener) inside
    `_perform_urllib_http_request_internal`, with urllib's default redirect handler, and offers
    no documented hook to change the opener; installing a process-wide opener would change every
    other urllib user in the process. So this subclass overrides that one method, which opens
    one prepared request and reads its answer, and opens it with the same handlers slack-sdk
    uses (its `ssl` context, its `proxy`) plus a redirect handler that refuses. Everything else
    (building the request, retry handlers, parsing, `SlackResponse`) stays slack-sdk's. The
    import-time check above fails loudly if slack-sdk renames the method."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if not url.lower().startswith("http"):
            return super()._perform_urllib_http_request_internal(url, req)  # slack-sdk refuses it
        handlers: list[Any] = [_RefuseRedirects(), HTTPSHandler(context=self.ssl)]
        if self.proxy is not None:
            if not isinstance(self.proxy, str):
                raise SlackRequestError(f"Invalid proxy detected: {self.proxy} must be a str value")
            handlers.append(ProxyHandler({"http": self.proxy, "https": self.proxy}))
        with build_opener(*handlers).open(req, timeout=self.timeout) as resp:
            if resp.headers.get_content_type() == "application/gzip":  # as slack-sdk: a file, not text
                body: bytes | str = resp.read()
            else:
                body = resp.read().decode(resp.headers.get_content_charset() or "utf-8")
            return {"status": resp.code, "headers": resp.headers, "body": body}


def _url_method(url: str) -> str:
    """The Web API method a request URL calls ("chat.postMessage")."""
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


def _api_method(request: HttpRequest) -> str:
    return _url_method(request.url)


def is_read_only(method: str) -> bool:
    """Does calling `method` change nothing in Slack (so re-sending it can do no harm)?"""
    return method in READ_ONLY_METHODS


class SafeConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
    """Retry a connection failure only when re-sending cannot post twice: the request never
    left (urllib wraps connect/send failures in URLError), or the method only reads."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if error is None or response is not None or isinstance(error, HTTPError):
            return False
        if isinstance(error, URLError):
            return True
        return is_read_only(_api_method(request)) and isinstance(error, _AFTER_SEND_ERRORS)


class ReadOnlyServerErrorRetryHandler(ServerErrorRetryHandler):
    """Retry a 5xx (500, 503 as slack-sdk's handler does) only for a call that reads. A 5xx to a
    write can come after Slack stored it (a gateway timing out in front of a Slack that did its
    work, or Slack's own `internal_error`), so re-sending could post it twice: it surfaces, and
    `classify_error` calls it an unknown outcome, to be looked up before any new post."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return is_read_only(_api_method(request)) and super()._can_retry(
            state=state, request=request, response=response, error=error)


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Honour `Retry-After`, but give up (the 429 surfaces) when Slack asks for longer than
    `max_wait` seconds: a task should not sleep for minutes; the outbox retries later. The
    header is read by `ratelimit.retry_after` both to decide and to sleep: slack-sdk's own
    reading takes whole seconds only and fails on an HTTP date."""

    def __init__(self, max_retry_count: int = 3, max_wait: float = 60.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        wait = retry_after(response.headers)
        return wait is None or wait <= self.max_wait

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                                 error: Exception | None = None) -> None:
        """Sleep as long as Slack asked (1 s when it did not say), plus up to 1 s of jitter as
        slack-sdk adds, so parallel senders do not return in step."""
        assert response is not None  # _can_retry lets only 429 responses through
        state.next_attempt_requested = True
        wait = retry_after(response.headers)
        time.sleep((1.0 if wait is None else wait) + random.random())
        state.increment_current_attempt()


def make_client(
    token: str | None = None,
    base_url: str | None = None,
    timeout: int = 10,
    *,
    conn_id: str | None = settings.SLACK_CONN_ID,
    rate_limit_retries: int = 3,
    max_retry_after: float = 60.0,
    server_error_retries: int = 2,
    connection_retries: int = 2,
    backoff_factor: float = 0.5,
) -> WebClient:
    """A WebClient (a `SiagaWebClient`: it follows no redirect) with bounded retries.
    Credentials: arguments first, then the Airflow connection `conn_id` (token in the password,
    `base_url` in extras) when Airflow is importable and the connection exists, else env
    SIAGA_SLACK_TOKEN / SIAGA_SLACK_BASE_URL (`settings.slack_credentials`)."""
    source = "arguments"
    if token is None or base_url is None:
        found_token, found_url, source = settings.slack_credentials(conn_id)
        token = token if token is not None else found_token
        base_url = base_url if base_url is not None else found_url
    if not token:
        raise SlackConfigError(
            f"no Slack token: set the Airflow connection {conn_id or settings.SLACK_CONN_ID!r} (token as password) "
            f"or the environment variable {settings.SLACK_TOKEN_ENV}"
        )
    base_url = base_url or SLACK_BASE_URL
    if safe_url(base_url) is None:  # "not a url" was a traceback at the first call
        raise SlackConfigError(f"the Slack Web API address {redact_url(base_url)!r} ({source}) is not an http(s) URL")
    if not base_url.endswith("/"):
        base_url += "/"  # slack-sdk joins URLs: ".../api" would silently lose "/api"
    backoff = BackoffRetryIntervalCalculator(backoff_factor=backoff_factor)
    handlers = [
        BoundedRateLimitRetryHandler(max_retry_count=rate_limit_retries, max_wait=max_retry_after),
        ReadOnlyServerErrorRetryHandler(max_retry_count=server_error_retries, interval_calculator=backoff),
        SafeConnectionErrorRetryHandler(max_retry_count=connection_retries, interval_calculator=backoff),
    ]
    log.info("Slack client for %s (credentials from %s)", redact_url(base_url), source)  # never the token
    return SiagaWebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=handlers)


def call_budget(client: WebClient) -> float:
    """The longest one call through `client` can take, in seconds: every request its retry
    handlers allow, each up to the client's timeout, plus the longest sleep before each retry.
    A delivery claim must outlast it, so no other worker takes a row while a call is under way.
    slack-sdk counts retries once per call across all handlers (`RetryState`), so a call makes
    at most 1 + the largest `max_retry_count` requests. The bound is the worst method's: a read,
    which every handler may retry (a write is retried on fewer answers, so it takes no longer)."""
    handlers = list(client.retry_handlers or [])
    retries = max((h.max_retry_count for h in handlers), default=0)
    total = float(client.timeout) * (1 + retries)
    for attempt in range(retries):
        total += max((_longest_sleep(h, attempt) for h in handlers if h.max_retry_count > attempt), default=0.0)
    return total


def _longest_sleep(handler: Any, attempt: int) -> float:
    """The longest sleep `handler` takes before retry number `attempt` (from 0)."""
    if isinstance(handler, BoundedRateLimitRetryHandler):
        return handler.max_wait + 1.0  # Retry-After, capped, plus < 1 s jitter
    calculator = handler.interval_calculator
    if isinstance(calculator, BackoffRetryIntervalCalculator):
        return calculator.backoff_factor * 2 ** attempt + 1.0  # plus < 1 s of RandomJitter
    return calculator.calculate_sleep_duration(attempt) + 1.0


def classify_error(exc: BaseException) -> str:
    """How a failed Slack call should be treated by the outbox:
    "transient" (nothing was posted, try again later), "permanent" (the message or setup is
    wrong: dead-letter it), or "unknown_outcome" (it may have landed: `find_posted` first).

    Slack did not act on a 429, a redirect (`SlackRedirectError`) or a connection that failed
    before sending: transient. A 5xx, or Slack's `internal_error`/`fatal_error`, to a call that
    writes may come after Slack stored it: unknown outcome (to a read, transient). So is any
    answer that is not Slack's JSON, and anything unforeseen: better a look than a second post."""
    if isinstance(exc, SlackApiError):
        return _classify_answer(exc)
    if isinstance(exc, SlackRedirectError):
        return "transient"  # answered instead of handled: nothing was done (see its docstring)
    if isinstance(exc, URLError) and not isinstance(exc, HTTPError):
        return "transient"  # connect/send failed: the request never reached Slack
    return "unknown_outcome"  # a timeout, a dropped answer, or unsure: check before re-posting


def _classify_answer(exc: SlackApiError) -> str:
    """`classify_error` for an answer that arrived (any HTTP status)."""
    response = exc.response
    status = getattr(response, "status_code", 200)
    error = answer_error(exc)
    write = not is_read_only(_url_method(str(getattr(response, "api_url", "") or "")))
    if status == 429 or 300 <= status < 400:
        return "transient"
    if status >= 500 or error in MAYBE_DONE_ERRORS:  # whatever the body says: a gateway may have sent it
        return "unknown_outcome" if write else "transient"
    if error in TRANSIENT_ERRORS or error in CREDENTIAL_ERRORS:
        return "transient"
    if not isinstance(error, str) or not error or error.startswith(_NOT_JSON):
        # not Slack's answer (Slack names every refusal: `null`, `[]`, `{}`, `{"ok": false}` are a
        # proxy's or a broken gateway's), so nothing says the call was refused: it may have landed
        return "unknown_outcome" if write else "transient"
    return "permanent"


def describe_error(exc: BaseException) -> str:
    """A failed Slack call in one line for a log, an outbox row or a timeline: Slack's error code
    and HTTP status, or the exception. Without any Slack token: an answer that is not JSON is
    quoted (its start) and may be a proxy's page quoting the request's Authorization header."""
    if isinstance(exc, SlackApiError) and exc.response is not None:
        error = answer_error(exc)
        if error is None:  # not Slack's answer: say what it was
            error = f"none, the answer was {str(getattr(exc.response, 'data', None))[:100]!r}"
        text = f"slack error: {error} (HTTP {exc.response.status_code})"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact_tokens(text)


def answer_error(exc: SlackApiError) -> Any:
    """The `error` of the answer `exc` carries, or None. Read from the parsed body only when it
    is a JSON object: `SlackResponse.get` raised AttributeError on a body such as `[]`, from
    inside the handler of the error, which ended the whole deliver run."""
    data = getattr(exc.response, "data", None)
    return data.get("error") if isinstance(data, dict) else None


def rate_limited_for(exc: BaseException) -> float | None:
    """When `exc` is Slack's rate limit (HTTP 429, or `ratelimited` in the answer), the seconds
    it asked to wait (`ratelimit.retry_after`; 0 when it did not say or cannot be read), else None."""
    if not isinstance(exc, SlackApiError) or exc.response is None:
        return None
    if getattr(exc.response, "status_code", None) != 429 and answer_error(exc) != "ratelimited":
        return None
    return retry_after(getattr(exc.response, "headers", None) or {}) or 0.0


def thread_gone(exc: BaseException) -> bool:
    """Did Slack refuse a reply because its thread's first message was deleted (nothing posted)?"""
    return isinstance(exc, SlackApiError) and answer_error(exc) == THREAD_GONE


def outbox_metadata(outbox_id: int | str, key: str | None = None) -> dict[str, Any]:
    """Slack message metadata that marks a post with its outbox row (and the row's `key`)."""
    payload = {MARKER_KEY: str(outbox_id)}
    if key:
        payload[MARKER_CHECK] = key
    return {"event_type": OUTBOX_EVENT, "event_payload": payload}


def post_message(
    client: WebClient,
    channel: str,
    message: Mapping[str, Any],
    thread_ts: str | None = None,
    broadcast: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Post `message` ({"text", "blocks"} from messages.build_message); returns Slack's `ts`.
    With `thread_ts` it is a reply, shown in the channel too when `broadcast`. Links are not
    unfurled and "@channel" typed as text is not turned into a mention."""
    if not message.get("text"):
        raise ValueError("message: needs a non-empty 'text' (the notification fallback)")
    kwargs: dict[str, Any] = {
        "channel": channel,
        "text": message["text"],
        "unfurl_links": False,
        "unfurl_media": False,
        "link_names": False,
    }
    if message.get("blocks"):
        kwargs["blocks"] = list(message["blocks"])
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
        if broadcast:
            kwargs["reply_broadcast"] = True
    if metadata:
        kwargs["metadata"] = dict(metadata)
    try:
        response = client.chat_postMessage(**kwargs)
    except SlackApiError as exc:
        if "blocks" not in kwargs or answer_error(exc) not in BLOCKS_REFUSED:
            raise
        # Slack refused the layout, not the message, and posted nothing: the alert goes out as its
        # fallback text (what, where, how bad, the incident's number) rather than being given up;
        # a dead letter of this kind fails again however often it is re-queued
        log.warning("chat.postMessage to %s: Slack refused the blocks (%s): sent as text only", channel, answer_error(exc))
        del kwargs["blocks"]
        response = client.chat_postMessage(**kwargs)
    ts = response.get("ts")
    if not isinstance(ts, str) or not ts:
        # "ok" without the post's ts: it may well be posted, and its thread needs the real ts
        # (once recorded as the text "None"): ValueError, an unknown outcome to look up
        raise ValueError(f"chat.postMessage: Slack answered without the message's ts: {ts!r}")
    return ts


def update_message(client: WebClient, channel: str, ts: str, message: Mapping[str, Any]) -> None:
    """Replace a posted message (e.g. to show it was acknowledged)."""
    client.chat_update(channel=resolve_channel(client, channel) or channel, ts=ts,
                       text=message["text"], blocks=list(message.get("blocks") or []))


_channel_ids: dict[tuple[str, str], str] = {}


def resolve_channel(client: WebClient, channel: str) -> str | None:
    """Channel id for "#name", "name" or an id (history and update calls need the id);
    None when the bot cannot see such a channel."""
    if _CHANNEL_ID.match(channel):
        return channel
    name = channel.lstrip("#")
    key = (client.base_url, name)
    if key not in _channel_ids:
        for page in _pages(client.conversations_list, types="public_channel,private_channel",
                           exclude_archived=True, limit=200):
            for chan in page.get("channels", []):
                _channel_ids[(client.base_url, chan["name"])] = chan["id"]
    return _channel_ids.get(key)


def _pages(call: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    cursor = None
    while True:
        response = call(**kwargs, **({"cursor": cursor} if cursor else {}))
        yield response
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return


def _has_marker(message: Mapping[str, Any], marker: str, key: str | None = None) -> bool:
    """Does `message` carry this row's marker? With `key`, a post marked with another key is
    another row of the same id (another database's); one with no key was posted before keys."""
    payload = (message.get("metadata") or {}).get("event_payload") or {}
    if str(payload.get(MARKER_KEY)) != marker:
        return False
    found = payload.get(MARKER_CHECK)
    return key is None or found is None or str(found) == key


def find_posted(
    client: WebClient,
    channel: str,
    marker: str,
    oldest: str | None = None,
    *,
    thread_ts: str | None = None,
    key: str | None = None,
) -> str | None:
    """`ts` of a message already posted with `outbox_metadata(marker, key)`, else None.
    Thread replies are only visible through their thread: pass `thread_ts` for replies (a
    thread whose first message was deleted holds none; the channel is still searched).
    `oldest` (a Slack ts) bounds the search; use one taken before the first attempt."""
    channel_id = resolve_channel(client, channel)
    if channel_id is None:
        return None
    marker = str(marker)
    window = {"oldest": oldest} if oldest else {}
    if thread_ts:
        try:
            for page in _pages(client.conversations_replies, channel=channel_id, ts=thread_ts,
                               include_all_metadata=True, limit=200, **window):
                for msg in page.get("messages", []):
                    if _has_marker(msg, marker, key):
                        return str(msg["ts"])
        except SlackApiError as exc:
            if not thread_gone(exc):
                raise  # else a thread deleted in Slack holds nothing; the channel may
    for page in _pages(client.conversations_history, channel=channel_id, include_all_metadata=True,
                       limit=200, **window):
        for msg in page.get("messages", []):
            if _has_marker(msg, marker, key):
                return str(msg["ts"])
    return None
