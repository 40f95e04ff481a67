"""Simulated datasets, named in include/config/datasets.yaml as ``sim:<name>``.

A simulator is a pure function ``(seed, **options) -> DataFrame``: the same seed and options
give the same rows on every machine. ``options`` come from ``datasets.<name>.options``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

# Traffic by weekday, Monday first: weekend shoppers browse and buy more.
_TRAFFIC_DOW = np.array([1.00, 0.98, 0.97, 0.99, 1.04, 1.12, 1.15])
_CVR_DOW = np.array([1.00, 1.00, 0.99, 1.00, 1.02, 1.05, 1.06])
_SPEND_DOW = np.array([1.03, 1.03, 1.02, 1.02, 1.00, 0.95, 0.95])  # B2B-style pacing: a little less on weekends

KNOWN_AHEAD = ("ad_spend", "discount_rate", "promotion", "seasonality_index")
OBSERVED_ONLY = ("impressions", "clicks", "ctr", "conversions", "cvr")


def simulate_sales(
    seed: int = 42,
    start: str = "2022-01-01",
    days: int = 1461,
    plan_days: int = 91,
    glitches: int = 6,
) -> pd.DataFrame:
    """Daily e-commerce sales with the marketing drivers that cause them.

    One row per day from ``start`` for ``days`` days of history, then ``plan_days`` days of plan:
    rows whose planned drivers (ad spend, discount rate, promotion, seasonality index) are
    filled and whose outcomes (impressions, clicks, CTR, conversions, CVR, sales) are empty.

    How a day comes about (t in years since ``start``, ``idx`` the seasonality index):

    - trend: demand and budgets grow 15% a year (``exp(0.14 t)``); order values 3% a year.
    - yearly seasonality: ``seasonality_index`` = 1 + a winter swing (peak late December,
      trough in early summer) + a holiday bump around Black Friday and Christmas; it is a
      planning index (think search-interest), known ahead, published with a little noise.
    - weekly seasonality: more traffic and conversion on weekends, a little less ad spend.
    - promotions: a 4-day Black Friday to Cyber Monday event (30% off), a 5-day summer sale
      (20% off) and a 3-6 day campaign every 5-8 weeks (10-25% off); off-promotion coupons
      give a small drifting discount (about 2-4%).
    - ad spend = budget x trend x (0.7 + 0.3 idx) x 1.4 in promotions x weekday pacing x noise;
      impressions = spend / CPM (CPM dearer in peak season); clicks ~ Binomial(impressions,
      CTR), CTR = 1.8% x creative fatigue (a slow AR(1)) x 1.12 in promotions x weekday;
      conversions (ad-attributed) ~ Binomial(clicks, CVR), CVR = 2.8% x site drift (AR(1)) x
      (1 + 2 discount) x 1.1 in promotions x idx^0.3 x weekday.
    - organic orders ~ Poisson(180 x trend x idx x weekday x (1 + 1.5 discount) x 1.25 in
      promotions x a slow AR(1) demand shock): not observed, they reach sales only.
    - sales = (conversions + organic orders) x order value x noise (2%), where the order value
      is 62 x (1 - 0.5 discount) x (1 + 0.08 (idx - 1)) x 3%/year x noise (4%).

    So sales depend on conversions, discounts, promotions, seasonality and trend, plus noise;
    CTR and CVR carry slow hidden states, so their recent past says something about the near
    future. ``glitches`` extra rows imitate a feed's faults (appended at the end, as late
    re-sends): half are exact repeats of a day, half are a second copy of a day with a broken
    value (CTR above 1, or negative ad spend); the silver contract quarantines all of them.
    """
    if days < 1 or plan_days < 0 or glitches < 0:
        raise ValueError(
            f"simulate_sales needs days >= 1, plan_days >= 0, glitches >= 0; got {days}, {plan_days}, {glitches}"
        )
    n = days + plan_days
    # One generator per component, so a component's draws do not depend on the others.
    rng = {name: np.random.default_rng([seed, k]) for k, name in enumerate(_COMPONENTS)}
    dates = pd.date_range(start, periods=n, freq="D")
    t = np.arange(n) / 365.25
    dow = dates.dayofweek.to_numpy()
    doy = dates.dayofyear.to_numpy()

    idx = _seasonality(dates, doy) * np.exp(rng["index"].normal(0, 0.01, n))
    promo, discount = _promotions(dates, rng["promo"])
    discount = np.where(promo == 1, discount, 0.03 + 0.01 * _ar1(rng["coupon"], n, 0.95, 0.3))
    discount = np.clip(discount, 0.0, 0.5).round(3)
    trend = np.exp(0.14 * t)

    spend = 1800 * trend * (0.7 + 0.3 * idx) * np.where(promo == 1, 1.4, 1.0) * _SPEND_DOW[dow]
    spend = (spend * np.exp(rng["spend"].normal(0, 0.12, n))).round(2)
    cpm = 7.5 * (1 + 0.6 * (idx - 1)) * np.exp(rng["cpm"].normal(0, 0.06, n))
    impressions = np.round(spend / cpm * 1000).astype(np.int64)
    ctr_true = 0.018 * np.exp(_ar1(rng["fatigue"], n, 0.97, 0.04)) * np.where(promo == 1, 1.12, 1.0) * _TRAFFIC_DOW[dow]
    clicks = rng["clicks"].binomial(impressions, np.clip(ctr_true, 0, 1))
    cvr_true = (
        0.028
        * np.exp(_ar1(rng["site"], n, 0.985, 0.025))
        * (1 + 2.0 * discount)
        * np.where(promo == 1, 1.1, 1.0)
        * idx**0.3
        * _CVR_DOW[dow]
    )
    conversions = rng["conversions"].binomial(clicks, np.clip(cvr_true, 0, 1))
    organic_rate = (
        180
        * trend
        * idx
        * _TRAFFIC_DOW[dow]
        * (1 + 1.5 * discount)
        * np.where(promo == 1, 1.25, 1.0)
        * np.exp(_ar1(rng["demand"], n, 0.9, 0.03))
    )
    organic = rng["organic"].poisson(organic_rate)
    order_value = (
        62 * (1 - 0.5 * discount) * (1 + 0.08 * (idx - 1)) * np.exp(0.03 * t) * np.exp(rng["aov"].normal(0, 0.04, n))
    )
    sales = ((conversions + organic) * order_value * np.exp(rng["noise"].normal(0, 0.02, n))).round(2)

    frame = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "impressions": impressions,
            "clicks": clicks,
            "ctr": np.where(impressions > 0, clicks / np.maximum(impressions, 1), 0.0).round(5),
            "conversions": conversions,
            "cvr": np.where(clicks > 0, conversions / np.maximum(clicks, 1), 0.0).round(5),
            "ad_spend": spend,
            "discount_rate": discount,
            "seasonality_index": idx.round(4),
            "promotion": promo,
            "sales": sales,
        }
    )
    # The plan: drivers decided ahead are filled, outcomes are not known yet.
    for column in (*OBSERVED_ONLY, "sales"):
        frame[column] = frame[column].astype("Float64" if frame[column].dtype.kind == "f" else "Int64")
        frame.loc[days:, column] = pd.NA
    return pd.concat([frame, _glitches(frame.iloc[:days], glitches, rng["glitch"])], ignore_index=True)


_COMPONENTS = (
    "index",
    "promo",
    "coupon",
    "spend",
    "cpm",
    "fatigue",
    "clicks",
    "site",
    "conversions",
    "demand",
    "organic",
    "aov",
    "noise",
    "glitch",
)


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    """A stationary AR(1) path (starts in its stationary distribution)."""
    shocks = rng.normal(0, sigma, n)
    out = np.empty(n)
    out[0] = shocks[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def _seasonality(dates: pd.DatetimeIndex, doy: np.ndarray) -> np.ndarray:
    winter = 0.12 * np.cos(2 * np.pi * (doy - 355) / 365.25)
    # Holiday bump: Black Friday (late November) through Christmas, then a January lull.
    holiday = 0.35 * np.exp(-0.5 * ((doy - 338) / 14) ** 2) - 0.08 * np.exp(-0.5 * ((doy - 15) / 8) ** 2)
    return 1.0 + winter + holiday


def _black_friday(year: int) -> pd.Timestamp:
    november = pd.date_range(f"{year}-11-01", f"{year}-11-30", freq="D")
    return november[november.dayofweek == 4][3]  # fourth Friday


def _promotions(dates: pd.DatetimeIndex, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Promotion flag and its discount: fixed yearly events plus campaigns every 5-8 weeks."""
    n = len(dates)
    promo = np.zeros(n, dtype=np.int64)
    discount = np.zeros(n)
    position = {d: i for i, d in enumerate(dates)}

    def mark(first: pd.Timestamp, length: int, rate: float) -> None:
        for k in range(length):
            i = position.get(first + pd.Timedelta(days=k))
            if i is not None:
                promo[i], discount[i] = 1, rate

    for year in range(dates[0].year, dates[-1].year + 1):
        mark(_black_friday(year), 4, 0.30)
        mark(pd.Timestamp(f"{year}-07-10"), 5, 0.20)
    i = int(rng.integers(10, 40))
    while i < n:
        length, rate = int(rng.integers(3, 7)), float(rng.choice([0.10, 0.15, 0.20, 0.25]))
        if not promo[i : i + length].any():
            mark(dates[i], length, rate)
        i += int(rng.integers(35, 57))
    return promo, discount


