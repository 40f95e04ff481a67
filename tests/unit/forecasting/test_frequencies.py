"""Series at every frequency: inference, seasonality used the same way everywhere, contract rules and refusals."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.constants import ROW_ID
from pipelines.features.contracts import ContractError, apply_contract, parse_contract
from pipelines.features.silver import series_rows
from pipelines.forecasting import freq as freqs
from pipelines.forecasting import metrics, models
from pipelines.forecasting.data import ForecastDataError, SeriesSpec, prepare_series
from pipelines.forecasting.evaluate import RunConfig, evaluate

UNI = SeriesSpec("t", "y")
ALIASES = {"hourly": "h", "daily": "D", "weekly": "W-SUN", "monthly": "MS", "quarterly": "QS", "yearly": "YS"}


def seasonal(name: str, n: int, seed: int = 0) -> pd.DataFrame:
    """A positive series with a trend and the frequency's season (two columns: t, y)."""
    m = freqs.get(name).season
    t = np.arange(n)
    pattern = np.sin(2 * np.pi * t / m) if m > 1 else 0.0
    y = 100 + 0.3 * t + 10 * pattern + np.random.default_rng(seed).normal(0, 1, n)
    return pd.DataFrame({"t": pd.date_range("2001-01-07", periods=n, freq=ALIASES[name]), "y": y})


@pytest.mark.parametrize("name", list(ALIASES))
def test_each_frequency_is_inferred_and_every_part_uses_its_season(name):
    f = freqs.get(name)
    n = {"hourly": 24 * 10, "daily": 120, "weekly": 52 * 3, "yearly": 40}.get(
        name, 12 * f.season if f.season > 1 else 40
    )
    series = prepare_series(seasonal(name, n), UNI)
    assert series.spec.freq == name and series.spec.m == f.season and len(series.history) == n
    config = RunConfig(horizon=f.horizon, seq_len=8, backtest_folds=2, tuning_calls=0, max_epochs=1, patience=1)
    for model in ("seasonal_naive", "theta", "lightgbm"):
        result = evaluate(series, model, config)
        assert result.status == "ok", result.reason
        assert f"mase_{name}" in result.metrics and np.isfinite(result.metrics[f"mase_{name}"])
        assert result.forecast["date"].tolist() == list(f.after(series.history.index[-1], f.horizon))
    naive = models.build("seasonal_naive", series.spec, f.horizon).fit(series.history)
    assert naive.season_ == f.season
    sarimax = models.build("sarimax", series.spec, f.horizon).fit(series.history)
    expected = (1, 0, 1, f.season) if 1 < f.season <= freqs.MAX_SARIMA_SEASON else (0, 0, 0, 0)
    assert tuple(sarimax.seasonal_order_) == expected


def test_mase_is_scaled_by_the_series_own_season():
    levels, seasons = metrics.levels_for("monthly", 12)
    train = np.tile(np.arange(12.0), 3)  # a pure season of 12: the seasonal naive error in-sample is 0 ...
    train[-1] += 1  # ... but for one month
    score = metrics.score([(train, train[-12:], train[-12:] + 1)], seasons, levels)
    assert set(score) == {f"{k}_monthly" for k in metrics.METRICS}
    assert score["mase_monthly"] == pytest.approx(1 / (1 / 24))


def test_yyyy_mm_month_ends_and_declared_frequencies():
    months = pd.DataFrame({"t": pd.date_range("2000-01-31", periods=30, freq="ME"), "y": np.arange(30.0)})
    series = prepare_series(months, UNI)
    assert series.spec.freq == "monthly" and series.history.index[0] == pd.Timestamp("2000-01-01")
    daily = seasonal("daily", 70)
    with pytest.raises(ForecastDataError, match="several rows for week"):
        prepare_series(daily, UNI, freq="weekly")  # seven days a week: rows must be aggregated first
    odd = pd.DataFrame({"t": pd.to_datetime(["2020-01-01", "2020-01-04", "2020-01-20", "2020-03-01"]), "y": 1.0})
    with pytest.raises(ForecastDataError, match="cannot tell the frequency.*gold.freq"):
        prepare_series(odd, UNI)


def test_missing_periods_follow_the_policy():
    f = seasonal("monthly", 36).drop(index=[10, 11])
    with pytest.raises(ForecastDataError, match=r"misses 2 months .*2001-12-01\.\.2002-01-01.*gold.missing"):
        prepare_series(f, UNI, missing="refuse")
    zero = prepare_series(f, UNI, missing="zero")
    assert (zero.history["y"].iloc[10:12] == 0).all() and zero.filled == ["2001-12-01", "2002-01-01"]
    filled = prepare_series(f, UNI, missing="interpolate", max_gap=2)
    assert (filled.history["y"].iloc[10:12] > 50).all()
    with pytest.raises(ForecastDataError, match="misses 2 months in a row.*max_gap=1"):
        prepare_series(f, UNI, missing="interpolate", max_gap=1)
    with pytest.raises(ForecastDataError, match="policy must be one of"):
        prepare_series(f, UNI, missing="guess")


def test_auto_arima_and_ets_pick_a_seasonal_form_on_a_monthly_series():
    series = prepare_series(seasonal("monthly", 60), UNI)
    h = series.history
    arima = models.build("auto_arima", series.spec, 12).fit(h.iloc[:-12])
    assert arima.seasonal_order_[3] in (0, 12)
    forecast = arima.predict(h.iloc[:-12], h.iloc[-12:][[]])
    assert np.mean(np.abs(forecast - h["y"].iloc[-12:])) < 5
    assert np.isfinite(arima.predict(h.iloc[-36:-12], h.iloc[-12:][[]])).all()  # another window keeps the form
    ets = models.build("auto_ets", series.spec, 12).fit(h.iloc[:-12])
    assert ets.form_["seasonal"] in ("add", "mul")


