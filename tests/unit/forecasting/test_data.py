"""Series preparation: history and plan, missing days filled or refused, and the length checks users hit."""

import numpy as np
import pandas as pd
import pytest

from pipelines.forecasting.data import ForecastDataError, check_lengths, future_covariates, prepare_series
from tests.unit.forecasting.helpers import SPEC, frame


def test_history_and_plan_are_split_at_the_last_observed_day():
    f = frame(100)
    f.loc[90:, ["sales", "clicks"]] = np.nan  # the last 10 days are a plan
    series = prepare_series(f, SPEC)
    assert len(series.history) == 90 and len(series.plan) == 10
    assert series.history.index.freq == "D" and series.filled == []
    future, source = future_covariates(series, 7)
    assert source == "plan" and future.index[0] == series.history.index[-1] + pd.Timedelta(days=1)
    assert future["spend"].tolist() == f["spend"].iloc[90:97].tolist()


def test_without_a_plan_future_drivers_are_taken_as_last_year():
    series = prepare_series(frame(400), SPEC)
    future, source = future_covariates(series, 7)
    assert source == "as last year"
    year_ago = series.history.loc[future.index - pd.Timedelta(days=364), "spend"].to_numpy()
    assert np.allclose(future["spend"].to_numpy(), year_ago)


def test_short_gaps_are_interpolated_and_named():
    f = frame(60).drop(index=[10, 11])  # two days without a row
    f.loc[30, "sales"] = np.nan  # and one day without a value
    series = prepare_series(f, SPEC, max_gap=3)
    assert series.filled == ["2024-01-11", "2024-01-12", "2024-01-31"]
    assert len(series.history) == 60 and not series.history.isna().any().any()
    a, b = f.set_index("date").loc["2024-01-10", "sales"], f.set_index("date").loc["2024-01-13", "sales"]
    assert series.history.loc["2024-01-11", "sales"] == pytest.approx(a + (b - a) / 3)
    assert set(series.history["promo"].unique()) <= {0.0, 1.0}  # a 0/1 driver stays 0/1


def test_a_long_gap_is_refused_naming_it():
    f = frame(60).drop(index=range(20, 30))
    with pytest.raises(ForecastDataError, match=r"misses 10 days in a row \(2024-01-21\.\.2024-01-30 \(10 days\)\)"):
        prepare_series(f, SPEC, dataset="shop", max_gap=3)


def test_missing_days_are_refused_when_asked():
    f = frame(60).drop(index=[10])
    with pytest.raises(ForecastDataError, match="misses 1 day.*2024-01-11.*missing_dates=fill"):
        prepare_series(f, SPEC, missing="refuse")


def test_repeated_days_are_refused_and_weekly_rows_are_a_weekly_series():
    f = frame(30)
    with pytest.raises(ForecastDataError, match="several rows for day.*2024-01-04.*gold.aggregate"):
        prepare_series(pd.concat([f, f.iloc[[3]]]), SPEC)
    weekly = prepare_series(f.iloc[::7], SPEC)
    assert weekly.spec.freq == "weekly" and weekly.spec.m == 52 and len(weekly.history) == 5


def test_missing_column_and_text_column_are_named():
    with pytest.raises(ForecastDataError, match="no column 'clicks'"):
        prepare_series(frame(30).drop(columns="clicks"), SPEC)
    with pytest.raises(ForecastDataError, match="column 'spend' .* is not numeric"):
        prepare_series(frame(30).assign(spend="lots"), SPEC)
    with pytest.raises(ForecastDataError, match="no observed value of 'sales'"):
        prepare_series(frame(30).assign(sales=np.nan), SPEC)


def test_history_days_keeps_the_newest_days():
    series = prepare_series(frame(100), SPEC, history_days=40)
    assert len(series.history) == 40 and series.history.index[-1] == pd.Timestamp("2024-04-09")


def test_a_horizon_longer_than_the_history_is_a_clear_error():
    with pytest.raises(
        ForecastDataError, match=r"horizon of 90 periods is longer than the history of dataset 'shop' \(60 periods\)"
    ):
        check_lengths(60, 90, 30, 4, 90, "shop")


def test_a_short_series_is_a_clear_error():
    with pytest.raises(
        ForecastDataError, match=r"too short: 100 periods.*need at least 274.*lower horizon, seq_len or backtest_folds"
    ):
        check_lengths(100, 28, 30, 4, 28, "shop")
    assert check_lengths(274, 28, 30, 4, 28) == 30 + 4 * 28 + 20


@pytest.mark.parametrize("horizon, folds, step", [(0, 1, 1), (7, 0, 7), (7, 1, 0)])
def test_nonsense_lengths_are_refused(horizon, folds, step):
    with pytest.raises(ForecastDataError, match="must be"):
        check_lengths(500, horizon, 14, folds, step)
