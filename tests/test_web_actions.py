"""Acknowledge, resolve and false alarm from the incident page: recorded exactly as the Slack
buttons record them (same function, same timeline event, the thread's "resolved" reply queued,
the Slack messages edited), and refused when the form comes from another site."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from siaga import slackactions, store
from siaga.timelines.web import create_app
from test_slackactions import ctx_for, events, fake, posted_incident, state_text  # noqa: F401 (fake is a fixture)
from test_web import HAZARDS, seed

SAME_SITE = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}


def _app(db_url, fake, router, hazard_set, actor="ayu.manager"):
    return TestClient(create_app(db_url, hazards=HAZARDS, actor=actor, actions=ctx_for(fake, db_url, router, hazard_set)),
                      follow_redirects=False)


def test_page_resolve_is_recorded_like_the_slack_button(db_url, fake, router, hazard_set):
    from_page = posted_incident(db_url, fake, router, hazard_set)
    c = _app(db_url, fake, router, hazard_set)
    page = c.get(f"/incidents/{from_page}").text
    assert 'id="action-acknowledge"' in page and 'id="action-resolve"' in page and 'id="action-false-alarm"' in page
    r = c.post(f"/incidents/{from_page}/actions/resolve", data={"note": "air sudah surut"}, headers=SAME_SITE)
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{from_page}?done=resolve&result=ok#actions"
    (resolved,) = events(db_url, from_page, "resolved")
    assert resolved.actor == "ayu.manager"
    assert {k: resolved.detail[k] for k in ("from", "to", "note")} == {"from": "open", "to": "resolved", "note": "air sudah surut"}
    with store.session_scope(db_url) as session:
        incident = session.get(store.Incident, from_page)
        assert (incident.state, incident.closed_by) == ("resolved", "ayu.manager")
        pending = [m.kind for m in session.scalars(sa.select(store.OutboxMessage).where(store.OutboxMessage.state == "pending"))]
    assert pending == ["resolved", "resolved"]  # the thread replies, as from Slack
    for message in fake.messages():  # both channels' alerts edited to show it
        assert "selesai (resolved)" in state_text(message) and "oleh ayu.manager" in state_text(message) and message["edited"]
    # the Slack button goes through the very same function: a page decision is one of its callers
    assert slackactions.change_state.__code__.co_names.count("decide") == 1
    # the page says what happened, in both languages, and offers nothing more
    after = c.get(r.headers["location"].split("#")[0]).text
    assert re.search(r'id="action-result">Tercatat: selesai oleh ayu.manager', after)
    assert 'id="action-resolve"' not in after and "Insiden sudah ditutup" in after


def test_acknowledge_then_an_impossible_action_is_refused_and_said(sqlite_url, fake, router, hazard_set):
    incident_id = posted_incident(sqlite_url, fake, router, hazard_set)
    c = _app(sqlite_url, fake, router, hazard_set)
    assert c.post(f"/incidents/{incident_id}/actions/acknowledge", headers=SAME_SITE).headers["location"].endswith("result=ok#actions")
    assert c.post(f"/incidents/{incident_id}/actions/acknowledge", headers=SAME_SITE).headers["location"].endswith("result=unchanged#actions")
    (ack,) = events(sqlite_url, incident_id, "acknowledged")
    assert ack.actor == "ayu.manager"
    page = c.get(f"/incidents/{incident_id}").text
    assert 'id="action-acknowledge"' not in page and 'id="action-resolve"' in page
    assert c.post(f"/incidents/{incident_id}/actions/false-alarm", headers=SAME_SITE).headers["location"].endswith("result=ok#actions")
    r = c.post(f"/incidents/{incident_id}/actions/resolve", headers=SAME_SITE)  # false_alarm -> resolved is not allowed
    assert r.headers["location"].endswith("result=refused#actions")
    assert "Tidak bisa: insiden ini alarm palsu." in c.get(r.headers["location"].split("#")[0]).text
    assert c.post("/incidents/999/actions/resolve", headers=SAME_SITE).status_code == 404
    assert c.post(f"/incidents/{incident_id}/actions/delete", headers=SAME_SITE).status_code == 400


@pytest.mark.parametrize("headers", [
    {},  # no Origin, no Referer
    {"Origin": "https://evil.example"},
    {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://testserver", "Sec-Fetch-Site": "same-site"},
    {"Referer": "https://evil.example/page?x=http://testserver/"},
    {"Origin": "null"},
    {"Origin": "javascript:alert(1)"},
])
def test_a_form_from_another_site_is_refused(sqlite_url, fake, router, hazard_set, headers):
    incident_id = posted_incident(sqlite_url, fake, router, hazard_set)
    c = _app(sqlite_url, fake, router, hazard_set)
    r = c.post(f"/incidents/{incident_id}/actions/resolve", headers=headers)
    assert r.status_code == 403
    assert "did not come from this site" in r.json()["detail"] or "cross-site" in r.json()["detail"]
    assert events(sqlite_url, incident_id, "resolved") == []


def test_a_referer_from_this_site_is_enough(sqlite_url, fake, router, hazard_set):
    incident_id = posted_incident(sqlite_url, fake, router, hazard_set)
    c = _app(sqlite_url, fake, router, hazard_set)
    r = c.post(f"/incidents/{incident_id}/actions/acknowledge", headers={"Referer": f"http://testserver/incidents/{incident_id}"})
    assert r.status_code == 303


def test_nobody_can_act_on_an_app_without_a_user(sqlite_url):
    ids = seed(sqlite_url)
    c = TestClient(create_app(sqlite_url, hazards=HAZARDS))
    r = c.post(f"/incidents/{ids['jam']}/actions/acknowledge", headers=SAME_SITE)
    assert r.status_code == 403 and "signed-in user" in r.json()["detail"]
    assert c.get(f"/incidents/{ids['jam']}/actions/acknowledge").status_code == 405  # a link cannot act
    assert events(sqlite_url, ids["jam"], "acknowledged") == []


def _app_after_a_routing_typo(sqlite_url: str, config: Path, monkeypatch, kept_first: bool) -> TestClient:
    """The page's app on a copy of the config whose routing.yaml was broken, after a run had
    kept its good version (`siaga.last_good`) or on a deployment that never had one."""
    import shutil

    from siaga import settings
    from siaga.routing import Router

    shutil.copytree(settings.config_dir(), config)
    if kept_first:
        with store.session_scope(sqlite_url) as session:  # what any detect run does with a good file
            Router.in_force(session, config / "routing.yaml")
    (config / "routing.yaml").write_text("receivers: [\n", encoding="utf-8")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(config))
    monkeypatch.delenv("SIAGA_SLACK_TOKEN", raising=False)
    return TestClient(create_app(sqlite_url, hazards=HAZARDS, actor="ayu.manager"), follow_redirects=False, raise_server_exceptions=False)


def test_a_broken_routing_file_refuses_the_action_with_a_503_saying_so(sqlite_url, tmp_path, monkeypatch):
    """The page's actions read routing.yaml on first use: with no good version ever kept, a
    broken file was a 500 (a traceback in the log, nothing said to the person). Nothing is
    recorded either way."""
    ids = seed(sqlite_url)
    c = _app_after_a_routing_typo(sqlite_url, tmp_path / "config", monkeypatch, kept_first=False)
    before = len(events(sqlite_url, ids["flood"], "acknowledged"))
    r = c.post(f"/incidents/{ids['flood']}/actions/acknowledge", headers=SAME_SITE)
    assert r.status_code == 503, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the routing config cannot be used, nothing was recorded: ") and f"{tmp_path / 'config' / 'routing.yaml'}:" in detail
    assert len(events(sqlite_url, ids["flood"], "acknowledged")) == before


def test_a_routing_typo_after_a_good_version_was_kept_leaves_the_actions_working(sqlite_url, tmp_path, monkeypatch):
    """At 3 a.m. the duty officer's acknowledge must still work when someone broke routing.yaml
    after a run had kept a good version: recorded, with no 503."""
    ids = seed(sqlite_url)
    c = _app_after_a_routing_typo(sqlite_url, tmp_path / "config", monkeypatch, kept_first=True)
    before = len(events(sqlite_url, ids["jam"], "acknowledged"))
    r = c.post(f"/incidents/{ids['jam']}/actions/acknowledge", headers=SAME_SITE)
    assert r.status_code == 303 and r.headers["location"].endswith("result=ok#actions"), r.text
    assert len(events(sqlite_url, ids["jam"], "acknowledged")) == before + 1
