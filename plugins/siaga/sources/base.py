"""What every source yields: posts in one shape, bad input with where it was, and a cursor."""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from siaga import settings
from siaga.normalise import quick_fold
from siaga.sources.schema import MAX_TEXT, check_string


class SourceConfigError(ValueError):
    """A source entry in config is wrong; the message names the file and field."""


@dataclass(frozen=True)
class IncomingPost:
    source: str
    source_id: str
    created_at: datetime
    text: str
    author: str | None
    url: str | None
    lat: float | None
    lon: float | None
    raw: dict[str, Any] = field(repr=False)
    # The canonical URL of the post this one boosts, reposts, retweets or quotes: ingest links the
    # two (posts.duplicate_of) so a chain of copies counts once.
    reposts: str | None = None
    author_pseudonymised: bool = False
    # The seal `schema.check_post` puts on this object once it passed every check but the one
    # against a poll's time, holding what was checked; valid only while the post still holds
    # exactly that (`schema._Seal`). Not an argument and never copied by `dataclasses.replace`
    # (a rebuilt post is checked in full), so a post's connector and then ingest do not both walk it.
    schema_checked: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def text_hash(self) -> str:
        return text_fingerprint(self.text)

    @property
    def canonical_url(self) -> str | None:
        return canonical_url(self.url)

    @property
    def same_post_key(self) -> str | None:
        """One post seen through two sources or instances (a toot federated to two instances,
        one article in two feeds) has the same canonical URL, text and author: the store keeps
        it once. Other posts sharing a URL (many people sharing one group link) are all kept."""
        url = self.canonical_url
        if url is None:
            return None
        return same_post_key(url, self.text_hash, self.author)


def same_post_key(url: str, text_hash: str, author: str | None) -> str:
    return hashlib.sha256("\x00".join((url, text_hash, author or "")).encode("utf-8", "backslashreplace")).hexdigest()[:32]


@dataclass(frozen=True)
class BadInput:
    location: str  # file:line, or an API item id, or a page
    reason: str
    raw: str  # the whole record as read; ingest keeps the first schema.MAX_RAW characters
    # The location names one place for good (a file's line): the same content at another place
    # is another bad record. An API's locations name a page or a position in it, which change
    # from poll to poll while the record does not.
    by_place: bool = False

    @property
    def identity(self) -> str:
        """What makes two reports of bad input the same: the record's content (so re-reading a
        file quarantines nothing twice, while a new bad record at the same line of a replaced
        file is kept), with its place when that is fixed (the same bad line in 5,000 exports is
        5,000 records, not one); for a failure with no record (a page that would not load),
        where and why."""
        if not self.raw:
            basis = f"{self.location}\n{self.reason}"
        else:
            basis = f"{self.location}\n{self.raw}" if self.by_place else self.raw
        return hashlib.sha256(basis.encode("utf-8", "backslashreplace")).hexdigest()


@dataclass(frozen=True)
class PollResult:
    posts: list[IncomingPost]
    bad: list[BadInput]
    cursor: dict[str, Any]
    # Parts of the source that failed this run (one instance down, one query rate limited). What
    # the others fetched is stored and their cursors advance; then the task fails and retries.
    failed: list[str] = field(default_factory=list)


class Source(Protocol):
    name: str

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult: ...


_URLS = re.compile(r"https?://\S+")
_MENTIONS = re.compile(r"(^|\s)(rt\s+)?@\w+:?")


def text_fingerprint(text: str) -> str:
    """Reposts and near-identical copies ("RT @x: ...", a different link) share this."""
    stripped = text.lower()
    # each pattern scanned for only in a text that can hold it: most posts have no link and no
    # mention, and the scan of a text without one was a third of fingerprinting it
    if "http" in stripped:
        stripped = _URLS.sub(" ", stripped)
    if "@" in stripped:
        stripped = _MENTIONS.sub(" ", stripped)
    # `quick_fold`'s text is `fold`'s (tests/test_gazetteer.py), at a fraction of the cost: only
    # the folded text is hashed, never its offset map. Ingest hashes every post it reads.
    return hashlib.sha256(quick_fold(stripped).text.encode()).hexdigest()[:32]


# --- authors ---------------------------------------------------------------------------------



