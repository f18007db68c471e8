"""Geotagging quality: precision/recall per place kind on tests/data/geotag_cases.jsonl, and, on
the INA-Geoparser news sentences (places almost all outside Buleleng), how often a sentence is
wrongly placed in Buleleng and how many gold place mentions are recognised at all.

Run: python benchmarks/geotag_quality.py
The INA-Geoparser data is read from ../shared/devdata at run time (evaluation only, never copied).
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from siaga.geotag import Geotagger, GeotagResult

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "data" / "geotag_cases.jsonl"
DEVDATA = Path(os.environ.get("SIAGA_DEVDATA_DIR", REPO.parent / "shared" / "devdata"))
INAGEO = DEVDATA / "news_events_geoparser_inageo" / "sentences.jsonl"
KINDS = ("village", "district", "road", "landmark", "regency", "in_region")


def load_cases(path: Path = CASES) -> list[dict]:
    cases = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    cases.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: line {lineno}: {exc}") from exc
    return cases


def predicted(result: GeotagResult) -> dict[str, set]:
    """Confident in-region places per kind (low-confidence ones are flagged, not asserted)."""
    out: dict[str, set] = {k: set() for k in KINDS}
    for p in result.places:
        if not p.in_region or p.low_confidence:
            continue
        if p.kind == "village":
            out["village"].add((p.village, p.district))
        elif p.kind == "district":
            out["district"].add(p.district)
        elif p.kind == "road":
            out["road"].add(p.code)
        elif p.kind == "landmark":
            out["landmark"].add(p.name)
        elif p.kind == "regency":
            out["regency"].add(p.name)
    if result.in_region:
        out["in_region"].add(True)
    return out


def expected(case: dict) -> dict[str, set]:
    return {
        "village": {tuple(v) for v in case.get("villages", [])},
        "district": set(case.get("districts", [])),
        "road": set(case.get("roads", [])),
        "landmark": set(case.get("landmarks", [])),
        "regency": {"Buleleng"} if case.get("regency") else set(),
        "in_region": {True} if case.get("in_region") else set(),
    }


def score(tagger: Geotagger, cases: list[dict]) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Micro precision/recall/F1 per kind, plus a line per disagreement."""
    tp, fp, fn = defaultdict(int), defaultdict(int), defaultdict(int)
    errors = []
    for case in cases:
        got = predicted(tagger.tag(case["text"], lat=case.get("lat"), lon=case.get("lon")))
        want = expected(case)
        for k in KINDS:
            tp[k] += len(got[k] & want[k])
            fp[k] += len(got[k] - want[k])
            fn[k] += len(want[k] - got[k])
            if got[k] != want[k]:
                errors.append(f"{case['id']} {k}: got {sorted(got[k], key=str)} want {sorted(want[k], key=str)} | {case['text']}")
    table = {}
    for k in KINDS:
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else 1.0
        r = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else 1.0
        table[k] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": tp[k] + fn[k]}
    return table, errors


def inageo_report(tagger: Geotagger) -> dict[str, float] | None:
    """Out-of-region safety and place-mention detection on INA-Geoparser sentences."""
    if not INAGEO.exists():
        return None
    n = wrongly_in = gold = found = 0
    with open(INAGEO, encoding="utf-8") as handle:
        for line in handle:
            s = json.loads(line)
            result = tagger.tag(s["text"])
            n += 1
            wrongly_in += result.in_region  # no sentence of this corpus is about Buleleng
            spans = [p.span for p in result.places if p.span]
            for loc in s.get("locations", []):
                gold += 1
                found += any(a < loc["end"] and loc["start"] < b for a, b in spans)
    return {"sentences": n, "in_region_true": wrongly_in, "in_region_false_rate": 1 - wrongly_in / n if n else 1.0,
            "gold_mentions": gold, "mentions_detected": found, "mention_recall": found / gold if gold else 0.0}


def main() -> int:
    for national in (False, True):
        tagger = Geotagger.from_paths(REPO / "geodata", REPO / "config" / "aliases.yaml", national=national)
        label = "all-Indonesia names" if national else "Buleleng gazetteer"
        table, errors = score(tagger, load_cases())
        print(f"== {label}: {CASES.relative_to(REPO)} ({len(load_cases())} posts)")
        print(f"{'kind':<11}{'precision':>10}{'recall':>8}{'F1':>7}{'support':>9}")
        for k, row in table.items():
            print(f"{k:<11}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>7.3f}{row['support']:>9}")
        for e in errors:
            print("  miss:", e)
        ina = inageo_report(tagger)
        if ina:
            print(f"INA-Geoparser: {ina['sentences']} sentences, {ina['in_region_true']} placed in Buleleng "
                  f"(in_region false rate {ina['in_region_false_rate']:.3f}); gold place mentions "
                  f"{ina['mentions_detected']}/{ina['gold_mentions']} detected ({ina['mention_recall']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
