"""An ingest run that starts late (queued behind a slow run: `max_active_runs=1`, a source
waiting out a Retry-After) stands for its interval's end, minutes before it actually polls.
Posts published in between were "in the future" of that time, quarantined as forged and, with
the cursor moved past them, never stored: a live source's posts are checked against the moment
it is polled, not against the run's interval."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from siaga import pipeline, store


@pytest.fixture
def inbox_deployment(tmp_path, monkeypatch, sqlite_url):
    """A deployment whose only source is an inbox folder; returns the folder."""
    config = tmp_path / "config"
    config.mkdir()
    folder = tmp_path / "inbox"
    folder.mkdir()
    (config / "sources.yaml").write_text(
        f"sources:\n  - name: inbox\n    kind: inbox\n    path: {folder}\n", encoding="utf-8")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(config))
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    monkeypatch.setenv("SIAGA_AUTHOR_KEY", "k" * 32)
    return folder


@pytest.mark.parametrize("late", [timedelta(minutes=11), timedelta(minutes=25), timedelta(hours=3)])
def test_a_post_published_while_the_run_waited_is_stored(inbox_deployment, sqlite_url, late):
    polled = store.utcnow()
    published = polled - timedelta(minutes=1)
    (inbox_deployment / "wa.jsonl").write_text(json.dumps(
        {"id": "wa-1", "created_at": published.isoformat(), "text": "Banjir di Desa Sangsit, air setinggi lutut"}) + "\n",
        encoding="utf-8")
    report = pipeline.ingest("inbox", polled - late)  # the run's interval ended `late` before it polled
    assert (report["new_posts"], report["quarantined"]) == (1, 0)


def test_a_post_dated_after_the_poll_is_still_refused(inbox_deployment):
    later = store.utcnow() + timedelta(days=365)
    (inbox_deployment / "wa.jsonl").write_text(json.dumps(
        {"id": "wa-2", "created_at": later.isoformat(), "text": "Banjir di Desa Sangsit"}) + "\n", encoding="utf-8")
    report = pipeline.ingest("inbox", store.utcnow() - timedelta(minutes=30))
    assert (report["new_posts"], report["quarantined"]) == (0, 1)
