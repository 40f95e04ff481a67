"""Bayesian tuning of the neural forecasters (scikit-optimize's Gaussian-process search).

Space: hidden size 16-64 (a multiple of 8, so every head count divides it), 1-2 layers,
dropout 0-0.3, 1/2/4 attention heads (LSTM + Transformer only) and a learning rate between
1e-4 and 1e-3 (log-uniform). The search starts from the default configuration.

Objective: the mean absolute error of forecasts made from the origins of a validation tail
(the last 2 horizons before the first backtest origin, every 7 days), by a model fitted on the
days before that tail. Tuning never sees a backtest fold, so the backtest stays a fair test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.forecasting.data import SeriesSpec
from pipelines.forecasting.models import Forecaster

DEFAULTS = {"hidden_size": 32, "layers": 1, "dropout": 0.1, "heads": 2, "lr": 5e-4}


def space(transformer: bool) -> list:
    from skopt.space import Categorical, Integer, Real

    dims = [
        Integer(2, 8, name="hidden_size"),  # x 8
        Integer(1, 2, name="layers"),
        Real(0.0, 0.3, name="dropout"),
        Real(1e-4, 1e-3, prior="log-uniform", name="lr"),
    ]
    if transformer:
        dims.append(Categorical([1, 2, 4], name="heads"))
    return dims


def _params(point: list, transformer: bool) -> dict:
    params = {
        "hidden_size": int(point[0]) * 8,
        "layers": int(point[1]),
        "dropout": float(point[2]),
        "lr": float(point[3]),
    }
    if transformer:
        params["heads"] = int(point[4])
    return params


def _point(params: dict, transformer: bool) -> list:
    point = [params["hidden_size"] // 8, params["layers"], params["dropout"], params["lr"]]
    return [*point, params["heads"]] if transformer else point


@dataclass
class Tuning:
    best: dict
    trials: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def validation_origins(n: int, horizon: int) -> tuple[int, list[int]]:
    """(last training position, forecast origins) of the validation tail at the end of ``n`` days."""
    tail = 2 * horizon
    cut = n - 1 - horizon - tail
    return cut, list(range(cut, n - horizon, 7))


def tune(
    build: Callable[..., Forecaster],
    history: pd.DataFrame,
    spec: SeriesSpec,
    horizon: int,
    calls: int,
    transformer: bool,
    seed: int = 42,
) -> Tuning:
    """Search the space with ``calls`` fits on ``history`` (the part before the first backtest origin)."""
    defaults = {k: v for k, v in DEFAULTS.items() if transformer or k != "heads"}
    if calls <= 0:
        return Tuning(best=defaults)
    from skopt import gp_minimize

    started = time.perf_counter()
    cut, val_origins = validation_origins(len(history), horizon)
    train = history.iloc[: cut + 1]
    y = history[spec.target].to_numpy(np.float64)
    known = list(spec.known)
    trials: list[dict] = []

    def objective(point):
        params = _params(point, transformer)
        t0 = time.perf_counter()
        try:
            model = build(**params).fit(train)
            errors = []
            for o in val_origins:
                seen = history.iloc[: o + 1]
                future = history.iloc[o + 1 : o + 1 + horizon][known]
                errors.append(np.abs(model.predict(seen, future) - y[o + 1 : o + 1 + horizon]).mean())
            score = float(np.mean(errors))
        except (ValueError, RuntimeError) as exc:  # an impossible configuration scores badly, the search goes on
            score, params["error"] = float(np.abs(y).mean() * 10 + 1), str(exc)[:200]
        trials.append({**params, "val_mae": score, "seconds": time.perf_counter() - t0})
        return score

    x0 = _point(defaults, transformer)
    initial = max(0, min(5, calls - 1))
    gp_minimize(
        objective,
        space(transformer),
        n_calls=calls,
        n_initial_points=initial,
        x0=[x0],
        random_state=seed,
        acq_func="EI",
    )
    ok = [t for t in trials if "error" not in t]
    best = min(ok or trials, key=lambda t: t["val_mae"])
    return Tuning(
        best={k: best[k] for k in defaults},
        trials=trials,
        seconds=time.perf_counter() - started,
    )
