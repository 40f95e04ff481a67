"""Scale-out for real: features then training on the CeleryExecutor with two workers, one SIGKILLed mid-task.

The package's stack (``conftest.live``): PostgreSQL, Redis, MLflow server, Airflow's four
components with the CeleryExecutor, two ``airflow celery worker`` processes set up as two machines
(own AIRFLOW_HOME, state, dataset cache, logs, temp folder and host name). ``features`` runs, then
``training``; while a ``train`` task runs, its worker's process group gets SIGKILL (``conftest.runs``).
"""

from __future__ import annotations

import pytest

from pipelines.cli import celery_stack, stack
from pipelines.cli.live import http_json
from pipelines.cli.scaleout import duplicate_versions, model_versions, task_tries
from pipelines.lake import Lake
from tests.e2e.conftest import DS, WORKERS
from tests.integration.reliability.accounting import reconcile

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

MODEL = "adult_classifier"


def test_the_scheduler_uses_the_celery_executor(live):
    for key, value in celery_stack.CELERY_SETTINGS.items():
        assert live.env[key] == value, key
    assert live.env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert live.broker is not None and live.broker.answers()
    assert sorted(live.workers) == list(celery_stack.WORKER_NAMES[:WORKERS])


def test_every_task_succeeded_after_a_worker_was_killed(live, runs):
    assert runs.training.killed in live.workers, "no worker was running a train task to kill"
    assert runs.training.state == "success", runs.training
    for run in (runs.features, runs.training):
        tis = live.api.task_instances(run.dag_id, run.run_id)
        bad = [(t["task_id"], t["map_index"], t["state"]) for t in tis if t["state"] not in ("success", "skipped")]
        assert tis and not bad, (run.dag_id, bad)
    assert not stack._group_alive(live.pgids[runs.training.killed])  # it stayed dead


def test_tasks_ran_on_both_workers_and_the_killed_task_moved(live, runs):
    hosts = set(live.workers.values())
    killed_host = live.workers[runs.training.killed]
    tries = [t for run in (runs.features, runs.training) for t in task_tries(live, run.dag_id, run.run_id)]
    used = {t["hostname"] for t in tries if t["hostname"]}
    assert used == hosts, f"task instances ran on {used}, workers are {hosts}"
    task_id, map_index = runs.training.killed_task.rstrip("]").split("[")
    moved = sorted(
        (t["try_number"], t["state"], t["hostname"])
        for t in tries
        if t["task_id"] == task_id and t["map_index"] == int(map_index) and t["dag_id"] == "training"
    )
    assert moved[0][1:] == ("failed", killed_host), moved  # the try on the killed worker: heartbeat lost
    assert moved[-1][1] == "success" and moved[-1][2] in hosts - {killed_host}, moved


def test_no_duplicate_model_versions(live, runs):
    versions = model_versions(live.mlflow_url, MODEL)
    assert [v["tags"].get("airflow_run_id") for v in versions] == [runs.training.run_id]
    assert duplicate_versions(versions) == 0


def test_nothing_lost_in_the_lake(live, runs):
    lake = Lake(live.settings.lake_root)
    bronze, silver, gold = (lake.read_manifest(layer, "adult", DS) for layer in ("bronze", "silver", "gold"))
    rows = reconcile(lake, "adult", DS)  # landing rows, counted with the csv module, against gold + quarantine
    assert rows["rows_landed"] > 0 and rows["rows_lost"] == 0, rows
    assert silver["rows_in"] == bronze["rows"] and silver["rows"] + silver["rows_quarantined"] == silver["rows_in"]
    assert gold["rows"] == silver["rows"]
    for layer, manifest in (("bronze", bronze), ("silver", silver), ("gold", gold)):
        assert lake.read_partition(layer, "adult", DS).num_rows == manifest["rows"], layer
    assert lake.list_partitions("gold", "adult") == [DS]  # the retried training wrote no partition of its own


def test_artifacts_went_through_the_mlflow_server(live, runs):
    """No worker wrote a model where another could only read it through a shared disk."""
    api = f"{live.mlflow_url}/api/2.0/mlflow"
    for version in model_versions(live.mlflow_url, MODEL):
        run = http_json("GET", f"{api}/runs/get?run_id={version['run_id']}")["run"]
        assert run["info"]["artifact_uri"].startswith("mlflow-artifacts:"), run["info"]["artifact_uri"]
    # Each worker wrote its task logs into its own folder (the machine it stands for), none in the scheduler's.
    root = live.settings.state_dir.parent
    for name in live.workers:
        assert list((root / name / "logs").rglob("attempt=*.log")), name
    assert not list((stack.airflow_home(live.settings) / "logs").rglob("attempt=*.log"))
