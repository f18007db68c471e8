"""The retention the purge applies is that of the sources.yaml in force: while the file is
refused (emptied or cut off by a save caught half-way, a typo), its last good version's. The
purge read `retention_days` from the file alone, and a file cut before that line meant the
default 30 days: posts an operator keeps a year were deleted for good at 02:30."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest

from siaga import ingest, pipeline, settings, store
from siaga.sources import IncomingPost
from support.fixed_source import Fixed
from siaga.retention import DEFAULT_RETENTION

NOW = datetime(2026, 12, 4, 18, 30, tzinfo=timezone.utc)  # 02:30 WITA


@pytest.fixture
def deployment(tmp_path, monkeypatch, db_url):
    config = tmp_path / "config"
    shutil.copytree(settings.config_dir(), config)
    (tmp_path / "scenarios").symlink_to(settings.config_dir().parent / "scenarios")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(config))
    monkeypatch.setenv("SIAGA_DB_URL", db_url)
    path = config / "sources.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("retention_days: 30\n", "retention_days: 365\n", 1), encoding="utf-8")
    return path


def old_post(url: str) -> None:
    """A post from 100 days back, stored as ingest stores one."""
    post = IncomingPost("demo", "old-1", NOW - timedelta(days=100), "banjir di Sangsit", "anon:x", None, None, None, {})
    ingest.ingest(Fixed("demo", [post]), NOW - timedelta(days=100), url)


BREAKAGES = {
    "cut in its comment header": lambda text: text[: text.index("retention_days")],
    "cut after its first line": lambda text: text.splitlines(keepends=True)[0],
    "a typo in a source": lambda text: text.replace("    kind: replay\n", "    kind: replya\n", 1),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_refused_sources_file_purges_with_its_last_good_retention(deployment, db_url, breakage):
    assert pipeline.source_names() == ["demo"]  # a run that read the good file
    old_post(db_url)
    deployment.write_text(BREAKAGES[breakage](deployment.read_text(encoding="utf-8")), encoding="utf-8")
    result = pipeline.purge(NOW)
    assert result["purged"] == 0
    assert datetime.fromisoformat(result["older_than"]) == NOW - timedelta(days=365)


def test_a_valid_file_its_own_retention_and_never_a_good_one_its_field(deployment, db_url):
    deployment.write_text(deployment.read_text(encoding="utf-8").replace("retention_days: 365\n", "retention_days: 60\n"),
                          encoding="utf-8")
    old_post(db_url)
    assert pipeline.purge(NOW)["purged"] == 1
    # never a valid file kept and a source with a typo: purging does not wait for the fix
    with store.session_scope(db_url) as session:
        session.query(store.ConfigState).delete()
    deployment.write_text("retention_days: 10\nsources:\n  - name: x\n    kind: rrs\n", encoding="utf-8")
    assert datetime.fromisoformat(pipeline.purge(NOW)["older_than"]) == NOW - timedelta(days=10)
    deployment.write_text("sources: []\n", encoding="utf-8")
    assert datetime.fromisoformat(pipeline.purge(NOW)["older_than"]) == NOW - DEFAULT_RETENTION
