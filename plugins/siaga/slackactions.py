"""What happens when a duty officer presses a button on an alert in Slack.

Acknowledge, Resolve and False alarm move the incident through its lifecycle
(`incidents.transition`, which writes who and when on the timeline), a closing also queues the
"resolved" reply for the thread (`alerts.enqueue`, in the same transaction, when the context has
the routing), and then every message of the incident (one per channel, from `IncidentThread`)
is edited to show the new state. Snooze creates a silence for the incident's hazard in its area.

The payload is Slack's `block_actions` JSON as Socket Mode delivers it. Everything here is safe
to run twice with the same payload (Socket Mode redelivers envelopes that were not acknowledged
in time): a repeated state change is a no-op that edits nothing, and a snooze carries the click's
`action_ts` as its de-duplication key. The time recorded is the click's `action_ts`, not when we
got round to handling it. A click that cannot be honoured (resolving a false alarm, an incident
that is gone) is answered to that user alone with `chat.postEphemeral`, never by raising.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from siaga import alerts, hazard_lists, incidents, messages, silences
from siaga.hazards import HazardSet
from siaga.incidents import Change, InvalidTransition, add_event
from siaga.redaction import redact_tokens
from siaga.routing import Router
from siaga.slackclient import answer_error, update_message
from siaga.store import Alert, Incident, IncidentEvent, IncidentThread, session_scope, utcnow

log = logging.getLogger(__name__)

ACTION_STATES = {
    messages.ACTION_ACK: "acknowledged",
    messages.ACTION_RESOLVE: "resolved",
    messages.ACTION_FALSE_ALARM: "false_alarm",
}
HANDLED = frozenset(ACTION_STATES) | {messages.ACTION_SNOOZE}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_INCIDENT_ID = re.compile(r"^[0-9]{1,12}$")
_ACTION_TS = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?$")  # Slack's "1548426417.840180"
CLOCK_SKEW = timedelta(minutes=5)  # how far a click's action_ts may be ahead of our clock
# Slack sends one action per block_actions payload; a payload listing more is not Slack's, and
# each action may cost database work and a message to the user: only the first few are handled.
MAX_ACTIONS = 5


@dataclass(frozen=True)
class ActionOutcome:
    """What one action did: `error` is the text the clicking user was shown, if any."""

    action_id: str
    incident_id: int | None = None
    user: str | None = None
    changed: bool = False
    error: str | None = None
    edited: tuple[tuple[str, str], ...] = ()  # (channel, ts) of the messages edited
    edit_errors: tuple[str, ...] = ()
    silence_id: int | None = None
    state: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ActionContext:
    """What handling needs besides the payload: where the store is, and (optional) the routing
    and hazards to queue the "resolved" reply with. Without a router the reply is not queued."""

    client: WebClient | None  # None: no Slack here (the incident page without credentials); messages are not edited
    db_url: str | None = None
    router: Router | None = None
    hazard_set: HazardSet | None = None
    tell_user: bool = True
    _hazards_cache: dict[str, HazardSet] = field(default_factory=dict, repr=False)

    def hazards(self, session: Session) -> HazardSet:
        if self.hazard_set is not None:
            return self.hazard_set
        if "set" not in self._hazards_cache:
            self._hazards_cache["set"] = hazard_lists.in_force(session)
        return self._hazards_cache["set"]


def handle_block_actions(payload: Mapping[str, Any], ctx: ActionContext) -> list[ActionOutcome]:
    """Handle every Siaga action in a `block_actions` payload; other payloads and other apps'
    actions are ignored (empty list)."""
    if not isinstance(payload, Mapping) or payload.get("type") != "block_actions":
        return []
    user = _text(_object(payload.get("user")).get("id")).strip()
    outcomes = []
    for action in _actions(payload):
        action_id = action.get("action_id")
        if not isinstance(action_id, str) or action_id not in HANDLED:
            continue
        outcome = _handle(action, action_id, user, ctx)
        if outcome.error:
            log.warning("slack action %s by %s refused: %s", action_id, user, outcome.error)
            if ctx.tell_user and ctx.client is not None:
                tell_user(ctx.client, payload, outcome.error)
        outcomes.append(outcome)
    return outcomes


def _object(value: Any) -> Mapping[str, Any]:
    """A payload field that should be a JSON object; anything else reads as an empty one."""
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    """A payload field that should be a string; anything else reads as empty."""
    return value if isinstance(value, str) else ""


def _actions(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The payload's actions that are objects; a malformed list is logged, never raised on."""
    actions = payload.get("actions")
    if not isinstance(actions, list):
        if actions is not None:
            log.warning("slack payload refused: 'actions' is a %s, not a list", type(actions).__name__)
        return []
    if len(actions) > MAX_ACTIONS:
        log.warning("slack payload lists %d actions: only the first %d handled", len(actions), MAX_ACTIONS)
    actions = actions[:MAX_ACTIONS]
    bad = [a for a in actions if not isinstance(a, Mapping)]
    if bad:
        log.warning("slack payload: %d of its actions are not objects, ignored", len(bad))
    return [a for a in actions if isinstance(a, Mapping)]


