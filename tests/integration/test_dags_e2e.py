"""The DAGs end to end through Airflow (api-server + LocalExecutor) on real Adult batches,
against a throwaway MLflow server."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.cli import demo
from pipelines.constants import BRONZE, GOLD, SILVER
from pipelines.features.bronze import QUARANTINE_BRONZE
from pipelines.features.silver import QUARANTINE_SILVER
from pipelines.lake import Lake
from tests.integration.isolation import task_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def airflow(shared_stack):  # tests/integration/conftest.py: shared with test_byod_e2e.py
    return shared_stack


def _task_rows(settings, run_id):
    return task_rows(settings, run_id, "task_id, map_index, state, start_date, end_date")


def test_backfill_reconciles_and_a_rerun_changes_nothing(airflow):
    settings, env = airflow
    lake = Lake(settings.lake_root)
    dates = ["2026-01-01", "2026-01-02"]
    runs = [demo.run_dag(settings, env, "features", ds) for ds in dates]
    assert [r.state for r in runs] == ["success", "success"], [str(r.log) for r in runs]

    first = {}
    for ds in dates:
        b, s, g = (lake.read_manifest(layer, "adult", ds) for layer in (BRONZE, SILVER, GOLD))
        qb = lake.read_manifest(QUARANTINE_BRONZE, "adult", ds)
        qs = lake.read_manifest(QUARANTINE_SILVER, "adult", ds)
        # Nothing lost: every landed row is in gold or in a quarantine table.
        assert b["rows_in"] == b["rows"] + qb["rows"]
        assert s["rows_in"] == b["rows"] == s["rows"] + qs["rows"]
        assert g["rows"] == s["rows"]
        assert b["rows_in"] == g["rows"] + qb["rows"] + qs["rows"]
        assert 10_000 < g["rows"] < 14_000
        assert len(b["files"]) == settings.demo.files_per_day
        first[ds] = g

    # The mapped bronze tasks really ran side by side on the executor.
    rows = [r for r in _task_rows(settings, runs[0].run_id) if r[0] == "bronze_file"]
    assert len(rows) == settings.demo.files_per_day and all(r[2] == "success" for r in rows)
    overlapping = [(a[1], b[1]) for a in rows for b in rows if a[1] < b[1] and a[3] < b[4] and b[3] < a[4]]
    assert overlapping, f"no two bronze_file tasks ran at the same time: {rows}"

    rerun = demo.run_dag(settings, env, "features", dates[0])
    assert rerun.state == "success"
    again = lake.read_manifest(GOLD, "adult", dates[0])
    assert again["content_hash"] == first[dates[0]]["content_hash"]
    assert again["rows"] == first[dates[0]]["rows"] and again["splits"] == first[dates[0]]["splits"]
    assert len(lake.read_manifest(BRONZE, "adult", dates[0])["files"]) == settings.demo.files_per_day
    assert lake.list_partitions(GOLD, "adult") == dates

    # Each DAG run logged one data-quality run to the MLflow server, tagged with its gold hash.
    client = MlflowClient(settings.mlflow.server_url)
    experiment = client.get_experiment_by_name("features")
    logged = client.search_runs([experiment.experiment_id], "tags.ds = '2026-01-01'")
    assert sorted(r.data.tags["airflow_run_id"] for r in logged) == sorted([runs[0].run_id, rerun.run_id])
    assert {r.data.tags["gold_content_hash"] for r in logged} == {again["content_hash"]}
    assert all(r.data.metrics["gold_rows"] == again["rows"] for r in logged)


def test_a_date_with_no_data_fails_with_a_clear_message(airflow):
    settings, env = airflow
    result = demo.run_dag(settings, env, "features", "2027-06-01")
    assert result.state == "failed"
    assert "no landing files for dataset 'adult' on 2027-06-01" in result.log.read_text()


def _adult_gold(settings, env) -> Lake:
    """The lake, with Adult's gold for 2026-01-01 (built by the features DAG if an earlier test did not)."""
    lake = Lake(settings.lake_root)
    if "2026-01-01" not in lake.list_partitions(GOLD, "adult"):
        assert demo.run_dag(settings, env, "features", "2026-01-01").state == "success"
    return lake


