"""The monitoring DAG end to end through Airflow (api-server + LocalExecutor), against a throwaway MLflow
server and lake: held-out Adult rows served by the real prediction API (its prediction log), labels,
a clean day and a drifted day. The clean day raises nothing; the drifted day's alerts are stored
and its trigger_training task creates a training run, which Airflow's scheduler then runs."""

import json

import pytest
from mlflow import MlflowClient

from pipelines import features
from pipelines.cli import dagruns, demo, demo_monitoring, stack
from pipelines.lake import Lake
from pipelines.monitoring import alerts
from pipelines.serving import replay
from tests.integration.isolation import embedded_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "adult_classifier"
GOLD_DS = "2026-01-01"
CLEAN, DRIFTED = "2026-01-02", "2026-01-03"
DRIFT = {"shift": {"age": 1.5, "hours_per_week": 1.0}}
# A quick retraining: one algorithm (the ensembles then stop at once: they need two), no tuning.
RETRAIN = {"algorithms": ["logreg"], "cv_folds": 2, "sample_rows": 2000, "tune_top_k": 0}


def _register_champion(settings) -> str:
    """A logistic regression on gold, logged and registered the way the training DAG does it."""
    import mlflow

    from pipelines.training import algorithms, registry
    from pipelines.training.data import load_training_data
    from pipelines.training.run import _log_model

    data = load_training_data(Lake(settings.lake_root), "adult", GOLD_DS, sample=3000, seed=0)
    model = algorithms.build("logreg", data.features, 0).fit(data.X_train, data.y_train)
    mlflow.set_tracking_uri(settings.mlflow.server_url)
    mlflow.set_experiment("training")
    with mlflow.start_run() as run:
        uri = _log_model(model, data)
    return registry.register(settings.mlflow.server_url, MODEL, uri, run.info.run_id, data.X_test, data.y_test).version


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    with embedded_stack(tmp_path_factory.mktemp("stack")) as (settings, env):
        # The reference (gold) and a champion, in-process: the features and training DAGs have their own tests.
        features.run("adult", GOLD_DS, settings=settings)
        _register_champion(settings)
        # Production traffic through the real API: a clean day, then a drifted one; labels for both.
        lake = Lake(settings.lake_root)
        rows = replay.held_out(lake, "adult", GOLD_DS, seed=0)
        with replay.in_process(demo_monitoring.serving_settings(settings)) as (client, service):
            traffic = replay.replay_days(
                client, service, rows, [CLEAN, DRIFTED], rows_per_day=600, drift_from=DRIFTED, drift=DRIFT,
                lake=lake, model=MODEL, labels_dataset="labels",
            )  # fmt: skip
        assert traffic["rows"].tolist() == [600, 600] and traffic["drifted"].tolist() == [False, True]
        yield settings, env
    assert stack.running_pid(settings, "scheduler") is None


def _monitor(settings, env, ds, trigger_training: str):
    """A monitoring run of ``ds``: it succeeds, check and should_retrain succeed, and trigger_training ends
    in the state given. Returns the run and the training runs it triggered."""
    api = dagruns.client(settings)
    before = dagruns.run_ids(api, "training")
    result = demo.run_dag(settings, env, "monitoring", ds, conf=json.dumps({"training_conf": RETRAIN}))
    assert result.state == "success", result.log
    assert dagruns.task_states(api, "monitoring", result.run_id) == {
        "check": "success",
        "should_retrain": "success",
        "trigger_training": trigger_training,
    }
    return result, dagruns.triggered_runs(api, "training", before)


def _mlflow_run(settings, airflow_run_id):
    client = MlflowClient(settings.mlflow.server_url)
    experiment = client.get_experiment_by_name("monitoring")
    [run] = client.search_runs([experiment.experiment_id], f"tags.airflow_run_id = '{airflow_run_id}'")
    return run


def test_an_undrifted_day_raises_no_alert_and_triggers_nothing(airflow):
    settings, env = airflow
    result, triggered = _monitor(settings, env, CLEAN, trigger_training="skipped")
    assert triggered == []
    stored = alerts.read(Lake(settings.lake_root), MODEL, CLEAN)
    assert stored is not None and len(stored) == 0
    run = _mlflow_run(settings, result.run_id)
    assert run.data.metrics["alerts"] == 0 and run.data.metrics["predictions"] == 600
    assert run.data.metrics["labelled"] == 600 and run.data.tags["retrain"] == "False"
    assert max(v for k, v in run.data.metrics.items() if k.startswith("psi_")) < settings.monitoring.psi_threshold


def test_a_drifted_day_is_detected_stored_and_triggers_a_training_run(airflow):
    settings, env = airflow
    result, triggered = _monitor(settings, env, DRIFTED, trigger_training="success")
    lake = Lake(settings.lake_root)

    # Stored: the alerts table, the MLflow run, the task log.
    stored = alerts.read(lake, MODEL, DRIFTED)
    drifted = set(stored.loc[stored["kind"] == "feature_drift", "subject"])
    assert {"age", "hours_per_week"} <= drifted, stored[["kind", "subject", "value"]]
    run = _mlflow_run(settings, result.run_id)
    assert run.data.metrics["alerts"] == len(stored) and run.data.tags["retrain"] == "True"
    assert run.data.metrics["psi_age"] > settings.monitoring.psi_threshold
    logs = stack.airflow_home(settings) / "logs" / "dag_id=monitoring" / f"run_id={result.run_id}" / "task_id=check"
    text = "".join(p.read_text() for p in logs.rglob("*.log"))
    assert "ALERT adult_classifier feature_drift/age: age: PSI" in text

    # The drift date is found and the clean date raised nothing (the demo reports the same figures).
    report = alerts.detection_report(lake, MODEL, [CLEAN, DRIFTED], DRIFTED)
    assert report["detected"] and report["first_alert"] == DRIFTED
    assert report["false_alerts"] == 0 and report["missed"] == []

    # trigger_training created a training run, queued with the conf it carried.
    [run] = triggered
    assert run["state"] == "queued"
    assert run["conf"] == {"ds": DRIFTED, **RETRAIN}

    # Airflow's scheduler runs it (as the demo does) and it registers a version tagged with its run id.
    retrain = demo.run_triggered(settings, env, "training", run["run_id"], DRIFTED, timeout_s=900)
    assert retrain.state == "success", retrain.log
    assert dagruns.is_paused(dagruns.client(settings), "training")  # paused again, as it was
    versions = MlflowClient(settings.mlflow.server_url).search_model_versions(f"name = '{MODEL}'")
    assert run["run_id"] in {v.tags.get("airflow_run_id") for v in versions}
