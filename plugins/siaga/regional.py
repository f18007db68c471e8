"""One incident per event when an event is bigger than a village: an earthquake felt across the
regency, a windstorm over several kecamatan, widespread flooding.

`incidents.apply_spikes` turns spikes into incidents area by area; on its own a felt quake opened
one incident per level and area (regency, four kecamatan, two villages), each with its own
thread. Which hazards strike an area rather than a point is each hazard's `areal: true` in its
file in config/hazards/ (`Hazard.areal`): operators tune it there, with the rest of the hazard.
The rules here make one incident:
- a regency spike of an areal hazard whose posts come from several kecamatan is *widespread*:
  it is recorded first in its window and opens (or joins) an incident covering the regency and
  every area its posts name, so the finer spikes of the same window and later ones join it as
  updates;
- while a regency incident of an areal hazard is live, any spike of that hazard in the regency
  joins it (`live_regional_incident`);
- a coarser spike that a finer incident already tells the story of is not dropped but recorded
  with that incident, silently (`joined_alert`): its window is then stored, so it can never come
  back hours later as a stale "new" incident once the finer one resolved;
- an incident a coarser spike joins takes that spike's level and area (`promote`), so its labels,
  message and timeline say how wide the event is.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

from siaga.hazard_config import Hazard
from siaga.spikes import Spike
from siaga.store import Alert, Incident
from siaga.vocabulary import LEVELS, LIVE_STATES, district_code

# A regency spike whose posts come from at least this many kecamatan is one regional event.
MIN_DISTRICTS = 2

# hazard id -> its list (`HazardSet.hazards`): where `areal` is read
Hazards = Mapping[str, Hazard]

# post id -> the (level, code) -> name of the finer areas it counts towards
PostAreas = Mapping[int, Mapping[tuple[str, str], str]]


def post_areas(events: pd.DataFrame, areas: Mapping[tuple[str, str], Any]) -> dict[int, dict[tuple[str, str], str]]:
    """Each post's village, road and kecamatan areas (with names) from the events table."""
    out: dict[int, dict[tuple[str, str], str]] = {}
    if events.empty:
        return out
    finer = events[events["level"] != "regency"]
    for pid, level, code in zip(finer["post_id"], finer["level"], finer["area_code"]):
        info = areas.get((level, code))
        out.setdefault(int(pid), {})[(str(level), str(code))] = getattr(info, "name", None) or str(code)
    return out


def spread(spike: Spike, posts: PostAreas) -> dict[tuple[str, str], str]:
    """The finer areas the spike's posts come from."""
    out: dict[tuple[str, str], str] = {}
    for pid in spike.post_ids:
        out.update(posts.get(pid, {}))
    return out


def districts_of(cover: Mapping[tuple[str, str], str]) -> set[str]:
    """Kecamatan codes a set of areas lies in (villages by their code prefix)."""
    out = {code for level, code in cover if level == "district"}
    out |= {district_code(code) for level, code in cover if level == "village"}
    return out


def is_areal(hazard: str, hazards: Hazards) -> bool:
    """Does this hazard strike an area rather than a point (its file's `areal: true`)? One such
    event can span kecamatan; a fire, an accident or a landslide is in one place, so two of them
    in two kecamatan stay two incidents. A hazard the lists no longer hold is not."""
    known = hazards.get(hazard)
    return known is not None and known.areal


def widespread(spike: Spike, posts: PostAreas, hazards: Hazards) -> bool:
    """A regency spike of an areal hazard reported from several kecamatan: one regional event,
    not several."""
    return (spike.level == "regency" and is_areal(spike.hazard, hazards)
            and len(districts_of(spread(spike, posts))) >= MIN_DISTRICTS)


