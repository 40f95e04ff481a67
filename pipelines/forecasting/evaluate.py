"""Judge one forecaster on one series: tune (neural only), backtest, refit on all history, forecast ahead.

Pure computation, no MLflow and no lake: the DAG's task, the CLI and the benchmark all call it.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.forecasting import models, windows
from pipelines.forecasting.backtest import Backtest, run_backtest
from pipelines.forecasting.data import Series, folds_for, future_covariates, min_train_days
from pipelines.forecasting.tune import Tuning, tune


@dataclass(frozen=True)
class RunConfig:
    horizon: int = 28
    seq_len: int = 30
    backtest_folds: int = 4
    backtest_step: int = 0  # 0: the horizon
    tuning_calls: int = 12
    max_epochs: int = 60
    patience: int = 6
    sarimax_max_train_days: int = 730
    seasons: dict = field(default_factory=lambda: {"daily": 7, "weekly": 52, "monthly": 13})
    seed: int = 42

    @property
    def step(self) -> int:
        return self.backtest_step or self.horizon

    def model_params(self, name: str) -> dict:
        family = models.get(name).family
        if family == "neural":
            return {"seq_len": self.seq_len, "max_epochs": self.max_epochs, "patience": self.patience}
        if name == "sarimax":
            return {"max_train_days": self.sarimax_max_train_days}
        return {}


def needs(name: str, series: Series, config: RunConfig) -> int:
    """Periods a model needs to train on: a neural model's window, tuning fit and validation tail; the
    gradient-boosting models' level plus a horizon of origins; the others their own minimum."""
    family = models.get(name).family
    if family == "neural":
        return min_train_days(config.horizon, config.seq_len)
    model = models.build(name, series.spec, config.horizon, config.seed)
    if family == "boosting":
        return model.min_history + config.horizon + 1
    return int(model.min_history)


@dataclass
class Evaluation:
    model: str
    family: str
    status: str = "ok"
    reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    tuning: Tuning | None = None
    backtest: Backtest | None = None
    fitted: models.Forecaster | None = None
    forecast: pd.DataFrame | None = None  # date, forecast: the horizon after the history
    covariates: str = ""
    traceback: str | None = None
    tune_s: float = 0.0
    backtest_s: float = 0.0
    train_s: float = 0.0

    def record(self) -> dict:
        """A JSON-able summary (NaN as None): what XCom and the leaderboard carry."""

        def clean(v):
            return None if isinstance(v, float) and not np.isfinite(v) else v

        return {
            "model": self.model,
            "family": self.family,
            "status": self.status,
            "reason": self.reason,
            **{k: clean(float(v)) for k, v in self.metrics.items()},
            "tune_s": round(self.tune_s, 2),
            "backtest_s": round(self.backtest_s, 2),
            "train_s": round(self.train_s, 2),
            "params": {k: clean(v) for k, v in self.params.items()},
            "covariates": self.covariates,
        }


def evaluate(series: Series, name: str, config: RunConfig) -> Evaluation:
    """Tune, backtest on rolling origins, refit on the whole history and forecast the next horizon.

    The folds shrink to what the history allows (``data.folds_for``, the same for every model). A
    model that needs more history than the first fold trains on comes back ``skipped`` with the
    reason; one that fails comes back ``failed`` with the reason; the others go on.
    """
    spec = models.get(name)
    result = Evaluation(name, spec.family)
    history, H = series.history, config.horizon
    try:
        folds = folds_for(len(history), H, config.backtest_folds, config.step, series.spec.m, series.dataset)
        origins = windows.origins(len(history), H, folds, config.step)
        params = config.model_params(name)
        need = needs(name, series, config)
        if origins[0] + 1 < need:
            result.status = "skipped"
            result.reason = (
                f"needs {need} {series.spec.f.units} before the first backtest origin, the history gives "
                f"{origins[0] + 1} ({len(history)} in all, {folds} fold(s) of {H})"
            )
            return result
        if spec.tunable:
            t0 = time.perf_counter()
            result.tuning = tune(
                lambda **p: models.build(name, series.spec, H, config.seed, **params, **p),
                history.iloc[: origins[0] + 1],
                series.spec,
                H,
                config.tuning_calls,
                transformer=name == "lstm_transformer",
                seed=config.seed,
            )
            result.tune_s = time.perf_counter() - t0
            params = {**params, **result.tuning.best}
        result.params = params

        def factory():
            return models.build(name, series.spec, H, config.seed, **params)

        t0 = time.perf_counter()
        result.backtest = run_backtest(factory, history, series.spec, H, origins, config.seasons)
        result.backtest_s = time.perf_counter() - t0
        result.metrics = result.backtest.metrics

        t0 = time.perf_counter()
        result.fitted = factory().fit(history)
        result.train_s = time.perf_counter() - t0
        future, result.covariates = future_covariates(series, H)
        result.forecast = pd.DataFrame({"date": future.index, "forecast": result.fitted.predict(history, future)})
    except Exception as exc:  # noqa: BLE001 - one failing model must not stop the others
        result.status = "failed"
        result.reason = f"{type(exc).__name__}: {exc}"[:500]
        result.traceback = traceback.format_exc()[-3000:]
    return result
