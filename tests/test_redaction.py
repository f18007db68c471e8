"""Secrets in source URLs (a feed's `?token=`, `?api_key=`, a password in `user:pass@host`, an
OAuth `#access_token=`) never reach a log line, an error, a quarantine row or `siaga` output:
everything that names a URL says it through `redaction.redact_url`, which keeps the rest of the
URL as written so feeds can still be told apart. Through the real RSS and Mastodon connectors
(requests against tests/support/fakeapis.py on 127.0.0.1), ingest and the `siaga` CLI."""
from __future__ import annotations

import base64
import itertools
import json
import logging
from datetime import timedelta
from urllib.parse import quote, urlsplit

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.fakeapis import FAST, T0, X_TOKEN
from siaga import cli, store
from siaga.ingest import ingest
from siaga.redaction import MASK, redact_db_url, redact_url
from siaga.sources import SourceConfigError, SourceError, check_sources_file
from siaga.sources.mastodon import MastodonSource, Stream
from siaga.sources.rss import RssSource
from siaga.sources.x import XSource

pytestmark = pytest.mark.usefixtures("author_key")
NOW = T0 + timedelta(hours=3)

SECRET_NAMES = ["token", "access_token", "api_key", "apikey", "key", "secret", "sig", "signature", "password", "auth",
                "client_secret", "X-Amz-Signature", "apiKey", "oauth_token", "auth_token", "passwd", "X-Amz-Credential"]
PLAIN_NAMES = ["q", "lang", "page", "format", "author", "category", "limit", "tag", "hl"]
# Secrets are spelled so no other part of a URL can hold them (plain parts are lower-case a-p).
_SECRET = st.text("ABCDEFGHJKLMNPRSTUVWXYZ23456789", min_size=10, max_size=20).map(lambda s: "Zq9" + s)
_PLAIN = st.text("abcdefghijklmnop", min_size=1, max_size=8)
_PLAIN_NAMES = st.sampled_from(PLAIN_NAMES)
_SECRET_NAME = st.sampled_from(SECRET_NAMES).flatmap(lambda n: st.sampled_from([n, n.upper(), n.lower(), quote(n, safe="")]))


@st.composite
def urls_with_secrets(draw, host: str = "", path: str = ""):
    """(URL, its secrets, the URL as it must be shown): secrets in the password, in query
    parameters with secret-looking names and in the fragment, among plain parameters."""
    secrets: list[str] = []
    shown_userinfo = userinfo = ""
    if draw(st.booleans()):
        user = draw(_PLAIN)
        if draw(st.booleans()):
            password = draw(_SECRET)
            secrets.append(password)
            userinfo, shown_userinfo = f"{user}:{password}@", f"{user}:{MASK}@"
        else:
            userinfo = shown_userinfo = f"{user}@"
    params = [(draw(_PLAIN_NAMES), draw(_PLAIN), False) for _ in range(draw(st.integers(0, 3)))]
    params += [(draw(_SECRET_NAME), draw(_SECRET), True) for _ in range(draw(st.integers(0, 3)))]
    params = draw(st.permutations(params))
    secrets += [value for _, value, secret in params if secret]
    query = "&".join(f"{n}={v}" for n, v, _ in params)
    shown_query = "&".join(f"{n}={MASK if secret else v}" for n, v, secret in params)
    fragment = shown_fragment = ""
    if draw(st.booleans()):
        token = draw(_SECRET)
        secrets.append(token)
        fragment, shown_fragment = f"#access_token={token}&state=x", f"#access_token={MASK}&state=x"
    if not secrets:  # at least one secret somewhere
        value = draw(_SECRET)
        secrets.append(value)
        query, shown_query = (query + "&" if query else "") + f"token={value}", (shown_query + "&" if shown_query else "") + f"token={MASK}"
    host = host or draw(_PLAIN) + ".example"
    path = path or "/" + draw(_PLAIN)
    url = f"http://{userinfo}{host}{path}{'?' + query if query else ''}{fragment}"
    shown = f"http://{shown_userinfo}{host}{path}{'?' + shown_query if shown_query else ''}{shown_fragment}"
    return url, secrets, shown


