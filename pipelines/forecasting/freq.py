"""Frequencies of a regular series, and the seasonality that follows from each.

One table drives every part of forecasting the same way: the seasonal naive forecast and
MASE's scale use ``season``; SARIMAX's seasonal order uses it when it is short enough for a
state-space model (``season <= MAX_SARIMA_SEASON``); the gradient-boosting models' "same
season" lag and the neural models' "a year ago" input use ``year`` (periods in a year); the
calendar features and the default horizon follow the frequency.

A frequency is declared in the contract (``gold.freq``) or inferred from the median step
between the observed timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_SARIMA_SEASON = 24  # longer seasons (52 weeks, 168 hours, 365 days) make SARIMAX's state too large


@dataclass(frozen=True)
class Freq:
    name: str  # hourly, daily, weekly, monthly, quarterly, yearly
    alias: str  # pandas offset alias of a regular index
    season: int  # the main season (periods): 24, 7, 52, 12, 4, 1
    year: int  # periods in a year (a "same time last year" lag); 0 for yearly
    horizon: int  # default horizon (periods)
    step_days: tuple[float, float]  # median step, in days, that identifies it

    @property
    def units(self) -> str:
        """The plural noun of one period: hours, days, weeks, months, quarters, years."""
        return {"hourly": "hours", "daily": "days", "weekly": "weeks", "monthly": "months"}.get(
            self.name, self.name.replace("ly", "s")
        )

    @property
    def level(self) -> str:
        """The name of the per-period error level (``mase_<level>``)."""
        return self.name

    def seasons(self, override: int | None = None) -> int:
        return int(override) if override else self.season

    def calendar(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Calendar features in [-1, 1] for this frequency (weekday one-hot for daily and hourly)."""
        cols = []
        if self.name == "hourly":
            angle = 2 * np.pi * index.hour.to_numpy() / 24
            cols += [np.sin(angle), np.cos(angle)]
        if self.name in ("hourly", "daily"):
            cols += list(np.eye(7)[index.dayofweek.to_numpy()].T)
        if self.name != "yearly":
            angle = 2 * np.pi * (index.dayofyear.to_numpy() - 1) / 365.25
            cols += [np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle)]
        if not cols:
            return np.zeros((len(index), 0))
        return np.column_stack(cols)

    def n_calendar(self) -> int:
        return self.calendar(pd.date_range("2020-01-01", periods=1, freq=self.alias)).shape[1]

    def periods(self, first: pd.Timestamp, last: pd.Timestamp, name: str | None = None) -> pd.DatetimeIndex:
        return pd.date_range(first, last, freq=self.alias, name=name)

    def after(self, last: pd.Timestamp, n: int, name: str | None = None) -> pd.DatetimeIndex:
        """The ``n`` periods after ``last``."""
        return pd.date_range(last, periods=n + 1, freq=self.alias, name=name)[1:]

    def floor(self, times: pd.Series) -> pd.Series:
        """Each timestamp as the start of its period (a month's rows all on its first day, ...)."""
        t = pd.to_datetime(times)
        if self.name == "hourly":
            return t.dt.floor("h")
        if self.name == "daily":
            return t.dt.normalize()
        if self.name == "weekly":
            return t.dt.to_period(self.alias).dt.end_time.dt.normalize()
        return t.dt.to_period({"monthly": "M", "quarterly": "Q", "yearly": "Y"}[self.name]).dt.start_time


def calendar_columns(freq: str, index: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """The calendar features of the gradient-boosting models at each frequency (none for yearly)."""
    if freq == "hourly":
        return {"hour": index.hour.to_numpy(), "dow": index.dayofweek.to_numpy(), "doy": index.dayofyear.to_numpy()}
    if freq == "daily":
        return {
            "dow": index.dayofweek.to_numpy(),
            "dom": index.day.to_numpy(),
            "month": index.month.to_numpy(),
            "doy": index.dayofyear.to_numpy(),
        }
    if freq == "weekly":
        return {"week": index.isocalendar().week.to_numpy().astype(int), "month": index.month.to_numpy()}
    if freq == "monthly":
        return {"month": index.month.to_numpy()}
    if freq == "quarterly":
        return {"quarter": index.quarter.to_numpy()}
    return {}


FREQS: dict[str, Freq] = {
    "hourly": Freq("hourly", "h", 24, 24 * 364, 48, (0.0, 0.1)),
    "daily": Freq("daily", "D", 7, 364, 28, (0.5, 1.5)),
    "weekly": Freq("weekly", "W-SUN", 52, 52, 13, (6.0, 8.0)),
    "monthly": Freq("monthly", "MS", 12, 12, 12, (27.0, 32.0)),
    "quarterly": Freq("quarterly", "QS", 4, 4, 8, (88.0, 93.0)),
    "yearly": Freq("yearly", "YS", 1, 0, 4, (360.0, 370.0)),
}
NAMES = tuple(FREQS)


def get(name: str) -> Freq:
    try:
        return FREQS[name]
    except KeyError:
        raise ValueError(f"frequency must be one of {list(FREQS)}, got {name!r}") from None


def weekly(anchor: pd.Timestamp) -> Freq:
    """Weekly periods ending on the weekday of ``anchor`` (a series dated on Saturdays stays on Saturdays)."""
    day = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[pd.Timestamp(anchor).dayofweek]
    return Freq("weekly", f"W-{day}", 52, 52, 13, (6.0, 8.0))


def infer(times: pd.Series | pd.DatetimeIndex) -> Freq | None:
    """The frequency whose step matches the median step between distinct timestamps; None when none does."""
    t = pd.DatetimeIndex(pd.to_datetime(pd.Series(times)).drop_duplicates().sort_values())
    if len(t) < 2:
        return None
    step = float(np.median(np.diff(t.values).astype("timedelta64[s]").astype(np.float64))) / 86400
    for f in FREQS.values():
        low, high = f.step_days
        if low <= step <= high and (f.name != "hourly" or abs(step * 24 - 1) < 0.1):
            return weekly(t[-1]) if f.name == "weekly" else f
    return None


def resolve(times, declared: str | None, where: str) -> Freq:
    """The declared frequency (weekly anchored on the data's weekday), else the inferred one, naming the step."""
    t = pd.to_datetime(pd.Series(times)).dropna()
    if declared:
        f = get(declared)
        return weekly(t.iloc[-1]) if f.name == "weekly" and len(t) else f
    f = infer(t)
    if f is None:
        step = pd.Series(t.drop_duplicates().sort_values()).diff().median()
        raise ValueError(
            f"{where}: cannot tell the frequency (median step {step}); declare it as gold.freq in the contract, "
            f"one of {list(FREQS)}"
        )
    return f