def _glitches(history: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    """Late re-sends: exact repeats of some days and broken copies of others."""
    if count == 0 or history.empty:
        return history.iloc[:0]
    picks = rng.choice(len(history), size=min(count, len(history)), replace=False)
    rows = history.iloc[np.sort(picks)].copy()
    broken = rows.index[1::2]
    half = len(broken) // 2
    rows.loc[broken[:half], "ctr"] = 1.7  # clicks above impressions
    rows.loc[broken[half:], "ad_spend"] = -rows.loc[broken[half:], "ad_spend"]  # a sign flip in the export
    return rows


SIMULATORS: dict[str, Callable[..., pd.DataFrame]] = {"sales": simulate_sales}


def simulate(name: str, seed: int, options: dict | None = None) -> pd.DataFrame:
    """Run the named simulator; unknown names and options are refused naming what is known."""
    import inspect

    if name not in SIMULATORS:
        raise KeyError(f"unknown simulator {name!r}; known: {sorted(SIMULATORS)}")
    func = SIMULATORS[name]
    allowed = set(inspect.signature(func).parameters) - {"seed"}
    unknown = set(options or {}) - allowed
    if unknown:
        raise TypeError(f"simulator {name!r} has no option(s) {sorted(unknown)}; its options: {sorted(allowed)}")
    return func(seed=seed, **(options or {}))
