"""Time-ordered splitting and windowing: calendar features, backtest origins, scalers, neural windows.

Nothing here shuffles time. Scalers are fitted on the training part only and reused as they
are on later days. A window is ``seq_len`` past days followed by ``horizon`` future days: the
future part carries the known covariates and the calendar, never the target (it is zero there,
with a flag saying so), so a model cannot see what it must predict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.forecasting.data import SeriesSpec


def calendar(index: pd.DatetimeIndex) -> np.ndarray:
    """Weekday one-hot (7) and two yearly harmonics (4): 11 columns, all in [-1, 1]."""
    dow = np.eye(7)[index.dayofweek.to_numpy()]
    angle = 2 * np.pi * (index.dayofyear.to_numpy() - 1) / 365.25
    yearly = np.column_stack([np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle)])
    return np.hstack([dow, yearly])


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
    """How neural windows are cut and scaled; fitted once on the training history."""

    spec: SeriesSpec
    seq_len: int
    horizon: int
    mode: str
    known: Scaler
    past: Scaler
    target_scale: float

    @property
    def n_features(self) -> int:
        return 2 + len(self.spec.known) + len(self.spec.past) + 11

    @classmethod
    def fit(cls, history: pd.DataFrame, spec: SeriesSpec, seq_len: int, horizon: int) -> WindowSpec:
        y = history[spec.target].to_numpy(np.float64)
        mode = relative_mode(y)
        ws = cls(
            spec,
            seq_len,
            horizon,
            mode,
            Scaler.fit(history[list(spec.known)].to_numpy()),
            Scaler.fit(history[list(spec.past)].to_numpy()),
            1.0,
        )
        starts = np.arange(0, len(history) - seq_len - horizon + 1)
        if len(starts):
            level = ws.levels(y, starts)
            full = np.lib.stride_tricks.sliding_window_view(y, seq_len + horizon)[starts]
            rel = to_relative(full, level[:, None], mode)
            std = float(rel.std())
            ws.target_scale = std if std > 1e-12 else 1.0
        return ws

    def levels(self, y: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Mean of each window's past part: the scale its target is read and predicted in."""
        c = np.concatenate([[0.0], np.cumsum(y)])
        level = (c[starts + self.seq_len] - c[starts]) / self.seq_len
        if self.mode == "ratio":
            level = np.where(level > 1e-9, level, 1.0)
        return level

    def day_features(self, known: np.ndarray, past: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
        """Scaled covariates and calendar, one row per day (past covariates may hold NaN in the future)."""
        return np.hstack([self.known.transform(known), self.past.transform(past), calendar(index)])

    def windows(self, history: pd.DataFrame, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training windows at the given start positions: inputs (n, L+H, F), targets (n, H), levels (n,)."""
        spec, L, H = self.spec, self.seq_len, self.horizon
        y = history[spec.target].to_numpy(np.float64)
        days = self.day_features(
            history[list(spec.known)].to_numpy(), history[list(spec.past)].to_numpy(), history.index
        )
        level = self.levels(y, starts)
        yw = np.lib.stride_tricks.sliding_window_view(y, L + H)[starts]
        z = to_relative(yw, level[:, None], self.mode) / self.target_scale
        feats = np.lib.stride_tricks.sliding_window_view(days, L + H, axis=0)[starts].transpose(0, 2, 1)
        x = self._assemble(z[:, :L], feats)
        return x.astype(np.float32), z[:, L:].astype(np.float32), level

    def one_window(self, history: pd.DataFrame, future: pd.DataFrame) -> tuple[np.ndarray, float]:
        """The input window to forecast the days of ``future`` (known covariates) after ``history``."""
        spec, L, H = self.spec, self.seq_len, self.horizon
        past_part = history.iloc[-L:]
        y = past_part[spec.target].to_numpy(np.float64)
        days_past = self.day_features(
            past_part[list(spec.known)].to_numpy(), past_part[list(spec.past)].to_numpy(), past_part.index
        )
        fut_index = pd.date_range(history.index[-1] + pd.Timedelta(days=1), periods=H, freq="D")
        known_future = future[list(spec.known)].reindex(fut_index).ffill().to_numpy(np.float64)
        days_future = self.day_features(known_future, np.zeros((H, len(spec.past))), fut_index)
        level = float(self.levels(np.concatenate([y, np.zeros(H)]), np.array([0]))[0])
        z = to_relative(y, level, self.mode) / self.target_scale
        x = self._assemble(z[None, :], np.vstack([days_past, days_future])[None])
        return x.astype(np.float32), level

    def _assemble(self, z_past: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """Per step: [target (0 in the future), is-future flag, known, past (0 in the future), calendar]."""
        n, L, H = len(z_past), self.seq_len, self.horizon
        k, p = len(self.spec.known), len(self.spec.past)
        target = np.concatenate([z_past, np.zeros((n, H))], axis=1)[..., None]
        flag = np.concatenate([np.zeros((n, L)), np.ones((n, H))], axis=1)[..., None]
        feats = feats.copy()
        feats[:, L:, k : k + p] = 0.0  # past-only covariates are unknown over the horizon
        return np.concatenate([target, flag, np.nan_to_num(feats)], axis=2)
