"""How bad an incident is: low, medium, high or critical (`vocabulary.SEVERITIES`).

Two things raise it: what the posts say (a spike's count against the hazard's minimum, and how
many posts carry severity cues: victims, trapped, waist-deep water) and how far it spread (how
many of an incident's areas have posts). An incident opens at its first spike's severity and
only ever rises (`incidents.apply_spikes` takes the higher of the two); each rise is an
"escalation" in its Slack thread.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from siaga.hazards import HazardSet
from siaga.spikes import Spike
from siaga.store import HazardMatchRow, Incident, IncidentArea

# An incident over this many areas with posts is at least this severe (most areas first).
AREA_SEVERITY = ((4, "high"), (2, "medium"))
# The minimum posts assumed for a spike of a hazard the lists no longer hold.
_FALLBACK_MIN_POSTS = 3


def severity_of(spike: Spike, min_posts: int, cue_posts: int) -> str:
    """Severity grows with the count and with posts that carry severity cues (victims, trapped,
    waist-deep water): several witnesses of a cue make it high, many make it critical."""
    if cue_posts >= 4 or (cue_posts >= 2 and spike.observed >= 4 * min_posts):
        return "critical"
    if cue_posts >= 2 or spike.observed >= 4 * min_posts:
        return "high"
    if cue_posts >= 1 or spike.observed >= 2 * min_posts:
        return "medium"
    return "low"


def severities_of(
    found: list[Spike], hazard_set: HazardSet, cue_posts: dict[str, set[int]]
) -> dict[tuple[str, str, str, datetime], str]:
    """Each spike's severity (keyed by hazard, level, area code and window end) from its count
    against the hazard's minimum and how many of its evidence posts carry cues."""
    out = {}
    for s in found:
        hazard = hazard_set.hazards.get(s.hazard)
        min_posts = hazard.min_posts if hazard else _FALLBACK_MIN_POSTS
        cues = len(cue_posts.get(s.hazard, set()) & set(s.post_ids))
        out[(s.hazard, s.level, s.area_code, s.window_end)] = severity_of(s, min_posts, cues)
    return out


def area_severity(session: Session, incident: Incident) -> str:
    """Spread is severity too: an event reported from several places is bigger than one."""
    with_posts = sum(1 for a in session.scalars(select(IncidentArea).where(IncidentArea.incident_id == incident.id)) if a.posts > 0)
    for at_least, severity in AREA_SEVERITY:
        if with_posts >= at_least:
            return severity
    return "low"


def cue_counts(session: Session, hazard: str, post_ids: Sequence[int]) -> tuple[Counter[str], int]:
    """How many of these posts carry each severity cue of `hazard`, and how many carry any: the
    words that raised a severity, named in the alert ("setinggi dada" in 3 posts)."""
    counts: Counter[str] = Counter()
    with_cues = 0
    if not post_ids:
        return counts, 0
    for cues in session.scalars(select(HazardMatchRow.severity_cues).where(
            HazardMatchRow.post_id.in_(list(post_ids)), HazardMatchRow.hazard == hazard)):
        found = set(str(c) for c in cues or ())
        counts.update(found)
        with_cues += bool(found)
    return counts, with_cues
