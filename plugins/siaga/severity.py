"""How bad an incident is: low, medium, high or critical (`vocabulary.SEVERITIES`).

Three things raise it: what the posts say (a spike's count against the hazard's minimum, and how
many posts carry severity cues: victims, trapped, waist-deep water), how far it spread (how
many of an incident's areas have posts) and its reach (`reach_severity`: how many people report
it, from how many villages and kecamatan, and what kind of hazard it is: an earthquake felt by
dozens is at least high wherever they are; how many make a felt hazard serious is its file's
`felt_authors`, in config/hazards/). An incident opens at its first spike's severity and
only ever rises (`incidents.apply_spikes` takes the higher of the two); each rise is an
"escalation" in its Slack thread.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from siaga.hazards import HazardSet
from siaga.spikes import Spike
from siaga.store import HazardMatchRow, Incident, IncidentArea, in_slices
from siaga.vocabulary import district_code, higher_severity

# An incident over this many areas with posts is at least this severe (most areas first).
AREA_SEVERITY = ((4, "high"), (2, "medium"))
# Reach: distinct authors from which any incident is at least this severe (most first).
AUTHOR_SEVERITY = ((25, "high"), (10, "medium"))
# Reach: kecamatan / villages a spike's posts come from (most first).
DISTRICT_SEVERITY = ((3, "high"), (2, "medium"))
VILLAGE_SEVERITY = ((4, "medium"),)
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


def reach_severity(felt_authors: int | None, authors: int,
                   areas: Mapping[tuple[str, str], str] | Iterable[tuple[str, str]]) -> str:
    """Severity from reach alone: many distinct authors, many kecamatan or villages, or a felt
    hazard (earthquake, tsunami, eruption) reported by many people. `felt_authors` is the
    hazard's (`Hazard.felt_authors`, None for a hazard that is not felt): a hazard felt by
    everyone at once where it strikes, reported by that many distinct people, is already a
    serious event (a felt quake, a tsunami sighting), whatever the counts' background; from
    twice as many, critical needs cues too, so only high."""
    cover = list(areas)
    districts = {code for level, code in cover if level == "district"} | {
        district_code(code) for level, code in cover if level == "village"}
    villages = {code for level, code in cover if level == "village"}
    out = "low"
    for table, n in ((AUTHOR_SEVERITY, authors), (DISTRICT_SEVERITY, len(districts)), (VILLAGE_SEVERITY, len(villages))):
        out = higher_severity(out, next((sev for at_least, sev in table if n >= at_least), "low"))
    if felt_authors is not None and authors >= felt_authors:
        out = higher_severity(out, "high")
    return out


def severities_of(
    found: list[Spike], hazard_set: HazardSet, cue_posts: dict[str, set[int]],
    posts: Mapping[int, Mapping[tuple[str, str], str]] | None = None,
) -> dict[tuple[str, str, str, datetime], str]:
    """Each spike's severity (keyed by hazard, level, area code and window end) from its count
    against the hazard's minimum, how many of its evidence posts carry cues and its reach
    (`reach_severity`, with the finer areas of its posts from `posts`)."""
    out = {}
    posts = posts or {}
    for s in found:
        hazard = hazard_set.hazards.get(s.hazard)
        min_posts = hazard.min_posts if hazard else _FALLBACK_MIN_POSTS
        cues = len(cue_posts.get(s.hazard, set()) & set(s.post_ids))
        cover = {area for pid in s.post_ids for area in posts.get(pid, {})}
        out[(s.hazard, s.level, s.area_code, s.window_end)] = higher_severity(
            severity_of(s, min_posts, cues), reach_severity(hazard.felt_authors if hazard else None, s.authors, cover))
    return out


def area_severity(session: Session, incident: Incident, areas: Iterable[IncidentArea] | None = None) -> str:
    """Spread is severity too: an event reported from several places is bigger than one.
    `areas`: the incident's areas when the caller holds them (a detect run reads them once)."""
    if areas is None:
        areas = session.scalars(select(IncidentArea).where(IncidentArea.incident_id == incident.id))
    with_posts = sum(1 for a in areas if a.posts > 0)
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
    for among in in_slices(session, HazardMatchRow.post_id, list(post_ids)):
        for cues in session.scalars(select(HazardMatchRow.severity_cues).where(among, HazardMatchRow.hazard == hazard)):
            found = set(str(c) for c in cues or ())
            counts.update(found)
            with_cues += bool(found)
    return counts, with_cues
