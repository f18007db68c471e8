"""Simulate weeks of Buleleng posts and score spike detection against a naive rule and plain
STA/LTA: share of injected events detected, delay from an event's third post to its alert, and
false alarms per hazard per simulated week.

Pure data, no database: the posts go through the same functions the detect run uses
(`spikes.window_counts`, `baseline.fit`, `spikes.evaluate`, with the rules built from
config/hazards by `spikes.rules_of`). The baseline is refitted once per simulated day from the
history so far (the detect run refits every tick; daily keeps the simulation quick), with past
alerts down-weighted as in production.

Background: 148 villages of unequal chattiness (a few town villages carry most posts), a daily
rhythm, rush hours for traffic words, everyday hazard-word noise ("banjir diskon" that slipped
past the exclusions, old news, jokes), one-account rants and repost chains. Events: every hazard,
random villages, 3 to 40 posts over 10 minutes to 3 hours, front-loaded or steady.

    python benchmarks/simulate_detection.py [--weeks 4] [--warmup-weeks 2] [--seed 1]
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from siaga import baseline, spikes
from siaga.hazard_config import default_hazard_dir
from siaga.hazards import HazardSet

VILLAGES, DISTRICTS = 148, 9
START = datetime(2026, 1, 5, 16, 0, tzinfo=timezone.utc)  # Tuesday 00:00 WITA
POLL = spikes.BUCKET
# everyday noise per hazard, posts per day regency-wide (traffic words are everyday words)
NOISE_PER_DAY = {"traffic_jam": 40, "traffic_accident": 8, "flood": 10, "fire": 5, "road_damage": 6, "strong_wind": 4,
                 "fallen_tree": 3, "earthquake": 3, "landslide": 2, "road_closure": 4, "high_waves": 3, "tidal_flood": 2,
                 "drought": 2, "tsunami": 1, "volcanic_eruption": 1}
TRAFFIC = {"traffic_jam", "traffic_accident", "road_closure"}


@dataclass(frozen=True)
class Injected:
    hazard: str
    village: int
    start: datetime
    times: tuple[datetime, ...]
    authors: tuple[str, ...]

    @property
    def qualifies(self) -> bool:
        """At least 5 posts from 3 authors within 30 minutes (the aim's population)."""
        t = np.array([x.timestamp() for x in self.times])
        for i in range(len(t)):
            inside = (t >= t[i]) & (t <= t[i] + 1800)
            if inside.sum() >= 5 and len(set(np.array(self.authors)[inside])) >= 3:
                return True
        return False

    @property
    def third(self) -> datetime:
        return sorted(self.times)[2]


def hour_factor(hours: np.ndarray, traffic: bool) -> np.ndarray:
    """Posting rhythm by local hour: quiet nights, busy evenings; rush hours for traffic."""
    base = np.array([.15, .1, .08, .08, .12, .3, .7, 1.1, 1.3, 1.1, 1, 1, 1.1, 1, 1, 1.1, 1.3, 1.5, 1.6, 1.6, 1.5, 1.2, .8, .4])
    if traffic:
        base = base * np.where(np.isin(np.arange(24), [7, 8, 16, 17, 18]), 2.5, 1.0)
    return base[hours] / base.mean()


class World:
    def __init__(self, rng: np.random.Generator, days: int, hazards: list[str]):
        self.rng, self.days, self.hazards = rng, days, hazards
        self.weight = rng.lognormal(0, 1.2, VILLAGES)
        self.weight /= self.weight.sum()
        self.rows: list[tuple] = []
        self.next_id = 0

    def post(self, when: datetime, author: str, text_hash: str, hazard: str, village: int | None) -> None:
        pid = self.next_id
        self.next_id += 1
        areas = [("regency", "51.08")]
        if village is not None:
            areas += [("village", f"v{village:03d}"), ("district", f"d{village % DISTRICTS}")]
        for level, code in areas:
            self.rows.append((pid, when, author, text_hash, hazard, level, code))

    def background(self) -> None:
        minutes = self.days * 24 * 60
        for hazard in self.hazards:
            per_minute = NOISE_PER_DAY.get(hazard, 2) / 1440
            local_hours = ((np.arange(minutes) // 60) + 8) % 24
            lam = per_minute * hour_factor(local_hours, hazard in TRAFFIC)
            counts = self.rng.poisson(lam)
            for minute in np.repeat(np.arange(minutes), counts):
                when = START + timedelta(minutes=int(minute), seconds=int(self.rng.integers(60)))
                village = int(self.rng.choice(VILLAGES, p=self.weight)) if self.rng.random() < 0.8 else None
                self.post(when, f"u{self.rng.integers(200_000)}", f"t{self.next_id}", hazard, village)
        # bait: one account ranting, and repost chains of one text
        for _ in range(self.days * 2):
            hazard, village = self.rng.choice(self.hazards), int(self.rng.integers(VILLAGES))
            when = START + timedelta(minutes=int(self.rng.integers(minutes - 60)))
            if self.rng.random() < 0.5:
                for i in range(int(self.rng.integers(4, 12))):
                    self.post(when + timedelta(minutes=3 * i), f"rant{village}", f"r{self.next_id}", hazard, village)
            else:
                text = f"chain{self.next_id}"
                for i in range(int(self.rng.integers(5, 20))):
                    self.post(when + timedelta(minutes=2 * i), f"u{self.rng.integers(200_000)}", text, hazard, village)

    def inject(self, first_day: int, count: int) -> list[Injected]:
        events = []
        for _ in range(count):
            hazard = str(self.rng.choice(self.hazards))
            village = int(self.rng.integers(VILLAGES))
            start = START + timedelta(days=int(self.rng.integers(first_day, self.days)), minutes=int(self.rng.integers(0, 1440 - 200)))
            posts = int(self.rng.choice([3, 4, 5, 6, 8, 12, 20, 40]))
            duration = float(self.rng.choice([10, 20, 30, 60, 120, 180]))
            if self.rng.random() < 0.5:  # sudden: most posts early
                offsets = np.sort(self.rng.exponential(duration / 4, posts).clip(0, duration))
            else:
                offsets = np.sort(self.rng.uniform(0, duration, posts))
            pool = max(2, int(posts * self.rng.uniform(0.5, 1.0)))
            authors = [f"e{len(events)}_{i % pool}" for i in range(posts)]
            times = tuple(start + timedelta(minutes=float(o)) for o in offsets)
            for i, t in enumerate(times):
                self.post(t, authors[i], f"e{self.next_id}", hazard, village)
            events.append(Injected(hazard, village, start, times, tuple(authors)))
        return events

    def frame(self) -> pd.DataFrame:
        out = pd.DataFrame(self.rows, columns=spikes.EVENT_COLUMNS)
        out["created_at"] = pd.to_datetime(out["created_at"], utc=True)
        return out.sort_values("created_at", kind="stable").reset_index(drop=True)


def ours(events: pd.DataFrame, rules: dict, first_day: int, days: int) -> pd.DataFrame:
    """The pipeline's method, tick by tick, baseline refitted daily on the history so far."""
    fired_all = []
    history = spikes.bucket_counts(events)
    for day in range(first_day, days):
        day_start = START + timedelta(days=day)
        ends = [day_start + POLL * (i + 1) for i in range(int(timedelta(days=1) / POLL))]
        alerted = pd.concat(fired_all)[spikes.SERIES + ["window_start", "window_end"]] if fired_all else None
        model = baseline.fit(history[history["bucket_start"] < pd.Timestamp(day_start)], alerted, day_start, START)
        tuned = {h: spikes.Rule(r.window, r.min_posts, r.min_authors, r.alpha, model.dispersion.get(h, 0.0)) for h, r in rules.items()}
        longest = max(r.window for r in rules.values())
        todays = events[(events["created_at"] > pd.Timestamp(day_start - longest)) & (events["created_at"] <= pd.Timestamp(ends[-1]))]
        table = spikes.window_counts(todays, tuned, ends)
        if table.empty:
            continue
        table["expected"] = model.expected(table)
        scored = spikes.evaluate(table, tuned, {"village": VILLAGES, "district": DISTRICTS, "regency": 1})
        fired_all.append(scored[scored["fired"]])
    return pd.concat(fired_all) if fired_all else pd.DataFrame(columns=spikes.SERIES + ["window_end"])


def raw_window_counts(events: pd.DataFrame, rules: dict, ends: list[datetime]) -> pd.DataFrame:
    rows = spikes.window_rows(events, rules, ends)
    return rows.groupby(spikes.SERIES + ["window_end"]).agg(observed=("post_id", "size"), window_minutes=("window_minutes", "first")).reset_index()


def naive(events: pd.DataFrame, first_day: int, days: int, hazards: list[str], n: int = 3) -> pd.DataFrame:
    """N posts (any authors, reposts included) in the last hour of a village: alarm."""
    hour = {h: spikes.Rule(timedelta(hours=1), n, 1, 1.0) for h in hazards}
    ends = [START + timedelta(days=first_day) + POLL * (i + 1) for i in range(int(timedelta(days=days - first_day) / POLL))]
    table = raw_window_counts(events[events["level"] == "village"], hour, ends)
    return table[table["observed"] >= n]


def sta_lta(events: pd.DataFrame, rules: dict, first_day: int, days: int, ratio: float = 10.0) -> pd.DataFrame:
    """Plain STA/LTA: the window's rate over the series' trailing 7-day rate (floored at one post
    a week), alarm above `ratio`; raw counts, no author or repost rules, no correction."""
    ends = [START + timedelta(days=first_day) + POLL * (i + 1) for i in range(int(timedelta(days=days - first_day) / POLL))]
    village = events[events["level"] == "village"]
    table = raw_window_counts(village, rules, ends)
    buckets = spikes.bucket_counts(village.assign(author=village["post_id"].astype(str), text_hash=village["post_id"].astype(str)))
    daily = buckets.assign(day=buckets["bucket_start"].dt.floor("D")).groupby(spikes.SERIES + ["day"])["posts"].sum()
    lta = {}
    for key, group in daily.groupby(level=[0, 1, 2]):
        lta[key] = group.droplevel([0, 1, 2])
    sta = table["observed"] / table["window_minutes"]
    long_rates = []
    for row in table.itertuples(index=False):
        series = lta.get((row.hazard, row.level, row.area_code))
        end = pd.Timestamp(row.window_end)
        total = series[(series.index >= end - pd.Timedelta(days=7)) & (series.index < end.floor("D"))].sum() if series is not None else 0
        long_rates.append(max(total, 1) / (7 * 1440))
    table["ratio"] = sta.to_numpy() / np.array(long_rates)
    return table[(table["ratio"] >= ratio) & (table["observed"] >= 2)]


def score(name: str, fired: pd.DataFrame, injected: list[Injected], rules: dict, weeks: float) -> dict:
    """An alarm belongs to an event when its window holds the event's posts (same hazard, the
    event's village, kecamatan or the regency); every other alarm is false, and one series'
    alarms less than two hours apart are one false alarm (they would be one incident)."""
    hazards = sorted(rules)
    fired = fired.assign(window_end=pd.to_datetime(fired["window_end"], utc=True))
    matched = np.zeros(len(fired), dtype=bool)
    detected, within_poll, delays = 0, 0, []
    qualifying = [e for e in injected if e.qualifies]
    for e in injected:
        codes = {("village", f"v{e.village:03d}"), ("district", f"d{e.village % DISTRICTS}"), ("regency", "51.08")}
        end = max(e.times) + rules[e.hazard].window
        mine = (fired["hazard"] == e.hazard).to_numpy() & np.array([(lv, c) in codes for lv, c in zip(fired["level"], fired["area_code"])]) \
            & (fired["window_end"] >= pd.Timestamp(e.start)).to_numpy() & (fired["window_end"] <= pd.Timestamp(end)).to_numpy()
        matched |= mine
        if e in qualifying and mine.any():
            detected += 1
            first = fired["window_end"][mine].min().to_pydatetime()
            delay = (first - e.third).total_seconds() / 60
            delays.append(delay)
            first_poll = spikes.bucket_floor(e.third) + POLL
            within_poll += first <= first_poll + POLL
    # false alarms: unmatched firings, a series' firings within 2 h of each other count once
    false = fired[~matched].sort_values(spikes.SERIES + ["window_end"])
    gap = false.groupby(spikes.SERIES)["window_end"].diff()
    clusters = false[gap.isna() | (gap > pd.Timedelta(hours=2))]
    per_hazard = clusters.groupby("hazard").size().reindex(hazards, fill_value=0) / weeks
    return {
        "method": name,
        "qualifying": len(qualifying),
        "detected": detected / max(len(qualifying), 1),
        "within_one_poll": within_poll / max(len(qualifying), 1),
        "median_delay": float(np.median(delays)) if delays else float("nan"),
        "fa_mean": float(per_hazard.mean()),
        "fa_max": float(per_hazard.max()),
        "fa_worst": per_hazard.idxmax(),
        "per_hazard": per_hazard,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weeks", type=int, default=4, help="weeks scored")
    ap.add_argument("--warmup-weeks", type=int, default=2, help="weeks of history before scoring")
    ap.add_argument("--events", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    hazard_set = HazardSet.load(default_hazard_dir())
    rules = spikes.rules_of(hazard_set)
    hazards = sorted(rules)
    first_day, days = 7 * args.warmup_weeks, 7 * (args.warmup_weeks + args.weeks)
    world = World(np.random.default_rng(args.seed), days, hazards)
    world.background()
    injected = world.inject(first_day, args.events)
    events = world.frame()
    print(f"simulated {days} days, {VILLAGES} villages, {len(hazards)} hazards: {events['post_id'].nunique():,} posts, "
          f"{len(injected)} injected events ({sum(e.qualifies for e in injected)} with >= 5 posts from 3 authors within 30 min); "
          f"scored on the last {args.weeks} weeks")
    results = [
        score("siaga (dedup, baseline, NB/Poisson + BH)", ours(events, rules, first_day, days), injected, rules, args.weeks),
        score("naive: 3 posts/hour in a village", naive(events, first_day, days, hazards), injected, rules, args.weeks),
        score("plain STA/LTA (ratio >= 10)", sta_lta(events, rules, first_day, days), injected, rules, args.weeks),
    ]
    print(f"\n{'method':<44}{'detected':>9}{'<=1 poll':>9}{'median delay':>14}{'false alarms/hazard/week':>26}")
    for r in results:
        print(f"{r['method']:<44}{r['detected']:>9.1%}{r['within_one_poll']:>9.1%}{r['median_delay']:>11.1f} min"
              f"{r['fa_mean']:>12.2f} mean, {r['fa_max']:.2f} max ({r['fa_worst']})")
    print("\nfalse alarms per week by hazard:")
    print(pd.DataFrame({r["method"].split(" (")[0].split(":")[0]: r["per_hazard"] for r in results}).round(2).to_string())


if __name__ == "__main__":
    main()
