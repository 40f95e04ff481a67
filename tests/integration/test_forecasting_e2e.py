"""The forecasting DAG end to end through Airflow (api-server + LocalExecutor) on the simulated sales feed,
against a throwaway MLflow server. Kept small through the DAG's Params: 300 days of history, a 14-day
horizon, 2 folds, 2 tuning calls and 3 epochs per neural fit."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.cli import demo
from pipelines.constants import CHAMPION, GOLD, SILVER
from pipelines.lake import Lake
from tests.integration.isolation import embedded_stack, task_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DS = "2026-01-01"
MODELS = ["seasonal_naive", "sarimax", "lightgbm", "lstm", "lstm_transformer"]
CONF = {
    "models": MODELS,
    "history_days": 300,
    "horizon": 14,
    "seq_len": 14,
    "backtest_folds": 2,
    "tuning_calls": 2,
    "max_epochs": 3,
    "patience": 2,
}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    with embedded_stack(root, MLP_USER_DIR=str(root / "user")) as (settings, env):  # `dataset add` writes there
        yield settings, env


def test_sales_flow_from_landing_to_a_registered_forecaster(airflow):
    settings, env = airflow
    lake = Lake(settings.lake_root)

    features = demo.run_dag(settings, env, "features", DS, conf=json.dumps({"dataset": "sales"}))
    assert features.state == "success", features.log
    silver = lake.read_manifest(SILVER, "sales", DS)
    assert silver["rows_quarantined"] == 6 and "duplicate: same date as an earlier row" in silver["reasons"]
    gold = lake.read_manifest(GOLD, "sales", DS)
    assert gold["time"] == "date" and gold["split_by"] == "time" and gold["unlabelled_rows"] == 91

    result = demo.run_dag(settings, env, "forecasting", DS, conf=json.dumps(CONF))
    assert result.state == "success", result.log.read_text()[-4000:]

    # Every model ran as a mapped task of the run, and none failed.
    tasks = task_rows(settings, result.run_id)
    backtests = sorted(m for t, m, s in tasks if t == "backtest" and s == "success")
    assert backtests == list(range(len(MODELS))), tasks
    board = lake.read_partition(GOLD, "sales_forecast_leaderboard", DS).to_pandas()
    ranked = {*MODELS, "ensemble"}  # the leaderboard adds the mean of the 3 best (pipelines/forecasting/combine.py)
    assert set(board["model"]) == ranked and (board["status"] == "ok").all(), board[["model", "reason"]]
    naive = board.loc[board["model"] == "seasonal_naive", "mase_daily"].iloc[0]
    best = board.iloc[0]
    assert best["mase_daily"] < naive and best["model"] != "seasonal_naive"

    # Forecasts in gold: 14 daily values per model, two weekly sums, no 28-day month in a 14-day horizon.
    forecast = lake.read_partition(GOLD, "sales_forecast", DS).to_pandas()
    per_level = forecast[forecast["model"] == best["model"]].groupby("level").size().to_dict()
    assert per_level == {"daily": 14, "weekly": 2}
    assert forecast.loc[forecast["is_best"], "model"].unique().tolist() == [best["model"]]
    assert str(forecast["period_start"].min()) == DS  # the day after the last observed day

    # MLflow: a parent run with the leaderboard and plots, one nested run per model, the best registered.
    client = MlflowClient(settings.mlflow.server_url)
    experiment = client.get_experiment_by_name("forecasting")
    parents = client.search_runs(
        [experiment.experiment_id], f"tags.airflow_run_id = '{result.run_id}' and tags.role = 'parent'"
    )
    assert len(parents) == 1 and parents[0].data.tags["best_model"] == best["model"]
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id, "plots")}
    assert {"plots/leaderboard.png", "plots/forecast_vs_actual.png", "plots/forecast.png"} <= artifacts
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert sorted(c.data.tags["model"] for c in children) == sorted(ranked)
    neural = next(c for c in children if c.data.tags["model"] == "lstm_transformer")
    assert "plots/tuning.png" in {a.path for a in client.list_artifacts(neural.info.run_id, "plots")}

    version = client.get_model_version_by_alias("sales_forecaster", CHAMPION)
    assert version.tags["model"] == best["model"]

    # The champion takes a history window and future covariates, and gives the forecast.
    mlflow.set_tracking_uri(settings.mlflow.server_url)
    model = mlflow.pyfunc.load_model(f"models:/sales_forecaster@{CHAMPION}")
    rows = lake.read_partition(GOLD, "sales", DS).to_pandas().rename(columns={"label": "sales"})
    rows["date"] = pd.to_datetime(rows["date"])
    window = rows[rows["sales"].notna()].tail(60)
    plan = rows[rows["sales"].isna()].head(14)
    columns = [c for c in model.metadata.get_input_schema().input_names()]
    out = model.predict(pd.concat([window, plan])[columns])
    assert len(out) == 14 and out["forecast"].notna().all() and (out["forecast"] > 0).all()
    assert out["date"].iloc[0] == pd.Timestamp(DS)


def test_a_monthly_series_brought_with_dataset_add_is_forecast_by_the_dag(airflow, tmp_path):
    """A user's two-column monthly file (``YYYY-MM``): ``dataset add --kind series`` drafts the contract
    (no covariates, the frequency inferred), the features DAG lands and publishes it, the forecasting DAG
    ranks the models by monthly MASE (horizon 12 months, the monthly default) and registers the best."""
    import subprocess
    import sys

    import numpy as np

    settings, env = airflow
    months = pd.date_range("2012-01-01", periods=84, freq="MS")
    y = 200 + 2 * np.arange(84) + 25 * np.sin(2 * np.pi * np.arange(84) / 12)
    source = tmp_path / "passengers.csv"
    pd.DataFrame({"Month": months.strftime("%Y-%m"), "Passengers": y.round(1)}).to_csv(source, index=False)
    added = subprocess.run(
        [sys.executable, "-m", "pipelines", "dataset", "add", "air", "--source", str(source), "--kind", "series"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr

    conf = {"dataset": "air", "simulate_feed": False, "land_source": True}
    features = demo.run_dag(settings, env, "features", DS, conf=json.dumps(conf))
    assert features.state == "success", features.log
    lake = Lake(settings.lake_root)
    assert lake.read_manifest(GOLD, "air", DS)["series"]["covariates"] == []

    models = ["seasonal_naive", "theta", "auto_ets", "lstm"]
    result = demo.run_dag(settings, env, "forecasting", DS, conf=json.dumps({"dataset": "air", "models": models}))
    assert result.state == "success", result.log.read_text()[-4000:]
    board = lake.read_partition(GOLD, "air_forecast_leaderboard", DS).to_pandas().set_index("model")
    assert board.loc["lstm", "status"] == "skipped" and "needs" in board.loc["lstm", "reason"]
    ok = board[board["status"] == "ok"]
    assert set(ok.index) == {"seasonal_naive", "theta", "auto_ets", "ensemble"}  # the mean of the 3 best
    assert ok["mase_monthly"].min() < ok.loc["seasonal_naive", "mase_monthly"]
    forecast = lake.read_partition(GOLD, "air_forecast", DS).to_pandas()
    assert forecast.groupby("model").size().unique().tolist() == [12] and set(forecast["level"]) == {"monthly"}
    assert str(forecast["period_start"].min()) == "2019-01-01"  # the month after the last one in the file
    client = MlflowClient(settings.mlflow.server_url)
    assert client.get_model_version_by_alias("air_forecaster", CHAMPION).version == "1"
