"""`siaga terms [--days N]`: which terms bring in posts, incidents and false alarms.

An operator tightening a keyword list needs to know which term to look at: one that matched
hundreds of posts but only ever fed incidents that officers confirmed is pulling its weight; one
behind most of the incidents marked False alarm is the one to tighten (an exclusion, a longer
phrase). Per hazard and term over the last N days this counts the posts it matched (the stored
`hazard_matches`), the incidents it contributed to (incidents whose evidence posts it matched)
and how many of those officers confirmed or called false alarms (`verdicts`).

A root ("banjir") is reported under the root, not under each word it was found in
("kebanjiran", "dibanjiri"); a word no longer on any list is reported as it was matched, marked
"unlisted", so a term removed last week still shows what it did.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siaga import verdicts
from siaga.hazards import HazardSet
from siaga.normalise import squeeze, squeeze_fold, stem
from siaga.store import HazardMatchRow, Incident, Post, in_slices


@dataclass
class TermStat:
    hazard: str
    term: str
    kind: str  # term | root | cue (a road-consequence cue) | unlisted
    post_ids: set[int] = field(default_factory=set)  # posts of the period it matched
    incident_ids: list[int] = field(default_factory=list)  # incidents it contributed to
    confirmed: int = 0
    false_alarms: int = 0

    @property
    def posts(self) -> int:
        return len(self.post_ids)

    @property
    def incidents(self) -> int:
        return len(self.incident_ids)

    @property
    def false_alarm_share(self) -> float | None:
        """Of the incidents it contributed to, the share officers marked False alarm."""
        return self.false_alarms / self.incidents if self.incidents else None

    def as_dict(self) -> dict[str, Any]:
        return {"hazard": self.hazard, "term": self.term, "kind": self.kind, "posts": self.posts,
                "incidents": self.incidents, "confirmed": self.confirmed, "false_alarms": self.false_alarms,
                "false_alarm_share": self.false_alarm_share, "incident_ids": self.incident_ids}


def term_report(session: Session, since: datetime, until: datetime, lists: HazardSet) -> list[TermStat]:
    """Per (hazard, term): posts created in (since, until] it matched, incidents active in the
    period whose evidence it matched, and their verdicts; the terms behind the most false alarms
    first."""
    names = _Names(lists)
    stats: dict[tuple[str, str, str], TermStat] = {}

    def stat(hazard: str, word: str, via_road: bool) -> TermStat:
        term, kind = names.of(hazard, word, via_road)
        return stats.setdefault((hazard, kind, term), TermStat(hazard, term, kind))

    for post_id, hazard, words, via_road in session.execute(
        select(HazardMatchRow.post_id, HazardMatchRow.hazard, HazardMatchRow.terms, HazardMatchRow.via_road)
        .join(Post, Post.id == HazardMatchRow.post_id)
        .where(Post.created_at > since, Post.created_at <= until)
    ):
        for word in words or []:
            stat(hazard, word, via_road).post_ids.add(post_id)
    _count_incidents(session, since, until, stat)
    return sorted(stats.values(), key=lambda s: (-s.false_alarms, -(s.false_alarm_share or 0), -s.incidents, -s.posts, s.hazard, s.term))


def _count_incidents(session: Session, since: datetime, until: datetime, stat: Any) -> None:
    incidents = session.scalars(
        select(Incident).where(Incident.opened_at <= until, Incident.last_activity_at > since)
    ).all()
    if not incidents:
        return
    evidence = verdicts.evidence_posts(session, [i.id for i in incidents])
    judged = {v.incident_id: v.verdict for v in verdicts.verdicts(session, since, until)}
    posts = {pid for ids in evidence.values() for pid in ids}
    rows: dict[tuple[int, str], tuple[list[str], bool]] = {}
    for among in in_slices(session, HazardMatchRow.post_id, sorted(posts)):  # a month's incidents: thousands of posts
        for post_id, hazard, words, via_road in session.execute(
            select(HazardMatchRow.post_id, HazardMatchRow.hazard, HazardMatchRow.terms, HazardMatchRow.via_road).where(among)
        ):
            rows[(post_id, hazard)] = (words or [], via_road)
    for incident in incidents:
        credited: dict[int, TermStat] = {}
        for post_id in evidence.get(incident.id, ()):
            words, via_road = rows.get((post_id, incident.hazard), ([], False))
            for word in words:
                s = stat(incident.hazard, word, via_road)
                credited[id(s)] = s
        for s in credited.values():
            s.incident_ids.append(incident.id)
            verdict = judged.get(incident.id)
            if verdict == verdicts.CONFIRMED:
                s.confirmed += 1
            elif verdict == verdicts.FALSE_ALARM:
                s.false_alarms += 1


class _Names:
    """The listed phrase a stored match word stands for: the term itself, the root it was
    found through, or a road cue; else the word, "unlisted"."""

    def __init__(self, lists: HazardSet) -> None:
        self.terms = {h: set(hz.terms) for h, hz in lists.hazards.items()}
        self.roots = {h: {squeeze_fold(r): r for r in hz.roots} for h, hz in lists.hazards.items()}
        self.cues = {h: {c for other in lists.hazards.values() for rule in other.road_consequence if rule.raises == h
                         for c in rule.cues} for h in lists.hazards}

    def of(self, hazard: str, word: str, via_road: bool) -> tuple[str, str]:
        if via_road and word in self.cues.get(hazard, ()):
            return word, "cue"
        if word in self.terms.get(hazard, ()):
            return word, "term"
        root = self.roots.get(hazard, {}).get(squeeze(stem(word)))
        if root is not None:
            return root, "root"
        return word, "unlisted"


def format_table(stats: list[TermStat], since: datetime, until: datetime) -> str:
    """The report for people: one row per term, the ones to look at first."""
    from tabulate import tabulate  # a well-kept table formatter; only this command needs it

    from siaga.vocabulary import LOCAL_TZ, LOCAL_TZ_LABEL

    period = f"{since.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M} .. {until.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M} {LOCAL_TZ_LABEL}"
    if not stats:
        return f"terms {period}: no stored post matched any hazard term"
    rows = [
        (s.hazard, s.term, s.kind, s.posts, s.incidents, s.confirmed, s.false_alarms,
         "-" if s.false_alarm_share is None else f"{s.false_alarm_share:.0%}")
        for s in stats
    ]
    headers = ("hazard", "term", "kind", "posts", "incidents", "confirmed", "false alarms", "false-alarm share")
    note = ("false-alarm share: of the incidents a term contributed to, the share officers marked False alarm "
            "(confirmed: resolved by an officer)")
    return f"terms {period}\n" + tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True) + f"\n{note}"
