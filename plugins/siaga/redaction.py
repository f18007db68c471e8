"""Secrets taken out of URLs before a person or a log sees them: the one place that knows what
a secret in a URL looks like.

Operators put secrets in URLs more often than anywhere else: a feed's `?token=...` or
`?api_key=...`, a password in `https://user:pass@host/`, a database URL. Every log line,
exception message, quarantine location and command output that names a source or database URL
says it through `redact_url`, so none of them holds the secret; the rest of the URL stays as it
was, so an operator can still tell two feeds apart.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import unquote

MASK = "***"
# The scheme and "//" (group 1), the user (2) and a password (3), up to the last "@" before the
# path: the authority's userinfo as `urllib.parse.urlsplit` finds it.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?//([^/?#:]*)(:[^/?#]*)?@(?=[^/?#@]*(?:[/?#]|$))")
# One name=value of a query or a fragment ("#access_token=..." is OAuth's implicit flow).
_PARAM = re.compile(r"([?&;#])([^=&;#]*)=([^&;#]*)")
# A URL inside other text: up to whitespace or a quote.
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")
# A parameter name looks secret when, lower-cased and without "_", "-" or ".", it ends in one
# of these (token, access_token, X-Amz-Signature, client_secret, apiKey, key, sig, auth...).
_SECRET_NAME = re.compile(r"(token|secret|passw(?:or)?d|pwd|pass|apikey|key|sig|signature|auth|credentials?|session(?:id)?)$")


def secret_name(name: str) -> bool:
    """Whether a query parameter called `name` (as written, percent-encoded or not) holds a
    secret. Names are compared loosely on purpose: redacting a harmless value costs a
    readable log line, missing a secret leaks it."""
    return _SECRET_NAME.search(re.sub(r"[^a-z0-9]", "", unquote(name).lower())) is not None


def redact_url(url: str) -> str:
    """`url` with its userinfo password and the values of secret-looking query and fragment
    parameters replaced by MASK; everything else as written. Never raises: a URL too broken
    to parse is redacted by the same patterns."""
    url = _USERINFO.sub(lambda m: f"{m.group(1) or ''}//{m.group(2)}{':' + MASK if m.group(3) else ''}@", url, count=1)
    start = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    if start < 0:
        return url
    return url[:start] + _PARAM.sub(_masked, url[start:])


# A database URL's password as SQLAlchemy reads it: up to the "@", "/", "?" and "#" included.
_DB_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@]*@")


def redact_db_url(url: str) -> str:
    """A database URL without its password, read as SQLAlchemy reads it (its own `make_url`,
    password hidden): "postgresql://u:S3cret/pw@host/db" connects with the password "S3cret/pw",
    where `redact_url`, reading it as a web address, found none. Then `redact_url` for the
    secrets of its query ("?password=")."""
    try:
        from sqlalchemy.engine import make_url

        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 -- a URL SQLAlchemy cannot read is still shown without a password
        shown = _DB_USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", url, count=1)
    return redact_url(shown)


def secrets_of(url: str) -> list[str]:
    """The secrets `url` holds (its password, the values of its secret-looking parameters), as
    written and percent-decoded: what must not be quoted back from a server's answer to it."""
    found: list[str] = []
    user = _USERINFO.match(url)
    if user and user.group(3) and len(user.group(3)) > 1:
        found.append(user.group(3)[1:])
    start = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    if start >= 0:
        found += [value for _, name, value in _PARAM.findall(url[start:]) if value and secret_name(name)]
    return sorted({form for value in found for form in (value, unquote(value))}, key=len, reverse=True)


def redact_echo(text: str, secrets: list[str]) -> str:
    """`text` (a server's error body) without any of `secrets` nor any URL's secrets in it: a
    server may quote back the URL or the token it refused."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return redact_urls_in(text)


# Slack's tokens (bot xoxb-, user xoxp-, app-level xapp-, configuration xoxe-, ...): a proxy's error
# page or a misbehaving gateway may quote the request's `Authorization: Bearer xoxb-...` back.
_SLACK_TOKEN = re.compile(r"\bx(?:ox[a-z]|app)-[A-Za-z0-9.-]+")
# An incoming webhook's address is its secret, in the path: pasted where a channel belongs.
_SLACK_HOOK = re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s'\"<>]+")


def redact_tokens(text: str) -> str:
    """`text` (an error that quotes what a server answered, or what an operator wrote) without
    any Slack token or webhook address in it."""
    if "x" in text:
        text = _SLACK_TOKEN.sub(MASK, text)
    return _SLACK_HOOK.sub(lambda m: m.group(1) + MASK, text) if "hooks." in text else text


def redact_urls_in(text: str) -> str:
    """`text` with every URL in it redacted (`redact_url`): for messages that quote a value
    which may be or hold a URL, such as a config check's "'https://...' is not of type
    'array'"."""
    return _URL.sub(lambda m: redact_url(m.group()), text) if "//" in text else text


def redact_text(text: str) -> str:
    """`text` (a message that quotes what an operator wrote) without Slack tokens and without
    the secrets of any URL in it."""
    return redact_tokens(redact_urls_in(text))


class _LibraryUrls(logging.Filter):
    """Redacts the URLs a library we do not write puts in its log records' arguments: urllib3
    logs each request's path and query at DEBUG, and a redirect's whole URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact_url(a) if isinstance(a, str) and ("?" in a or "#" in a or "@" in a) else a for a in record.args)
        return True


_LIBRARY_URLS = _LibraryUrls()


class _LibraryTokens(logging.Filter):
    """Redacts Slack tokens from what a library we do not write logs: slack-sdk logs, at ERROR,
    the first 100 characters of an answer that is not JSON, which may quote the bot token back."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_LIBRARY_TOKENS = _LibraryTokens()


def redact_token_logs(*loggers: str) -> None:
    """Take Slack tokens out of what these loggers log (each logger named, as for URLs)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if _LIBRARY_TOKENS not in logger.filters:
            logger.addFilter(_LIBRARY_TOKENS)


def redact_library_logs(*loggers: str) -> None:
    """Redact the URLs in what these loggers log (a filter on a logger sees only its own
    records, not its children's: each logger is named)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if _LIBRARY_URLS not in logger.filters:
            logger.addFilter(_LIBRARY_URLS)


def _masked(param: re.Match[str]) -> str:
    mark, name, value = param.groups()
    return f"{mark}{name}={MASK}" if value and secret_name(name) else param.group()
