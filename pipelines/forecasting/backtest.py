"""Rolling-origin backtest: refit at each origin on the days up to it, forecast the next horizon, score.

Folds are time-ordered and never shuffled: fold k trains on every day up to its origin (an
expanding window) and forecasts the ``horizon`` days after it. The model sees the known
covariates of those days (the stated assumption: they are planned, so known ahead) and
nothing else of them: not the target, not the past-only covariates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.forecasting import metrics
from pipelines.forecasting.data import SeriesSpec
from pipelines.forecasting.models import Forecaster


@dataclass
class Backtest:
    """Per-fold forecasts (``predictions``: origin, date, step, actual, forecast) and their scores."""

    predictions: pd.DataFrame
    metrics: dict[str, float]
    fit_seconds: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return float(sum(self.fit_seconds))


def run_backtest(
    factory: Callable[[], Forecaster],
    history: pd.DataFrame,
    spec: SeriesSpec,
    horizon: int,
    origins: list[int],
    seasons: dict | None = None,
) -> Backtest:
    """Fit a fresh model per origin (position of its last training day) and score every fold."""
    rows, folds, seconds = [], [], []
    y = history[spec.target].to_numpy(np.float64)
    for origin in origins:
        train = history.iloc[: origin + 1]
        test = history.iloc[origin + 1 : origin + 1 + horizon]
        t0 = time.perf_counter()
        model = factory().fit(train)
        forecast = model.predict(train, test[list(spec.known)])
        seconds.append(time.perf_counter() - t0)
        folds.append((y[: origin + 1], y[origin + 1 : origin + 1 + horizon], forecast))
        rows.append(
            pd.DataFrame(
                {
                    "origin": history.index[origin],
                    "date": test.index,
                    "step": np.arange(1, len(test) + 1),
                    "actual": test[spec.target].to_numpy(),
                    "forecast": forecast,
                }
            )
        )
    levels, seasons = metrics.levels_for(spec.freq, spec.m, seasons)
    return Backtest(pd.concat(rows, ignore_index=True), metrics.score(folds, seasons, levels), seconds)