# ---- the contract's series rules -----------------------------------------------------------------

SPEC = {
    "columns": {"month": {"type": "date"}, "price": {"type": "float"}, "size": {"type": "string"}},
    "gold": {"time": "month", "label": {"column": "price"}},
}


def _contract(**gold):
    return parse_contract({**SPEC, "gold": {**SPEC["gold"], **gold}}, where="shop.yaml")


def test_time_columns_take_months_dates_iso_date_times_and_a_declared_format():
    c = parse_contract(
        {
            "columns": {
                "m": {"type": "date"},
                "ts": {"type": "timestamp"},
                "d": {"type": "date", "format": "%d/%m/%Y"},
            }
        }
    )
    table = pa.table(
        {"m": ["1949-01", "1949-02-03", "1949-13"], "ts": ["2020-01-01T10:00:00", "2020-01-01 11:30", "x"]}
    )
    table = table.append_column("d", pa.array(["03/02/2020", "1/1/2020", "2020-01-01"]))
    result = apply_contract(c, table)
    typed = result.typed.to_pydict()
    assert [str(v) for v in typed["m"][:2]] == ["1949-01-01", "1949-02-03"]
    assert str(typed["ts"][1]) == "2020-01-01 11:30:00" and str(typed["d"][0]) == "2020-02-03"
    reasons = result.reason.to_pylist()
    assert "not a date (YYYY-MM-DD)" in reasons[2] and reasons[0] is None


@pytest.mark.parametrize(
    "gold, match",
    [
        ({"freq": "fortnightly"}, "gold.freq is 'fortnightly'"),
        ({"aggregate": "median"}, "gold.aggregate is 'median'"),
        ({"missing": "guess"}, "gold.missing is 'guess'"),
        ({"max_gap": -1}, "gold.max_gap must be"),
        ({"covariates": ["nope"]}, r"gold.covariates \['nope'\]"),
    ],
)
def test_bad_series_rules_are_refused_naming_the_key(gold, match):
    with pytest.raises(ContractError, match=match):
        _contract(**gold)


def _silver(months, prices, sizes=None):
    return pa.table(
        {
            ROW_ID: pa.array(range(len(months)), pa.uint64()),
            "month": pa.array(pd.to_datetime(months).date, pa.date32()),
            "price": pa.array(prices, pa.float64()),
            "size": pa.array(sizes or ["S"] * len(months)),
        }
    )


def test_repeated_timestamps_without_aggregation_are_refused_naming_them():
    table = _silver(["2020-01-01", "2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03"], [1, 2, 3, 4, 5])
    with pytest.raises(
        ContractError, match=r"2 row\(s\) repeat a timestamp of 'month' \(first: 2020-01-01, 2020-01-02\)"
    ):
        series_rows(table, _contract(), ["size"], "gold shop")


@pytest.mark.parametrize(
    "how, expected", [("sum", [3.0, 7.0, 5.0]), ("count", [2.0, 2.0, 1.0]), ("mean", [1.5, 3.5, 5.0])]
)
def test_event_rows_become_one_row_per_period(how, expected):
    table = _silver(["2020-01-01", "2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03"], [1, 2, 3, 4, 5])
    out, features = series_rows(table, _contract(aggregate=how, freq="daily"), ["size"], "gold shop")
    assert out.column("price").to_pylist() == expected and features == []  # text features are left out
    assert out.num_rows == 3 and len(set(out.column(ROW_ID).to_pylist())) == 3
    again, _ = series_rows(table, _contract(aggregate=how, freq="daily"), ["size"], "gold shop")
    assert again.column(ROW_ID).equals(out.column(ROW_ID))  # the same ids in every run


def test_monthly_aggregation_of_daily_rows():
    days = pd.date_range("2020-01-01", "2020-03-31", freq="D")
    out, _ = series_rows(_silver(days, np.ones(len(days))), _contract(aggregate="sum", freq="monthly"), [], "g")
    assert out.column("price").to_pylist() == [31.0, 29.0, 31.0]
    assert [str(d) for d in out.column("month").to_pylist()] == ["2020-01-01", "2020-02-01", "2020-03-01"]


def test_dataset_add_drafts_a_univariate_series_and_sums_repeated_timestamps(tmp_path):
    from pipelines.datasets.draft import draft_contract
    from pipelines.datasets.profile import profile_table, read_sample

    months = tmp_path / "air.csv"
    pd.DataFrame({"Month": ["2020-01", "2020-02", "2020-03"], "Passengers": [1, 2, 3]}).to_csv(months, index=False)
    gold = draft_contract(profile_table(read_sample([months])), "air", str(months), kind="series").contract["gold"]
    assert gold["time"] == "month" and gold["covariates"] == [] and "aggregate" not in gold
    orders = tmp_path / "orders.csv"
    pd.DataFrame({"date": ["2020-01-01", "2020-01-01", "2020-01-02"], "price": [9.5, 12.0, 8.0]}).to_csv(
        orders, index=False
    )
    draft = draft_contract(profile_table(read_sample([orders])), "pizza", str(orders), kind="series", label="price")
    assert draft.contract["gold"]["aggregate"] == "sum" and any("summed per period" in n for n in draft.notes)
