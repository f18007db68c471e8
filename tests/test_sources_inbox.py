"""JSON inbox: exported posts validated against the schema, each refusal naming file, line and
field; a file is read again only when it changes."""
from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from support.fakeapis import T0
from siaga.sources import load_sources
from siaga.sources.inbox import InboxSource

pytestmark = pytest.mark.usefixtures("author_key")
NOW = T0 + timedelta(hours=3)


def test_jsonl_and_json_files_validated(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "wa-sukasada.jsonl").write_text("\n".join([
        json.dumps({"id": "wa1", "created_at": "2026-01-15T08:10:00+08:00", "text": "Banjir di Desa Sambangan", "author": "Pak Wayan"}),
        "{rusak",
        json.dumps({"id": "wa2", "created_at": "2026-01-15T08:12:00+08:00", "text": "", "author": "Bu Kadek"}),
        json.dumps({"id": "wa3", "created_at": "2026-01-15T08:15:00+08:00", "text": "Pohon tumbang", "lat": 95}),
    ]))
    (inbox / "grup.json").write_text(json.dumps([{"id": 7, "created_at": "2026-01-15T00:20:00Z", "text": "Macet di Seririt", "channel": "FB grup"}]))
    (inbox / "catatan.txt").write_text("ignored")
    result = InboxSource("inbox", inbox).poll(None, NOW)
    assert sorted(p.source_id for p in result.posts) == ["7", "wa1"]
    wa1 = next(p for p in result.posts if p.source_id == "wa1")
    assert wa1.author.startswith("anon:") and wa1.created_at == T0 + timedelta(minutes=10)
    bad = {b.location: b.reason for b in result.bad}
    assert set(bad) == {"wa-sukasada.jsonl:2", "wa-sukasada.jsonl:3", "wa-sukasada.jsonl:4"}
    assert "not valid JSON" in bad["wa-sukasada.jsonl:2"]
    assert "field 'text'" in bad["wa-sukasada.jsonl:3"] and "field 'lat'" in bad["wa-sukasada.jsonl:4"]
    again = InboxSource("inbox", inbox).poll(result.cursor, NOW)
    assert again.posts == [] and again.bad == []
    path = inbox / "grup.json"
    path.write_text(json.dumps([{"id": 7, "created_at": "2026-01-15T00:20:00Z", "text": "Macet di Seririt"},
                                {"id": 8, "created_at": "2026-01-15T00:25:00Z", "text": "Macet di Banjar"}]))
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    changed = InboxSource("inbox", inbox).poll(again.cursor, NOW)
    assert sorted(p.source_id for p in changed.posts) == ["7", "8"]  # 7 again; the store keeps it once


def test_missing_folder_fails_and_config_loads(tmp_path):
    result = InboxSource("inbox", tmp_path / "nope").poll(None, NOW)
    assert result.failed and "does not exist" in result.bad[0].reason
    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "sources.yaml"
    cfg.write_text("sources:\n  - name: wa\n    kind: inbox\n    path: inbox\n")
    (src,) = load_sources(cfg)
    assert src.folder == tmp_path / "inbox"
