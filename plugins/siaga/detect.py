"""The detect run, stage by stage: read the hazard lists in force, tag new posts, count them per
hazard and area, fit the baseline, find spikes, grade them, open or update incidents, resolve
quiet ones and write their Slack messages to the outbox.

Tagging commits in batches of its own (a crash keeps the work done); everything from counting to
the outbox is one transaction, so incident changes and their outbox messages are committed
together or not at all. Every stage is idempotent: posts are tagged once, area counts are made
equal to the posts, alerts are unique per series and window and outbox messages per incident
change, so re-running a detect task instance changes nothing.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from siaga import alerts, baseline, counting, hazard_lists, incidents, regional, severity, spikes, tagging
from siaga.collector import long_lived_frozen
from siaga.detection_config import DetectSettings
from siaga.routing import Router
from siaga.store import session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectReport:
    """What one run did, for the task's log and XCom."""

    tagged: int  # posts tagged by this run
    spikes: int  # spikes found (before grouping into incidents)
    changes: dict[str, int]  # incident changes by kind (new, update, escalation, resolved)
    lists_fingerprint: str  # the hazard lists in force


def run(now: datetime, router: Router, db_url: str | None = None, settings: DetectSettings | None = None) -> DetectReport:
    """One detect run as of `now`. Without `settings`, the defaults; the DAG passes those of
    config/detection.yaml (`pipeline.detect_incidents`)."""
    settings = settings or DetectSettings()
    with session_scope(db_url) as session:
        hazard_set = hazard_lists.in_force(session)
    tagger = tagging.Tagger(hazard_set)
    tagged = tagging.tag_pending(tagger, now, db_url)
    gazetteer = tagger.geotagger.gaz
    n_areas, road_villages = counting.area_universe(gazetteer)
    # posts old enough to fall in the first window evaluated still count
    since = now - settings.lookback - counting.longest_window(hazard_set)
    with long_lived_frozen(), session_scope(db_url) as session:
        events, areas, cue_posts = counting.load_events(session, since, now, road_villages)
        counting.write_area_counts(session, spikes.bucket_counts(events), spikes.bucket_floor(since) + spikes.BUCKET, now)
        # The baseline leaves out every post a window evaluated now can hold (lookback plus the
        # longest window), so a slow event's own earlier posts never become its "normal".
        model = baseline.load_baseline(session, since, settings.baseline_days, n_areas)
        rules = spikes.rules_of(hazard_set, model.dispersion)
        found = spikes.find_spikes(events, rules, spikes.window_ends(now, settings.lookback), model, n_areas)
        posts = regional.post_areas(events, areas)
        severities = severity.severities_of(found, hazard_set, cue_posts, posts)
        with incidents.remembering_posts(session):
            changes = incidents.apply_spikes(
                session, found, areas, severities, settings.incident_gap,
                adjacent=gazetteer.adjacent_villages, reopen_window=settings.reopen_window, place_of=_place_of(gazetteer),
                posts=posts, hazards=hazard_set.hazards,
            )
            changes += incidents.resolve_quiet(session, now, settings.quiet_period, hazard_set.hazards)
            alerts.enqueue(session, changes, hazard_set, router, now)
    report = DetectReport(tagged, len(found), dict(Counter(c.kind for c in changes)), hazard_set.fingerprint())
    log.info("detect at %s: %s", now.isoformat(), report)
    return report


def _place_of(gazetteer: Any) -> incidents.PlaceOf:
    """A village code's name and kecamatan, for naming the villages along a road."""

    def place_of(code: str) -> tuple[str, str] | None:
        try:
            village = gazetteer.village(code)
        except KeyError:
            return None
        return village.name, village.district

    return place_of