@given(urls_with_secrets())
def test_redact_url_masks_every_secret_and_keeps_the_rest(case):
    url, secrets, shown = case
    redacted = redact_url(url)
    assert not [s for s in secrets if s in redacted]
    assert redacted == shown
    assert redact_url(redacted) == redacted


@given(st.sampled_from(PLAIN_NAMES), _PLAIN, _PLAIN)
def test_a_url_without_secrets_is_shown_as_written(name, value, path):
    for url in (f"https://{path}.example/{path}?{name}={value}", f"https://{path}.example:8443/rss.xml#top",
                f"http://{path}@{path}.example/", "sqlite:///var/siaga.db"):
        assert redact_url(url) == url


def test_database_urls_lose_their_password():
    assert redact_url("postgresql+psycopg2://siaga:Zq9DBPASS@127.0.0.1:5432/siaga") == f"postgresql+psycopg2://siaga:{MASK}@127.0.0.1:5432/siaga"
    assert "Zq9" not in redact_url("postgresql://siaga:p@Zq9:x@db/siaga")  # '@' and ':' inside a password


@given(st.text(alphabet=st.characters(codec="ascii", categories=["L", "N", "P", "S"], exclude_characters="@%"),
               min_size=6, max_size=30))
def test_a_database_password_is_hidden_as_sqlalchemy_reads_it(password):
    """SQLAlchemy connects with "S3cret/pw" from postgresql://u:S3cret/pw@host/db; read as a web
    address ("/", "?" and "#" end the userinfo), the URL had no password to hide."""
    from sqlalchemy.engine import make_url

    url = f"postgresql://siaga:{password}@127.0.0.1:5432/siaga"
    assert make_url(url).password == password  # what would be sent to the server
    assert redact_db_url(url) == "postgresql://siaga:***@127.0.0.1:5432/siaga"


def test_the_cli_hides_a_database_password_holding_a_slash(capsys):
    code = cli.main(["outbox", "--db", "postgresql://siaga:S3cret/pw?x#y@127.0.0.1:1/siaga"])
    said = capsys.readouterr()
    assert code == 1 and "S3cret" not in said.out + said.err and "siaga:***@127.0.0.1:1/siaga" in said.err


def _rss_feed(guid: str, dated: bool = True) -> str:
    when = "<pubDate>Thu, 15 Jan 2026 08:30:00 +0800</pubDate>" if dated else ""
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Berita</title><item><title>Banjir di Desa Sangsit</title>'
            f"<guid>{guid}</guid>{when}<description>Air naik.</description></item></channel></rss>")


_counter = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data(), st.sampled_from(["server_error", "not_xml", "bad_item", "hang", "echo"]))
def test_no_secret_of_a_feed_url_reaches_logs_errors_quarantine_or_the_cli(api, sqlite_url, caplog, capsys, data, fault):
    n = next(_counter)
    name = f"feed{n}.xml"
    host = urlsplit(api.url).netloc
    url, secrets, _ = data.draw(urls_with_secrets(host=host, path=f"/feeds/{name}"))
    api.data.feeds[name] = (f'"e{n}"', _rss_feed(f"item-{n}", dated=fault != "bad_item") if fault != "not_xml" else "<html>oops</html>")
    if fault == "server_error":
        api.fail(f"/feeds/{name}", "server_error", times=5)
    if fault == "echo":  # a refusal quoting the URL back
        api.fail(f"/feeds/{name}", "echo", status=401)
    if fault == "hang":
        api.fail(f"/feeds/{name}", "hang", times=5, seconds=1.0)
    source = RssSource(f"news{n}", [url], policy=FAST, sleep=lambda s: None)
    caplog.clear()
    capsys.readouterr()
    with caplog.at_level(logging.DEBUG):  # every logger, the libraries' too
        try:
            ingest(source, NOW, sqlite_url)
            error = ""
        except SourceError as exc:
            error = str(exc)
    assert (error != "") == (fault != "bad_item"), error
    with store.session_scope(sqlite_url) as session:
        rows = session.execute(sa.select(store.Quarantine.location, store.Quarantine.reason, store.Quarantine.raw)
                               .where(store.Quarantine.source == source.name)).all()
    assert bool(rows) == (fault in ("not_xml", "bad_item"))
    assert cli.main(["quarantine", "--db", sqlite_url]) == 0
    assert cli.main(["quarantine", "--db", sqlite_url, "--json"]) == 0
    shown = capsys.readouterr()
    everything = "\n".join([error, caplog.text, json.dumps([list(r) for r in rows]), shown.out, shown.err])
    parts = urlsplit(url)
    if parts.password:  # what requests sends for it, which a refusal may quote back
        secrets = secrets + [base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()]
    assert not [s for s in secrets if s in everything], everything
    assert f"/feeds/{name}" in everything  # the feed is still named


