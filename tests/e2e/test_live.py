"""The platform run for real: features then training through Airflow's REST API, on PostgreSQL."""

from __future__ import annotations

import os
import secrets

import psutil
import psycopg2
import pytest

from pipelines.cli.live import ApiError, http_json
from pipelines.tracking import mlflow_run_url
from tests.e2e.conftest import TRAINING_CONF

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_features_then_training_succeed(live, runs):
    assert runs.states == {"features": "success", "training": "success"}, runs
    for dag_id, run_id in runs.ids.items():
        tis = live.api.task_instances(dag_id, run_id)
        bad = [(t["task_id"], t["map_index"], t["state"]) for t in tis if t["state"] not in ("success", "skipped")]
        assert tis and not bad
    # The mapped training tasks ran on the scheduler's executor, one per algorithm.
    trains = [t for t in live.api.task_instances("training", runs.ids["training"]) if t["task_id"] == "train"]
    assert sorted(t["map_index"] for t in trains) == list(range(len(TRAINING_CONF["algorithms"])))


def test_authentication_stays_on(live):
    for path in ("/api/v2/dags", "/api/v2/dags/training/dagRuns"):
        with pytest.raises(ApiError) as denied:
            http_json("GET", f"{live.airflow_url}{path}")
        assert denied.value.status in (401, 403)
    with pytest.raises(ApiError) as wrong:
        http_json("POST", f"{live.airflow_url}/auth/token", {"username": "admin", "password": secrets.token_hex(8)})
    assert wrong.value.status in (401, 403)


def test_registry_has_a_champion_through_mlflow_rest(live, runs):
    assert runs.states["training"] == "success"
    api = f"{live.mlflow_url}/api/2.0/mlflow"
    model = http_json("GET", f"{api}/registered-models/get?name=adult_classifier")["registered_model"]
    aliases = {a["alias"]: a["version"] for a in model.get("aliases", [])}
    assert "champion" in aliases, model
    version = http_json("GET", f"{api}/registered-models/alias?name=adult_classifier&alias=champion")["model_version"]
    assert version["version"] == aliases["champion"]
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    assert tags["airflow_run_id"] == runs.ids["training"]
    assert tags["algorithm"] in [*TRAINING_CONF["algorithms"], "voting", "bagging", "stacking"] or tags[
        "algorithm"
    ].endswith("_tuned")
    # The version comes from a real run on the server: the selected model's run.
    run = http_json("GET", f"{api}/runs/get?run_id={version['run_id']}")["run"]
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["algorithm"] == tags["algorithm"]


def test_both_stores_are_postgresql(live, runs):
    """Airflow's runs and MLflow's registry live in the PostgreSQL cluster, not in SQLite files."""
    with psycopg2.connect(live.cluster.url("airflow")) as con, con.cursor() as cur:
        cur.execute("select dag_id, state from dag_run where run_id in %s", (tuple(runs.ids.values()),))
        assert sorted(cur.fetchall()) == [("features", "success"), ("training", "success")]
    with psycopg2.connect(live.cluster.url("mlflow")) as con, con.cursor() as cur:
        cur.execute("select alias from registered_model_aliases where name = 'adult_classifier'")
        assert ("champion",) in cur.fetchall()
    assert not list(live.settings.state_dir.rglob("*.db"))


def test_task_links_to_its_mlflow_run(live, runs):
    """The plugin's "MLflow run" link on a training task opens the run whose id the task returned."""
    api, run_id = live.api, runs.ids["training"]
    for task_id, key, map_index in (("train", "mlflow_run_id", 0), ("prepare", "parent_run_id", -1)):
        xcom = api.call(
            "GET",
            f"dags/training/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
            map_index=map_index,
        )
        mlflow_run_id = xcom["value"][key]
        links = api.call("GET", f"dags/training/dagRuns/{run_id}/taskInstances/{task_id}/links", map_index=map_index)
        assert links["extra_links"]["MLflow run"] == mlflow_run_url(live.settings.mlflow.browser_url, mlflow_run_id)
        found = http_json("GET", f"{live.mlflow_url}/api/2.0/mlflow/runs/get?run_id={mlflow_run_id}")["run"]
        assert found["data"]["tags"]
    # A task that returns no MLflow run id gets no link.
    links = api.call("GET", f"dags/features/dagRuns/{runs.ids['features']}/taskInstances/land/links")
    assert not links["extra_links"].get("MLflow run")


def test_every_service_listens_on_loopback_only(live):
    listening = []
    for name, pgid in live.pgids.items():
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) != pgid:
                    continue
                listening += [
                    (name, c.laddr.ip, c.laddr.port) for c in proc.net_connections("tcp") if c.status == "LISTEN"
                ]
            except (ProcessLookupError, psutil.Error):
                continue
    assert {n for n, _, _ in listening} >= {"postgres", "mlflow", "airflow"}, listening
    assert all(ip == "127.0.0.1" for _, ip, _ in listening), listening
