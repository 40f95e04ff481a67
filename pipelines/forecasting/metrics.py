"""Forecast errors at three aggregation levels, and MASE scaled by the in-sample seasonal naive error.

Levels: ``daily`` (each day of the horizon), ``weekly`` (sums over 7-day blocks from the origin)
and ``monthly`` (sums over 28-day blocks: four whole weeks, so every "month" holds each
weekday four times). A level needs at least one whole block in the horizon.

MASE of a fold = its MAE / the mean absolute error of the seasonal naive forecast on the fold's
own training data at the same level (``x_t - x_{t-m}``), with seasons m = 7 days, 52 weeks and
13 four-week months (``forecasting.seasons``); training blocks are aligned to end at the origin.
The MASE of a model is the mean over folds. A series at another frequency than daily has one
level named after it (``mase_monthly`` for a monthly series: per month), scaled by its own
season (``SeriesSpec.m``: 12 months, 4 quarters, ...; ``levels_for``). When the training part is too short for a season
the scale falls back to m = 1 (the naive one-step error); when the scale is 0 (a constant
series) MASE is undefined (NaN) and models are ranked by MAE.
"""

from __future__ import annotations

import numpy as np

LEVELS = {"daily": 1, "weekly": 7, "monthly": 28}
DEFAULT_SEASONS = {"daily": 7, "weekly": 52, "monthly": 13}
METRICS = ("mase", "mae", "rmse", "mape", "smape")


def mae(actual, forecast) -> float:
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))))


def rmse(actual, forecast) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(forecast)) ** 2)))


def mape(actual, forecast) -> float:
    """Mean absolute percentage error over the non-zero actuals (NaN when all are zero)."""
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    nz = a != 0
    return float(np.mean(np.abs((a[nz] - f[nz]) / a[nz])) * 100) if nz.any() else float("nan")


def smape(actual, forecast) -> float:
    """Symmetric MAPE in [0, 200]; a day where both are zero counts as no error."""
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    denom = np.abs(a) + np.abs(f)
    ratio = np.divide(2 * np.abs(a - f), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(np.mean(ratio) * 100)


def seasonal_scale(insample, season: int) -> float:
    """Mean |x_t - x_{t-m}| over the training values (m falls back to 1 when there are too few); NaN if 0."""
    x = np.asarray(insample, float)
    m = season if len(x) > season else 1
    if len(x) <= m:
        return float("nan")
    scale = float(np.mean(np.abs(x[m:] - x[:-m])))
    return scale if scale > 0 else float("nan")


def mase(actual, forecast, insample, season: int) -> float:
    return mae(actual, forecast) / seasonal_scale(insample, season)


def blocks(values, size: int, align_end: bool = False) -> np.ndarray:
    """Sums over whole blocks of ``size`` values, from the start (or aligned to end at the last value)."""
    x = np.asarray(values, float)
    n = len(x) // size * size
    x = x[len(x) - n :] if align_end else x[:n]
    return x.reshape(-1, size).sum(axis=1)


def levels_for(freq: str, season: int, seasons: dict | None = None) -> tuple[dict, dict]:
    """(levels, seasons) of a series: daily keeps its three levels, the others their own period."""
    if freq == "daily":
        return LEVELS, {**DEFAULT_SEASONS, **(seasons or {}), "daily": season}
    return {freq: 1}, {freq: season}


def score(folds: list[tuple], seasons: dict | None = None, levels: dict | None = None) -> dict[str, float]:
    """Metrics over backtest folds, each ``(training target, actual, forecast)``; keys like ``mase_weekly``.

    MASE is the mean of the per-fold MASE; the other errors pool every block of every fold.
    """
    seasons = {**DEFAULT_SEASONS, **(seasons or {})}
    out: dict[str, float] = {}
    for level, size in (levels or LEVELS).items():
        actual, forecast, scaled = [], [], []
        for train, a, f in folds:
            a_b, f_b = blocks(a, size), blocks(f, size)
            if not len(a_b):
                continue
            actual.append(a_b)
            forecast.append(f_b)
            scaled.append(mae(a_b, f_b) / seasonal_scale(blocks(train, size, align_end=True), seasons[level]))
        if not actual:
            continue
        a, f = np.concatenate(actual), np.concatenate(forecast)
        out.update(
            {
                f"mase_{level}": float(np.mean(scaled)),
                f"mae_{level}": mae(a, f),
                f"rmse_{level}": rmse(a, f),
                f"mape_{level}": mape(a, f),
                f"smape_{level}": smape(a, f),
            }
        )
    return out