def test_no_secret_of_a_mastodon_instance_url_reaches_logs_errors_or_quarantine(api, sqlite_url, caplog):
    secret = "Zq9INSTANCEPASS"
    instance = api.url.replace("http://", f"http://warga:{secret}@")
    api.fail("/api/v1/timelines/tag/banjir", "malformed")
    api.fail("/api/v1/timelines/tag/longsor", "server_error", times=5)
    source = MastodonSource("masto", [Stream(instance, "tag", "banjir"), Stream(instance, "tag", "longsor")], policy=FAST, sleep=lambda s: None)
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as failed:
        ingest(source, NOW, sqlite_url)
    with store.session_scope(sqlite_url) as session:
        rows = session.execute(sa.select(store.Quarantine.location, store.Quarantine.reason)).all()
    assert rows and f"warga:{MASK}@" in rows[0][0]
    assert secret not in str(failed.value) + caplog.text + repr(rows)
    assert "HTTP 500" in str(failed.value)


def test_a_refusal_quoting_the_bearer_token_back_is_reported_without_it(api, monkeypatch):
    monkeypatch.setenv("SIAGA_X_FAKE_TOKEN", X_TOKEN)
    api.fail("/2/tweets/search/recent", "echo", status=403)
    result = XSource("x", conn_id="x_fake", queries=["banjir"], api=api.url, policy=FAST, sleep=lambda s: None).poll(None, NOW)
    (failed,) = result.failed
    assert "HTTP 403" in failed and f"refused Bearer {MASK} for" in failed and X_TOKEN not in failed


@given(urls_with_secrets())
def test_a_wrong_feed_or_instance_url_in_config_is_refused_without_its_secrets(case):
    url, secrets, _ = case
    wrong = "ftp" + url[len("http"):]
    for build, entry in ((RssSource.from_config, {"name": "b", "feeds": [wrong]}),
                         (MastodonSource.from_config, {"name": "m", "instances": [{"url": wrong, "hashtags": ["banjir"]}]})):
        with pytest.raises(SourceConfigError) as refused:
            build(entry, None, "sources[0]")
        assert "not an http(s) URL" in str(refused.value)
        assert not [s for s in secrets if s in str(refused.value)]


@settings(max_examples=30, deadline=None)
@given(urls_with_secrets())
def test_siaga_check_quotes_a_misplaced_source_url_without_its_secrets(tmp_path_factory, case):
    """A schema problem quotes the value it refuses: a feed URL written where a list belongs
    (a mapping or a list where a URL belongs is named by its kind, not quoted)."""
    url, secrets, shown = case
    path = tmp_path_factory.mktemp("config") / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": [
        {"name": "a", "kind": "rss", "feeds": url},
        {"name": "b", "kind": "rss", "feeds": [{"url": url}]},
        {"name": "c", "kind": "mastodon", "instances": [{"url": [url], "hashtags": ["banjir"]}]},
    ]}))
    problems, _ = check_sources_file(path)
    text = "\n".join(map(str, problems))
    assert len(problems) == 3 and text.count(shown) == 1 and text.count("a mapping is not") + text.count("a list is not") == 2, text
    assert not [s for s in secrets if s in text]