def _action_ts(action: Mapping[str, Any]) -> str | None:
    """The action's `action_ts` when it has Slack's shape (epoch seconds, decimal), else None."""
    raw = action.get("action_ts")
    return raw if isinstance(raw, str) and _ACTION_TS.match(raw) else None


def _handle(action: Mapping[str, Any], action_id: str, user: str, ctx: ActionContext) -> ActionOutcome:
    """One action; a database that fails is an answer to the user (try again), not a traceback."""
    if not _USER_ID.match(user):
        return ActionOutcome(action_id, user=user or None, error="Tidak tahu siapa yang menekan (no Slack user in the payload)")
    try:
        if action_id == messages.ACTION_SNOOZE:
            return snooze(action, user, ctx)
        return change_state(action, user, ACTION_STATES[action_id], ctx)
    except SQLAlchemyError as exc:
        log.error("slack action %s by %s not recorded, the database failed: %s", action_id, user,
                  str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0])
        return ActionOutcome(action_id, user=user, error=":warning: Tidak tercatat, coba lagi (not recorded: the database is unavailable; try again)")


def click_time(action: Mapping[str, Any]) -> datetime:
    """When the button was pressed (Slack's `action_ts`, epoch seconds); now if absent, malformed
    or later than now (beyond clock skew): a click cannot come from the future."""
    raw, now = _action_ts(action), utcnow()
    if raw is None:
        return now
    at = datetime.fromtimestamp(float(raw), tz=timezone.utc)
    return at if at <= now + CLOCK_SKEW else now


def change_state(action: Mapping[str, Any], user: str, to_state: str, ctx: ActionContext) -> ActionOutcome:
    action_id = str(action.get("action_id"))
    incident_id = _incident_id(action.get("value"))
    if incident_id is None:
        return ActionOutcome(action_id, user=user, error=f"Nilai tombol tidak sah (bad button value {_shown(action.get('value'))})")
    at = click_time(action)
    if _action_ts(action) is not None and _recorded(ctx, incident_id, to_state, user, at):
        # this very click (user, action, action_ts) is on the timeline: a redelivered or replayed
        # envelope, perhaps after the incident moved on (reopened, resolved by someone else)
        return ActionOutcome(action_id, incident_id, user, changed=False)
    return decide(ctx, action_id, incident_id, to_state, user, at)


def _recorded(ctx: ActionContext, incident_id: int, to_state: str, user: str, at: datetime) -> bool:
    """Is `user`'s change of the incident to `to_state` at `at` (a click's own time) already on
    its timeline? A repeat of the current state is a no-op anyway; this catches the repeat that
    arrives after the state changed again, which would otherwise apply an old click anew."""
    with session_scope(ctx.db_url) as session:
        return session.scalar(select(IncidentEvent.id).where(
            IncidentEvent.incident_id == incident_id, IncidentEvent.kind == to_state,
            IncidentEvent.actor == user, IncidentEvent.at == at).limit(1)) is not None


def decide(ctx: ActionContext, action_id: str, incident_id: int, to_state: str, user: str, at: datetime,
           note: str | None = None) -> ActionOutcome:
    """A person's decision on an incident, from a Slack button or the incident page: the state
    change on its timeline (`incidents.transition`), the "resolved" reply queued for its threads
    in the same transaction, then its Slack messages edited to show it (when `ctx.client` is
    set). Refusals come back as the outcome's `error`, never raised."""
    try:
        with session_scope(ctx.db_url) as session:
            # transition returns None both for "already in that state" and for acknowledging:
            # the state before tells the two apart (read as a value, so transition's own
            # locking read of the row is the one that loads it)
            before = session.scalar(select(Incident.state).where(Incident.id == incident_id))
            change = incidents.transition(session, incident_id, to_state, actor=user, at=at, note=note)
            changed = before != to_state
            if change is not None and ctx.router is not None:
                alerts.enqueue(session, [change], ctx.hazards(session), ctx.router, at)
    except InvalidTransition as exc:
        return ActionOutcome(action_id, incident_id, user, error=f":warning: Tidak bisa (cannot): {exc}")
    except LookupError:
        return ActionOutcome(action_id, incident_id, user, error=f":warning: Insiden #{incident_id} tidak ada (no such incident)")
    if not changed:
        return ActionOutcome(action_id, incident_id, user, changed=False, state=to_state)
    edited, errors = refresh_messages(ctx, incident_id, at)
    return ActionOutcome(action_id, incident_id, user, changed=True, edited=edited, edit_errors=errors, state=to_state)


