"""A regular series out of gold: a gap-free history, the plan of future drivers, and the checks users hit.

The frequency (hourly .. yearly, ``pipelines.forecasting.freq``) is the contract's ``gold.freq``
or inferred from the timestamps; every timestamp is put at the start of its period (a month's
``1990-01-31`` is ``1990-01-01``). One row per period is expected: repeats are refused, naming
the first (the contract's ``gold.aggregate`` turns event rows into one value per period before).
Missing periods follow the contract's ``gold.missing`` (else ``forecasting.missing_dates``):
``interpolate`` gaps of up to ``max_gap`` periods, ``zero`` (a closed shop sold nothing), or
``refuse``.

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
from pipelines.forecasting import freq as freqs
from pipelines.lake import Lake

ORIGIN_LAG = 364  # "same day last year" (52 weeks: the same weekday) of a daily series
MISSING = ("interpolate", "zero", "refuse")


class ForecastDataError(DataError, ValueError):
    """A series that cannot be forecast as asked; the message names what is wrong."""


@dataclass(frozen=True)
class SeriesSpec:
    """Column roles: the time index, the target, and covariates known ahead or only in the past."""

    time: str
    target: str
    known: tuple[str, ...] = ()
    past: tuple[str, ...] = ()
    freq: str = "daily"
    alias: str = ""  # the pandas alias when it is not the frequency's own (weekly periods ending on a Saturday)
    season: int = 0  # 0: the frequency's own season

    @property
    def covariates(self) -> list[str]:
        return [*self.known, *self.past]

    @property
    def f(self) -> freqs.Freq:
        f = freqs.get(self.freq)
        return freqs.Freq(f.name, self.alias, f.season, f.year, f.horizon, f.step_days) if self.alias else f

    @property
    def m(self) -> int:
        """The season (periods) every model and MASE use."""
        return int(self.season) or self.f.season

    def as_dict(self) -> dict:
        return {
            "time": self.time,
            "target": self.target,
            "known": list(self.known),
            "past": list(self.past),
            "freq": self.freq,
            "alias": self.alias,
            "season": self.season,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SeriesSpec:
        return cls(
            d["time"],
            d["target"],
            tuple(d.get("known", ())),
            tuple(d.get("past", ())),
            d.get("freq", "daily"),
            d.get("alias", ""),
            int(d.get("season", 0)),
        )


@dataclass
class Series:
    """A history without gaps at its frequency (DatetimeIndex) and the plan of known covariates after it."""

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
            "freq": self.spec.freq,
            "season": self.spec.m,
            "history_days": len(h),
            "first_day": str(h.index[0]),
            "last_day": str(h.index[-1]),
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
    missing: str = "interpolate",
    max_gap: int = 3,
    history_days: int = 0,
) -> Series:
    """Gold partitions of ``dataset`` up to ``ds`` as a Series (see the module docstring).

    The contract's series rules (``gold.freq``, ``gold.season``, ``gold.missing``, ``gold.max_gap``,
    recorded in the gold manifest as ``series``) win over the ``missing`` / ``max_gap`` defaults.
    """
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
    # A timestamp in several partitions takes the newest partition's rows; repeats within it are refused later.
    newest = frame.groupby(time)["_partition"].transform("max")
    frame = frame[frame["_partition"] == newest].sort_values(time, kind="stable")
    rules = latest.get("series") or {}
    target = latest["label_source"]["column"]
    numeric = [c for c in latest.get("numeric", []) if c != target]
    known = list(known)
    unknown = [c for c in known if c not in numeric]
    if unknown:
        raise ForecastDataError(
            f"known covariate(s) {unknown} of dataset {dataset!r} are not numeric gold features; "
            f"numeric features: {numeric} (set forecasting.known_covariates.{dataset} in include/config/settings.yaml)"
        )
    past = tuple(c for c in numeric if c not in known) if rules.get("covariates", True) else ()
    spec = SeriesSpec(time=time, target=target, known=tuple(known), past=past, season=int(rules.get("season") or 0))
    frame = frame.rename(columns={LABEL: target})[[time, target, *spec.covariates]]
    series = prepare_series(
        frame,
        spec,
        dataset,
        missing=rules.get("missing") or missing,
        max_gap=int(rules.get("max_gap") or max_gap),
        history_days=history_days,
        freq=rules.get("freq"),
    )
    series.content_hashes = {d: m["content_hash"] for d, m in manifests.items()}
    series.ignored = list(latest.get("categorical", []))
    return series


def prepare_series(
    frame: pd.DataFrame,
    spec: SeriesSpec,
    dataset: str = "series",
    missing: str = "interpolate",
    max_gap: int = 3,
    history_days: int = 0,
    freq: str | None = None,
) -> Series:
    """Split rows into history and plan at the series' frequency, and fill (or refuse) missing periods, naming them."""
    for col in [spec.time, spec.target, *spec.covariates]:
        if col not in frame.columns:
            raise ForecastDataError(f"dataset {dataset!r} has no column {col!r}; columns: {sorted(frame.columns)}")
    missing = "interpolate" if missing == "fill" else missing
    if missing not in MISSING:
        raise ForecastDataError(f"missing-period policy must be one of {list(MISSING)}, got {missing!r}")
    frame = frame.copy()
    try:
        frame[spec.time] = pd.to_datetime(frame[spec.time])
    except (TypeError, ValueError) as exc:
        raise ForecastDataError(f"time column {spec.time!r} of dataset {dataset!r} is not a time: {exc}") from None
    for col in [spec.target, *spec.covariates]:
        try:
            frame[col] = pd.to_numeric(frame[col]).astype("float64")
        except (TypeError, ValueError):
            raise ForecastDataError(f"column {col!r} of dataset {dataset!r} is not numeric") from None
    observed_times = frame.loc[frame[spec.target].notna(), spec.time]
    try:
        f = freqs.resolve(observed_times if len(observed_times) > 2 else frame[spec.time], freq, f"dataset {dataset!r}")
    except ValueError as exc:
        raise ForecastDataError(str(exc)) from None
    spec = SeriesSpec(spec.time, spec.target, spec.known, spec.past, f.name, f.alias, spec.season)
    frame[spec.time] = f.floor(frame[spec.time])
    repeated = frame[spec.time][frame[spec.time].duplicated()]
    if len(repeated):
        raise ForecastDataError(
            f"dataset {dataset!r} has several rows for {f.units[:-1]}(s) {_days(repeated)}; one row per period is "
            "expected: declare how rows add up (gold.aggregate: sum | count | mean in the contract)"
        )
    frame = frame.set_index(spec.time).sort_index()
    observed = frame.index[frame[spec.target].notna()]
    if len(observed) == 0:
        raise ForecastDataError(f"dataset {dataset!r} has no observed value of {spec.target!r}: nothing to learn from")
    first, last = observed[0], observed[-1]
    columns = [spec.target, *spec.covariates]
    index = f.periods(first, last, spec.time)
    off = frame.loc[first:last].index.difference(index)
    if len(off):
        raise ForecastDataError(
            f"dataset {dataset!r}: timestamp(s) {_days(off)} are off the {f.name} grid ({f.alias}) of its series; "
            "declare the right gold.freq in the contract"
        )
    history = frame.loc[first:last, columns].reindex(index)
    history, holes = _fill(history, dataset, missing, max_gap, spec.target, f.units)
    filled = [_stamp(d) for d in history.index[holes]]
    if history_days and history_days > 0:
        history = history.iloc[-history_days:]
    plan = frame.loc[frame.index > last, list(spec.known)]
    if len(plan):
        plan = plan.reindex(f.periods(f.after(last, 1)[0], plan.index[-1], spec.time))
    return Series(dataset=dataset, spec=spec, history=history, plan=plan, filled=filled)


