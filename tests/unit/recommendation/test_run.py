"""The recommendation DAG's steps in-process against a throwaway MLflow store: leaderboard, registry
aliases, the pyfunc as people call it, and the top-n in gold."""

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.constants import CHALLENGER, CHAMPION, GOLD, ITEM_ID, USER_ID
from pipelines.lake import Lake
from pipelines.recommendation import models, run
from pipelines.recommendation.data import RecommendationDataError
from pipelines.tracking import read_frame
from tests.unit.recommendation.helpers import movielens_like
from tests.unit.settings import tmp_settings

DS = "2026-01-01"


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_settings(tmp_path)


class Exploding(models.Recommender):
    def _fit(self, R):
        raise RuntimeError("boom: out of memory")


def test_steps_rank_register_and_publish(settings, monkeypatch):
    lake = Lake(settings.lake_root)
    ratings = movielens_like(lake)
    params = {"models": ["popularity", "user_knn", "two_tower", "item_knn"], "cv_folds": 2, "max_epochs": 3, "top_n": 3}
    context = run.prepare(params, "recommendation", "manual__1", logical_ds=DS, settings=settings)
    assert context["ds"] == DS and context["params"]["models"] == params["models"]

    real_build = models.build
    monkeypatch.setattr(models, "build", lambda name, *a: Exploding() if name == "item_knn" else real_build(name, *a))
    records = [run.evaluate_model(context, name, settings=settings) for name in params["models"]]
    assert [r["status"] for r in records] == ["ok", "ok", "ok", "failed"]
    assert "boom: out of memory" in records[3]["reason"]
    assert records[0]["rmse"] > 0 and "rmse" not in records[2]  # the two-tower model ranks only
    assert len(records[0]["ndcg_curve"]) == 20

    board = run.leaderboard(context, records, settings=settings)
    table = lake.read_partition(GOLD, run.leaderboard_dataset("movielens_ratings"), DS).to_pandas()
    assert table["model"].iloc[-1] == "item_knn" and table["rank"].tolist() == [1, 2, 3, 4]
    assert table["ndcg_at_10"].iloc[0] == board["best_ndcg_at_10"] >= table["ndcg_at_10"].iloc[1]
    assert board["failed"][0]["model"] == "item_knn" and board["best_rating_model"] in ("popularity", "user_knn")

    client = MlflowClient(settings.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name("recommendation")
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{context['parent_run_id']}'")
    assert sorted(c.data.tags["model"] for c in children) == sorted(params["models"])
    tower = next(c for c in children if c.data.tags["model"] == "two_tower")
    assert "plots/learning_curve.png" in {a.path for a in client.list_artifacts(tower.info.run_id, "plots")}
    parent_files = {a.path for a in client.list_artifacts(context["parent_run_id"], "plots")}
    assert {"plots/leaderboard.png", "plots/ndcg_at_k.png"} <= parent_files

    monkeypatch.setattr(models, "build", real_build)
    registered = run.register(context, board, settings=settings)
    assert registered["alias"] == CHAMPION and registered["promoted"] and registered["model"] == board["best_model"]
    version = client.get_model_version_by_alias("recommender", CHAMPION)
    assert str(version.version) == registered["version"] and version.tags["model"] == board["best_model"]

    # A retried register or leaderboard task: no second version, no alias moved, no table row twice.
    assert run.register(context, board, settings=settings) == registered
    run.leaderboard(context, records, settings=settings)
    assert len(client.search_model_versions("name = 'recommender'")) == 1
    assert client.get_registered_model("recommender").aliases == {CHAMPION: int(registered["version"])}
    logged = read_frame(context["parent_run_id"], "leaderboard.json")
    assert logged["model"].tolist() == table["model"].tolist()
    assert len(read_frame(tower.info.run_id, "history.json")) == 3  # one row per epoch (max_epochs 3)

    # The registered pyfunc: user ids in, top-n out, seen items left out, unknown users get popular items.
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(registered["model_uri"])
    assert [c.name for c in model.metadata.get_input_schema().inputs] == [USER_ID]
    someone = int(ratings[USER_ID].iloc[0])
    out = model.predict(pd.DataFrame({USER_ID: [someone, 999]}), params={"n": 5})
    assert out.loc[out[USER_ID] == someone, "rank"].tolist() == [1, 2, 3, 4, 5]
    assert not set(out.loc[out[USER_ID] == someone, ITEM_ID]) & set(
        ratings.loc[ratings[USER_ID] == someone, "movie_id"]
    )
    assert (out.loc[out[USER_ID] == 999, "source"] == "popular").all()
    assert len(model.predict(pd.DataFrame({USER_ID: [someone]}))) == 3  # top_n is the default n

    published = run.publish(context, registered, settings=settings)
    top = lake.read_partition(GOLD, run.recommendations_dataset("movielens_ratings"), DS).to_pandas()
    assert published["users"] == 43 and set(top[USER_ID]) == set(range(1, 44)) | set(ratings[USER_ID])
    assert (top.groupby(USER_ID).size() == 3).all()
    never_rated = sorted(set(range(1, 44)) - set(ratings[USER_ID]))
    assert published["users_given_popular_items"] == len(never_rated) >= 3
    assert (top.loc[top[USER_ID].isin(never_rated), "source"] == "popular").all()
    assert top["title"].str.startswith("Film").all()

    # A later run's model below the gate, or one that only ties the champion, is registered as the challenger only.
    later = run.prepare(params, "recommendation", "manual__2", logical_ds=DS, settings=settings)
    worse = {**board, "best_model": "popularity", "best_ndcg_at_10": 0.0}
    second = run.register(later, worse, settings=settings)
    assert second["alias"] == CHALLENGER and "below the gate" in second["reason"] and second["version"] == "2"
    latest = run.prepare(params, "recommendation", "manual__3", logical_ds=DS, settings=settings)
    tie = run.register(latest, board, settings=settings)
    assert tie["alias"] == CHALLENGER and "does not beat champion version 1" in tie["reason"]
    assert str(client.get_model_version_by_alias("recommender", CHAMPION).version) == registered["version"]
    assert str(client.get_model_version_by_alias("recommender", CHALLENGER).version) == tie["version"] == "3"


def test_gold_events_of_other_datasets_skip_the_run(settings):
    assert "recommends from 'movielens_ratings'" in run.skip_reason(settings, [{"dataset": "adult", "ds": DS}])
    assert run.skip_reason(settings, [{"dataset": "adult"}, {"dataset": "movielens_users"}]) is None
    assert run.skip_reason(settings, []) is None  # a hand-triggered run
    out = run.prepare({}, "recommendation", "r", events=[{"dataset": "adult", "ds": DS}], settings=settings)
    assert set(out) == {"skip"}


def test_the_date_comes_from_the_form_then_the_event_then_the_logical_date(settings):
    lake = Lake(settings.lake_root)
    movielens_like(lake, "2026-01-03")
    events = [{"dataset": "movielens_ratings", "ds": "2026-01-02"}, {"dataset": "adult", "ds": "2026-01-09"}]
    assert run.resolve_ds(settings, lake, "2026-01-05", events, "2026-01-07") == "2026-01-05"
    assert run.resolve_ds(settings, lake, "", events, "2026-01-07") == "2026-01-02"
    assert run.resolve_ds(settings, lake, "", [], "2026-01-07") == "2026-01-07"
    assert run.resolve_ds(settings, lake, "", [], None) == "2026-01-03"


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"models": ["svd"]}, "unknown recommender 'svd'"),
        ({"cv_folds": 1}, "cv_folds must be at least 2"),
        ({"top_n": 0}, "top_n must be at least 1"),
    ],
)
def test_bad_form_values_are_refused(settings, params, match):
    movielens_like(Lake(settings.lake_root))
    with pytest.raises(RecommendationDataError, match=match):
        run.prepare(params, "recommendation", "r", logical_ds=DS, settings=settings)
