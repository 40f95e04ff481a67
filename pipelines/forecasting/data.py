"""A daily series out of gold: a gap-free history, the plan of future drivers, and the checks users hit.

Gold partitions of a time-series dataset (a contract with ``gold.time`` and a numeric label)
are snapshots: every partition up to the date is read, and for a day present in several the
newest partition wins. The history runs from the first to the last day with an observed target;
later rows are the plan: drivers decided ahead, whose values over the horizon are assumed known
(ad budgets, discounts, promotions, a seasonality index). Every other covariate is used only
through its past.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.constants import GOLD, LABEL
from pipelines.errors import DataError
from pipelines.lake import Lake

ORIGIN_LAG = 364  # "same day last year" (52 weeks: the same weekday)


class ForecastDataError(DataError, ValueError):
    """A series that cannot be forecast as asked; the message names what is wrong."""


@dataclass(frozen=True)
class SeriesSpec:
    """Column roles: the time index, the target, and covariates known ahead or only in the past."""

    time: str
    target: str
    known: tuple[str, ...] = ()
    past: tuple[str, ...] = ()

    @property
    def covariates(self) -> list[str]:
        return [*self.known, *self.past]

    def as_dict(self) -> dict:
        return {"time": self.time, "target": self.target, "known": list(self.known), "past": list(self.past)}

    @classmethod
    def from_dict(cls, d: dict) -> SeriesSpec:
        return cls(d["time"], d["target"], tuple(d.get("known", ())), tuple(d.get("past", ())))


@dataclass
class Series:
    """A daily history without gaps (DatetimeIndex) and the plan of known covariates after it."""

    dataset: str
    spec: SeriesSpec
    history: pd.DataFrame
    plan: pd.DataFrame
    filled: list[str] = field(default_factory=list)
    content_hashes: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        h = self.history
        return {
            "dataset": self.dataset,
            "spec": self.spec.as_dict(),
            "history_days": len(h),
            "first_day": str(h.index[0].date()),
            "last_day": str(h.index[-1].date()),
            "plan_days": int(self.plan[list(self.spec.known)].notna().all(axis=1).sum()) if len(self.plan) else 0,
            "filled_days": self.filled,
            "ignored_covariates": self.ignored,
            "target_mean": float(h[self.spec.target].mean()),
            "partitions": sorted(self.content_hashes),
        }


def load_series(
    lake: Lake,
    dataset: str,
    ds: str,
    known: list[str] | tuple[str, ...],
    missing: str = "fill",
    max_gap: int = 3,
    history_days: int = 0,
) -> Series:
    """Gold partitions of ``dataset`` up to ``ds`` as a Series (see the module docstring)."""
    dates = [d for d in lake.list_partitions(GOLD, dataset) if d <= ds]
    if not dates:
        raise ForecastDataError(
            f"no gold partitions for dataset {dataset!r} up to {ds} under {lake.uri(GOLD, dataset)}; "
            f"run the features DAG for dataset {dataset!r} first"
        )
    manifests = {d: lake.read_manifest(GOLD, dataset, d) for d in dates}
    latest = manifests[dates[-1]]
    time = latest.get("time")
    if not time or latest.get("label_kind") != "numeric":
        raise ForecastDataError(
            f"gold of dataset {dataset!r} is not a time series: its contract needs `gold: {{time: <date column>, "
            f"label: {{column: <numeric target>}}}}` (found time={time!r}, label kind {latest.get('label_kind')!r})"
        )
    tables = []
    for d in dates:
        table = lake.read_partition(GOLD, dataset, d)
        tables.append(table.append_column("_partition", pa.array([d] * table.num_rows, pa.string())))
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    frame = frame.sort_values([time, "_partition"], kind="stable").drop_duplicates(time, keep="last")
    target = latest["label_source"]["column"]
    numeric = [c for c in latest.get("numeric", []) if c != target]
    known = list(known)
    unknown = [c for c in known if c not in numeric]
    if unknown:
        raise ForecastDataError(
            f"known covariate(s) {unknown} of dataset {dataset!r} are not numeric gold features; "
            f"numeric features: {numeric} (set forecasting.known_covariates.{dataset} in include/config/settings.yaml)"
        )
    spec = SeriesSpec(time=time, target=target, known=tuple(known), past=tuple(c for c in numeric if c not in known))
    frame = frame.rename(columns={LABEL: target})[[time, target, *spec.covariates]]
    series = prepare_series(frame, spec, dataset, missing=missing, max_gap=max_gap, history_days=history_days)
    series.content_hashes = {d: m["content_hash"] for d, m in manifests.items()}
    series.ignored = list(latest.get("categorical", []))
    return series


def prepare_series(
    frame: pd.DataFrame,
    spec: SeriesSpec,
    dataset: str = "series",
    missing: str = "fill",
    max_gap: int = 3,
    history_days: int = 0,
) -> Series:
    """Split rows into history and plan, and fill (or refuse) missing days, naming them."""
    for col in [spec.time, spec.target, *spec.covariates]:
        if col not in frame.columns:
            raise ForecastDataError(f"dataset {dataset!r} has no column {col!r}; columns: {sorted(frame.columns)}")
    frame = frame.copy()
    frame[spec.time] = pd.to_datetime(frame[spec.time]).dt.normalize()
    for col in [spec.target, *spec.covariates]:
        try:
            frame[col] = pd.to_numeric(frame[col]).astype("float64")
        except (TypeError, ValueError):
            raise ForecastDataError(f"column {col!r} of dataset {dataset!r} is not numeric") from None
    repeated = frame[spec.time][frame[spec.time].duplicated()]
    if len(repeated):
        raise ForecastDataError(
            f"dataset {dataset!r} has several rows for day(s) {_days(repeated)}; one row per day is expected"
        )
    frame = frame.set_index(spec.time).sort_index()
    observed = frame.index[frame[spec.target].notna()]
    if len(observed) == 0:
        raise ForecastDataError(f"dataset {dataset!r} has no observed value of {spec.target!r}: nothing to learn from")
    first, last = observed[0], observed[-1]
    if len(observed) > 2:
        step = pd.Series(observed).diff().dt.days.median()
        if step > 1:
            raise ForecastDataError(
                f"days of dataset {dataset!r} are not daily (median step {step:.0f} days); "
                "the forecasting DAG needs one row per day"
            )
    columns = [spec.target, *spec.covariates]
    history = frame.loc[first:last, columns].reindex(pd.date_range(first, last, freq="D", name=spec.time))
    history, holes = _fill(history, dataset, missing, max_gap)
    filled = [str(d.date()) for d in history.index[holes]]
    if history_days and history_days > 0:
        history = history.iloc[-history_days:]
    plan = frame.loc[frame.index > last, list(spec.known)]
    if len(plan):
        plan = plan.reindex(pd.date_range(last + pd.Timedelta(days=1), plan.index[-1], freq="D", name=spec.time))
    return Series(dataset=dataset, spec=spec, history=history, plan=plan, filled=filled)


def _fill(history: pd.DataFrame, dataset: str, missing: str, max_gap: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Interpolate short runs of missing days (target or covariates); refuse longer ones, naming them."""
    holes = history.isna().any(axis=1).to_numpy()
    if not holes.any():
        return history, holes
    runs = _runs(holes)
    named = ", ".join(_span(history.index, a, b) for a, b in runs[:5]) + (" ..." if len(runs) > 5 else "")
    if missing == "refuse":
        raise ForecastDataError(
            f"dataset {dataset!r} misses {int(holes.sum())} day(s) (no row, or an empty value) in its history: "
            f"{named}; add them to the source, or set forecasting.missing_dates=fill to interpolate short gaps"
        )
    longest = max(runs, key=lambda r: r[1] - r[0])
    if longest[1] - longest[0] > max_gap:
        raise ForecastDataError(
            f"dataset {dataset!r} misses {longest[1] - longest[0]} days in a row ({_span(history.index, *longest)}), "
            f"more than forecasting.max_fill_gap_days={max_gap} allows to interpolate; gaps: {named}. "
            "Fill the gap in the source, shorten the history past it, or raise the limit"
        )
    integer = [c for c in history.columns if np.all(np.mod(history[c].dropna(), 1) == 0)]
    out = history.interpolate(method="time", limit_direction="both")
    out[integer] = out[integer].round()
    return out, holes


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _span(index: pd.DatetimeIndex, a: int, b: int) -> str:
    first, last = index[a].date(), index[b - 1].date()
    return f"{first}" if a == b - 1 else f"{first}..{last} ({b - a} days)"


