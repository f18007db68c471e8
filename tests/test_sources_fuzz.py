"""Fault injection at the sources: property-based batches of hostile records between good ones,
for every connector (replay; inbox .jsonl and .json; RSS and Atom; Mastodon, Bluesky and X
through their real clients against the fake APIs on 127.0.0.1), through ingest into SQLite and
PostgreSQL. Whatever the batch: no poll crashes, every good record is stored, every bad one is
quarantined with its place and a reason, none is stored, and polling again adds nothing.
(tests/support/hostile.py makes the records; benchmarks/fuzz_sources.py runs the same at volume.)"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from support.hostile import KINDS, X_TOKEN_ENV, Harness, strategy

EXAMPLES = {"replay": 25, "inbox-jsonl": 25, "inbox-json": 15, "rss": 12, "atom": 8, "mastodon": 12, "bluesky": 12, "x": 12}


@pytest.fixture
def harness(db_url, tmp_path, api, monkeypatch):
    monkeypatch.setenv(*next(iter(X_TOKEN_ENV.items())))
    return Harness(db_url, tmp_path, api)


@pytest.mark.parametrize("kind", KINDS)
def test_every_bad_record_costs_only_itself(harness, kind):
    @settings(max_examples=EXAMPLES[kind], deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batch=strategy(kind))
    def check(batch):
        outcome = harness.run(kind, batch)
        assert outcome.ok, outcome.problems()
        assert outcome.stored == outcome.good and outcome.quarantined == outcome.bad

    check()
