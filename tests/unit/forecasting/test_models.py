"""Every forecaster: fits and predicts on tiny data, handles a constant series, uses only the past, pickles."""

import pickle

import numpy as np
import pandas as pd
import pytest

from pipelines.forecasting import models
from pipelines.forecasting.backtest import run_backtest
from tests.unit.forecasting.helpers import SPEC, history

H = 7
FAST = {
    "seasonal_naive": {},
    "sarimax": {"maxiter": 15},
    "lightgbm": {"n_estimators": 60},
    "xgboost": {"n_estimators": 60},
    "lstm": {"seq_len": 14, "hidden_size": 8, "max_epochs": 2},
    "lstm_transformer": {"seq_len": 14, "hidden_size": 8, "heads": 2, "max_epochs": 2},
}
ALL = sorted(FAST)


def _fit(name, h):
    return models.build(name, SPEC, H, 0, **FAST[name]).fit(h)


@pytest.mark.parametrize("name", ALL)
def test_fits_predicts_and_pickles(name):
    h = history(150)
    train, future = h.iloc[:-H], h.iloc[-H:][list(SPEC.known)]
    model = _fit(name, train)
    forecast = model.predict(train, future)
    assert forecast.shape == (H,) and np.isfinite(forecast).all()
    assert 0.3 * h["sales"].mean() < forecast.mean() < 3 * h["sales"].mean()
    again = pickle.loads(pickle.dumps(model))
    assert np.allclose(again.predict(train, future), forecast)
    # Fewer days: the same first days; the transformer attends to the whole horizon's drivers (the last
    # given day is repeated to fill it), so its first days may move a little.
    rtol = 0.02 if name == "lstm_transformer" else 1e-9
    assert np.allclose(model.predict(train, future.iloc[:3]), forecast[:3], rtol=rtol)


@pytest.mark.parametrize("name", ALL)
def test_a_constant_series_is_forecast_as_that_constant(name):
    h = history(150, constant=250.0)
    model = _fit(name, h.iloc[:-H])
    forecast = model.predict(h.iloc[:-H], h.iloc[-H:][list(SPEC.known)])
    assert np.allclose(forecast, 250.0, rtol=0.02)


def test_gradient_boosting_features_use_only_the_past():
    h = history(150)
    model = _fit("lightgbm", h)
    y, known, past, index = model._arrays(h)
    origins, steps = np.repeat(np.arange(40, 140), H), np.tile(np.arange(1, H + 1), 100)
    X, _ = model._rows(y, known, past, index, origins, steps)
    for o in (40, 90, 139):
        hidden = y.copy()
        hidden[o + 1 :] = np.nan  # nothing after the origin
        rows = origins == o
        X_hidden, _ = model._rows(hidden, known, past, index, origins[rows], steps[rows])
        pd.testing.assert_frame_equal(X_hidden.reset_index(drop=True), X[rows].reset_index(drop=True))


class Spy(models.Forecaster):
    """Records what the backtest hands a model."""

    seen: list = []

    def _fit(self, history):
        pass

    def _predict(self, history, future):
        Spy.seen.append((history.index[-1], list(future.columns), future.index[0]))
        return np.zeros(len(future))


def test_the_backtest_gives_models_the_past_and_only_the_known_future_drivers():
    h = history(120)
    Spy.seen = []
    run_backtest(lambda: Spy(SPEC, H), h, SPEC, H, [80, 100])
    assert Spy.seen == [
        (h.index[80], list(SPEC.known), h.index[81]),
        (h.index[100], list(SPEC.known), h.index[101]),
    ]


class Exploding(models.Forecaster):
    """An explosive fit: finite for 6 periods, then overflowing (as an AR coefficient above 1 does)."""

    def _fit(self, history):
        pass

    def _predict(self, history, future):
        return np.where(np.arange(len(future)) < 6, 1.0, np.inf)


def test_a_forecast_that_is_not_finite_is_refused_naming_how_much():
    h = history(60)
    model = Exploding(SPEC, H).fit(h)
    with pytest.raises(ValueError, match=r"Exploding forecast 1 of 7 periods as inf or NaN"):
        model.predict(h, h.iloc[-H:][list(SPEC.known)])
    assert np.isfinite(model.predict(h, h.iloc[-H:][list(SPEC.known)].iloc[:6])).all()


def test_asking_too_much_is_refused_naming_the_problem():
    h = history(150)
    model = _fit("lightgbm", h.iloc[:-H])
    with pytest.raises(ValueError, match="can forecast 1 to 7 days"):
        model.predict(h.iloc[:-H], h.iloc[-H:][list(SPEC.known)].reindex(pd.date_range(h.index[-H], periods=9)))
    with pytest.raises(ValueError, match=r"known covariate\(s\) \['promo'\]"):
        model.predict(h.iloc[:-H], h.iloc[-H:][["spend"]])
    with pytest.raises(ValueError, match="needs at least 28 days of history"):
        model.predict(h.iloc[:10], h.iloc[10:17][list(SPEC.known)])
    with pytest.raises(ValueError, match="consecutive days"):
        models.build("seasonal_naive", SPEC, H).fit(h.drop(h.index[5]))
    with pytest.raises(ValueError, match="unknown forecasting model 'prophet'"):
        models.get("prophet")


def test_seasonal_naive_repeats_the_last_week():
    h = history(30)
    model = models.build("seasonal_naive", SPEC, 10).fit(h)
    forecast = model.predict(h, h.iloc[:10][list(SPEC.known)])
    last_week = h["sales"].to_numpy()[-7:]
    assert np.allclose(forecast, np.concatenate([last_week, last_week[:3]]))


def test_learned_models_beat_seasonal_naive_on_a_driver_led_series():
    h = history(400)
    origins = [len(h) - 1 - H - k * 14 for k in (2, 1, 0)]
    mase = {
        name: run_backtest(lambda name=name: models.build(name, SPEC, H, 0, **FAST[name]), h, SPEC, H, origins).metrics[
            "mase_daily"
        ]
        for name in ("seasonal_naive", "lightgbm", "sarimax")
    }
    assert mase["lightgbm"] < mase["seasonal_naive"] and mase["sarimax"] < mase["seasonal_naive"]


def test_neural_settings_are_checked():
    h = history(100)
    with pytest.raises(ValueError, match="must be a multiple of heads"):
        models.build("lstm_transformer", SPEC, H, hidden_size=10, heads=4, seq_len=14, max_epochs=1).fit(h)
    with pytest.raises(ValueError, match="needs at least"):
        models.build("lstm", SPEC, H, seq_len=90, max_epochs=1).fit(h.iloc[:95])


def test_neural_training_is_reproducible_and_keeps_the_best_epoch():
    h = history(200)
    a = models.build("lstm", SPEC, H, 3, seq_len=14, hidden_size=8, max_epochs=8).fit(h)
    b = models.build("lstm", SPEC, H, 3, seq_len=14, hidden_size=8, max_epochs=8).fit(h)
    assert all(np.array_equal(a.state_[k], b.state_[k]) for k in a.state_)
    val = [e["val_loss"] for e in a.history_]
    assert a.best_epoch_ == int(np.argmin(val)) + 1


def test_neural_training_stops_early_when_validation_stalls():
    h = history(200)
    model = models.build("lstm", SPEC, H, 3, seq_len=14, hidden_size=8, lr=0.5, max_epochs=60, patience=1).fit(h)
    assert len(model.history_) < 60
