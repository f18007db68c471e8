"""Does a routine jam stop alerting? Pure data, no database: one road series (Jalan Ahmad Yani,
its kecamatan and the regency) gets five jam posts from distinct accounts between 07:00 and 08:00
local every weekday for six weeks, over three ordinary jam posts a day at random hours, through
`simulate_detection.ours` (`baseline.fit` refitted daily with past alerts down-weighted,
`spikes.evaluate` every 5 minutes, the shipped traffic_jam rule). Prints the days the road alerted.

    python benchmarks/routine_jam.py [--weeks 6] [--seed 1]
"""
from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import simulate_detection as sd  # noqa: E402
from siaga import spikes  # noqa: E402
from siaga.hazard_config import default_hazard_dir  # noqa: E402
from siaga.hazard_lists import read_directory  # noqa: E402
from siaga.hazards import HazardSet  # noqa: E402

AREAS = (("road", "jl-ahmad-yani-singaraja"), ("district", "51.08.06"), ("regency", "51.08"))


def stream(weeks: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows, pid = [], 0
    for day in range(weeks * 7):
        d0 = sd.START + timedelta(days=day)  # sd.START is a Tuesday, 00:00 local
        weekday = (1 + day) % 7  # 0 = Monday
        times = [d0 + timedelta(minutes=float(rng.uniform(0, 1440))) for _ in range(3)]
        if weekday < 5:
            times += [d0 + timedelta(hours=7, minutes=float(rng.uniform(0, 60))) for _ in range(5)]
        for t in times:
            pid += 1
            author = f"a{rng.integers(500)}"
            rows += [(pid, t, author, f"h{pid}", "traffic_jam", level, code) for level, code in AREAS]
    events = pd.DataFrame(rows, columns=spikes.EVENT_COLUMNS)
    events["created_at"] = pd.to_datetime(events["created_at"], utc=True)
    return events.sort_values("created_at", kind="stable").reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weeks", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rules = spikes.rules_of(HazardSet.from_config(read_directory(default_hazard_dir())))
    fired = sd.ours(stream(args.weeks, args.seed), {"traffic_jam": rules["traffic_jam"]}, 0, args.weeks * 7)
    road = fired[fired["level"] == "road"]
    days = sorted({(pd.Timestamp(t) - pd.Timestamp(sd.START)).days for t in road["window_end"]})
    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    print("road alerted on:", ", ".join(f"day {d} ({names[(1 + d) % 7]}, week {(d + 1) // 7 + 1})" for d in days) or "no day")


if __name__ == "__main__":
    main()
