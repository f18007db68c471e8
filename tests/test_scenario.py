"""The committed demo scenario is exactly what `siaga scenario` generates (the seeded generator
in `siaga_dev.scenario`), so `make demo`, the backtest tests and the Celery stack test replay
posts anyone can regenerate, and every one of them says it is synthetic."""
from __future__ import annotations

import json

from siaga import cli, settings


def test_siaga_scenario_regenerates_the_committed_file(capsys):
    assert cli.main(["scenario"]) == 0
    generated = capsys.readouterr().out
    committed = (settings.REPO_ROOT / "scenarios" / "demo.jsonl").read_text(encoding="utf-8")
    assert generated == committed
    posts = [json.loads(line) for line in generated.splitlines()]
    assert len(posts) > 50 and all(p["synthetic"] is True for p in posts)
    assert {p["scenario_event"] for p in posts} == {None, "flood-sangsit", "jam-ahmad-yani"}
