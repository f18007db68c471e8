"""Hostile query parameters against the real pages app on SQLite and PostgreSQL: every route
answers 2xx/3xx/404, or 400 with a message naming what was wrong; never a server error.

Property-based (hypothesis) over every route's parameters, plus the cases probes found: ids of
2^63 and more, dates in year 1 or 9999, a 60,000-character village, NUL and other control
characters, raw bytes that are not UTF-8.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siaga.settings import PublicCap
from siaga.timelines.web import create_app
from test_web import HAZARDS, seed

FILTERS = ("hazard", "kecamatan", "village", "road", "state", "from", "to")


@pytest.fixture
def hostile_client(db_url):
    ids = seed(db_url)
    app = create_app(db_url, hazards=HAZARDS, public_cap=PublicCap(min_severity="low", confirmed_only=False), actor="fuzz.user")
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False), ids


def _check(response, url: str) -> None:
    assert response.status_code < 500, f"{url[:200]} -> {response.status_code}: {response.text[:300]}"
    if response.status_code == 400:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail.startswith("bad "), detail
        assert len(detail) < 600  # the message names the problem, it does not echo a 60,000-character input


@pytest.mark.parametrize("url, says", [
    (f"/incidents/{2**63}", "incident_id"),
    (f"/incidents/{2**64 + 7}/export?format=csv", "incident_id"),
    (f"/incidents/{10**30}/cap.xml", "incident_id"),
    ("/incidents/-1", "incident_id"),
    ("/incidents/1%00", "incident_id"),
    ("/?from=0001-01-01", "out of range"),
    ("/?to=9999-12-31", "out of range"),
    ("/?from=0001-01-01T00:00:00%2B14:00", "out of range"),
    ("/export?format=csv&to=9999-12-31T23:59:59-14:00", "out of range"),
    ("/?village=" + "a" * 60_000, "'village': 60000 characters"),
    ("/export?format=geojson&road=" + "%25" * 20_000, "'road'"),
    ("/?village=%00", "NUL"),
    ("/?kecamatan=Buleleng%0D%0A", "control character"),
    ("/?hazard=%ED%A0%80", "unknown hazard"),  # not UTF-8: read as U+FFFD, a hazard nobody has
    ("/?hazard=flod", "unknown hazard 'flod'; use one of"),  # a typo listed nothing, read as "no floods"
    ("/export?format=csv&hazard=flod", "unknown hazard"),  # and exported an empty file
    ("/?kecamatan=Bulelen", "unknown kecamatan 'Bulelen'; use one of"),
    ("/?hazard=flood&hazard=fire", "'hazard' given 2 times"),  # the last one won, silently
    ("/export?format=csv&from=2025-01-01&from=2025-02-01", "'from' given 2 times"),
    ("/?kecamatan=buleleng", None),  # any case, as the filter matches
    ("/?state=%00", "NUL"),
    ("/?state=closed", "unknown state"),
    ("/export?format=%00", "unknown format"),
    ("/incidents/1/export?format=" + "x" * 10_000, "unknown format"),
])
def test_known_hostile_parameters_get_a_clear_400(hostile_client, url, says):
    c, _ = hostile_client
    r = c.get(url)
    _check(r, url)
    if says is None:
        assert r.status_code == 200
    else:
        assert r.status_code == 400 and says in r.json()["detail"], r.text[:300]


# Any text a URL can carry (no lone surrogates: they cannot be written in a URL at all), the
# values probes like, and raw bytes percent-encoded whether or not they are UTF-8.
_texts = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["0001-01-01", "9999-12-31", "2025-02-30", "2025-01-14T06:00:00+14:00", "-1", "open", "flood",
                     "%", "_", "\\", "'", '"; drop table incidents; --', "\x00", "\u2028", "Ä" * 300, "a" * 15_000]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
_raw_bytes = st.binary(max_size=40).map(lambda b: "".join(f"%{x:02X}" for x in b))


def _query(values: dict[str, str], raw: dict[str, str]) -> str:
    parts = [f"{k}={quote(v, safe='')}" for k, v in values.items()] + [f"{k}={v}" for k, v in raw.items()]
    return "&".join(parts)


_filter_values = st.dictionaries(st.sampled_from(FILTERS), _texts, max_size=4)
_filter_raw = st.dictionaries(st.sampled_from(FILTERS + ("format",)), _raw_bytes, max_size=2)
_ids = st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str), st.text(max_size=30).map(lambda t: quote(t, safe="")),
                 st.just("1"))
_formats = st.one_of(st.sampled_from(["csv", "timeline-csv", "geojson", "cap", ""]), st.text(max_size=50))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(["list", "export"]), values=_filter_values, raw=_filter_raw, fmt=_formats)
def test_filters_never_raise_a_server_error(hostile_client, route, values, raw, fmt):
    c, _ = hostile_client
    if route == "export":
        values = {**values, "format": fmt}
    url = ("/?" if route == "list" else "/export?") + _query(values, raw)
    _check(c.get(url), url)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(incident=_ids, page=st.sampled_from(["/incidents/{}", "/incidents/{}/export", "/incidents/{}/cap.xml",
                                            "/public/incidents/{}/cap.xml"]), fmt=_formats, raw=_raw_bytes)
def test_incident_routes_never_raise_a_server_error(hostile_client, incident, page, fmt, raw):
    c, _ = hostile_client
    if not incident or incident in (".", ".."):
        incident = "x"
    url = page.format(incident) + f"?format={quote(fmt, safe='')}&done={raw}&result={raw}&extra={raw}"
    r = c.get(url)
    _check(r, url)
    if incident.isdigit() and 1 <= int(incident) < 2**63:
        assert r.status_code in (200, 400, 404)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(incident=_ids, action=st.one_of(st.sampled_from(["acknowledge", "resolve", "false-alarm"]), st.text(max_size=30)),
       note=st.one_of(st.text(max_size=300), st.just("a" * 5000), st.just("\x00"), _raw_bytes), raw_note=st.booleans())
def test_page_actions_never_raise_a_server_error(hostile_client, incident, action, note, raw_note):
    """Every parameter of an action: the id, the action's name and the note (as text, or as raw
    percent-encoded bytes that need not be UTF-8)."""
    c, _ = hostile_client
    if not incident or incident in (".", ".."):
        incident = "x"
    url = f"/incidents/{incident}/actions/{quote(action, safe='') or 'x'}"
    body = f"note={note}" if raw_note else f"note={quote(note, safe='')}"
    r = c.post(url, content=body.encode("utf-8", "surrogatepass"), headers={"Origin": "http://testserver",
                                                                              "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code < 500, f"{url[:200]} -> {r.status_code}: {r.text[:300]}"
    if r.status_code == 400:
        assert r.json()["detail"].startswith("bad ")


def test_public_feed_and_list_answer(hostile_client):
    c, _ = hostile_client
    assert c.get("/public/cap.atom").status_code == 200
    assert c.get("/cap.atom?x=%00").status_code == 200


@given(day=st.dates())
@settings(max_examples=300, deadline=None)
def test_the_date_range_the_error_offers_is_the_range_accepted(day):
    """`from=2000-01-01` was refused with "use a date from 2000-01-01": a WITA day starts 8 hours
    before the bound in UTC. Every day is accepted exactly when the message's range holds it."""
    from siaga.timelines.filters import EARLIEST, LATEST, parse_day

    value = day.isoformat()
    offered = EARLIEST.date() <= day < LATEST.date()
    for end in (False, True):
        try:
            parse_day(value, end=end)
            accepted = True
        except ValueError as exc:
            accepted = False
            assert f"from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}" in str(exc)
        assert accepted == offered, (value, end)
