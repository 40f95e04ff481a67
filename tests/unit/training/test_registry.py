"""Tuning, selection and the registry end to end against a throwaway MLflow store: a first run
promotes a champion, a worse second run only becomes the challenger, a better third run takes over."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from pipelines.config import load_settings
from pipelines.constants import GOLD, LABEL, ROW_ID, SPLIT
from pipelines.lake import Lake
from pipelines.tracking import read_frame
from pipelines.training import run

NAME = "toy_classifier"


def _gold(n: int = 900, seed: int = 0) -> pd.DataFrame:
    """A label that a linear model only half sees: a linear part in x2 and a band in x1."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    logit = 3.0 * (np.abs(x1) > 1) + 1.0 * x2 - 1.0
    return pd.DataFrame(
        {
            ROW_ID: np.arange(n, dtype=np.uint64),
            "x1": x1,
            "x2": x2,
            "city": rng.choice(["a", "b", "c"], n),
            LABEL: (logit + rng.logistic(size=n) > 0).astype("int8"),
            SPLIT: rng.choice(["train", "valid", "test"], n, p=[0.6, 0.1, 0.3]),
        }
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("registry")
    lake = Lake((tmp / "lake").as_uri())
    lake.write_partition(
        GOLD,
        "toy",
        "2026-01-01",
        pa.Table.from_pandas(_gold(), preserve_index=False),
        {"numeric": ["x1", "x2"], "categorical": ["city"]},
    )
    settings = load_settings(
        {
            "MLP_LAKE_ROOT": lake.root_uri,
            "MLP_STATE_DIR": str(tmp / "state"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/m.db",
        }
    )
    return settings


def _training_run(settings, algorithm: str, airflow_run_id: str) -> tuple[dict, dict]:
    params = {"algorithms": [algorithm], "cv_folds": 3, "model_name": NAME, "gate": {"cv_roc_auc": "> 0.6"}}
    context = run.prepare("toy", params, "training", airflow_run_id, logical_ds="2026-01-01", settings=settings)
    record = run.train(context, algorithm, settings=settings)
    assert record["status"] == "ok", record["reason"]
    selection = run.select(context, [record], settings=settings)
    assert selection["selected"] == algorithm, selection["reason"]
    return context, run.register(context, selection, settings=settings)


def test_champion_moves_only_to_a_better_model(env):
    settings = env
    client = MlflowClient(settings.mlflow.tracking_uri)

    _, first = _training_run(settings, "svm_rbf", "manual__1")
    assert first["promoted"] and first["reason"] == "no champion yet" and first["version"] == "1"

    _, second = _training_run(settings, "logreg", "manual__2")  # cannot see the x1 band: worse
    assert second["metric"] == "test_roc_auc" and second["score"] < second["champion_score"]
    assert not second["promoted"] and "does not beat champion version 1" in second["reason"]
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "2"

    context, third = _training_run(settings, "lightgbm", "manual__3")
    assert third["score"] > third["champion_score"] + 0.001
    assert third["promoted"] and third["champion_version"] == "1"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "3"

    version = client.get_model_version(NAME, "3")
    assert version.tags["algorithm"] == "lightgbm" and version.tags["decision"] == "promoted to champion"
    assert version.tags["gold_content_hash"] == context["gold_content_hash"]
    assert version.tags["features"] == "x1,x2,city" and version.tags["airflow_run_id"] == "manual__3"
    assert {"cv_roc_auc", "latency_p99_ms", "complexity", "interpretability"} <= set(version.tags)
    assert "lightgbm" in version.description
    assert client.get_model_version(NAME, "2").tags["decision"] == "kept as challenger"

    # The champion, loaded by alias, predicts on raw gold rows (signature from the logged input example).
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    rows = _gold(n=5, seed=9)[["x1", "x2", "city"]]
    proba = np.asarray(model.predict(rows))
    assert proba.shape[0] == 5 and ((proba >= 0) & (proba <= 1)).all()

    # A retried register task adds no version, moves no alias and gives the same decision record.
    aliases = client.get_registered_model(NAME).aliases
    again = run.register(
        context, run.select(context, [_last_record(client, context)], settings=settings), settings=settings
    )
    assert again == third and len(client.search_model_versions(f"name = '{NAME}'")) == 3
    assert client.get_registered_model(NAME).aliases == aliases == {"champion": 3, "challenger": 3}

    # The comparison table of registered versions (one row each, after the retry too) and the decision are on the parent run.
    table = read_frame(context["parent_run_id"], "registry/versions.json")
    assert table["version"].tolist() == [1, 2, 3]
    assert table["aliases"].tolist() == ["", "", "challenger,champion"]
    assert mlflow.artifacts.load_dict(f"runs:/{context['parent_run_id']}/registry/decision.json") == third
    assert client.get_run(context["parent_run_id"]).data.tags["registered_version"] == "3"


def _last_record(client, context) -> dict:
    run_ = client.search_runs(
        [client.get_experiment_by_name("training").experiment_id],
        f"tags.airflow_run_id = '{context['airflow_run_id']}' and tags.algorithm = 'lightgbm'",
    )[0]
    return {
        "algorithm": "lightgbm",
        "family": "boosting",
        "status": "ok",
        "mlflow_run_id": run_.info.run_id,
        "model_uri": run_.data.tags["model_uri"],
        **{k: v for k, v in run_.data.metrics.items()},
    }


def test_nothing_is_registered_when_no_model_passes_the_gate(env):
    settings = env
    params = {"algorithms": ["logreg"], "cv_folds": 2, "model_name": "gated", "gate": {"cv_roc_auc": "> 0.99"}}
    context = run.prepare("toy", params, "training", "manual__gate", logical_ds="2026-01-01", settings=settings)
    record = run.train(context, "logreg", settings=settings)
    selection = run.select(context, [record], settings=settings)
    assert selection["selected"] is None and "cv_roc_auc" in selection["reason"] and "0.99" in selection["reason"]
    out = run.register(context, selection, settings=settings)
    assert not out["registered"] and out["name"] == "gated" and out["reason"] == selection["reason"]
    assert MlflowClient(settings.mlflow.tracking_uri).search_model_versions("name = 'gated'") == []


def test_a_retried_tuning_task_logs_each_point_of_a_trial_curve_once(env):
    settings = env
    params = {"algorithms": ["lightgbm"], "cv_folds": 2, "tune_mode": "random", "tune_calls": 2}
    context = run.prepare("toy", params, "training", "manual__tune", logical_ds="2026-01-01", settings=settings)
    for _ in range(2):  # the first try and its retry
        run.tune(context, "lightgbm", settings=settings)
    client = MlflowClient(settings.mlflow.tracking_uri)
    trials = client.search_runs(
        [client.get_experiment_by_name("training").experiment_id],
        "tags.airflow_run_id = 'manual__tune' and tags.tuning_of = 'lightgbm'",
    )
    assert len(trials) == 2
    for trial in trials:
        steps = [m.step for m in client.get_metric_history(trial.info.run_id, "cv_roc_auc_by_trees")]
        assert len(steps) >= 2 and len(steps) == len(set(steps))
        assert len(client.get_metric_history(trial.info.run_id, "trees_fitted")) == 1