def order_key(spike: Spike, posts: PostAreas, hazards: Hazards) -> tuple[datetime, int, int, str, str]:
    """Within a window, a widespread regency spike first (it opens the one incident the finer
    spikes join), then finer before coarser as before."""
    first = 0 if widespread(spike, posts, hazards) else 1
    return spike.window_end, first, LEVELS.index(spike.level), spike.hazard, spike.area_code


def regional_cover(spike: Spike, posts: PostAreas, hazards: Hazards) -> dict[tuple[str, str], str]:
    """The areas a widespread spike's incident covers besides the regency: those its posts name."""
    return spread(spike, posts) if widespread(spike, posts, hazards) else {}


def live_regional_incident(spike: Spike, gap: timedelta, hazards: Hazards, held: Iterable[Incident]) -> Incident | None:
    """The live regency-level incident of this (areal) hazard active within `gap`, which every
    spike of the hazard in the regency joins. `held`: every live incident of the hazard (a
    detect run reads them once, `incidents.apply_spikes`)."""
    if not is_areal(spike.hazard, hazards):
        return None
    found = [i for i in held if i.hazard == spike.hazard and i.level == "regency" and i.state in LIVE_STATES
             and i.last_activity_at >= spike.window_end - gap]
    return max(found, key=lambda i: (i.last_activity_at, i.id)) if found else None


def promote(incident: Incident, level: str, code: str, name: str) -> dict[str, str] | None:
    """Widen an incident to a coarser spike's area; returns what changed (for the timeline)."""
    if LEVELS.index(level) <= LEVELS.index(incident.level):
        return None
    before = {"level": incident.level, "area_code": incident.area_code, "area_name": incident.area_name}
    incident.level, incident.area_code, incident.area_name = level, code, name[:128]
    if level == "regency":
        incident.village = incident.district = incident.road = None
    elif level == "district":
        incident.village = incident.road = None
    elif level == "road":  # now on the road: routing's on_road and the message's road line read this
        incident.road = name[:128]
    return before


def finer_live_incident(spike: Spike, district: str | None, code: str,
                        covered: Callable[[int], Iterable[tuple[str, str]]], held: Iterable[Incident]) -> Incident | None:
    """The live finer incident of the same hazard inside this kecamatan or the regency that
    makes a coarser spike redundant (the same rule `incidents` inhibits by). `covered` gives an
    incident's (level, code) areas and `held` every live incident of the hazard (a detect run
    reads them once, `incidents.apply_spikes`)."""
    if spike.level not in ("district", "regency"):
        return None
    finer = ("village", "road") if spike.level == "district" else ("village", "road", "district")
    live = sorted((i for i in held if i.hazard == spike.hazard and i.state in LIVE_STATES and i.level in finer),
                  key=lambda i: (i.last_activity_at, i.id), reverse=True)
    for incident in live:
        if spike.level == "regency" or (district and incident.district == district):
            return incident
        if any(district_code(c) == code for level, c in covered(incident.id) if level == "village"):
            return incident
    return None


JOINED = "joined"  # the explanation key marking a stored coarser window (see `joined_alert`)


def is_joined(alert: Alert) -> bool:
    """A coarser window stored with the finer incident that tells its story: its posts count
    for that incident, but it is not a detection of its own (no marker, row or message)."""
    return bool((alert.explanation or {}).get(JOINED))


def joined_alert(spike: Spike, incident: Incident, explanation: dict[str, Any]) -> dict[str, Any]:
    """The alert row (its column values) recording a redundant coarser spike with the finer
    incident that tells its story: no message and no timeline row (the finer incident's own
    rows tell it), but its window and posts are stored, so it is never re-opened as news once
    that incident resolved. `incidents` writes it."""
    return dict(
        hazard=spike.hazard, level=spike.level, area_code=spike.area_code, window_start=spike.window_start,
        window_end=spike.window_end, observed=spike.observed, expected=spike.expected, authors=spike.authors,
        score=spike.score, explanation={**explanation, JOINED: "a coarser window inside this incident's area"},
        incident_id=incident.id,
    )
