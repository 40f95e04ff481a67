"""Faults injected into scheduler-driven runs of the real `features` DAG, and what they leave behind.

Each test triggers a run through the REST API, injects one fault at a known point (see
pipelines/faults.py), lets Airflow recover on its own (retries, orphan adoption), then checks the
run succeeded, the lake holds exactly what a clean run produces, and no landed row was lost.
Runs with `make test-faults` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import os
import re
import signal

import pyarrow as pa
import pytest
from mlflow import MlflowClient

from pipelines import features
from pipelines.cli import stack
from pipelines.config import load_settings
from pipelines.constants import BRONZE, GOLD, REASON, ROW_ID, SILVER, SOURCE_FILE, STAGING
from pipelines.features.bronze import QUARANTINE_BRONZE
from pipelines.features.landing import landing_dir
from pipelines.lake import Lake
from tests.integration.reliability.accounting import reconcile
from tests.integration.reliability.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

DATASET = "adult"


@pytest.fixture(scope="module")
def reference(scheduler_stack, tmp_path_factory):
    """Gold manifests of a clean in-process run per date, on a lake of its own."""
    environ = {**scheduler_stack.env, "MLP_LAKE_ROOT": str(tmp_path_factory.mktemp("reference-lake"))}
    settings = load_settings(environ)
    cache: dict[str, dict] = {}

    def gold(ds: str) -> dict:
        if ds not in cache:
            cache[ds] = features.run(DATASET, ds, settings=settings)["gold"]
        return cache[ds]

    return gold


def _lake(s) -> Lake:
    return Lake(s.settings.lake_root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _check_gold(s, ds: str, reference, fault_record) -> dict:
    """Gold equals a clean run's, has no duplicate rows, and every landed row is in gold or quarantine."""
    lake = _lake(s)
    gold = lake.read_manifest(GOLD, DATASET, ds)
    assert gold["content_hash"] == reference(ds)["content_hash"]
    assert gold["rows"] == reference(ds)["rows"]
    ids = lake.read_partition(GOLD, DATASET, ds, columns=[ROW_ID]).column(ROW_ID)
    assert len(ids) == len(pa.compute.unique(ids))  # no row twice
    rows = reconcile(lake, DATASET, ds)
    fault_record["rows"] = rows
    assert rows["rows_lost"] == 0, rows
    return gold


def _no_stage_leftovers(lake: Lake, layer: str, ds: str) -> list[str]:
    parent = lake.path(STAGING, layer, DATASET)
    if not os.path.isdir(parent):
        return []
    return [n for n in os.listdir(parent) if n.startswith(f"ds={ds}")]


def test_task_killed_mid_write_leaves_no_partial_partition_and_its_retry_succeeds(
    scheduler_stack, reference, fault_record
):
    s, ds, lake = scheduler_stack, "2026-01-01", _lake(scheduler_stack)
    fault_record["fault"] = "task SIGKILLed mid lake write"
    s.arm("lake_write", rf"{STAGING}/{GOLD}/{DATASET}/ds={ds}\.tmp-[0-9a-f]+/part-")
    run_id = s.trigger("features", ds)
    pid, detail = s.wait_paused("lake_write")

    # Mid-write: the gold file exists only under its temporary name, nothing is published.
    assert re.search(rf"{GOLD}/{DATASET}/ds={ds}", detail)
    folder, name = os.path.split(detail)
    assert any(n.startswith(f"{name}.tmp-") for n in os.listdir(folder))
    assert not lake.exists(lake.partition(GOLD, DATASET, ds))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(pid), 30, "the killed task to exit")
    assert not lake.exists(lake.partition(GOLD, DATASET, ds))  # still nothing half-written in place
    assert ds not in lake.list_partitions(GOLD, DATASET)

    assert s.wait_run("features", run_id) == "success", s.log("scheduler")
    task = s.task("features", run_id, "gold")
    assert task["state"] == "success" and task["try_number"] == 2  # failed once (killed), then retried
    _check_gold(s, ds, reference, fault_record)
    assert _no_stage_leftovers(lake, GOLD, ds) == []  # the retry swept the killed attempt's staging folder
    assert sorted(os.listdir(lake.path(GOLD, DATASET, f"ds={ds}"))) == ["_manifest.json", "part-00000.parquet"]


def test_scheduler_killed_mid_run_and_restarted_finishes_the_run(scheduler_stack, reference, fault_record):
    s, ds = scheduler_stack, "2026-01-02"
    fault_record["fault"] = "scheduler SIGKILLed mid-run, restarted"
    s.arm("lake_write", rf"{STAGING}/{SILVER}/{DATASET}/ds={ds}\.tmp-")
    run_id = s.trigger("features", ds)
    pid, _ = s.wait_paused("lake_write")  # the silver task is running, in the middle of its write
    assert s.task("features", run_id, "silver")["state"] == "running"

    # The scheduler and everything it started die at once: executor workers, task supervisors and
    # the task itself (a task runs in a process group of its own).
    s.kill("scheduler")
    if _alive(pid):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    wait_for(lambda: not _alive(pid), 30, "the task process to exit")
    assert s.run_state("features", run_id) == "running"

    s.start_scheduler()
    assert s.wait_run("features", run_id) == "success", s.log("scheduler")
    assert s.task("features", run_id, "silver")["try_number"] >= 2  # the orphaned attempt was reset, then rerun
    _check_gold(s, ds, reference, fault_record)
    assert _no_stage_leftovers(_lake(s), SILVER, ds) == []


