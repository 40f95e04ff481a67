"""Small in-memory series for the forecasting tests."""

import numpy as np
import pandas as pd

from pipelines.forecasting.data import SeriesSpec

SPEC = SeriesSpec("date", "sales", known=("spend", "promo"), past=("clicks",))


def frame(days: int = 200, seed: int = 0, start: str = "2024-01-01", constant: float | None = None) -> pd.DataFrame:
    """A daily series with weekly seasonality, a trend and drivers; ``constant`` makes sales flat."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    t = np.arange(days)
    spend = 100 + 10 * rng.random(days) + 0.1 * t
    promo = (t % 30 < 3).astype(float)
    clicks = spend * 3 + rng.normal(0, 5, days)
    weekly = np.array([1.0, 0.95, 0.9, 0.95, 1.05, 1.25, 1.2])[dates.dayofweek]
    sales = (500 + 2 * t + 3 * spend) * weekly * (1 + 0.4 * promo) * np.exp(rng.normal(0, 0.03, days))
    if constant is not None:
        sales = np.full(days, constant)
    return pd.DataFrame({"date": dates, "sales": sales, "spend": spend, "promo": promo, "clicks": clicks})


def history(days: int = 200, **kwargs) -> pd.DataFrame:
    return frame(days, **kwargs).set_index("date")
