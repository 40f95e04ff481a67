"""Bring your own data, end to end through Airflow: a public table saved with foreign column names
(spaces, capitals, a text label) goes from `python -m pipelines dataset add` (a subprocess, as a user
types it) through the `features` DAG landing the file itself (Param `land_source`) to the `training`
DAG and a registered model in MLflow, with a tiny training budget."""

import json
import subprocess
import sys

import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer

from pipelines.cli import demo
from pipelines.constants import GOLD, LANDING, SILVER
from pipelines.lake import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DS = "2026-02-01"
NAME = "tumours"


@pytest.fixture(scope="module")
def airflow(shared_stack):  # tests/integration/conftest.py: the stack of test_dags_e2e.py, its own user overlay
    return shared_stack


def foreign_table(path) -> int:
    """scikit-learn's bundled breast-cancer table as someone's export: 'Mean Radius', ..., label 'Diagnosis'."""
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.title() if c != "target" else "Diagnosis")
    frame["Diagnosis"] = frame["Diagnosis"].map(dict(enumerate(bunch.target_names)))  # malignant / benign
    frame.insert(0, "Patient ID", [f"P-{i:04d}" for i in range(len(frame))])
    frame.to_csv(path, index=False)
    return len(frame)


def test_dataset_add_to_a_registered_model(airflow, tmp_path):
    settings, env = airflow
    lake = Lake(settings.lake_root)
    source = tmp_path / "Breast Cancer Export.csv"
    rows = foreign_table(source)

    add = [sys.executable, "-m", "pipelines", "dataset", "add", NAME, "--source", str(source)]
    done = subprocess.run(
        [*add, "--label", "Diagnosis", "--positive", "malignant"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"The draft passes {rows:,} of {rows:,} sampled rows." in done.stdout
    assert (settings.state_dir.parent / "user" / "contracts" / f"{NAME}.yaml").exists()

    # The features DAG lands the dataset's own file for the date (no demo feed) and builds its gold.
    conf = {"dataset": NAME, "land_source": True, "simulate_feed": False}
    result = demo.run_dag(settings, env, "features", DS, conf=json.dumps(conf))
    assert result.state == "success", result.log
    assert [p.rsplit("/", 1)[-1] for p in lake.list_files(f"{LANDING}/{NAME}/ds={DS}")] == [source.name]
    silver, gold = lake.read_manifest(SILVER, NAME, DS), lake.read_manifest(GOLD, NAME, DS)
    assert silver["rows_quarantined"] == 0 and gold["rows"] == rows
    assert gold["label_source"] == {"column": "diagnosis", "positive": "malignant"}
    assert "patient_id" not in gold["features"] and "mean_radius" in gold["features"]

    # Training on it with a tiny budget: two algorithms, two folds, no tuning.
    conf = {"dataset": NAME, "ds": DS, "algorithms": ["logreg", "lightgbm"], "cv_folds": 2, "tune_top_k": 0}
    result = demo.run_dag(settings, env, "training", DS, conf=json.dumps(conf))
    assert result.state == "success", result.log
    board = lake.read_partition(GOLD, f"{NAME}_leaderboard", DS).to_pandas()
    assert (board["status"] == "ok").all(), board[["algorithm", "reason"]]
    assert board["cv_roc_auc"].max() > 0.95  # a separable table: real signal

    client = MlflowClient(settings.mlflow.server_url)
    versions = client.search_model_versions(f"name = '{NAME}_classifier'")
    assert len(versions) == 1, "the default gate passes on this table: exactly one version registered"
    assert versions[0].tags.get("dataset") == NAME
