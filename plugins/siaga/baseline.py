"""What is normal for a series (hazard x area): the expected count of a window, learnt from the
`area_counts` history. `load_baseline` reads that history and past alerts from the store;
`fit` is the model, plain pandas, which the simulation and benchmarks drive without a database.

Three things keep it honest:
- Most villages have no history for most hazards. Their rate is a gamma-Poisson (empirical
  Bayes) posterior: the hazard's regency-wide rate times the area's share (uniform over the
  level's areas: we hold no population figures) acts as a prior worth `prior_days` of data, so a
  village with four quiet weeks ends up below the regency average, a chatty town centre above it,
  and a fresh install still has a finite, small expectation.
- Traffic has rush hours and ceremony days: for `seasonal` hazards an hour-of-week profile,
  learnt at regency level (where there is enough data) and shrunk towards flat, scales the rate.
- An event must not become the new normal: buckets inside a past alert's window (except alerts
  of incidents marked false alarm) count with weight `alert_weight`, both posts and exposure.

Overdispersion left after that (posting rhythms the flat model ignores, clumped chatter) is
measured per hazard by a method-of-moments estimate on regency hourly counts; `spikes` then uses
a negative binomial tail instead of Poisson, which keeps chatty series from alarming.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, cast, extract, func, select
from sqlalchemy.orm import Session

from siaga.spikes import BUCKET, DEFAULT_AREAS, SERIES
from siaga.store import Alert, AreaCount, Incident, stream_rows
from siaga.vocabulary import LOCAL_TZ

BUCKETS_PER_DAY = int(timedelta(days=1) / BUCKET)
BUCKETS_PER_WEEK = 7 * BUCKETS_PER_DAY


@dataclass(frozen=True)
class BaselineSettings:
    history: timedelta = timedelta(days=28)
    prior_days: float = 7.0  # weight of the regency-derived prior, in days of data
    alert_weight: float = 0.1
    seasonal: frozenset[str] = frozenset({"traffic_jam", "traffic_accident", "road_closure"})
    profile_strength: float = 48.0  # buckets of pseudo-data per hour-of-week towards flat
    default_per_village_day: float = 0.02  # floor of the prior when there is no history at all
    max_dispersion: float = 1.0
    min_dispersion_days: float = 7.0  # less history than this: assume Poisson


@dataclass
class BaselineModel:
    """Fitted rates per 5-minute bucket; `expected` turns them into window expectations."""

    rates: pd.Series  # index SERIES -> rate per bucket (series seen in history)
    unseen: pd.Series  # index (hazard, level) -> rate per bucket of a series never seen
    floor: dict[str, float]  # level -> rate per bucket when the hazard has no history at all
    profiles: dict[str, np.ndarray] = field(default_factory=dict)  # hazard -> BUCKETS_PER_WEEK factors
    dispersion: dict[str, float] = field(default_factory=dict)
    history_days: float = 0.0

    def rate_of(self, table: pd.DataFrame) -> np.ndarray:
        """Rate per bucket for each row's series (hazard, level, area_code)."""
        keys = pd.MultiIndex.from_frame(table[SERIES].astype(str))
        rate = np.array(self.rates.reindex(keys).to_numpy(float), dtype=float)
        missing = np.isnan(rate)
        if missing.any():
            hl = pd.MultiIndex.from_frame(table.loc[missing, ["hazard", "level"]].astype(str))
            fallback = self.unseen.reindex(hl).to_numpy(float)
            floor = table.loc[missing, "level"].map(self.floor).fillna(self.floor["village"]).to_numpy(float)
            rate[missing] = np.where(np.isnan(fallback), floor, fallback)
        return rate

    def expected(self, table: pd.DataFrame) -> np.ndarray:
        """Expected count of each row's window (window_start, window_end)."""
        rate = self.rate_of(table)
        start = pd.to_datetime(table["window_start"], utc=True)
        end = pd.to_datetime(table["window_end"], utc=True)
        buckets = ((end - start) / BUCKET).to_numpy(float)
        factor = buckets.copy()
        for hazard, profile in self.profiles.items():
            rows = (table["hazard"] == hazard).to_numpy()
            if rows.any():
                factor[rows] = profile_sum(profile, start[rows], end[rows])
        return rate * factor


