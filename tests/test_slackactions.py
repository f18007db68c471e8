"""Buttons on an alert, handled from the `block_actions` payload Slack sends: the incident and its
timeline change with who and when, every message of the incident is edited on the fake Slack,
repeats change nothing, and impossible clicks are answered to the user instead of crashing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import alerts, delivery, incidents, messages, slackactions, store
from support.fakesocketmode import FakeSocketMode
from siaga.incidents import Change
from siaga.slackclient import make_client
from support.incidents import sangsit_flood

T0 = datetime(2026, 1, 15, 3, 0, tzinfo=timezone.utc)  # 11:00 WITA
TOKEN = "xoxb-test"
DUTY = "U0DUTY01"
OTHER = "U0BOSS02"


@pytest.fixture
def fake():
    with FakeSocketMode(token=TOKEN) as server:
        yield server


def client_for(fake):
    return make_client(token=TOKEN, base_url=fake.base_url, timeout=5, conn_id=None, backoff_factor=0.01, max_retry_after=2)


def posted_incident(db_url, fake, router, hazard_set, road="Jalan Singaraja-Gilimanuk"):
    """An incident whose first alert went out through the outbox to the fake Slack (a flood on a
    road: both BPBD's and Dishub's channels), as in production."""
    with store.session_scope(db_url) as session:
        post = store.Post(source="demo", source_id="p1", created_at=T0, author="a", text="Banjir setinggi lutut di Sangsit",
                          url="https://example.org/p1", text_hash="h1", raw={})
        session.add(post)
        session.flush()
        incident = sangsit_flood(session, T0, road=road, severity="medium")
        alert = store.Alert(incident_id=incident.id, hazard="flood", level="village", area_code="51.08.07.2001",
                            window_start=T0 - timedelta(hours=1), window_end=T0, observed=5, expected=0.4, authors=4,
                            score=7.2, explanation={"post_ids": [post.id]})
        session.add(alert)
        session.flush()
        alerts.enqueue(session, [Change(incident, "new", alert, [post.id])], hazard_set, router, T0)
        incident_id = incident.id
    report = delivery.deliver(client_for(fake), T0, db_url)
    assert report.sent >= 1
    return incident_id


def click(action_id, value, user=DUTY, at=T0 + timedelta(minutes=7), channel=None, select=False):
    action = {"action_id": action_id, "block_id": "b", "action_ts": f"{at.timestamp():.6f}", "type": "button", "value": value}
    if select:
        action = {"action_id": action_id, "block_id": "b", "action_ts": f"{at.timestamp():.6f}", "type": "static_select",
                  "selected_option": {"value": value, "text": {"type": "plain_text", "text": value}}}
    payload = {"type": "block_actions", "user": {"id": user, "username": "duty"}, "team": {"id": "T0SIAGA"},
               "actions": [action], "trigger_id": "1.2.3", "response_url": "https://hooks.slack.invalid/x"}
    if channel:
        payload["channel"] = {"id": channel, "name": "bpbd-siaga"}
    return payload


def ctx_for(fake, db_url, router=None, hazard_set=None):
    return slackactions.ActionContext(client=client_for(fake), db_url=db_url, router=router, hazard_set=hazard_set)


def events(db_url, incident_id, kind=None):
    with store.session_scope(db_url) as session:
        q = sa.select(store.IncidentEvent).where(store.IncidentEvent.incident_id == incident_id).order_by(store.IncidentEvent.id)
        return [e for e in session.scalars(q) if kind is None or e.kind == kind]


def state_text(message):
    return " ".join(el["text"] for b in message["blocks"] if b["type"] == "context" for el in b["elements"])


def test_acknowledge_records_who_and_when_and_edits_every_channel(db_url, fake, router, hazard_set):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    originals = fake.messages()
    assert {m["channel_name"] for m in originals} == {"bpbd-siaga", "dishub-siaga"}
    at = T0 + timedelta(minutes=7)
    (outcome,) = slackactions.handle_block_actions(click(messages.ACTION_ACK, str(incident_id), at=at), ctx_for(fake, db_url, router, hazard_set))
    assert outcome.ok and outcome.changed and len(outcome.edited) == 2
    with store.session_scope(db_url) as session:
        assert session.get(store.Incident, incident_id).state == "acknowledged"
    (ack,) = events(db_url, incident_id, "acknowledged")
    assert ack.actor == DUTY and ack.at == at
    assert fake.requests_count("chat.update") == 2
    for message in fake.messages():
        shown = state_text(message)
        assert "ditangani (acknowledged)" in shown and f"<@{DUTY}>" in shown and "11:07 WITA" in shown
        ids = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert messages.ACTION_ACK not in ids and messages.ACTION_RESOLVE in ids and messages.ACTION_SNOOZE in ids
        assert message["edited"]
    # the evidence of the first alert is still there after the edit
    assert "Banjir setinggi lutut" in str(fake.messages()[0]["blocks"])


def test_the_same_click_twice_changes_nothing_the_second_time(db_url, fake, router, hazard_set):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    payload = click(messages.ACTION_ACK, str(incident_id))
    ctx = ctx_for(fake, db_url, router, hazard_set)
    first = slackactions.handle_block_actions(payload, ctx)
    updates, n_events = fake.requests_count("chat.update"), len(events(db_url, incident_id))
    second = slackactions.handle_block_actions(payload, ctx)
    assert first[0].changed and not second[0].changed and second[0].ok
    assert fake.requests_count("chat.update") == updates and len(events(db_url, incident_id)) == n_events
    assert fake.ephemerals == []


@pytest.mark.parametrize("action_id, reopen_at", [(messages.ACTION_RESOLVE, 30), (messages.ACTION_FALSE_ALARM, 30),
                                                   (messages.ACTION_ACK, None)])
def test_a_click_replayed_after_the_incident_moved_on_changes_nothing(db_url, fake, router, hazard_set, action_id, reopen_at):
    """Socket Mode redelivers an envelope that was not acknowledged in time, and a payload can be
    replayed. A Resolve click handled, the incident then reopened by new reports, and the same
    click delivered again: it closed the reopened incident a second time (a 'resolved' event
    dated before the reopening, a second 'resolved' reply queued to every channel), though
    nobody pressed anything. The same click (user, action, action_ts) is recorded once; the
    same goes for an Acknowledge replayed after a Resolve (it was refused to the user)."""
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    ctx = ctx_for(fake, db_url, router, hazard_set)
    payload = click(action_id, str(incident_id), at=T0 + timedelta(minutes=7))
    assert slackactions.handle_block_actions(payload, ctx)[0].changed
    with store.session_scope(db_url) as session:
        if reopen_at is not None:
            incidents.transition(session, incident_id, "open", actor="siaga", at=T0 + timedelta(minutes=reopen_at))
        else:
            incidents.transition(session, incident_id, "resolved", actor=OTHER, at=T0 + timedelta(minutes=20))
        state = session.get(store.Incident, incident_id).state
        queued = session.scalar(sa.select(sa.func.count()).select_from(store.OutboxMessage))
    n_events, updates = len(events(db_url, incident_id)), fake.requests_count("chat.update")
    (again,) = slackactions.handle_block_actions(payload, ctx)
    assert again.ok and not again.changed
    with store.session_scope(db_url) as session:
        assert session.get(store.Incident, incident_id).state == state
        assert session.scalar(sa.select(sa.func.count()).select_from(store.OutboxMessage)) == queued
    assert len(events(db_url, incident_id)) == n_events and fake.requests_count("chat.update") == updates
    assert fake.ephemerals == []


def test_resolve_closes_edits_and_queues_the_thread_reply(db_url, fake, router, hazard_set):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    ctx = ctx_for(fake, db_url, router, hazard_set)
    at = T0 + timedelta(minutes=30)
    (outcome,) = slackactions.handle_block_actions(click(messages.ACTION_RESOLVE, str(incident_id), user=OTHER, at=at), ctx)
    assert outcome.changed and len(outcome.edited) == 2
    with store.session_scope(db_url) as session:
        incident = session.get(store.Incident, incident_id)
        assert (incident.state, incident.closed_by, incident.closed_at) == ("resolved", OTHER, at)
        kinds = [r.kind for r in session.scalars(sa.select(store.OutboxMessage).where(store.OutboxMessage.state == "pending"))]
    assert kinds == ["resolved", "resolved"]  # one reply per channel, sent by the deliver task
    for message in fake.messages():
        assert "selesai (resolved)" in state_text(message) and f"<@{OTHER}>" in state_text(message)
        assert not [b for b in message["blocks"] if b["type"] == "actions"]  # nothing left to press
    delivery.deliver(client_for(fake), at, db_url)
    replies = [m for m in fake.messages() if m.get("thread_ts")]
    assert len(replies) == 2


def test_an_impossible_click_is_answered_to_the_user_not_raised(db_url, fake, router, hazard_set):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    ctx = ctx_for(fake, db_url, router, hazard_set)
    channel = fake.channel_id("#bpbd-siaga")
    slackactions.handle_block_actions(click(messages.ACTION_FALSE_ALARM, str(incident_id), channel=channel), ctx)
    updates = fake.requests_count("chat.update")
    (outcome,) = slackactions.handle_block_actions(
        click(messages.ACTION_RESOLVE, str(incident_id), user=OTHER, channel=channel, at=T0 + timedelta(hours=1)), ctx)
    assert not outcome.ok and "false_alarm" in outcome.error and "cannot become resolved" in outcome.error
    assert fake.ephemerals == [{"channel": channel, "user": OTHER, "text": outcome.error}]
    assert fake.requests_count("chat.update") == updates
    with store.session_scope(db_url) as session:
        assert session.get(store.Incident, incident_id).state == "false_alarm"


@pytest.mark.parametrize("value, why", [("999999", "tidak ada"), ("1; drop table", "tidak sah"), ("", "tidak sah")])
def test_unknown_incident_and_bad_values(sqlite_url, fake, value, why):
    ctx = ctx_for(fake, sqlite_url)
    (outcome,) = slackactions.handle_block_actions(click(messages.ACTION_ACK, value), ctx)
    assert not outcome.ok and why in outcome.error


def test_payload_without_a_user_or_of_another_kind(sqlite_url, fake):
    ctx = ctx_for(fake, sqlite_url)
    payload = click(messages.ACTION_ACK, "1")
    payload["user"] = {"id": "<!channel>"}
    (outcome,) = slackactions.handle_block_actions(payload, ctx)
    assert not outcome.ok
    assert slackactions.handle_block_actions({"type": "view_submission"}, ctx) == []
    other_app = click("someone_elses_button", "1")
    assert slackactions.handle_block_actions(other_app, ctx) == []


def test_snooze_silences_hazard_and_area_and_shows_on_the_message(db_url, fake, router, hazard_set):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    ctx = ctx_for(fake, db_url, router, hazard_set)
    at = T0 + timedelta(minutes=10)
    payload = click(messages.ACTION_SNOOZE, f"{incident_id}:6h", at=at, select=True)
    (outcome,) = slackactions.handle_block_actions(payload, ctx)
    assert outcome.changed and outcome.silence_id and len(outcome.edited) == 2
    (again,) = slackactions.handle_block_actions(payload, ctx)  # redelivered: one silence
    assert not again.changed and again.silence_id == outcome.silence_id
    with store.session_scope(db_url) as session:
        (row,) = session.scalars(sa.select(store.SilenceRow)).all()
        assert row.matchers == {"hazard": "flood", "district": "Sawan"}
        assert (row.starts_at, row.ends_at, row.created_by) == (at, at + timedelta(hours=6), DUTY)
        incident = session.get(store.Incident, incident_id)
        incident.severity = "high"
        # while snoozed, an escalation of this incident is not sent
        assert alerts.enqueue(session, [Change(incident, "escalation")], hazard_set, router, at + timedelta(hours=1)) == 0
    (snoozed,) = events(db_url, incident_id, "snoozed")
    assert snoozed.actor == DUTY and snoozed.detail["silence_id"] == outcome.silence_id
    assert events(db_url, incident_id, "silenced")
    for message in fake.messages():
        assert "ditunda s/d (snoozed until) 15 Jan 17:10 WITA" in state_text(message)


@pytest.mark.parametrize("value", ["1:5h", "1", "x:1h"])
def test_bad_snooze_values_are_refused(sqlite_url, fake, value):
    (outcome,) = slackactions.handle_block_actions(click(messages.ACTION_SNOOZE, value, select=True), ctx_for(fake, sqlite_url))
    assert not outcome.ok and "snooze" in outcome.error


def test_snooze_menu_options_on_a_new_alert():
    view = messages.AlertView(incident_id=17, kind="new", hazard_id="flood", hazard_label_id="Banjir", hazard_label_en="Flood",
                              severity="low")
    blocks = messages.build_message(view)["blocks"]
    (select,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == messages.ACTION_SNOOZE]
    assert [o["value"] for o in select["options"]] == ["17:1h", "17:6h", "17:24h"]
    assert all(o["value"].split(":")[1] in slackactions.silences.SNOOZE_CHOICES for o in select["options"])


# --- forged and malformed payloads: a clear refusal, never a traceback --------------------------

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=8)
_FIELD = st.one_of(_JSON, st.sampled_from([messages.ACTION_ACK, messages.ACTION_SNOOZE, "1", "1:1h", DUTY, "C1"]))


@st.composite
def malformed_payloads(draw):
    """block_actions payloads whose fields have any JSON type: user, channel, actions, each action."""
    action = {"action_id": draw(st.sampled_from([messages.ACTION_ACK, messages.ACTION_RESOLVE, messages.ACTION_SNOOZE]) | _JSON),
              "value": draw(_FIELD), "selected_option": draw(_JSON | st.fixed_dictionaries({"value": _FIELD})),
              "action_ts": draw(_JSON | st.sampled_from(["253402300799", "9" * 12, "1e300", "nan", "-1"]))}
    actions = draw(st.sampled_from(["list", "raw", "junk-in-list"]))
    payload = {"type": "block_actions", "user": draw(_JSON | st.fixed_dictionaries({"id": _FIELD})),
               "channel": draw(_JSON | st.fixed_dictionaries({"id": _FIELD})), "container": draw(_JSON),
               "actions": [action] if actions == "list" else draw(_JSON) if actions == "raw" else [draw(_JSON), action]}
    return payload


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=malformed_payloads())
def test_any_malformed_payload_is_refused_or_handled_never_raised(sqlite_url, fake, payload):
    outcomes = slackactions.handle_block_actions(payload, ctx_for(fake, sqlite_url))
    assert all(isinstance(o, slackactions.ActionOutcome) for o in outcomes)


@pytest.mark.parametrize("action_id, field", [(messages.ACTION_ACK, "value"), (messages.ACTION_SNOOZE, "select")])
def test_a_hostile_button_value_is_quoted_escaped_to_the_user(sqlite_url, fake, router, hazard_set, action_id, field):
    posted_incident(sqlite_url, fake, router, hazard_set)
    channel = fake.channel_id("#bpbd-siaga")
    payload = click(action_id, "<!channel> <@U0BOSS02> <https://evil.example|x>", channel=channel, select=field == "select")
    (outcome,) = slackactions.handle_block_actions(payload, ctx_for(fake, sqlite_url))
    assert not outcome.ok
    (shown,) = fake.ephemerals
    assert "<" not in shown["text"] and ">" not in shown["text"] and "&lt;!channel&gt;" in shown["text"]


def test_a_click_from_the_future_is_recorded_now_and_a_far_one_does_not_crash_a_snooze(db_url, fake, router, hazard_set):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    ctx = ctx_for(fake, db_url, router, hazard_set)
    payload = click(messages.ACTION_SNOOZE, f"{incident_id}:24h", select=True)
    payload["actions"][0]["action_ts"] = "253402300799.000000"  # 9999-12-31 23:59:59 UTC
    before = store.utcnow()
    (outcome,) = slackactions.handle_block_actions(payload, ctx)
    assert outcome.ok and outcome.changed
    with store.session_scope(db_url) as session:
        (row,) = session.scalars(sa.select(store.SilenceRow)).all()
        assert before <= row.starts_at <= store.utcnow() and row.ends_at - row.starts_at == timedelta(hours=24)


def test_an_oversized_action_ts_is_no_dedup_key_and_fits_the_column(db_url, fake, router, hazard_set):
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    payload = click(messages.ACTION_SNOOZE, f"{incident_id}:1h", select=True)
    payload["actions"][0]["action_ts"] = "1" * 5000
    (outcome,) = slackactions.handle_block_actions(payload, ctx_for(fake, db_url, router, hazard_set))
    assert outcome.ok and outcome.silence_id


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slack_out_of_reach_while_editing_keeps_the_decision_and_says_why(db_url, fake, router, hazard_set):
    """Before: the URLError of the edit escaped after the state change was committed (a
    traceback in the listener, a server error on the incident page)."""
    incident_id = posted_incident(db_url, fake, router, hazard_set)
    down = make_client(token=TOKEN, base_url=f"http://127.0.0.1:{_closed_port()}/api/", timeout=2, conn_id=None,
                       backoff_factor=0.01, max_retry_after=1)
    ctx = slackactions.ActionContext(client=down, db_url=db_url, router=router, hazard_set=hazard_set)
    (outcome,) = slackactions.handle_block_actions(click(messages.ACTION_RESOLVE, str(incident_id)), ctx)
    assert outcome.ok and outcome.changed and outcome.edited == ()
    assert len(outcome.edit_errors) == 2 and all("cannot reach Slack" in e for e in outcome.edit_errors)
    with store.session_scope(db_url) as session:
        assert session.get(store.Incident, incident_id).state == "resolved"


def test_a_database_that_fails_is_an_answer_to_the_user_not_a_traceback(sqlite_url, fake, router, hazard_set, tmp_path):
    incident_id = posted_incident(sqlite_url, fake, router, hazard_set)
    channel = fake.channel_id("#bpbd-siaga")
    ctx = ctx_for(fake, f"sqlite:///{tmp_path}/no/such/folder/siaga.db", router, hazard_set)
    for action_id, value in ((messages.ACTION_ACK, str(incident_id)), (messages.ACTION_SNOOZE, f"{incident_id}:1h")):
        (outcome,) = slackactions.handle_block_actions(click(action_id, value, channel=channel, select=action_id == messages.ACTION_SNOOZE), ctx)
        assert not outcome.ok and "try again" in outcome.error
    assert [e["text"] for e in fake.ephemerals] == [outcome.error, outcome.error]


def test_a_payload_listing_many_actions_costs_only_the_first_few(sqlite_url, fake, router, hazard_set):
    """Slack sends one action per payload; a forged one with hundreds made as many database
    transactions and messages to the user."""
    posted_incident(sqlite_url, fake, router, hazard_set)
    payload = click(messages.ACTION_ACK, "999999", channel=fake.channel_id("#bpbd-siaga"))
    payload["actions"] = payload["actions"] * 200
    outcomes = slackactions.handle_block_actions(payload, ctx_for(fake, sqlite_url))
    assert len(outcomes) == slackactions.MAX_ACTIONS and all(not o.ok for o in outcomes)
    assert len(fake.ephemerals) == slackactions.MAX_ACTIONS
