"""The recommendation DAG end to end through Airflow (api-server + LocalExecutor) on real MovieLens
100k batches, against a throwaway MLflow server: features DAG -> gold -> recommendation DAG ->
leaderboard, registered pyfunc with its alias, every user's top-n in gold."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines import features
from pipelines.cli import demo
from pipelines.constants import CHAMPION, GOLD, ITEM_ID, USER_ID
from pipelines.lake import Lake
from pipelines.recommendation.run import leaderboard_dataset, recommendations_dataset
from tests.integration.isolation import embedded_stack, task_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DS, LAST = "2026-01-01", "2026-01-04"  # ratings of the first demo day; recommendations on the last
MODELS = ["popularity", "item_knn", "bayesian_mf", "two_tower"]  # one per family keeps the test short


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    # A quarter of MovieLens with 3 training epochs scores low: a low gate, so the champion path runs here
    # (the gate itself is unit-tested).
    with embedded_stack(tmp_path_factory.mktemp("reco-stack"), MLP_RECOMMENDATION__PROMOTION_MIN_NDCG="0.01") as (
        settings,
        env,
    ):
        yield settings, env


def test_recommendation_dag_end_to_end(airflow):
    settings, env = airflow
    cfg = settings.recommendation
    lake = Lake(settings.lake_root)

    # One demo day of ratings through the features DAG (about a quarter of MovieLens 100k). The item and
    # user tables go through the same steps in-process: `airflow dags test` replaces an earlier run of
    # the same DAG and date, and the features DAG itself is tested in test_dags_e2e.py.
    result = demo.run_dag(settings, env, "features", DS, conf=json.dumps({"dataset": cfg.ratings}))
    assert result.state == "success", result.log
    for dataset in (cfg.items, cfg.users):  # all four demo days: every movie and every user
        for ds in demo.demo_dates(settings):
            features.run(dataset, ds, settings=settings)
    ratings = lake.read_partition(GOLD, cfg.ratings, DS).to_pandas()
    users_table = pd.concat([lake.read_partition(GOLD, cfg.users, ds).to_pandas() for ds in demo.demo_dates(settings)])
    assert len(users_table) == 943
    assert 20_000 < len(ratings) < 30_000

    conf = {"models": MODELS, "cv_folds": 2, "max_epochs": 3, "top_n": 5}  # quick: 2 folds, at most 3 iterations
    result = demo.run_dag(settings, env, "recommendation", LAST, conf=json.dumps(conf))
    assert result.state == "success", result.log

    # Every model ran as a mapped task of the run and is on the leaderboard, ranked by NDCG@10.
    evaluated = [r for r in task_rows(settings, result.run_id) if r[0] == "evaluate"]
    assert sorted(r[1] for r in evaluated) == list(range(len(MODELS))) and all(r[2] == "success" for r in evaluated)
    board = lake.read_partition(GOLD, leaderboard_dataset(cfg.ratings), LAST).to_pandas()
    assert sorted(board["model"]) == sorted(MODELS)
    assert (board["status"] == "ok").all(), board[["model", "reason"]]
    assert board["ndcg_at_10"].is_monotonic_decreasing
    assert board.loc[board["model"] == "two_tower", "rmse"].isna().all()  # ranking-only
    popularity = board.set_index("model").loc["popularity"]
    assert board["ndcg_at_10"].iloc[0] >= popularity["ndcg_at_10"] > 0.03  # real signal, even on a quarter of the data
    assert 0.85 < board["rmse"].min() < 1.15

    # MLflow: a parent run with the leaderboard and plots, one nested run per model.
    client = MlflowClient(settings.mlflow.server_url)
    experiment = client.get_experiment_by_name("recommendation")
    parents = client.search_runs(
        [experiment.experiment_id], f"tags.airflow_run_id = '{result.run_id}' and tags.role = 'parent'"
    )
    assert len(parents) == 1
    parent = parents[0]
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["model"] for c in children) == sorted(MODELS)
    assert parent.data.tags["best_ranking_model"] == board["model"].iloc[0]
    assert {"leaderboard.csv", "plots", "data_summary.json"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }

    # The best ranking model is registered with the champion alias and serves top-n as a pyfunc.
    version = client.get_model_version_by_alias(cfg.registered_model, CHAMPION)
    assert version.tags["model"] == board["model"].iloc[0] and version.tags["airflow_run_id"] == result.run_id
    mlflow.set_tracking_uri(settings.mlflow.server_url)
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registered_model}@{CHAMPION}")
    someone = int(ratings[USER_ID].iloc[0])
    out = model.predict(pd.DataFrame({USER_ID: [someone, 10**9]}), params={"n": 4})
    mine, stranger = out[out[USER_ID] == someone], out[out[USER_ID] == 10**9]
    assert list(mine["rank"]) == [1, 2, 3, 4] and (mine["source"] == "model").all()
    assert not set(mine[ITEM_ID]) & set(ratings.loc[ratings[USER_ID] == someone, "movie_id"])  # seen items excluded
    assert (stranger["source"] == "popular").all() and len(stranger) == 4

    # Every user (with ratings or only in the user table) has top_n recommendations in gold.
    top = lake.read_partition(GOLD, recommendations_dataset(cfg.ratings), LAST).to_pandas()
    everyone = set(ratings[USER_ID]) | set(users_table[USER_ID])
    assert set(top[USER_ID]) == everyone
    assert (top.groupby(USER_ID).size() == conf["top_n"]).all()
    no_history = set(users_table[USER_ID]) - set(ratings[USER_ID])
    assert (top.loc[top[USER_ID].isin(no_history), "source"] == "popular").all()
    assert top["title"].notna().all()  # titles joined from the item table
