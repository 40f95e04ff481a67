"""Time-ordered splitting and windowing: calendar features, backtest origins, scalers, neural windows.

Nothing here shuffles time. Scalers are fitted on the training part only and reused as they
are on later days. A window is ``seq_len`` past days followed by ``horizon`` future days: the
future part carries the known covariates and the calendar, never the target (it is zero there,
with a flag saying so), so a model cannot see what it must predict. Every day of the window also
carries the target of the same period a year before (364 days for a daily series: the same
weekday; 12 months, 52 weeks, ...; none for a yearly series), with a flag for periods that have
one. The calendar features follow the frequency (``Freq.calendar``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.forecasting.data import SeriesSpec
from pipelines.forecasting.freq import FREQS


def calendar(index: pd.DatetimeIndex, freq: str = "daily") -> np.ndarray:
    """Calendar features of the frequency; daily: weekday one-hot (7) and two yearly harmonics (4), in [-1, 1]."""
    return FREQS[freq].calendar(index)


def origins(n: int, horizon: int, folds: int, step: int) -> list[int]:
    """Positions of the last training day of each rolling-origin fold, oldest first; the last fold ends at n - 1."""
    last = n - 1 - horizon
    return [last - (folds - 1 - k) * step for k in range(folds)]


@dataclass(frozen=True)
class Scaler:
    """Standardisation fitted on training rows only; a constant column gets a scale of 1."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        mean = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
        std = values.std(axis=0) if len(values) else np.ones(values.shape[1])
        return cls(mean, np.where(std > 1e-12, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.scale


def relative_mode(y: np.ndarray) -> str:
    """'ratio' for a positive target (levels scale with the trend), else 'difference'."""
    return "ratio" if len(y) and np.nanmin(y) > 0 else "difference"


def to_relative(y: np.ndarray, level: np.ndarray, mode: str) -> np.ndarray:
    return y / level - 1.0 if mode == "ratio" else y - level


def from_relative(r: np.ndarray, level: np.ndarray, mode: str) -> np.ndarray:
    return (r + 1.0) * level if mode == "ratio" else r + level


@dataclass
class WindowSpec:
    """How neural windows are cut and scaled; fitted once, on the training history only.

    The target and every covariate enter relative to their own mean over the window's past part
    (a ratio for positive series, a difference otherwise), then divided by a spread fitted on the
    training windows. So a trend in sales or budgets never pushes inputs outside what training saw.
    """

    spec: SeriesSpec
    seq_len: int
    horizon: int
    mode: str
    cov_modes: tuple[str, ...]
    cov_scale: np.ndarray
    target_scale: float

    @property
    def year_lag(self) -> int:
        """Periods in a year, when that is longer than the horizon (else last year's value could be a target)."""
        year = self.spec.f.year
        return year if year > self.horizon else 0

    @property
    def n_features(self) -> int:
        return 4 + len(self.spec.covariates) + self.spec.f.n_calendar()

    @classmethod
    def fit(cls, history: pd.DataFrame, spec: SeriesSpec, seq_len: int, horizon: int) -> WindowSpec:
        y = history[spec.target].to_numpy(np.float64)
        cov = history[spec.covariates].to_numpy(np.float64)
        modes = tuple(relative_mode(cov[:, j]) for j in range(cov.shape[1]))
        ws = cls(spec, seq_len, horizon, relative_mode(y), modes, np.ones(cov.shape[1]), 1.0)
        starts = np.arange(0, len(history) - seq_len - horizon + 1)
        if len(starts):
            yw, _, covw, _ = ws._raw(history, starts)
            _, rel_y, rel_cov = ws._relative(yw, covw)
            ws.target_scale = _spread(rel_y.ravel())
            ws.cov_scale = np.array([_spread(rel_cov[..., j].ravel()) for j in range(cov.shape[1])])
        return ws

    def windows(self, history: pd.DataFrame, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training windows at the given start positions: inputs (n, L+H, F), targets (n, H), levels (n,)."""
        return self._encode(*self._raw(history, starts))

    def one_window(self, history: pd.DataFrame, future: pd.DataFrame) -> tuple[np.ndarray, float]:
        """The input window to forecast the days of ``future`` (known covariates) after ``history``."""
        spec, L, H = self.spec, self.seq_len, self.horizon
        past = history.iloc[-L:]
        days = past.index.append(self.spec.f.after(history.index[-1], H))
        frame = past[[spec.target, *spec.covariates]].reindex(days)
        known = future[list(spec.known)].reindex(days[L:]).ffill()  # fewer days given: the last one repeats
        frame.loc[days[L:], list(spec.known)] = known.to_numpy()
        yw = frame[spec.target].to_numpy(np.float64)[None]
        year, y_all = self.year_lag, history[spec.target].to_numpy(np.float64)
        pos = len(history) - L + np.arange(L + H) - year  # position of each window period a year before
        ok = (pos >= 0) & (pos < len(y_all)) & (year > 0)
        lagw = np.where(ok, y_all[np.clip(pos, 0, len(y_all) - 1)], np.nan)[None]
        covw = frame[spec.covariates].to_numpy(np.float64)[None]
        x, _, level = self._encode(yw, lagw, covw, spec.f.calendar(days)[None])
        return x, float(level[0])

    def _raw(self, history: pd.DataFrame, starts: np.ndarray):
        """Target, last year's target, covariates and calendar of each window: (n, W), (n, W), (n, W, C), (n, W, 11)."""
        spec, W = self.spec, self.seq_len + self.horizon
        view = np.lib.stride_tricks.sliding_window_view
        y = history[spec.target].to_numpy(np.float64)
        year = self.year_lag
        lagged = np.concatenate([np.full(year, np.nan), y])[: len(y)] if year else np.full(len(y), np.nan)
        cov = history[spec.covariates].to_numpy(np.float64)
        cal = spec.f.calendar(history.index)
        return (
            view(y, W)[starts],
            view(lagged, W)[starts],
            view(cov, W, axis=0)[starts].transpose(0, 2, 1),
            view(cal, W, axis=0)[starts].transpose(0, 2, 1),
        )

    def _relative(self, yw: np.ndarray, covw: np.ndarray):
        L = self.seq_len
        level = yw[:, :L].mean(axis=1)
        if self.mode == "ratio":
            level = np.where(level > 1e-9, level, 1.0)
        rel_y = to_relative(yw, level[:, None], self.mode)
        rel_cov = np.empty_like(covw)
        for j, mode in enumerate(self.cov_modes):
            c_level = covw[:, :L, j].mean(axis=1)
            if mode == "ratio":
                c_level = np.where(c_level > 1e-9, c_level, 1.0)
            rel_cov[..., j] = to_relative(covw[..., j], c_level[:, None], mode)
        return level, rel_y, rel_cov

    def _encode(self, yw, lagw, covw, calw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per step: [target (0 in the future), is-future flag, last year's target, has-last-year flag,
        covariates (past-only ones 0 in the future), calendar]; plus the future targets and the levels."""
        n, L, H = len(yw), self.seq_len, self.horizon
        level, rel_y, rel_cov = self._relative(yw, covw)
        z = rel_y / self.target_scale
        z_year = to_relative(lagw, level[:, None], self.mode) / self.target_scale
        covs = rel_cov / self.cov_scale
        covs[:, L:, len(self.spec.known) :] = 0.0  # past-only covariates are unknown over the horizon
        target = np.concatenate([z[:, :L], np.zeros((n, H))], axis=1)[..., None]
        flag = np.concatenate([np.zeros((n, L)), np.ones((n, H))], axis=1)[..., None]
        x = np.concatenate(
            [target, flag, np.nan_to_num(z_year)[..., None], (~np.isnan(z_year))[..., None], np.nan_to_num(covs), calw],
            axis=2,
        )
        return x.astype(np.float32), z[:, L:].astype(np.float32), level


def _spread(values: np.ndarray) -> float:
    std = float(np.nanstd(values)) if len(values) else 0.0
    return std if std > 1e-12 else 1.0
