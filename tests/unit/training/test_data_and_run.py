"""Gold -> training data checks, and the DAG's steps in-process against a throwaway MLflow store."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from pipelines.config import load_settings
from pipelines.constants import GOLD, LABEL, ROW_ID, SPLIT
from pipelines.lake import Lake
from pipelines.training import run
from pipelines.training.data import TrainingDataError, load_training_data
from tests.unit.settings import tmp_settings


def _gold(n=240, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            ROW_ID: np.arange(n, dtype=np.uint64),
            "x": x,
            "city": rng.choice(["a", "b", "c"], n),
            LABEL: (x + rng.normal(scale=0.5, size=n) > 0).astype("int8"),
            SPLIT: rng.choice(["train", "valid", "test"], n, p=[0.6, 0.15, 0.25]),
        }
    )
    return frame.assign(**overrides)


def _write(lake, frame, ds, numeric=("x",), categorical=("city",)):
    lake.write_partition(
        GOLD,
        "toy",
        ds,
        pa.Table.from_pandas(frame, preserve_index=False),
        {"numeric": list(numeric), "categorical": list(categorical)},
    )


@pytest.fixture
def lake(tmp_path):
    return Lake((tmp_path / "lake").as_uri())


def test_partitions_up_to_the_date_are_used(lake):
    _write(lake, _gold(seed=1), "2026-01-01")
    _write(lake, _gold(seed=2), "2026-01-02")
    _write(lake, _gold(seed=3), "2026-01-03")
    data = load_training_data(lake, "toy", "2026-01-02")
    assert len(data.X_train) + len(data.X_test) == 480
    assert sorted(data.content_hashes) == ["2026-01-01", "2026-01-02"]
    assert list(data.X_train.columns) == ["x", "city"]


@pytest.mark.parametrize(
    "frame, match",
    [
        (_gold().drop(columns=[LABEL]), "no label column 'label'"),
        (_gold(**{LABEL: 1}), "single class"),
        (_gold(when=pd.Timestamp("2026-01-01")), "column 'when' has dtype datetime"),
    ],
)
def test_untrainable_gold_is_refused_naming_the_column(lake, frame, match):
    _write(lake, frame, "2026-01-01", numeric=("x", "when") if "when" in frame else ("x",))
    with pytest.raises(TrainingDataError, match=match):
        load_training_data(lake, "toy", "2026-01-01")


def test_no_gold_says_to_run_features_first(lake):
    with pytest.raises(TrainingDataError, match="run the features DAG"):
        load_training_data(lake, "toy", "2026-01-01")


class Exploding:
    """An estimator that breaks in fit, standing in for an algorithm that fails."""

    def fit(self, X, y):
        raise RuntimeError("boom: out of memory")


def test_steps_log_nested_runs_and_a_failure_stays_on_the_leaderboard(tmp_path, lake, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = tmp_settings(tmp_path, MLP_LAKE_ROOT=lake.root_uri)
    _write(lake, _gold(n=400), "2026-01-01")
    params = {"algorithms": ["logreg", "hist_gb", "ridge"], "cv_folds": 2}
    context = run.prepare("toy", params, "training", "manual__t", logical_ds="2026-01-01", settings=settings)
    assert context["ds"] == "2026-01-01"
    assert context["params"]["algorithms"] == ["hist_gb", "ridge", "logreg"]  # longest first: the DAG's start order

    from pipelines.training import algorithms

    real_build = algorithms.build
    monkeypatch.setattr(
        algorithms, "build", lambda name, f, s: Exploding() if name == "ridge" else real_build(name, f, s)
    )
    base = [run.train(context, name, settings=settings) for name in params["algorithms"]]
    assert [r["status"] for r in base] == ["ok", "ok", "failed"]
    assert "boom: out of memory" in base[2]["reason"]
    voting = run.train_ensemble(context, "voting", base, settings=settings)
    assert voting["status"] == "ok" and voting["bases"] in ("logreg,hist_gb", "hist_gb,logreg")

    summary = run.leaderboard(context, [*base, voting], settings=settings)
    assert summary["algorithms"] == 4 and summary["failed"][0]["algorithm"] == "ridge"
    board = lake.read_partition(GOLD, "toy_leaderboard", "2026-01-01").to_pandas()
    assert list(board["algorithm"])[-1] == "ridge" and board["rank"].tolist() == [1, 2, 3, 4]
    assert board.loc[0, "cv_roc_auc"] >= board.loc[1, "cv_roc_auc"] > 0.7

    client = MlflowClient(settings.mlflow.tracking_uri)
    children = client.search_runs(
        [client.get_experiment_by_name("training").experiment_id],
        f"tags.mlflow.parentRunId = '{context['parent_run_id']}'",
    )
    assert sorted(c.data.tags["algorithm"] for c in children) == ["hist_gb", "logreg", "ridge", "voting"]
    failed = next(c for c in children if c.data.tags["algorithm"] == "ridge")
    assert failed.info.status == "FAILED" and "boom" in failed.data.tags["failure_reason"]
    ok = next(c for c in children if c.data.tags["algorithm"] == "logreg")
    artifacts = {a.path for a in client.list_artifacts(ok.info.run_id, "plots")}
    assert {
        "plots/roc_pr.png",
        "plots/confusion_matrix.png",
        "plots/calibration.png",
        "plots/feature_importance.png",
    } <= artifacts
    parent = client.get_run(context["parent_run_id"])
    assert parent.data.tags["best_algorithm"] == summary["best_algorithm"]
    assert parent.data.tags["gold_content_hash"] == context["gold_content_hash"]

    # A retried task finds its run instead of making a second one.
    again = run.train(context, "logreg", settings=settings)
    assert again["mlflow_run_id"] == base[0]["mlflow_run_id"]


def test_prepare_refuses_ensembles_and_bad_folds(tmp_path, lake):
    settings = load_settings({"MLP_LAKE_ROOT": lake.root_uri, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"})
    _write(lake, _gold(), "2026-01-01")
    with pytest.raises(TrainingDataError, match="'voting' is an ensemble"):
        run.prepare("toy", {"algorithms": ["voting"]}, "training", "r", logical_ds="2026-01-01", settings=settings)
    with pytest.raises(TrainingDataError, match="cv_folds must be at least 2"):
        run.prepare("toy", {"cv_folds": 1}, "training", "r", logical_ds="2026-01-01", settings=settings)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"tune_mode": "annealing"}, "tune_mode must be one of bayes, random, grid"),
        ({"gate": {"cv_roc_auc": "about 0.9"}}, "cv_roc_auc"),
        ({"pareto_weights": {"roc_auc": -1}}, "roc_auc"),
        ({"pareto_weights": {"speed": 1}}, "speed"),
    ],
)
def test_prepare_refuses_bad_selection_params_before_training(tmp_path, lake, params, message):
    from pipelines.errors import DataError

    settings = load_settings({"MLP_LAKE_ROOT": lake.root_uri, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"})
    _write(lake, _gold(), "2026-01-01")
    with pytest.raises(DataError, match=message):  # DataError: the task fails at once, no retries
        run.prepare("toy", params, "training", "r", logical_ds="2026-01-01", settings=settings)
