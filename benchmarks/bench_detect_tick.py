"""Time one detection tick over all of Indonesia's villages (~84k) x 12 hazards, vectorised
(`spikes.evaluate` + `BaselineModel.expected`, the scoring inside `spikes.find_spikes` that the
detect run calls) beside the naive loop of one scalar test per series. Synthetic counts; one
core (set OMP/MKL threads to 1 yourself if your numpy uses more).

    python benchmarks/bench_detect_tick.py [--villages 84000] [--hazards 12] [--naive-sample 20000]
"""
from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from scipy.stats import poisson

from siaga import baseline, spikes


def synthetic(villages: int, hazards: int, seed: int = 7) -> tuple[pd.DataFrame, baseline.BaselineModel, dict[str, spikes.Rule]]:
    rng = np.random.default_rng(seed)
    end = datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)
    hazard_ids = [f"h{i:02d}" for i in range(hazards)]
    areas = np.array([f"{i // 1000:02d}.{i % 1000:04d}" for i in range(villages)], dtype=object)
    hazard = np.repeat(np.array(hazard_ids, dtype=object), villages)
    area = np.tile(areas, hazards)
    n = len(area)
    rate = rng.gamma(0.5, 0.0005, n)  # per 5-minute bucket: most villages nearly silent
    observed = rng.poisson(rate * 12)
    hot = rng.choice(n, 200, replace=False)  # a couple of hundred real events somewhere
    observed[hot] += rng.integers(3, 15, 200)
    authors = np.minimum(observed, rng.integers(1, 6, n) + observed // 2)
    table = pd.DataFrame({
        "hazard": hazard, "level": "village", "area_code": area,
        "window_start": pd.Timestamp(end - timedelta(hours=1)), "window_end": pd.Timestamp(end),
        "observed": observed, "authors": authors,
    })
    index = pd.MultiIndex.from_arrays([hazard, np.full(n, "village", dtype=object), area], names=spikes.SERIES)
    model = baseline.BaselineModel(pd.Series(rate, index=index), pd.Series(dtype=float), {"village": 1e-4})
    rules = {h: spikes.Rule(timedelta(hours=1), 3, 2, 1e-3, dispersion=0.3 if i % 3 == 0 else 0.0) for i, h in enumerate(hazard_ids)}
    return table, model, rules


def vectorised_tick(table: pd.DataFrame, model: baseline.BaselineModel, rules: dict, n_areas: dict) -> pd.DataFrame:
    t = table.copy()
    t["expected"] = model.expected(t)
    return spikes.evaluate(t, rules, n_areas)


def naive_tick(table: pd.DataFrame, model: baseline.BaselineModel, rules: dict, m: int) -> int:
    """One Python iteration per series: look up the rate, test, then a per-hazard BH."""
    p_by_hazard: dict[str, list[float]] = {}
    rates = model.rates
    for row in table.itertuples(index=False):
        rule = rules[row.hazard]
        expected = rates[(row.hazard, row.level, row.area_code)] * 12
        p = 1.0
        if row.observed >= rule.min_posts and row.authors >= rule.min_authors:
            p = float(poisson.sf(row.observed - 1, expected))
        p_by_hazard.setdefault(row.hazard, []).append(p)
    fired = 0
    for hazard, ps in p_by_hazard.items():
        ordered = sorted(ps)
        k = max((i + 1 for i, p in enumerate(ordered) if p <= rules[hazard].alpha * (i + 1) / m), default=0)
        fired += k
    return fired


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--villages", type=int, default=84_000)
    ap.add_argument("--hazards", type=int, default=12)
    ap.add_argument("--naive-sample", type=int, default=20_000)
    args = ap.parse_args()
    table, model, rules = synthetic(args.villages, args.hazards)
    n_areas = {"village": args.villages}
    vectorised_tick(table.head(1000), model, rules, n_areas)  # warm caches
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        scored = vectorised_tick(table, model, rules, n_areas)
        runs.append(time.perf_counter() - t)
    sparse = table[table["observed"] > 0]
    t = time.perf_counter()
    vectorised_tick(sparse, model, rules, n_areas)
    sparse_time = time.perf_counter() - t
    sample = table.sample(min(args.naive_sample, len(table)), random_state=1)
    t = time.perf_counter()
    naive_tick(sample, model, rules, args.villages)
    naive_sample = time.perf_counter() - t
    naive_full = naive_sample * len(table) / len(sample)
    print(f"series: {len(table):,} ({args.villages:,} villages x {args.hazards} hazards), {int(scored['fired'].sum())} fired")
    print(f"{'method':<44}{'one tick':>12}")
    print(f"{'vectorised, every series in the table':<44}{min(runs):>10.2f} s   (best of 3; runs {', '.join(f'{r:.2f}' for r in runs)})")
    print(f"{'vectorised, series with posts only (' + format(len(sparse), ',') + ')':<44}{sparse_time:>10.2f} s   (what the detect run passes)")
    print(f"{'naive loop per series':<44}{naive_full:>10.1f} s   (measured {naive_sample:.2f} s on {len(sample):,}, extrapolated)")
    print(f"speed-up: {naive_full / min(runs):.0f}x; aim <= 2 s per tick: {'met' if min(runs) <= 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
