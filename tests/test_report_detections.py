"""The incident report: a coarser window stored with the finer incident that tells its story
(issue 18's regional joining) adds its posts to the incident's one count, but is not a detection
of its own, so the chart, the alert table and the exports' `alerts` show only real detections."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from siaga import store
from siaga.regional import JOINED, is_joined
from siaga.timelines.places import load_places
from siaga.timelines.report import read_report

T0 = datetime(2026, 1, 15, 1, 0, tzinfo=timezone.utc)


def _post(session, n: int) -> int:
    post = store.Post(source="s", source_id=str(n), created_at=T0 + timedelta(minutes=n), author=f"a{n}",
                      text=f"banjir {n}", text_hash=f"h{n}", raw={"id": n})
    session.add(post)
    session.flush()
    return post.id


def _alert(session, incident, level, code, post_ids, joined=False):
    explanation = {"post_ids": post_ids, **({JOINED: "a coarser window"} if joined else {})}
    session.add(store.Alert(incident_id=incident.id, hazard="flood", level=level, area_code=code,
                            window_start=T0, window_end=T0 + timedelta(minutes=30 + len(post_ids)),
                            observed=len(post_ids), expected=0.1, authors=len(post_ids), score=9.0, explanation=explanation))


def test_joined_windows_count_their_posts_but_are_not_detections(db_url):
    with store.session_scope(db_url) as session:
        incident = store.Incident(hazard="flood", level="village", area_code="51.08.07.2012", area_name="Sangsit",
                                  village="Sangsit", district="Sawan", state="open", severity="medium", posts=4,
                                  authors=4, notified_posts=4, opened_at=T0, last_activity_at=T0)
        session.add(incident)
        session.flush()
        village_posts = [_post(session, n) for n in range(3)]
        extra = _post(session, 3)
        _alert(session, incident, "village", "51.08.07.2012", village_posts)
        _alert(session, incident, "district", "51.08.07", village_posts + [extra], joined=True)
        _alert(session, incident, "regency", "51.08", village_posts + [extra], joined=True)
        session.flush()
        report = read_report(session, incident.id, load_places())
        assert [a.level for a in report.alerts] == ["village"]
        assert not any(is_joined(a) for a in report.alerts)
        assert report.post_count == 4 and len(report.posts) == 4