def week_bucket(when: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Index of the 5-minute bucket within the local week (Monday 00:00 WITA = 0)."""
    local = pd.DatetimeIndex(pd.to_datetime(when, utc=True)).tz_convert(LOCAL_TZ)
    return ((local.day_of_week * 24 + local.hour) * 60 + local.minute).to_numpy() // int(BUCKET / timedelta(minutes=1))


def profile_sum(profile: np.ndarray, start: pd.Series, end: pd.Series) -> np.ndarray:
    """Sum of the weekly profile over each [start, end) (wrapping around the week)."""
    cum = np.concatenate([[0.0], np.cumsum(np.concatenate([profile, profile]))])
    first = week_bucket(start)
    n = ((pd.to_datetime(end, utc=True) - pd.to_datetime(start, utc=True)) / BUCKET).to_numpy().astype(int)
    whole_weeks, rest = np.divmod(n, BUCKETS_PER_WEEK)
    return whole_weeks * profile.sum() + cum[first + rest] - cum[first]


def fit(
    counts: pd.DataFrame,
    alerted: pd.DataFrame,
    end: datetime,
    since: datetime | None,
    settings: BaselineSettings | None = None,
    n_areas: dict[str, int] | None = None,
) -> BaselineModel:
    """Fit from `counts` (SERIES + bucket_start, posts) in [since, end) and the windows of past
    alerts (SERIES + window_start, window_end). `since` is when history starts (the first stored
    bucket, or end - history); None means there is no history."""
    settings = settings or BaselineSettings()
    n_areas = {**DEFAULT_AREAS, **(n_areas or {})}
    share = {level: 1.0 / max(n, 1) for level, n in n_areas.items()}
    villages = n_areas["village"]
    floor = {level: settings.default_per_village_day * villages * s / BUCKETS_PER_DAY for level, s in share.items()}
    start = max(since, end - settings.history) if since is not None else end
    total_buckets = max((end - start) / BUCKET, 0.0)
    empty = BaselineModel(pd.Series(dtype=float), pd.Series(dtype=float), floor, history_days=0.0)
    if total_buckets <= 0:
        return empty
    counts = counts.copy()
    counts["bucket_start"] = pd.to_datetime(counts["bucket_start"], utc=True).dt.as_unit("ns")
    counts = counts[(counts["bucket_start"] >= pd.Timestamp(start)) & (counts["bucket_start"] < pd.Timestamp(end))]
    marked = _alerted_buckets(alerted, start, end)
    counts = counts.merge(marked, on=SERIES + ["bucket_start"], how="left")
    counts["weight"] = np.where(counts["alerted"].fillna(False).astype(bool), settings.alert_weight, 1.0)
    counts["weighted"] = counts["posts"].astype(float) * counts["weight"]

    per_series = counts.groupby(SERIES)["weighted"].sum()
    lost = marked.groupby(SERIES).size().reindex(per_series.index, fill_value=0) * (1 - settings.alert_weight)
    exposure = (total_buckets - lost).clip(lower=1.0)

    prior_strength = settings.prior_days * BUCKETS_PER_DAY
    regency = counts[counts["level"] == "regency"]
    regency_weighted = regency.groupby("hazard")["weighted"].sum()
    regency_lost = marked[marked["level"] == "regency"].groupby("hazard").size()
    regency_exposure = total_buckets - regency_lost.reindex(regency_weighted.index, fill_value=0) * (1 - settings.alert_weight)
    hazard_rate = regency_weighted / regency_exposure.clip(lower=1.0)
    hazards = sorted(set(counts["hazard"].unique()) | set(hazard_rate.index))  # unique(): not a Python loop over every row
    prior_index = pd.MultiIndex.from_product([hazards, list(share)], names=["hazard", "level"])
    prior = pd.Series(
        [max(hazard_rate.get(h, 0.0) * share[lv], floor[lv]) for h, lv in prior_index], index=prior_index, dtype=float
    )
    series_prior = prior.reindex(pd.MultiIndex.from_arrays(
        [per_series.index.get_level_values("hazard"), per_series.index.get_level_values("level")])).to_numpy()
    series_prior = np.where(np.isnan(series_prior), [floor.get(lv, floor["village"]) for lv in per_series.index.get_level_values("level")], series_prior)
    rates = (per_series + prior_strength * series_prior) / (exposure + prior_strength)
    unseen = prior * prior_strength / (total_buckets + prior_strength)

    profiles, dispersion = {}, {}
    for hazard, rows in regency.groupby("hazard"):
        rate = float(hazard_rate.get(hazard, 0.0))
        if rate <= 0:
            continue
        profile = np.ones(BUCKETS_PER_WEEK)
        if hazard in settings.seasonal:
            profile = _weekly_profile(rows, rate, start, end, settings.profile_strength)
            profiles[hazard] = profile
        if total_buckets / BUCKETS_PER_DAY >= settings.min_dispersion_days:
            dispersion[hazard] = _dispersion(rows, rate, profile, start, end, settings.max_dispersion)
    return BaselineModel(rates, unseen, floor, profiles, dispersion, history_days=total_buckets / BUCKETS_PER_DAY)


def load_baseline(session: Session, before: datetime, days: int, n_areas: dict[str, int] | None = None) -> BaselineModel:
    """The baseline fitted on `area_counts` in the `days` before `before` (the current lookback
    is left out so an event does not explain itself away), with past alerts' windows
    down-weighted unless a person marked their incident a false alarm."""
    start = before - timedelta(days=days)
    first = session.scalar(select(func.min(AreaCount.bucket_start)))
    since = max(first, start) if first is not None and first < before else None
    counts = _read_frame(
        session,
        select(AreaCount.hazard, AreaCount.level, AreaCount.area_code, AreaCount.bucket_start, AreaCount.posts)
        .where(AreaCount.bucket_start >= start, AreaCount.bucket_start < before),
        SERIES + ["bucket_start", "posts"],
    )
    alerted = _frame(session.execute(
        select(Alert.hazard, Alert.level, Alert.area_code, Alert.window_start, Alert.window_end)
        .outerjoin(Incident, Incident.id == Alert.incident_id)
        .where(Alert.window_end >= start, Alert.window_start < before)
        .where((Incident.id.is_(None)) | (Incident.state != "false_alarm"))
    ).all(), SERIES + ["window_start", "window_end"])
    return fit(counts, alerted, before, since, BaselineSettings(history=timedelta(days=days)), n_areas)


# Rows of the history read per chunk (`_read_frame`).
READ_CHUNK = 10_000


def _read_frame(session: Session, stmt: Any, columns: list[str]) -> pd.DataFrame:
    """The rows of `stmt` as a DataFrame, streamed in chunks of READ_CHUNK (`yield_per`): the
    history is every area count of `baseline_days` (tens of thousands of rows a day on a busy
    deployment), and fetched as one list of rows it was held three times at once, by the
    driver, as rows and as the frame (issue 14: the largest share of a detect task's peak
    memory). Same frame as `pd.DataFrame(rows, columns=columns)`, but for the zone of the times
    on PostgreSQL (`store.stream_rows`: as the driver gives them), which `fit` reads through
    `pd.to_datetime(utc=True)`. On PostgreSQL the rows come as COPY's CSV (`_copied_frames`)."""
    if session.get_bind().dialect.name == "postgresql":
        chunks = _copied_frames(session, stmt, columns)
    else:
        chunks = [_frame(rows, columns) for rows in stream_rows(session, stmt, READ_CHUNK)]
    if not chunks:
        return pd.DataFrame([], columns=columns)
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def _copied_frames(session: Session, stmt: Any, columns: list[str]) -> list[pd.DataFrame]:
    """PostgreSQL: the rows of `stmt` (columns never NULL, as the history's are) as `COPY ... TO
    STDOUT` CSV, parsed by pandas READ_CHUNK rows at a time, times sent as whole microseconds
    since the epoch. psycopg2 made a Python tuple of every row and a datetime of every time, and
    the frame was built back from those (as `pandas.read_sql` would): four times the CPU of this
    for the same frame."""
    sub = stmt.subquery()
    kinds = dict(zip(columns, (_python_type(c.type) for c in sub.c)))
    epoch = select(*(cast(extract("epoch", c) * 1_000_000, BigInteger) if kinds[name] is datetime else c
                     for name, c in zip(columns, sub.c)))
    compiled = epoch.compile(dialect=session.get_bind().dialect)
    text_columns = {name: str for name, kind in kinds.items() if kind is str}
    times = {name for name, kind in kinds.items() if kind is datetime}
    sink = _CsvChunks(lambda data: _csv_frame(data, columns, text_columns, times))
    with session.connection().connection.dbapi_connection.cursor() as cursor:
        query = cursor.mogrify(str(compiled), compiled.params).decode()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", sink)
    sink.parse()
    return sink.frames


def _python_type(sql_type: Any) -> type | None:
    """The Python type of a column's values (a TypeDecorator's, such as `UTCDateTime`, is its
    underlying type's)."""
    try:
        return getattr(sql_type, "impl", sql_type).python_type
    except NotImplementedError:
        return None


class _CsvChunks:
    """What psycopg2's `copy_expert` writes COPY's output to: it writes one row at a time (libpq
    hands COPY data over a whole row at a time), so every READ_CHUNK writes are whole rows,
    parsed together into a frame and let go."""

    def __init__(self, parse: Callable[[bytes], pd.DataFrame]) -> None:
        self.rows: list[bytes] = []
        self.frames: list[pd.DataFrame] = []
        self._parse = parse

    def write(self, row: bytes | str) -> None:
        self.rows.append(row.encode("utf-8") if isinstance(row, str) else row)
        if len(self.rows) >= READ_CHUNK:
            self.parse()

    def parse(self) -> None:
        if self.rows:
            self.frames.append(self._parse(b"".join(self.rows)))
            self.rows = []


def _csv_frame(data: bytes, columns: list[str], dtypes: dict[str, type], times: set[str]) -> pd.DataFrame:
    """One chunk of COPY CSV as a frame: text columns as text (an area code "51.08" is not a
    number), times from microseconds since the epoch, UTC."""
    frame = pd.read_csv(io.BytesIO(data), header=None, names=columns, dtype=dtypes, keep_default_na=False, na_filter=False)
    for name in times:
        frame[name] = pd.to_datetime(frame[name], unit="us", utc=True)
    return frame


def _frame(rows: list[Any], columns: list[str]) -> pd.DataFrame:
    """Result rows as a frame, built column by column: handing pandas the rows themselves made it
    inspect each of the tens of thousands of history rows, most of the baseline's load time."""
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(dict(zip(columns, (list(c) for c in zip(*rows)))), columns=columns)


def _alerted_buckets(alerted: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """(series, bucket_start) inside any past alert window, once each."""
    columns = SERIES + ["bucket_start", "alerted"]
    if alerted is None or alerted.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c == "bucket_start" else object) for c in columns})
    first = pd.to_datetime(alerted["window_start"], utc=True).dt.floor(BUCKET)
    last = pd.to_datetime(alerted["window_end"], utc=True)
    n = np.ceil(((last - first) / BUCKET).to_numpy(float)).astype(int).clip(min=0)
    rep = np.repeat(np.arange(len(alerted)), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    out = alerted.iloc[rep][SERIES].reset_index(drop=True)
    out["bucket_start"] = (first.iloc[rep].reset_index(drop=True) + pd.to_timedelta(offsets * BUCKET.total_seconds(), unit="s")).dt.as_unit("ns")
    out = out[(out["bucket_start"] >= pd.Timestamp(start)) & (out["bucket_start"] < pd.Timestamp(end))]
    out = out.drop_duplicates()
    out["alerted"] = True
    return out


def _exposure_by_week_bucket(start: datetime, end: datetime) -> np.ndarray:
    grid = pd.date_range(pd.Timestamp(start).floor(BUCKET), pd.Timestamp(end), freq=BUCKET, inclusive="left")
    return np.bincount(week_bucket(grid), minlength=BUCKETS_PER_WEEK).astype(float)


def _weekly_profile(rows: pd.DataFrame, rate: float, start: datetime, end: datetime, strength: float) -> np.ndarray:
    """Hour-of-week factors (mean ~1), each hour shrunk towards the flat rate."""
    by_bucket = np.bincount(week_bucket(rows["bucket_start"]), weights=rows["weighted"].to_numpy(float), minlength=BUCKETS_PER_WEEK)
    exposure = _exposure_by_week_bucket(start, end)
    per_hour = lambda a: a.reshape(168, -1).sum(axis=1)  # noqa: E731 - local shorthand
    hour_rate = (per_hour(by_bucket) + strength * rate) / (per_hour(exposure) + strength)
    return np.repeat(hour_rate / rate, BUCKETS_PER_WEEK // 168)


def _dispersion(rows: pd.DataFrame, rate: float, profile: np.ndarray, start: datetime, end: datetime, cap: float) -> float:
    """Method of moments on hourly regency counts: var = m + phi m^2."""
    hours = pd.date_range(pd.Timestamp(start).ceil("h"), pd.Timestamp(end), freq="h", inclusive="left")
    if len(hours) < 24:
        return 0.0
    observed = rows.assign(hour=rows["bucket_start"].dt.floor("h")).groupby("hour")["weighted"].sum()
    x = observed.reindex(hours, fill_value=0.0).to_numpy(float)
    per_bucket = BUCKETS_PER_WEEK // 168
    m = rate * profile.reshape(168, per_bucket).sum(axis=1)[week_bucket(hours) // per_bucket]
    denominator = float((m**2).sum())
    if denominator <= 0:
        return 0.0
    return float(np.clip(((x - m) ** 2 - x).sum() / denominator, 0.0, cap))