def _days(values) -> str:
    days = sorted({str(pd.Timestamp(v).date()) for v in values})
    return ", ".join(days[:5]) + (" ..." if len(days) > 5 else "")


def future_covariates(series: Series, horizon: int) -> tuple[pd.DataFrame, str]:
    """Known covariates for the ``horizon`` days after the history, and where they came from.

    The plan's values where it has them; a day it lacks takes the value of the same weekday a
    year before (364 days), else of the same weekday in the last week: "as last year" is the
    stated assumption when no plan is given.
    """
    h, known = series.history, list(series.spec.known)
    days = pd.date_range(h.index[-1] + pd.Timedelta(days=1), periods=horizon, freq="D", name=series.spec.time)
    future = (series.plan.reindex(days) if len(series.plan) else pd.DataFrame(index=days, columns=known)).astype(
        "float64"
    )
    gaps = future.isna().any(axis=1)
    if not known or not gaps.any():
        return future[known], "plan" if known else "none"
    for day in days[gaps.to_numpy()]:
        for lag in (ORIGIN_LAG, *range(7, 7 * (horizon // 7 + 2), 7)):
            source = day - pd.Timedelta(days=lag)
            if source in h.index:
                missing = future.loc[day].isna()
                future.loc[day, missing] = h.loc[source, known][missing].to_numpy()
                break
    how = "as last year" if gaps.all() else f"plan, {int(gaps.sum())} day(s) as last year"
    return future[known], how


def check_lengths(n: int, horizon: int, seq_len: int, folds: int, step: int, dataset: str = "series") -> int:
    """Refuse a horizon, window or backtest the history cannot carry; returns the days the first fold trains on."""
    if horizon < 1:
        raise ForecastDataError(f"horizon must be at least 1 day, got {horizon}")
    if seq_len < 1 or folds < 1 or step < 1:
        raise ForecastDataError(
            f"seq_len, backtest_folds and backtest_step must be >= 1, got {seq_len}, {folds}, {step}"
        )
    if horizon >= n:
        raise ForecastDataError(
            f"horizon of {horizon} days is longer than the history of dataset {dataset!r} ({n} days): "
            "forecast fewer days or provide more history"
        )
    min_train = min_train_days(horizon, seq_len)
    needed = min_train + (folds - 1) * step + horizon
    if n < needed:
        raise ForecastDataError(
            f"history of dataset {dataset!r} is too short: {n} days, but a {horizon}-day horizon, a {seq_len}-day "
            f"window and {folds} backtest fold(s) every {step} days need at least {needed} (the first fold trains on "
            f"{min_train} days or more); provide more history, or lower horizon, seq_len or backtest_folds"
        )
    return min_train


def min_train_days(horizon: int, seq_len: int) -> int:
    """Days before the first origin: a tuning fit (a window plus 20 more) then a validation tail of 3 horizons."""
    return seq_len + 4 * horizon + 20