def snooze(action: Mapping[str, Any], user: str, ctx: ActionContext) -> ActionOutcome:
    action_id = str(action.get("action_id"))
    value = str(_object(action.get("selected_option")).get("value") or action.get("value") or "")
    raw_id, _, key = value.partition(":")
    incident_id = _incident_id(raw_id)
    duration = silences.SNOOZE_CHOICES.get(key)
    if incident_id is None or duration is None:
        return ActionOutcome(action_id, user=user, error=f"Pilihan tunda tidak sah (bad snooze value {_shown(value)})")
    at = click_time(action)
    action_ts = _action_ts(action)
    dedup = f"slack:{incident_id}:{user}:{action_ts}:{key}" if action_ts else None
    with session_scope(ctx.db_url) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return ActionOutcome(action_id, incident_id, user, error=f":warning: Insiden #{incident_id} tidak ada (no such incident)")
        row, created = silences.create_silence(
            session, silences.snooze_matchers(incident), at + duration, user, starts_at=at,
            reason=f"snoozed from Slack on incident #{incident_id} for {key}", dedup_key=dedup,
        )
        silence_id = row.id
        if created:
            add_event(session, incident, at, "snoozed",
                      {"silence_id": row.id, "until": row.ends_at.isoformat(), "matchers": dict(row.matchers)}, actor=user)
    if not created:
        return ActionOutcome(action_id, incident_id, user, changed=False, silence_id=silence_id)
    edited, errors = refresh_messages(ctx, incident_id, at)
    return ActionOutcome(action_id, incident_id, user, changed=True, edited=edited, edit_errors=errors, silence_id=silence_id)


def refresh_messages(ctx: ActionContext, incident_id: int, at: datetime) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Edit the incident's first message in every channel to show its state now. Returns the
    edited (channel, ts) and the errors; a failed edit is logged, the state change stands.
    Without a Slack client (`ctx.client` None) nothing is edited."""
    if ctx.client is None:
        return (), ()
    with session_scope(ctx.db_url) as session:
        message, threads = current_message(session, incident_id, ctx.hazards(session), at)
    edited, errors = [], []
    for channel, ts in threads:
        try:
            update_message(ctx.client, channel, ts, message)
            edited.append((channel, ts))
        except (SlackClientError, OSError) as exc:  # refused, or out of reach (URLError, timeout): the decision stands
            error = f"{channel} {ts}: {_slack_why(exc)}"
            log.error("could not edit the alert of incident %s: %s", incident_id, error)
            errors.append(error)
    return tuple(edited), tuple(errors)


def current_message(session: Session, incident_id: int, hazard_set: HazardSet, at: datetime) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The incident's first alert rebuilt with its state, who set it and when, and any snooze;
    plus the (channel, ts) of the messages showing it."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise LookupError(f"no incident {incident_id}")
    first = session.scalars(select(Alert).where(Alert.incident_id == incident_id)
                            .order_by(Alert.window_end, Alert.id)).first()
    post_ids = [int(p) for p in ((first.explanation or {}).get("post_ids") or [])[:messages.MAX_EVIDENCE]] if first else []
    view = alerts.view_for(session, Change(incident, "new", first, post_ids), hazard_set)
    by, when = _state_setter(session, incident)
    silence = silences.matching(alerts.incident_labels(incident, hazard_set), silences.active_silences(session, at), at)
    view = replace(view, state_by=by, state_at=when, silenced_until=silence.ends_at if silence else None)
    threads = [(t.channel, t.ts) for t in session.scalars(
        select(IncidentThread).where(IncidentThread.incident_id == incident_id).order_by(IncidentThread.id))]
    return messages.build_message(view), threads


def _state_setter(session: Session, incident: Incident) -> tuple[str | None, datetime | None]:
    """Who put the incident in its current state and when (the latest timeline event of it)."""
    if incident.state == "open":
        return None, None
    event = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id, IncidentEvent.kind == incident.state)
        .order_by(IncidentEvent.at.desc(), IncidentEvent.id.desc())
    ).first()
    return (event.actor, event.at) if event else (None, None)


def _shown(value: Any) -> str:
    """A payload value quoted in an answer to the user: capped and escaped, so a value such as
    `<!channel>` is shown as text, not acted on by Slack."""
    return messages.escape(repr(str(value)[:40]))


def _incident_id(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if _INCIDENT_ID.match(text) else None


def tell_user(client: WebClient, payload: Mapping[str, Any], text: str) -> bool:
    """Show `text` to the user who clicked, in that channel, visible to them only."""
    channel = _text(_object(payload.get("channel")).get("id")) or _text(_object(payload.get("container")).get("channel_id"))
    user = _text(_object(payload.get("user")).get("id"))
    if not channel or not user:
        return False
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
        return True
    except (SlackClientError, OSError) as exc:
        log.warning("could not tell %s in %s: %s", user, channel, _slack_why(exc))
        return False


def _slack_why(exc: BaseException) -> str:
    """Why a Slack call failed, in one line: Slack's error code, or that it was out of reach."""
    if isinstance(exc, SlackApiError):
        return redact_tokens(str(answer_error(exc) if exc.response is not None else exc))
    return redact_tokens(f"cannot reach Slack: {getattr(exc, 'reason', None) or exc}")
