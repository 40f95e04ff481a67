"""Bayesian tuning stays inside its space and before the backtest; evaluate() survives failures and flat series."""

import numpy as np
import pytest

from pipelines.forecasting import models
from pipelines.forecasting.data import prepare_series
from pipelines.forecasting.evaluate import RunConfig, evaluate
from pipelines.forecasting.tune import DEFAULTS, tune, validation_origins
from tests.unit.forecasting.helpers import SPEC, frame, history

SMALL = RunConfig(horizon=7, seq_len=14, backtest_folds=2, tuning_calls=3, max_epochs=2, patience=1)


def test_tuning_searches_the_documented_space_from_the_defaults():
    h = history(160)
    result = tune(
        lambda **p: models.build("lstm_transformer", SPEC, 7, 0, seq_len=14, max_epochs=1, **p),
        h,
        SPEC,
        7,
        calls=4,
        transformer=True,
    )
    assert len(result.trials) == 4
    first = {k: result.trials[0][k] for k in DEFAULTS}
    assert first == DEFAULTS  # the search starts from the default configuration
    for t in result.trials:
        assert 16 <= t["hidden_size"] <= 64 and t["hidden_size"] % 8 == 0 and t["hidden_size"] % t["heads"] == 0
        assert 1 <= t["layers"] <= 2 and 0 <= t["dropout"] <= 0.3 and 1e-4 <= t["lr"] <= 1e-3
    winner = min(result.trials, key=lambda t: t["val_mae"])
    assert result.best == {k: winner[k] for k in DEFAULTS}


def test_no_calls_means_the_defaults_without_heads_for_the_lstm():
    assert tune(None, history(50), SPEC, 7, calls=0, transformer=False).best == {
        k: v for k, v in DEFAULTS.items() if k != "heads"
    }


def test_tuning_validation_ends_before_the_data_it_is_given_ends():
    cut, origins = validation_origins(100, 7)
    assert cut == 100 - 1 - 7 - 14 and origins[0] == cut and origins[-1] + 7 <= 99


@pytest.mark.parametrize("name", ["seasonal_naive", "lightgbm", "lstm"])
def test_evaluate_backtests_refits_and_forecasts(name):
    f = frame(200)
    f.loc[190:, ["sales", "clicks"]] = np.nan  # a plan for the last 10 days
    series = prepare_series(f, SPEC)
    result = evaluate(series, name, SMALL)
    assert result.status == "ok", result.reason
    assert len(result.backtest.predictions) == 2 * 7 and set(result.backtest.predictions["step"]) == set(range(1, 8))
    assert len(result.forecast) == 7 and result.covariates == "plan"
    assert result.forecast["date"].iloc[0] == series.history.index[-1] + np.timedelta64(1, "D")
    record = result.record()
    assert record["mase_daily"] > 0 and record["train_s"] >= 0
    assert (name == "lstm") == (result.tuning is not None and len(result.tuning.trials) == 3)


def test_a_failing_model_is_a_record_with_its_reason(monkeypatch):
    def broken(self, history):
        raise RuntimeError("boom: out of memory")

    monkeypatch.setattr(models.GradientBoosting, "_fit", broken)
    result = evaluate(prepare_series(frame(200), SPEC), "lightgbm", SMALL)
    assert result.status == "failed" and "boom: out of memory" in result.reason and "Traceback" in result.traceback
    assert result.record()["status"] == "failed"


def test_a_model_forecasting_inf_is_a_failed_row_not_an_ok_one(monkeypatch):
    monkeypatch.setattr(models.GradientBoosting, "_predict", lambda self, history, future: np.full(len(future), np.inf))
    result = evaluate(prepare_series(frame(200), SPEC), "lightgbm", SMALL)
    assert result.status == "failed" and "inf or NaN" in result.reason
    assert result.record()["status"] == "failed"


def test_a_constant_series_is_forecast_flat_and_its_mase_is_undefined():
    result = evaluate(prepare_series(frame(200, constant=50.0), SPEC), "lightgbm", SMALL)
    assert result.status == "ok"
    assert np.allclose(result.forecast["forecast"], 50.0)
    assert result.metrics["mae_daily"] == 0 and np.isnan(result.metrics["mase_daily"])
    assert result.record()["mase_daily"] is None  # JSON-able: NaN becomes None


def test_a_short_series_fails_the_model_with_the_length_message():
    result = evaluate(prepare_series(frame(20), SPEC), "seasonal_naive", SMALL)
    assert result.status == "failed" and "too short" in result.reason


def test_folds_shrink_and_a_model_needing_more_history_is_a_skipped_row():
    series = prepare_series(frame(25), SPEC)
    naive = evaluate(series, "seasonal_naive", SMALL)
    assert naive.status == "ok" and naive.backtest.predictions["origin"].nunique() < SMALL.backtest_folds
    lstm = evaluate(series, "lstm", SMALL)
    assert lstm.status == "skipped" and "needs" in lstm.reason and "before the first backtest origin" in lstm.reason