def test_mlflow_down_while_logging_makes_the_task_retry_without_a_duplicate_run(
    scheduler_stack, reference, fault_record
):
    s, ds = scheduler_stack, "2026-01-03"
    fault_record["fault"] = "MLflow server down while a task logs"
    run_id = s.trigger("features", ds)
    s.arm("tracking", re.escape(run_id))
    s.wait_paused("tracking")  # the MLflow run of this DAG run exists, nothing logged into it yet
    assert stack.stop(s.settings, "mlflow")
    s.release("tracking")
    wait_for(
        lambda: s.task("features", run_id, "track")["state"] == "up_for_retry", 300, "track to fail and wait to retry"
    )
    # MLflow comes back before the retry talks to it, however long its start takes on this machine.
    s.arm("tracking_connect", re.escape(run_id))
    s.wait_paused("tracking_connect")
    stack.start(s.settings, stack.mlflow_service(s.settings), s.env)
    s.release("tracking_connect")

    assert s.wait_run("features", run_id) == "success", s.log("scheduler")
    assert s.task("features", run_id, "track")["try_number"] == 2
    gold = _check_gold(s, ds, reference, fault_record)
    client = MlflowClient(s.settings.mlflow.server_url)
    experiment = client.get_experiment_by_name("features")
    runs = client.search_runs([experiment.experiment_id], f"tags.airflow_run_id = '{run_id}'")
    assert len(runs) == 1, [r.info.run_id for r in runs]  # the retry reused the run its first attempt opened
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["gold_rows"] == gold["rows"]
    assert runs[0].data.tags["gold_content_hash"] == gold["content_hash"]


def test_corrupt_landing_files_are_quarantined_with_their_reason_and_the_rest_goes_through(
    scheduler_stack, fault_record
):
    s, ds, lake = scheduler_stack, "2026-01-04", _lake(scheduler_stack)
    fault_record["fault"] = "corrupt landing files"
    from pipelines.datasets import load_dataset

    sample = load_dataset(DATASET, s.settings).sample(90, random_state=7)
    folder = landing_dir(DATASET, ds)
    parquet = sample.iloc[:40].to_parquet(index=False)
    lake.write_bytes(f"{folder}/extra-truncated.parquet", parquet[: len(parquet) // 2])
    latin1 = sample.iloc[40:60].copy()
    latin1["native-country"] = latin1["native-country"].astype(object)
    latin1.iloc[0, latin1.columns.get_loc("native-country")] = "Côte-d'Ivoire"  # not UTF-8 once encoded
    lake.write_bytes(f"{folder}/extra-latin1.csv", latin1.to_csv(index=False).encode("latin-1"))
    cut = sample.iloc[60:].to_csv(index=False).encode()
    lake.write_bytes(f"{folder}/extra-cut.csv", cut[: cut.rstrip(b"\n").rfind(b",")])  # last line loses a field

    run_id = s.trigger("features", ds)
    assert s.wait_run("features", run_id) == "success", s.log("scheduler")

    bronze = lake.read_manifest(BRONZE, DATASET, ds)
    reasons = bronze["quarantined_files"]
    assert set(reasons) == {f"{folder}/extra-truncated.parquet", f"{folder}/extra-latin1.csv"}
    assert "corrupt Parquet file" in reasons[f"{folder}/extra-truncated.parquet"]
    assert "not a readable CSV file" in reasons[f"{folder}/extra-latin1.csv"]
    quarantine = lake.read_partition(QUARANTINE_BRONZE, DATASET, ds).to_pandas()
    cut_rows = quarantine[quarantine[SOURCE_FILE] == f"{folder}/extra-cut.csv"]
    assert len(cut_rows) == 1 and cut_rows[REASON].str.startswith("malformed CSV line").all()
    assert len(quarantine[quarantine[SOURCE_FILE].isin(reasons)]) == 2  # one record per unreadable file
    # The rest went through: the 4 demo files and 29 of the 30 rows of the cut file.
    assert {v["source"].rsplit("/", 1)[-1] for v in bronze["files"].values()} >= {"extra-cut.csv"}
    assert len(bronze["files"]) == s.settings.demo.files_per_day + 1
    rows = reconcile(lake, DATASET, ds, known={"extra-truncated.parquet": 40})
    fault_record["rows"] = rows
    assert rows["rows_lost"] == 0, rows
    assert rows["rows_in_quarantined_files"] == 40 + 20
    assert rows["gold_rows"] > 10_000