def _fill(
    history: pd.DataFrame, dataset: str, missing: str, max_gap: int, target: str = "", units: str = "days"
) -> tuple[pd.DataFrame, np.ndarray]:
    """Fill missing periods as the policy says (zero: the target is 0 there); refuse long gaps, naming them."""
    holes = history.isna().any(axis=1).to_numpy()
    if not holes.any():
        return history, holes
    runs = _runs(holes)
    named = ", ".join(_span(history.index, a, b, units) for a, b in runs[:5]) + (" ..." if len(runs) > 5 else "")
    if missing == "refuse":
        raise ForecastDataError(
            f"dataset {dataset!r} misses {int(holes.sum())} {units} (no row, or an empty value) in its history: "
            f"{named}; add them to the source, or set gold.missing (interpolate | zero) in the contract "
            "(or forecasting.missing_dates=fill for every dataset)"
        )
    out = history.copy()
    if missing == "zero" and target:
        out[target] = out[target].fillna(0.0)
        rest = out.isna().any(axis=1).to_numpy()
        if not rest.any():
            return out, holes
        runs = _runs(rest)
    longest = max(runs, key=lambda r: r[1] - r[0])
    if longest[1] - longest[0] > max_gap:
        raise ForecastDataError(
            f"dataset {dataset!r} misses {longest[1] - longest[0]} {units} in a row "
            f"({_span(history.index, *longest, units)}), "
            f"more than max_gap={max_gap} allows to interpolate (gold.max_gap in the contract, else "
            f"forecasting.max_fill_gap_days); gaps: {named}. Fill the gap in the source, shorten the history past "
            "it, raise the limit, or declare gold.missing: zero when a missing period means nothing happened"
        )
    integer = [c for c in out.columns if np.all(np.mod(out[c].dropna(), 1) == 0)]
    out = out.interpolate(method="time", limit_direction="both")
    out[integer] = out[integer].round()
    return out, holes


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _stamp(t) -> str:
    t = pd.Timestamp(t)
    return str(t.date()) if t == t.normalize() else str(t)