def test_training_dag_leaves_a_leaderboard_and_nested_runs(airflow):
    settings, env = airflow
    lake = _adult_gold(settings, env)
    conf = {
        "algorithms": ["logreg", "lightgbm", "mlp_torch"],
        "cv_folds": 2,
        "sample_rows": 3000,
        "ds": "2026-01-01",
        "tune_top_k": 1,
        "tune_calls": 3,
    }
    result = demo.run_dag(settings, env, "training", "2026-01-01", conf=json.dumps(conf))
    assert result.state == "success", result.log

    board = lake.read_partition(GOLD, "adult_leaderboard", "2026-01-01").to_pandas()
    assert set(board["algorithm"]) == {"logreg", "lightgbm", "mlp_torch", "voting", "bagging", "stacking"}
    assert (board["status"] == "ok").all(), board[["algorithm", "reason"]]
    assert board["cv_roc_auc"].iloc[0] > 0.85  # real signal even on 3,000 rows

    # The three algorithms ran as mapped tasks of one run.
    trains = [r for r in _task_rows(settings, result.run_id) if r[0] == "train"]
    assert sorted(r[1] for r in trains) == [0, 1, 2] and all(r[2] == "success" for r in trains)

    client = MlflowClient(settings.mlflow.server_url)
    experiment = client.get_experiment_by_name("training")
    parents = client.search_runs(
        [experiment.experiment_id], f"tags.airflow_run_id = '{result.run_id}' and tags.role = 'parent'"
    )
    assert len(parents) == 1
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    best_base = board.loc[board["family"] != "ensemble", "algorithm"].iloc[0]
    tuned = f"{best_base}_tuned"
    assert sorted(c.data.tags["algorithm"] for c in children) == sorted([*board["algorithm"], tuned])
    parent = parents[0]
    assert parent.data.tags["best_algorithm"] == board["algorithm"].iloc[0]
    assert {"leaderboard.csv", "plots", "selection", "registry"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }

    # Tuning: 3 trials nested under the tuned model's run, with a convergence plot.
    tuned_run = next(c for c in children if c.data.tags["algorithm"] == tuned)
    trials = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{tuned_run.info.run_id}'")
    assert len(trials) == 3 and all("cv_roc_auc" in t.data.metrics for t in trials)
    if best_base == "lightgbm":  # a boosting trial also logs its CV ROC-AUC per tree count (one fit)
        for t in trials:
            curve = client.get_metric_history(t.info.run_id, "cv_roc_auc_by_trees")
            assert len(curve) >= 2 and max(m.step for m in curve) == t.data.metrics["trees_fitted"]
            assert t.data.metrics["cv_roc_auc"] == max(m.value for m in curve)
    assert "plots/convergence.png" in {a.path for a in client.list_artifacts(tuned_run.info.run_id, "plots")}

    # Selection, SHAP and the registry: the first run on this store promotes a champion.
    selected = parent.data.tags["selected_algorithm"]
    selected_run = next(c for c in children if c.data.tags["algorithm"] == selected)
    shap = {a.path for a in client.list_artifacts(selected_run.info.run_id, "shap")}
    assert {"shap/beeswarm.png", "shap/bar.png", "shap/mean_abs_shap.json", "shap/background.parquet"} <= shap
    champion = client.get_model_version_by_alias("adult_classifier", "champion")
    assert champion.tags["algorithm"] == selected and champion.tags["airflow_run_id"] == result.run_id

    import mlflow

    mlflow.set_tracking_uri(settings.mlflow.server_url)
    model = mlflow.pyfunc.load_model("models:/adult_classifier@champion")
    gold = lake.read_partition(GOLD, "adult", "2026-01-01").to_pandas().head(20)
    proba = model.predict(gold)  # raw gold rows, extra columns and all
    assert np.asarray(proba).shape == (20,)  # one probability per row, P(income > 50K), as the docs say
    assert parent.data.tags["outcome"].startswith("registered adult_classifier version")
    table = pd.read_json(
        mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="selection/pareto_table.json"),
        orient="split",
    )
    lift = table.set_index("algorithm")["cv_roc_auc_lift"]  # the default gate: beat the baseline
    assert lift.notna().all() and lift[selected] > 0.002


def test_register_is_skipped_saying_why_when_no_model_passes_the_gate(airflow):
    settings, env = airflow
    _adult_gold(settings, env)
    conf = {
        "algorithms": ["logreg"],
        "cv_folds": 2,
        "sample_rows": 2000,
        "ds": "2026-01-01",
        "tune_top_k": 0,
        "gate": {"cv_roc_auc": "> 0.9999"},
    }
    result = demo.run_dag(settings, env, "training", "2026-01-03", conf=json.dumps(conf))
    assert result.state == "success", result.log  # a skipped register is not a failed run ...
    states = {r[0]: r[2] for r in _task_rows(settings, result.run_id) if r[1] == -1}
    assert states["register"] == "skipped" and states["explain"] == "success"  # ... but it is not green either
    client = MlflowClient(settings.mlflow.server_url)
    experiment = client.get_experiment_by_name("training")
    (parent,) = client.search_runs(
        [experiment.experiment_id], f"tags.airflow_run_id = '{result.run_id}' and tags.role = 'parent'"
    )
    assert parent.data.tags["outcome"] == "nothing registered"
    assert "cv_roc_auc" in parent.data.tags["outcome_reason"] and parent.data.tags["registered_version"] == "none"
