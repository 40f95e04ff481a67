"""Automatic statistical models: each picks its own form from the data, at the series' season.

- ``AutoArima``: pmdarima's ``auto_arima`` (stepwise search of the ARIMA orders by AICc, unit-root
  tests for the differencing; p, q <= 3 and P, Q <= 1, on at most ``max_train`` recent periods,
  which keeps a search within seconds). A season of at most ``freq.MAX_SARIMA_SEASON`` periods is modelled
  by seasonal orders; a longer one (52 weeks) by Fourier terms of the day of the year as
  exogenous inputs (``fourier_k`` pairs). Known drivers are exogenous inputs too.
- ``AutoEts``: statsmodels' ETS state-space models (additive error; no / additive / damped trend;
  no / additive / multiplicative season), the one with the lowest AICc.
- ``Theta``: statsmodels' Theta method, deseasonalised at the series' season.

Forecasting from another history than the one fitted (the registered model gets a recent
window) keeps the chosen form: ARIMA filters the new window with its fitted parameters; ETS and
Theta refit the chosen form on it (both fit in milliseconds).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd

from pipelines.estimators import hyperparameters
from pipelines.forecasting.freq import MAX_SARIMA_SEASON
from pipelines.forecasting.models import Forecaster


@contextmanager
def _quiet():
    """Convergence chatter off: the backtest judges the result."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _same(history: pd.DataFrame, index: pd.DatetimeIndex) -> bool:
    return len(history) == len(index) and history.index[-1] == index[-1]


@hyperparameters
class AutoArima(Forecaster):
    """pmdarima's auto_arima at the series' season (see the module docstring)."""

    min_history = 10

    max_train: int = 360
    fourier_k: int = 4
    maxiter: int = 30

    def _exog(self, frame_index: pd.DatetimeIndex, frame: pd.DataFrame | None) -> np.ndarray | None:
        cols = []
        if self.fourier_:
            angle = 2 * np.pi * (frame_index.dayofyear.to_numpy() - 1) / 365.25
            for k in range(1, int(self.fourier_k) + 1):
                cols += [np.sin(k * angle), np.cos(k * angle)]
        if self.known_:
            cols += list(((frame[self.known_].to_numpy(np.float64) - self.known_mean_) / self.known_scale_).T)
        return np.column_stack(cols) if cols else None

    def _fit(self, history):
        import pmdarima as pm

        history = history.iloc[-int(self.max_train) :]
        y, m = self._target(history), self.spec.m
        seasonal = 1 < m <= MAX_SARIMA_SEASON and len(y) >= 2 * m + 2
        self.fourier_ = m > MAX_SARIMA_SEASON and self.spec.f.name in ("hourly", "daily", "weekly")
        known = history[list(self.spec.known)]
        self.known_ = [c for c in self.spec.known if known[c].std() > 0]
        self.known_mean_ = known[self.known_].mean().to_numpy()
        self.known_scale_ = known[self.known_].std().to_numpy()
        with _quiet():
            self.model_ = pm.auto_arima(
                y,
                X=self._exog(history.index, history),
                seasonal=seasonal,
                m=m if seasonal else 1,
                information_criterion="aicc",
                stepwise=True,
                max_p=3,
                max_q=3,
                max_P=1,
                max_Q=1,
                maxiter=int(self.maxiter),
                suppress_warnings=True,
                error_action="ignore",
                random_state=self.seed,
            )
        self.order_, self.seasonal_order_ = self.model_.order, self.model_.seasonal_order
        self.index_ = history.index

    def _predict(self, history, future):
        history = history.iloc[-int(self.max_train) :]
        periods = self.spec.f.after(history.index[-1], len(future))
        with _quiet():
            model = self.model_
            if not _same(history, self.index_):
                res = model.arima_res_.apply(self._target(history), exog=self._exog(history.index, history))
                return np.asarray(res.forecast(len(future), exog=self._exog(periods, future)))
            return np.asarray(model.predict(len(future), X=self._exog(periods, future)))


class AutoEts(Forecaster):
    """The ETS model with the lowest AICc among additive-error forms (see the module docstring)."""

    min_history = 8

    def _forms(self, y: np.ndarray) -> list[dict]:
        m = self.spec.m
        seasons = [None]
        if 1 < m <= 52 and len(y) >= 2 * m + 2:
            seasons += ["add"] + (["mul"] if np.all(y > 0) else [])
        trends = [(None, False), ("add", False), ("add", True)]
        return [
            {"trend": t, "damped_trend": d, "seasonal": s, "seasonal_periods": m if s else None}
            for t, d in trends
            for s in seasons
        ]

    def _fit_form(self, y: np.ndarray, form: dict):
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        return ETSModel(y, error="add", **form).fit(disp=False, maxiter=200)

    def _fit(self, history):
        y = self._target(history)
        best = None
        with _quiet():
            for form in self._forms(y):
                try:
                    res = self._fit_form(y, form)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if np.isfinite(res.aicc) and (best is None or res.aicc < best[1].aicc):
                    best = (form, res)
        if best is None:
            raise ValueError("no ETS form could be fitted to this history")
        self.form_, self.result_, self.index_ = best[0], best[1], history.index

    def _predict(self, history, future):
        with _quiet():
            res = self.result_ if _same(history, self.index_) else self._fit_form(self._target(history), self.form_)
            return np.asarray(res.forecast(len(future)))


class Theta(Forecaster):
    """The Theta method, deseasonalised at the series' season when the history holds two of them."""

    min_history = 8

    def _result(self, y: np.ndarray):
        from statsmodels.tsa.forecasting.theta import ThetaModel

        m = self.spec.m
        deseason = m > 1 and len(y) >= 2 * m
        return ThetaModel(y, period=m if deseason else None, deseasonalize=deseason).fit()

    def _fit(self, history):
        with _quiet():
            self.result_ = self._result(self._target(history))

    def _predict(self, history, future):
        with _quiet():
            return np.asarray(self._result(self._target(history)).forecast(len(future)))
