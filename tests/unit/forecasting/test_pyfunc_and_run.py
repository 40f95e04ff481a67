"""The pyfunc model's input contract, and the DAG's steps in-process against a throwaway MLflow store."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from pipelines.config import load_settings
from pipelines.constants import CHALLENGER, CHAMPION, GOLD, LABEL, ROW_ID, SPLIT
from pipelines.forecasting import models, run
from pipelines.forecasting.data import ForecastDataError
from pipelines.forecasting.pyfunc import ForecastInputError, ForecastModel, example_input
from pipelines.lake import Lake
from pipelines.tracking import read_frame
from tests.unit.forecasting.helpers import SPEC, frame, history

SMALL = {"horizon": 7, "seq_len": 14, "backtest_folds": 2, "tuning_calls": 0, "max_epochs": 2, "patience": 1}


# ---- the pyfunc's input ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    h = history(120)
    return ForecastModel(models.build("lightgbm", SPEC, 7, 0, n_estimators=30).fit(h), SPEC, 7, "lightgbm"), h


def _input(h, days=60, future=7):
    fut = h.iloc[-future:][list(SPEC.known)] if future else h.iloc[:0][list(SPEC.known)]
    return example_input(h.iloc[:-future] if future else h, fut, SPEC, days)


def test_history_window_and_future_covariates_in_forecast_out(model):
    m, h = model
    frame_in = _input(h)
    assert frame_in["sales"].isna().sum() == 7 and frame_in["clicks"].isna().sum() == 7
    out = m.predict(None, frame_in)
    assert list(out.columns) == ["date", "forecast"] and len(out) == 7
    assert out["date"].iloc[0] == h.index[-7] and np.isfinite(out["forecast"]).all()
    shuffled = frame_in.sample(frac=1, random_state=0)  # rows in any order
    assert np.allclose(m.predict(None, shuffled)["forecast"], out["forecast"])


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda f: f.drop(columns=["spend"]), r"lacks column\(s\) \['spend'\]"),
        (lambda f: f.assign(sales=np.nan), "no history"),
        (lambda f: f.drop(index=[5]), "consecutive days"),
        (lambda f: f.iloc[:-7], "0 day"),
        (lambda f: f.assign(spend=f["spend"].where(f.index != len(f) - 1)), "known covariate"),
        (lambda f: pd.concat([f, f.iloc[[0]]]), "several rows for one day"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(model, change, match):
    m, h = model
    with pytest.raises(ForecastInputError, match=match):
        m.predict(None, change(_input(h)))


def test_too_short_a_window_or_too_many_days(model):
    m, h = model
    with pytest.raises(ForecastInputError, match="needs at least 28"):
        m.predict(None, _input(h, days=10))
    long_future = example_input(h.iloc[:-10], h.iloc[-10:][list(SPEC.known)], SPEC, 60)
    with pytest.raises(ForecastInputError, match="give 1 to 7 rows"):
        m.predict(None, long_future)


# ---- the steps against a throwaway MLflow ---------------------------------------------------------


@pytest.fixture
def settings(tmp_path):
    env = {
        "MLP_STATE_DIR": str(tmp_path / "state"),
        "MLP_LAKE_ROOT": str(tmp_path / "lake"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLP_FORECASTING__KNOWN_COVARIATES__SHOP": "[spend, promo]",
    }
    return load_settings(env)


def _write_gold(settings, f, ds="2024-12-31"):
    f = f.rename(columns={"sales": LABEL}).assign(**{ROW_ID: np.arange(len(f), dtype=np.uint64), SPLIT: "train"})
    f["date"] = f["date"].dt.date
    Lake(settings.lake_root).write_partition(
        GOLD,
        "shop",
        ds,
        pa.Table.from_pandas(f[[ROW_ID, "date", "spend", "promo", "clicks", LABEL, SPLIT]], preserve_index=False),
        {
            "time": "date",
            "label_kind": "numeric",
            "label_source": {"column": "sales", "positive": None},
            "numeric": ["spend", "promo", "clicks"],
            "categorical": [],
        },
    )


def test_prepare_refuses_gold_that_is_not_a_series_or_a_horizon_too_long(settings):
    with pytest.raises(ForecastDataError, match="no gold partitions for dataset 'shop'"):
        run.prepare("shop", {"ds": "2024-12-31"}, "forecasting", "r0", settings=settings)
    _write_gold(settings, frame(120))
    with pytest.raises(
        ForecastDataError, match=r"horizon of 200 periods is longer than the history .* \(120 periods\)"
    ):
        run.prepare("shop", {"ds": "2024-12-31", "horizon": 200}, "forecasting", "r0", settings=settings)
    with pytest.raises(ForecastDataError, match=r"unknown model\(s\) \['prophet'\]"):
        run.prepare("shop", {"ds": "2024-12-31", "models": ["prophet"]}, "forecasting", "r0", settings=settings)


def test_wanted_skips_runs_triggered_by_other_datasets():
    assert run.wanted("sales", []) and run.wanted("sales", [{"dataset": "sales"}, {"dataset": "adult"}])
    assert not run.wanted("sales", [{"dataset": "adult", "ds": "2026-01-01"}])


def test_steps_rank_publish_log_and_register(settings, monkeypatch):
    _write_gold(settings, frame(220))
    params = {**SMALL, "models": ["seasonal_naive", "lightgbm", "xgboost"]}

    real_fit = models.GradientBoosting._fit

    def fit_or_break(self, history):
        if self.library == "xgboost":
            raise RuntimeError("xgboost exploded")
        return real_fit(self, history)

    monkeypatch.setattr(models.GradientBoosting, "_fit", fit_or_break)
    summary = run.run("shop", "2024-12-31", params, settings=settings, run_id="run-1")
    assert summary["best_model"] == "lightgbm" and summary["failed"][0]["model"] == "xgboost"
    assert "xgboost exploded" in summary["failed"][0]["reason"]
    assert summary["registered"]["alias"] == CHAMPION and summary["registered"]["version"] == "1"

    lake = Lake(settings.lake_root)
    board = lake.read_partition(GOLD, "shop_forecast_leaderboard", "2024-12-31").to_pandas()
    assert board["model"].tolist() == ["lightgbm", "seasonal_naive", "xgboost"]
    forecast = lake.read_partition(GOLD, "shop_forecast", "2024-12-31").to_pandas()
    assert set(forecast["model"]) == {"lightgbm", "seasonal_naive"} and forecast.groupby(
        ["model", "level"]
    ).size().to_dict() == {
        ("lightgbm", "daily"): 7,
        ("lightgbm", "weekly"): 1,
        ("seasonal_naive", "daily"): 7,
        ("seasonal_naive", "weekly"): 1,
    }
    assert not lake.exists("_staging/forecasting/shop/ds=2024-12-31/" + run.hashlib.sha256(b"run-1").hexdigest()[:12])

    client = MlflowClient(settings.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name("forecasting")
    children = client.search_runs([experiment.experiment_id], "tags.model = 'xgboost'")
    assert children[0].info.status == "FAILED" and "xgboost exploded" in children[0].data.tags["failure_reason"]

    # Same data and backtest again: the new version does no better, so it becomes the challenger.
    again = run.run("shop", "2024-12-31", params, settings=settings, run_id="run-2")
    assert again["registered"]["alias"] == CHALLENGER and again["registered"]["version"] == "2"
    assert int(client.get_model_version_by_alias("shop_forecaster", CHAMPION).version) == 1


def test_a_retried_leaderboard_registers_once_and_logs_each_row_once(settings):
    """The leaderboard task (which registers) run again with the same context and records, as a retry would."""
    _write_gold(settings, frame(220))
    params = {**SMALL, "models": ["seasonal_naive", "lightgbm"]}
    context = run.prepare("shop", {**params, "ds": "2024-12-31"}, "forecasting", "manual__1", settings=settings)
    records = [run.backtest_model(context, m, settings) for m in params["models"]]
    first = run.leaderboard(context, records, settings)
    client = MlflowClient(settings.mlflow.tracking_uri)
    aliases = client.get_registered_model("shop_forecaster").aliases
    retry = run.leaderboard(context, records, settings)  # after the first try cleared the staging
    assert retry["registered"] == first["registered"] and first["registered"]["alias"] == CHAMPION
    assert len(client.search_model_versions("name = 'shop_forecaster'")) == 1
    assert client.get_registered_model("shop_forecaster").aliases == aliases == {CHAMPION: 1}
    logged = read_frame(context["parent_run_id"], "leaderboard.json")
    assert sorted(logged["model"]) == sorted(params["models"])
    tags = client.get_run(context["parent_run_id"]).data.tags
    assert tags["registered_version"] == "1" and tags["alias"] == CHAMPION


def test_register_keeps_the_gate_and_compares_champions_on_the_same_backtest(settings):
    """Gate: MASE below forecasting.gate_max_mase and below seasonal naive's; the champion's MASE counts
    only when it was measured on the same backtest (backtest_key)."""
    _write_gold(settings, frame(220))
    client = MlflowClient(settings.mlflow.tracking_uri)

    def register(mase: float, naive: float, airflow_run_id: str, folds: int = 2) -> dict:
        """A DAG run whose lightgbm scored ``mase`` and seasonal naive ``naive``."""
        params = {**SMALL, "backtest_folds": folds, "ds": "2024-12-31"}
        context = run.prepare("shop", params, "forecasting", airflow_run_id, settings=settings)
        board = pd.DataFrame(
            [
                {"model": "seasonal_naive", "status": "ok", "mase_daily": naive},
                {**run.backtest_model(context, "lightgbm", settings), "mase_daily": mase},
            ]
        )
        return run.register(settings, context, board, board.iloc[1])

    gate = settings.forecasting.gate_max_mase
    assert register(gate, 2 * gate, "r1")["reason"] == f"mase_daily {gate:.5g} is not below the gate {gate:g}"
    assert "does not beat seasonal naive (0.5)" in register(0.6, 0.5, "r2")["reason"]
    assert client.search_model_versions("name = 'shop_forecaster'") == []  # gate failures are not registered
    assert register(0.5, 0.9, "r3")["alias"] == CHAMPION
    worse = register(0.55, 0.9, "r4")
    assert worse["alias"] == CHALLENGER and "does not beat champion version 1" in worse["reason"]
    other = register(0.7, 0.9, "r5", folds=3)  # another backtest: the champion's MASE does not count
    assert other["alias"] == CHAMPION and "backtest_key differs" in other["reason"]
    decisions = {int(v.version): v.tags["decision"] for v in client.search_model_versions("name = 'shop_forecaster'")}
    assert decisions == {1: "promoted to champion", 2: "kept as challenger", 3: "promoted to champion"}


def test_a_rerun_with_other_params_on_the_same_date_is_a_run_of_its_own(settings):
    _write_gold(settings, frame(120))
    params = {**SMALL, "models": ["seasonal_naive"], "register": False}
    first = run.run("shop", "2024-12-31", params, settings=settings)
    again = run.run("shop", "2024-12-31", {**params, "horizon": 14}, settings=settings)  # no "Changing param values"
    same = run.run("shop", "2024-12-31", params, settings=settings)
    assert again["parent_run_id"] != first["parent_run_id"] and same["parent_run_id"] == first["parent_run_id"]


def test_a_univariate_monthly_series_is_ranked_by_its_monthly_mase(settings):
    months = pd.date_range("2010-01-01", periods=72, freq="MS")
    y = 100 + np.arange(72) + 10 * np.sin(2 * np.pi * np.arange(72) / 12)
    table = pa.table(
        {
            ROW_ID: pa.array(range(72), pa.uint64()),
            "month": pa.array(months.date, pa.date32()),
            LABEL: y,
            SPLIT: ["train"] * 72,
        }
    )
    meta = {"time": "month", "label_kind": "numeric", "label_source": {"column": "passengers", "positive": None}}
    meta.update({"numeric": [], "categorical": [], "series": {"freq": "monthly", "covariates": []}})
    Lake(settings.lake_root).write_partition(GOLD, "air", "2024-12-31", table, meta)
    summary = run.run("air", "2024-12-31", {"models": ["seasonal_naive", "theta", "lstm"]}, settings=settings)
    assert summary["rank_metric"] == "mase_monthly" and summary["best_model"] == "theta"
    assert [f["model"] for f in summary["failed"]] == ["lstm"] and "needs" in summary["failed"][0]["reason"]
    assert summary["registered"]["version"] == "1"
