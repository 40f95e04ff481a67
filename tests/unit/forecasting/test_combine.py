"""Selection: the leaderboard's ``ensemble`` (the mean of the best models by backtest, scored and registered
like one) and ``backtest_folds: 0`` (folds sized by the data)."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipelines.constants import GOLD
from pipelines.forecasting import combine, models, run, windows
from pipelines.forecasting.backtest import run_backtest
from pipelines.forecasting.data import ForecastDataError, auto_folds, folds_for
from pipelines.forecasting.pyfunc import ForecastModel, example_input
from pipelines.lake import Lake
from tests.unit.forecasting.helpers import SPEC, history
from tests.unit.forecasting.test_pyfunc_and_run import SMALL, _write_gold, frame, settings  # noqa: F401


def _fitted(h):
    return [models.build(name, SPEC, 7, 0).fit(h) for name in ("seasonal_naive", "sarimax", "theta")]


def test_the_ensemble_forecasts_the_mean_of_its_members_and_serves_as_a_pyfunc():
    h = history(120)
    train, future = h.iloc[:-7], h.iloc[-7:][list(SPEC.known)]
    members = _fitted(train)
    ensemble = combine.Ensemble.of_fitted(members, SPEC, 7)
    expected = np.mean([m.predict(train, future) for m in members], axis=0)
    assert np.allclose(ensemble.predict(train, future), expected)
    assert ensemble.min_history == max(m.min_history for m in members)
    served = ForecastModel(ensemble, SPEC, 7, combine.NAME).predict(None, example_input(train, future, SPEC, 60))
    from_window = np.mean([m.predict(train.iloc[-60:], future) for m in members], axis=0)  # what it was given
    assert len(served) == 7 and np.allclose(served["forecast"], from_window)
    refit = combine.Ensemble(SPEC, 7, members=_fitted(train)).fit(h.iloc[:-14])  # fit refits every member
    assert all(m.n_train_days_ == len(h) - 14 for m in refit.members)


def test_members_are_the_k_best_successful_models_or_none():
    records = [
        {"model": "a", "status": "ok", "mase_daily": 0.9, "model_uri": "u"},
        {"model": "b", "status": "ok", "mase_daily": 0.5, "model_uri": "u"},
        {"model": "c", "status": "failed", "mase_daily": None, "model_uri": None},
        {"model": "d", "status": "ok", "mase_daily": 0.7, "model_uri": "u"},
        {"model": "e", "status": "ok", "mase_daily": 1.2, "model_uri": "u"},
    ]
    assert [r["model"] for r in combine.members(records, "mase_daily", 3)] == ["b", "d", "a"]
    assert combine.members(records, "mase_daily", 5) == []  # only four succeeded
    assert combine.members(records, "mase_daily", 0) == []  # switched off


def test_mean_forecast_averages_matching_rows_and_refuses_different_ones():
    rows = pd.DataFrame(
        {"kind": "backtest", "origin": pd.Timestamp("2024-01-07"), "date": pd.date_range("2024-01-08", periods=3)}
    )
    a, b = rows.assign(forecast=[1.0, 2.0, 3.0], model="a"), rows.assign(forecast=[3.0, 4.0, 5.0], model="b")
    mean = combine.mean_forecast({"a": a, "b": b})
    assert mean["forecast"].tolist() == [2.0, 3.0, 4.0] and set(mean["model"]) == {combine.NAME}
    assert combine.mean_forecast({"a": a, "b": b.iloc[:2]}) is None


def test_an_ensemble_of_one_model_scores_exactly_as_its_backtest():
    """The combined backtest is scored fold by fold as run_backtest scores a model."""
    h = history(160)
    origins = windows.origins(len(h), 7, 3, 7)
    bt = run_backtest(lambda: models.build("theta", SPEC, 7, 0), h, SPEC, 7, origins)
    staged = bt.predictions.assign(kind="backtest", model="theta")
    combined = combine.mean_forecast({"x": staged, "y": staged.copy()})
    scores = combine.score(combined, h[SPEC.target], SPEC.freq, SPEC.m, None)
    assert scores.keys() == bt.metrics.keys()
    assert all(np.isclose(scores[k], bt.metrics[k]) for k in scores)


def test_the_leaderboard_ranks_and_can_register_the_ensemble(settings):  # noqa: F811
    _write_gold(settings, frame(220))
    params = {**SMALL, "models": ["seasonal_naive", "sarimax", "theta", "lightgbm"]}
    context = run.prepare("shop", {**params, "ds": "2024-12-31"}, "forecasting", "manual__ens", settings=settings)
    records = [run.backtest_model(context, m, settings) for m in params["models"]]
    summary = run.leaderboard(context, records, settings)
    lake = Lake(settings.lake_root)
    board = lake.read_partition(GOLD, "shop_forecast_leaderboard", "2024-12-31").to_pandas()
    row = board.set_index("model").loc[combine.NAME]
    members = board[board["model"] != combine.NAME].nsmallest(3, "mase_daily")["model"].tolist()
    assert row["status"] == "ok" and json.loads(row["params"])["members"] == members
    forecast = lake.read_partition(GOLD, "shop_forecast", "2024-12-31").to_pandas()
    daily = forecast[forecast["level"] == "daily"].pivot(index="period_start", columns="model", values="forecast")
    assert np.allclose(daily[combine.NAME], daily[members].mean(axis=1))
    # Whatever won, the ensemble's logged pyfunc serves the mean of its members.
    h = history(220)
    window = example_input(h.iloc[:-7], h.iloc[-7:][list(SPEC.known)], SPEC, 60)
    served = mlflow.pyfunc.load_model(row["model_uri"]).predict(window)
    each = [mlflow.pyfunc.load_model(board.set_index("model").loc[m, "model_uri"]).predict(window) for m in members]
    assert np.allclose(served["forecast"], np.mean([e["forecast"] for e in each], axis=0))
    if summary["best_model"] == combine.NAME:
        assert summary["registered"]["version"] == "1"
    # A retried leaderboard (the staging cleared by the first try) finds the ensemble the first try logged.
    retry = run.leaderboard(context, records, settings)
    assert retry["best_model"] == summary["best_model"] and retry["registered"] == summary["registered"]
    again = lake.read_partition(GOLD, "shop_forecast_leaderboard", "2024-12-31").to_pandas().set_index("model")
    assert again.loc[combine.NAME, "mlflow_run_id"] == row["mlflow_run_id"]


def test_backtest_folds_0_scores_at_least_100_periods_with_3_to_12_folds(settings):  # noqa: F811
    assert [auto_folds(h) for h in (1, 8, 24, 28, 31, 104)] == [12, 12, 5, 4, 4, 3]
    assert folds_for(195, 8, 0, 8, 4) == 12  # quarterly, two-year horizon: 12 origins
    assert folds_for(60, 8, 0, 8, 4) == 5  # the history allows only 5 (16 periods before the first origin)
    assert folds_for(195, 8, 2, 8, 4) == 2  # a number given is kept
    assert run.run_params({"backtest_folds": 0}, settings)["backtest_folds"] == 0
    with pytest.raises(ForecastDataError, match="backtest_folds must be at least 0, got -1"):
        run.run_params({"backtest_folds": -1}, settings)
