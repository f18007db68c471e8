"""The ingest DAG end to end with dag.test(): two fake sources (an RSS feed over HTTP on
127.0.0.1 and a JSON inbox) that share one article; each post is stored once, both posts about
the shared article are kept, and a second run stores nothing new."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from support.fakeapis import T0, FakeApis
from siaga import settings, store

pytestmark = pytest.mark.airflow

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Berita</title>
<item><title>Banjir di Sangsit</title><link>https://berita.example/banjir-sangsit?utm_source=rss</link><guid>b1</guid>
<pubDate>Thu, 15 Jan 2026 08:05:00 +0800</pubDate></item>
<item><title>Jalan Singaraja-Gilimanuk macet</title><link>https://berita.example/macet</link><guid>b2</guid>
<pubDate>Thu, 15 Jan 2026 08:10:00 +0800</pubDate></item></channel></rss>"""


@pytest.fixture
def two_sources(tmp_path, sqlite_url, airflow_db, monkeypatch):
    with FakeApis() as api:
        api.data.feeds["berita.xml"] = ('"e1"', RSS)
        config = tmp_path / "config"
        config.mkdir()
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "wa.jsonl").write_text("\n".join(json.dumps(r) for r in [
            {"id": "wa1", "created_at": "2026-01-15T08:07:00+08:00", "text": "Banjir Sangsit! https://berita.example/banjir-sangsit",
             "url": "https://www.berita.example/banjir-sangsit/"},
            {"id": "wa2", "created_at": "2026-01-15T08:09:00+08:00", "text": "Air masuk rumah di Kubutambahan", "author": "Bu Komang"},
        ]))
        (config / "sources.yaml").write_text(
            f"sources:\n"
            f"  - name: berita\n    kind: rss\n    official: true\n    feeds: ['{api.url}/feeds/berita.xml']\n"
            f"  - name: wa\n    kind: inbox\n    path: {inbox}\n"
        )
        monkeypatch.setenv("SIAGA_CONFIG_DIR", str(config))
        monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
        monkeypatch.setenv("SIAGA_AUTHOR_KEY", "dag-test-key")
        yield api, sqlite_url


def test_ingest_dag_stores_posts_once(two_sources):
    from airflow.dag_processing.dagbag import DagBag

    api, url = two_sources
    bag = DagBag(dag_folder=str(settings.REPO_ROOT / "dags"))
    assert not bag.import_errors
    dag = bag.get_dag("siaga_ingest")
    first = dag.test(logical_date=T0 + timedelta(hours=1))
    assert str(first.state) == "success"
    with store.session_scope(url) as session:
        rows = {(r.source, r.source_id): r for r in session.scalars(sa.select(store.Post))}
    # wa1 shares b1's article (two spellings of one URL) in a post of its own: both are kept,
    # related by the canonical URL; neither is a copy of the other (different text)
    assert len(rows) == 4 and {s for s, _ in rows} == {"berita", "wa"}
    shared = [k for k, r in rows.items() if r.canonical_url == "https://berita.example/banjir-sangsit"]
    assert sorted(shared) == [("berita", "b1"), ("wa", "wa1")] and all(rows[k].duplicate_of is None for k in shared)
    assert rows[("wa", "wa2")].author.startswith("anon:") and rows[("wa", "wa2")].author_pseudonymised
    second = dag.test(logical_date=T0 + timedelta(hours=2))  # nothing new: the tasks skip
    assert str(second.state) == "success"
    with store.session_scope(url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Post)) == 4
    assert api.hits("/feeds/berita.xml")[-1].headers.get("If-None-Match") == '"e1"'  # cursor kept the ETag