def _span(index: pd.DatetimeIndex, a: int, b: int, units: str = "days") -> str:
    first, last = _stamp(index[a]), _stamp(index[b - 1])
    return f"{first}" if a == b - 1 else f"{first}..{last} ({b - a} {units})"


def _days(values) -> str:
    days = sorted({_stamp(v) for v in values})
    return ", ".join(days[:5]) + (" ..." if len(days) > 5 else "")


def future_covariates(series: Series, horizon: int) -> tuple[pd.DataFrame, str]:
    """Known covariates for the ``horizon`` periods after the history, and where they came from.

    The plan's values where it has them; a period it lacks takes the value of the same period a
    year before (364 days for a daily series: the same weekday), else of the same point of the last
    season: "as last year" is the stated assumption when no plan is given.
    """
    h, known, f = series.history, list(series.spec.known), series.spec.f
    periods = f.after(h.index[-1], horizon, series.spec.time)
    future = (series.plan.reindex(periods) if len(series.plan) else pd.DataFrame(index=periods, columns=known)).astype(
        "float64"
    )
    gaps = future.isna().any(axis=1)
    if not known or not gaps.any():
        return future[known], "plan" if known else "none"
    values, n, m = h[known].to_numpy(np.float64), len(h), max(series.spec.m, 1)
    lags = ([f.year] if f.year else []) + list(range(m, m * (horizon // m + 2), m))
    for k in np.flatnonzero(gaps.to_numpy()):
        for lag in lags:
            source = n + k - lag
            if 0 <= source < n:
                missing = future.iloc[k].isna().to_numpy()
                future.iloc[k, np.flatnonzero(missing)] = values[source][missing]
                break
    how = "as last year" if gaps.all() else f"plan, {int(gaps.sum())} period(s) as last year"
    return future[known], how


def check_lengths(
    n: int, horizon: int, seq_len: int, folds: int, step: int, dataset: str = "series", min_train: int | None = None
) -> int:
    """Refuse a horizon or backtest the history cannot carry; returns the periods the first fold trains on.

    ``min_train`` defaults to what the neural models need (``min_train_days``); ``folds_for`` sizes
    the backtest to the history instead.
    """
    if horizon < 1:
        raise ForecastDataError(f"horizon must be at least 1 period, got {horizon}")
    if seq_len < 1 or folds < 1 or step < 1:
        raise ForecastDataError(
            f"seq_len, backtest_folds and backtest_step must be >= 1, got {seq_len}, {folds}, {step}"
        )
    if horizon >= n:
        raise ForecastDataError(
            f"horizon of {horizon} periods is longer than the history of dataset {dataset!r} ({n} periods): "
            "forecast fewer periods or provide more history"
        )
    min_train = min_train_days(horizon, seq_len) if min_train is None else min_train
    needed = min_train + (folds - 1) * step + horizon
    if n < needed:
        raise ForecastDataError(
            f"history of dataset {dataset!r} is too short: {n} periods, but a {horizon}-period horizon and {folds} "
            f"backtest fold(s) every {step} periods need at least {needed} (the first fold trains on {min_train} "
            f"periods or more; a {seq_len}-period neural window needs {min_train_days(horizon, seq_len)}); provide "
            "more history, or lower horizon, seq_len or backtest_folds"
        )
    return min_train


def min_train_days(horizon: int, seq_len: int) -> int:
    """Periods before the first origin a neural model needs: a tuning fit (a window plus 20 more) then a
    validation tail of 3 horizons."""
    return seq_len + 4 * horizon + 20


def min_history(horizon: int, season: int) -> int:
    """Periods the first backtest fold trains on at least, whatever the models: two seasons and two horizons."""
    return max(2 * season, 2 * horizon, 8)


AUTO_PERIODS, AUTO_FOLDS = 100, (3, 12)  # backtest_folds 0: score >= 100 periods, with 3 to 12 folds


def auto_folds(horizon: int) -> int:
    """``backtest_folds: 0`` (auto): enough horizon-long folds to score at least ``AUTO_PERIODS`` forecast
    periods, so a selection does not hinge on a handful of origins; 3 to 12 of them (each is a refit)."""
    low, high = AUTO_FOLDS
    return min(high, max(low, -(-AUTO_PERIODS // max(1, horizon))))


def folds_for(n: int, horizon: int, folds: int, step: int, season: int, dataset: str = "series") -> int:
    """The backtest folds the history allows (at most ``folds``; 0: ``auto_folds``), refusing a history
    shorter than one fold needs."""
    least = min_history(horizon, season)
    check_lengths(n, horizon, 1, 1, step, dataset, min_train=least)
    return max(1, min(folds or auto_folds(horizon), (n - least - horizon) // step + 1))
