"""Forecasters behind one contract, and the registry the DAG maps over.

Every forecaster is a scikit-learn style estimator: ``fit(history)`` learns from a gap-free
history at the series' frequency (DatetimeIndex; the target and covariate columns of its ``SeriesSpec``) and
returns self, learned attributes end in ``_``; ``predict(history, future)`` forecasts the days
of ``future`` (which holds the known covariates only, for at most ``horizon`` days) right after
the last day of ``history``. Target lags therefore only ever come from ``history``: the past.

The season ``m`` is the spec's (``SeriesSpec.m``: 7 for daily, 12 for monthly, ...).

- ``seasonal_naive``: each period repeats the same point of the last observed season.
- ``sarimax``: SARIMAX(1,1,1)(1,0,1)_m on the log target (no seasonal part when ``m`` is 1 or
  longer than ``freq.MAX_SARIMA_SEASON``), the known drivers as exogenous inputs.
- ``auto_arima``, ``auto_ets``, ``theta``: automatic statistical models (``pipelines.forecasting.auto``).
- ``lightgbm`` / ``xgboost``: one direct multi-horizon model (the step ahead is a feature) on
  target lags relative to the origin's level (the mean of the last season, 28 days for a daily
  series), known drivers on the target period, past-only drivers at the origin, and calendar
  features; it predicts the ratio to that level, so the trend does not push it outside what the
  trees saw.
- ``lstm`` and ``lstm_transformer``: see ``pipelines.forecasting.neural`` (torch loads lazily).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from pipelines.estimators import hyperparameters
from pipelines.forecasting.data import SeriesSpec
from pipelines.forecasting.freq import calendar_columns
from pipelines.forecasting.windows import from_relative, relative_mode, to_relative


@hyperparameters
class Forecaster(BaseEstimator):
    """Base: checks shared by every model; subclasses implement ``_fit`` and ``_predict``.

    Learned: ``n_train_days_``, and ``constant_`` (the value of a constant training target, which
    is then forecast as it is without fitting anything; None otherwise).
    """

    min_history = 1  # periods of history ``predict`` needs

    spec: SeriesSpec | None = None
    horizon: int = 28
    seed: int = 42

    def fit(self, history: pd.DataFrame):
        self._check_history(history)
        self.n_train_days_ = len(history)
        y = self._target(history)
        # A constant target has nothing to learn (and breaks scalers and likelihoods): forecast the constant.
        self.constant_ = float(y[-1]) if len(y) and np.ptp(y) == 0 else None
        if self.constant_ is None:
            self._fit(history)
        return self

    def predict(self, history: pd.DataFrame, future: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "n_train_days_")
        self._check_history(history)
        if len(history) < self.min_history:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_history} {self.spec.f.units} of history, "
                f"got {len(history)}"
            )
        if not 1 <= len(future) <= self.horizon:
            raise ValueError(
                f"can forecast 1 to {self.horizon} {self.spec.f.units} (the horizon it was fitted for), "
                f"asked {len(future)}"
            )
        missing = [c for c in self.spec.known if c not in future.columns or future[c].isna().any()]
        if missing:
            raise ValueError(f"future rows need values for the known covariate(s) {missing}")
        if self.constant_ is not None:
            return np.full(len(future), self.constant_)
        forecast = np.asarray(self._predict(history, future), dtype=np.float64)[: len(future)]
        if not np.isfinite(forecast).all():  # an explosive fit: a failed model, never an "ok" row of inf
            bad = int((~np.isfinite(forecast)).sum())
            raise ValueError(f"{type(self).__name__} forecast {bad} of {len(forecast)} periods as inf or NaN")
        return forecast

    def _check_history(self, history: pd.DataFrame) -> None:
        columns = [self.spec.target, *self.spec.covariates]
        missing = [c for c in columns if c not in history.columns]
        if missing:
            raise ValueError(f"history lacks column(s) {missing}")
        if history[columns].isna().any().any():
            raise ValueError("history holds empty values: fill or drop them first (pipelines.forecasting.data)")
        if len(history) > 1 and not history.index.equals(self.spec.f.periods(history.index[0], history.index[-1])):
            raise ValueError(f"history must hold consecutive {self.spec.f.units}, one row each")

    def _target(self, history: pd.DataFrame) -> np.ndarray:
        return history[self.spec.target].to_numpy(np.float64)


@hyperparameters
class SeasonalNaive(Forecaster):
    """Every period repeats the same point of the last observed season (``season``, 0: the spec's)."""

    min_history = 1

    season: int = 0

    def _fit(self, history):
        m = int(self.season) or self.spec.m
        self.season_ = m if len(history) >= m else 1

    def _predict(self, history, future):
        y = self._target(history)[-self.season_ :]
        return np.resize(y, self.horizon)  # y[h mod m]: h days after the origin = the same day of its last season


@hyperparameters
class Sarimax(Forecaster):
    """SARIMAX with the known covariates as exogenous inputs; log target when it is positive.

    Only the fitted parameters are kept: ``predict`` filters the history it is given with them,
    so the model forecasts from any recent window (which is what the registered model gets).
    """

    min_history = 8

    order: tuple = (1, 1, 1)
    seasonal_order: tuple | None = None
    max_train_days: int = 730
    maxiter: int = 60

    def _model(self, history):
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        y = self._target(history)
        endog = np.log(y) if self.log_ else y
        exog = self._exog(history) if self.exog_columns_ else None
        return SARIMAX(
            endog,
            exog=exog,
            order=tuple(self.order),
            seasonal_order=tuple(self.seasonal_order_),
            trend="n",
            enforce_stationarity=False,
            enforce_invertibility=False,
        )

    def _exog(self, frame):
        return (frame[self.exog_columns_].to_numpy(np.float64) - self.exog_mean_) / self.exog_scale_

    def _fit(self, history):
        import warnings

        import statsmodels.tsa.statespace.sarimax  # noqa: F401 - installs its "always" warning filters before ours

        from pipelines.forecasting.freq import MAX_SARIMA_SEASON

        history = history.iloc[-int(self.max_train_days) :]
        m = self.spec.m
        seasonal = m > 1 and m <= MAX_SARIMA_SEASON and len(history) >= 2 * m
        self.seasonal_order_ = self.seasonal_order or ((1, 0, 1, m) if seasonal else (0, 0, 0, 0))
        y = self._target(history)
        self.log_ = bool(np.all(y > 0))
        known = history[list(self.spec.known)]
        self.exog_columns_ = [c for c in self.spec.known if known[c].std() > 0]  # a constant input is singular
        self.exog_mean_ = known[self.exog_columns_].mean().to_numpy()
        self.exog_scale_ = known[self.exog_columns_].std().to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the backtest judges the result
            self.params_ = self._model(history).fit(disp=False, maxiter=int(self.maxiter)).params

    def _predict(self, history, future):
        import warnings

        history = history.iloc[-int(self.max_train_days) :]
        exog = self._exog(future) if self.exog_columns_ else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = self._model(history).filter(self.params_)
            forecast = np.asarray(result.forecast(steps=len(future), exog=exog))
        return np.exp(forecast) if self.log_ else forecast


@dataclass(frozen=True)
class _Lags:
    level_days: int = 28  # periods averaged into the level
    recent: int = 7  # most recent values as lags
    season: int = 7  # "same point of the last season" lag
    year: int = 364  # "same period last year" lag (0: none)

    @classmethod
    def of(cls, spec: SeriesSpec) -> _Lags:
        """Daily: the 28-day level and a week of lags; otherwise a season-long level and lags."""
        f, m = spec.f, max(spec.m, 1)
        if f.name == "daily":
            return cls(28, 7, m, f.year)
        return cls(max(m, 4), min(max(m, 4), 24), m, f.year)


@hyperparameters
class GradientBoosting(Forecaster):
    """A direct multi-horizon gradient-boosting model on lag, driver and calendar features.

    One row per (origin, step): the target ``step`` periods after the origin, relative to the
    mean of the level periods up to the origin (``_Lags.of``: 28 days for a daily series). Early stopping watches the newest 10% of origins,
    with a horizon-long gap so no training target falls inside them.
    """

    @property
    def LAGS(self) -> _Lags:  # noqa: N802 - kept from when it was a class constant
        return _Lags.of(self.spec)

    library: str = "lightgbm"
    n_estimators: int = 800
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 40
    subsample: float = 0.8
    colsample: float = 0.8

    @property
    def min_history(self) -> int:
        return self.LAGS.level_days

    def _rows(self, y, known, past, index, origins, steps):
        """Feature matrix for (origin, step) pairs; y may hold NaN after the last origin."""
        L = self.LAGS
        c = np.concatenate([[0.0], np.cumsum(np.nan_to_num(y))])
        level = (c[origins + 1] - c[origins + 1 - L.level_days]) / L.level_days
        if self.mode_ == "ratio":
            level = np.where(level > 1e-9, level, 1.0)
        day = origins + steps

        def rel(values):
            return to_relative(values, level, self.mode_)

        cols = {"step": steps.astype(float)}
        for k in range(L.recent):
            cols[f"y_lag{k}"] = rel(y[origins - k])
        cols["y_mean7"] = rel((c[origins + 1] - c[origins + 1 - L.recent]) / L.recent)
        same_point = day - L.season * np.ceil(steps / L.season).astype(int)
        cols["y_same_weekday"] = np.where(same_point >= 0, rel(y[np.maximum(same_point, 0)]), np.nan)
        if L.year:
            back = day - L.year - L.year * np.floor((steps - 1) / L.year).astype(int)
            cols["y_last_year"] = np.where(back >= 0, rel(y[np.maximum(back, 0)]), np.nan)
        cols["level_log"] = np.log(np.abs(level) + 1.0)
        for j, name in enumerate(self.spec.known):
            kc = np.concatenate([[0.0], np.cumsum(known[:, j])])
            mean = (kc[origins + 1] - kc[origins + 1 - L.level_days]) / L.level_days
            cols[f"{name}"] = known[day, j]
            cols[f"{name}_vs_28d"] = np.where(np.abs(mean) > 1e-9, known[day, j] / np.where(mean == 0, 1, mean), 0.0)
        for j, name in enumerate(self.spec.past):
            pc_ = np.concatenate([[0.0], np.cumsum(past[:, j])])
            cols[f"{name}_at_origin"] = past[origins, j]
            cols[f"{name}_mean7"] = (pc_[origins + 1] - pc_[origins + 1 - L.recent]) / L.recent
        for name, values in calendar_columns(self.spec.freq, index).items():
            cols[name] = values[day].astype(float)
        return pd.DataFrame(cols), level

    def _arrays(self, history, future=None):
        spec = self.spec
        frame = history if future is None else pd.concat([history, future.reindex(columns=history.columns)])
        if future is not None:
            frame.index = pd.date_range(history.index[0], periods=len(frame), freq=self.spec.f.alias)
        return (
            frame[spec.target].to_numpy(np.float64),
            frame[list(spec.known)].to_numpy(np.float64),
            frame[list(spec.past)].to_numpy(np.float64),
            frame.index,
        )

    def _estimator(self, n_estimators):
        common = dict(
            n_estimators=n_estimators,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            random_state=self.seed,
            n_jobs=1,
        )
        if self.library == "lightgbm":
            from lightgbm import LGBMRegressor

            return LGBMRegressor(
                num_leaves=self.num_leaves,
                min_child_samples=self.min_child_samples,
                subsample_freq=1,
                colsample_bytree=self.colsample,
                verbose=-1,
                **common,
            )
        if self.library == "xgboost":
            from xgboost import XGBRegressor

            return XGBRegressor(
                max_depth=6,
                min_child_weight=self.min_child_samples / 4,
                colsample_bytree=self.colsample,
                tree_method="hist",
                early_stopping_rounds=50,
                **common,
            )
        raise ValueError(f"library must be lightgbm or xgboost, got {self.library!r}")

    def _fit(self, history):
        y, known, past, index = self._arrays(history)
        self.mode_ = relative_mode(y)
        H, n = self.horizon, len(y)
        first = self.LAGS.level_days - 1
        origin_list = np.arange(first, n - 1)
        if len(origin_list) == 0:
            raise ValueError(f"gradient boosting needs more than {first + 1} days of history, got {n}")
        o = np.repeat(origin_list, H)
        s = np.tile(np.arange(1, H + 1), len(origin_list))
        keep = o + s < n
        o, s = o[keep], s[keep]
        X, level = self._rows(y, known, past, index, o, s)
        target = to_relative(y[o + s], level, self.mode_)
        self.features_ = list(X.columns)
        cut = origin_list[int(len(origin_list) * 0.9)] if len(origin_list) >= 20 else None
        if cut is None:
            model = self._estimator(max(50, int(self.n_estimators) // 4))
            if self.library == "xgboost":
                model.set_params(early_stopping_rounds=None)
            model.fit(X, target)
            self.best_iteration_ = model.get_params()["n_estimators"]
        else:
            train, valid = o + H < cut, o >= cut  # a horizon-long gap: no training target lies in the valid part
            model = self._fit_early_stopped(X, target, train, valid)
        self.model_ = model

    def _fit_early_stopped(self, X, target, train, valid):
        model = self._estimator(int(self.n_estimators))
        if self.library == "lightgbm":
            from lightgbm import early_stopping

            model.fit(
                X[train],
                target[train],
                eval_X=(X[valid],),
                eval_y=(target[valid],),
                callbacks=[early_stopping(50, verbose=False)],
            )
            self.best_iteration_ = int(model.best_iteration_ or self.n_estimators)
        else:
            model.fit(X[train], target[train], eval_set=[(X[valid], target[valid])], verbose=False)
            self.best_iteration_ = int(model.best_iteration + 1)
        # Refit on every row with the number of trees early stopping found.
        final = self._estimator(max(self.best_iteration_, 10))
        if self.library == "xgboost":
            final.set_params(early_stopping_rounds=None)
        final.fit(X, target)
        return final

    def _predict(self, history, future):
        y, known, past, index = self._arrays(history, future)
        n_hist = len(history)
        steps = np.arange(1, len(future) + 1)
        origins = np.full(len(steps), n_hist - 1)
        past = np.vstack([past[:n_hist], np.zeros((len(future), past.shape[1]))])
        X, level = self._rows(y, known, past, index, origins, steps)
        return from_relative(self.model_.predict(X[self.features_]), level, self.mode_)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # baseline, statistical, boosting, neural
    build: Callable[..., Forecaster]
    learned: bool = True
    tunable: bool = False


def _neural(arch: str):
    def build(spec, horizon, seed, **params):
        from pipelines.forecasting.neural import NeuralForecaster

        return NeuralForecaster(spec, horizon, seed, arch=arch, **params)

    return build


def _auto(cls: str):
    def build(spec, horizon, seed, **params):
        from pipelines.forecasting import auto

        return getattr(auto, cls)(spec, horizon, seed, **params)

    return build


REGISTRY: dict[str, ModelSpec] = {
    "seasonal_naive": ModelSpec(
        "seasonal_naive", "baseline", lambda spec, horizon, seed, **p: SeasonalNaive(spec, horizon, seed, **p), False
    ),
    "sarimax": ModelSpec("sarimax", "statistical", lambda spec, horizon, seed, **p: Sarimax(spec, horizon, seed, **p)),
    "auto_arima": ModelSpec("auto_arima", "statistical", _auto("AutoArima")),
    "auto_ets": ModelSpec("auto_ets", "statistical", _auto("AutoEts")),
    "theta": ModelSpec("theta", "statistical", _auto("Theta")),
    "lightgbm": ModelSpec(
        "lightgbm", "boosting", lambda spec, horizon, seed, **p: GradientBoosting(spec, horizon, seed, "lightgbm", **p)
    ),
    "xgboost": ModelSpec(
        "xgboost", "boosting", lambda spec, horizon, seed, **p: GradientBoosting(spec, horizon, seed, "xgboost", **p)
    ),
    "lstm": ModelSpec("lstm", "neural", _neural("lstm"), tunable=True),
    "lstm_transformer": ModelSpec("lstm_transformer", "neural", _neural("lstm_transformer"), tunable=True),
}


def get(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown forecasting model {name!r}; known: {sorted(REGISTRY)}") from None


def build(name: str, spec: SeriesSpec, horizon: int, seed: int = 42, **params) -> Forecaster:
    return get(name).build(spec, horizon, seed, **params)