class MissingAuthorKey(SourceConfigError):
    """No key to pseudonymise authors with: refusing to store real handles instead."""


def author_key() -> bytes:
    """The pseudonymisation key: env SIAGA_AUTHOR_KEY, else the Airflow variable
    `siaga_author_key`. There is no default: a key everyone knows would let anyone re-identify
    authors by hashing public handles."""
    key = settings.author_key()
    if not key:
        raise MissingAuthorKey(
            f"set {settings.AUTHOR_KEY_ENV} (or the Airflow variable {settings.AUTHOR_KEY_VARIABLE}) to pseudonymise authors"
        )
    return key.encode()


def pseudonymise(author: str, key: bytes) -> str:
    """A stable keyed hash (HMAC-SHA256) of a handle: the same author counts once per area
    without the database holding who they are."""
    digest = hmac.new(key, author.strip().lower().encode(), hashlib.sha256).hexdigest()
    return "anon:" + digest[:24]


@dataclass(frozen=True)
class AuthorPolicy:
    """Official accounts (BPBD, Dishub, police, news desks) keep their names; everyone else is
    pseudonymised. `official_all` marks a whole source (an agency's own feed) as official."""

    official: frozenset[str] = frozenset()
    official_all: bool = False

    @classmethod
    def from_config(cls, entry: dict[str, Any], where: str) -> "AuthorPolicy":
        names = entry.get("official_accounts") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SourceConfigError(f"{where}.official_accounts: expected a list of account names")
        return cls(frozenset(n.strip().lower().lstrip("@") for n in names), bool(entry.get("official", False)))

    def apply(self, author: str | None, key: Callable[[], bytes]) -> tuple[str | None, bool]:
        """(stored author, whether it was pseudonymised). A handle that is not clean text is
        refused (ValueError), not hashed: it is wrong input, not an author."""
        if not author:
            return None, False
        check_string(author, "author", MAX_TEXT, single_line=True)
        if self.official_all or author.strip().lower().lstrip("@") in self.official:
            return author, False
        return pseudonymise(author, key()), True


# --- URLs ------------------------------------------------------------------------------------

_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|igshid|mc_cid|mc_eid|ref|ref_src|ref_url|s|t|si|amp)$", re.I)
_X_STATUS = re.compile(r"^/(?:[^/]+|i/web)/status(?:es)?/(\d+)$")
_HOST_ALIASES = {"twitter.com": "x.com", "mobile.twitter.com": "x.com", "mobile.x.com": "x.com", "m.facebook.com": "facebook.com"}


# A URL already in canonical shape but for its host's "www." or alias and a trailing "/":
# http(s), a lower-case host with no port, no query, no fragment, no character urlsplit would
# treat specially. Most posts' URLs look like this; `canonical_url` spells them without
# urlsplit/parse_qsl/urlencode/urlunsplit (a third of a post's ingest cost), with the same
# result as the general path (tests/test_canonical_url.py holds the two equal).
_PLAIN_URL = re.compile(r"https?://([a-z0-9-]+(?:\.[a-z0-9-]+)*)(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?")


def canonical_url(url: str | None) -> str | None:
    """One spelling per page, so the same post or article seen through two sources (a news
    link in a feed and in a toot; x.com and twitter.com; ?utm_source=...) matches."""
    if not url or not isinstance(url, str):
        return None
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:
        host, path = plain.group(1), (plain.group(2) or "").rstrip("/")
        host = host[4:] if host.startswith("www.") else host
        host = _HOST_ALIASES.get(host, host)
        if host != "x.com" or not _X_STATUS.match(path):
            return f"https://{host}{path}"
    return _canonical_url(url)


def _canonical_url(url: str) -> str | None:
    """`canonical_url` of any URL, through the standard library's parser."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    host = host[4:] if host.startswith("www.") else host
    host = _HOST_ALIASES.get(host, host)
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)))
    path = parts.path.rstrip("/") or ""
    status = _X_STATUS.match(path) if host == "x.com" else None
    if status:  # x.com/<anyone>/status/<id> opens the same tweet as x.com/i/web/status/<id>
        path, query = f"/i/web/status/{status.group(1)}", ""
    return urlunsplit(("https", netloc, path, query, ""))
