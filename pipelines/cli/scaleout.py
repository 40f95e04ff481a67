"""Runs on a live stack, driven through the REST APIs, for the scale-out test and benchmark.

``run_dag`` triggers one DAG run and waits for its end; ``run_with_worker_kill`` does the same and,
as soon as a task of the run is running on a Celery worker, SIGKILLs that worker's process group
and every process below it (the worker, its pool, the task processes: a machine lost).
``task_tries`` reads every try of every task instance (who ran it, how it ended);
``model_versions`` and ``duplicate_versions`` read the MLflow registry to tell whether a retry
registered a model twice.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.parse
from contextlib import suppress
from dataclasses import dataclass

import psutil

from pipelines.cli.live import LiveStack, http_json


@dataclass
class RunOutcome:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    killed: str | None = None  # the worker SIGKILLed during the run
    killed_task: str | None = None  # "task_id[map_index]" it was running then


def _start(stack: LiveStack, dag_id: str, ds: str, conf: dict) -> str:
    stack.api.wait_for_dag(dag_id)
    stack.api.unpause(dag_id)
    return stack.api.trigger(dag_id, ds, conf)


def run_dag(stack: LiveStack, dag_id: str, ds: str, conf: dict, timeout: float, echo=print) -> RunOutcome:
    """Trigger ``dag_id`` for ``ds`` with ``conf`` through the REST API and wait for its final state."""
    t0 = time.monotonic()
    run_id = _start(stack, dag_id, ds, conf)
    state = stack.api.wait_for_run(dag_id, run_id, timeout=timeout, echo=echo)
    return RunOutcome(dag_id, run_id, state, time.monotonic() - t0)


def run_with_worker_kill(
    stack: LiveStack, dag_id: str, ds: str, conf: dict, timeout: float, task_id: str = "train", echo=print
) -> RunOutcome:
    """Like ``run_dag``, SIGKILLing the Celery worker that runs the first running ``task_id`` instance."""
    if not stack.workers:
        raise ValueError("run_with_worker_kill needs a stack with Celery workers (live_stack(celery_workers=2))")
    by_host = {host: name for name, host in stack.workers.items()}
    t0 = time.monotonic()
    run_id = _start(stack, dag_id, ds, conf)
    killed = killed_task = None
    while killed is None and time.monotonic() - t0 < timeout:
        for ti in stack.api.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id and ti["state"] == "running" and ti.get("hostname") in by_host:
                killed, killed_task = by_host[ti["hostname"]], f"{task_id}[{ti['map_index']}]"
                break
        else:
            if stack.api.call("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"] in ("success", "failed"):
                break
            time.sleep(0.5)
    if killed is not None:
        time.sleep(1)  # into the task: its model is being fitted
        lost = kill_machine(stack.pgids[killed])
        echo(f"  SIGKILL {killed} (pid {stack.pgids[killed]}, {lost} processes) while it ran {killed_task}")
    state = stack.api.wait_for_run(dag_id, run_id, timeout=timeout - (time.monotonic() - t0), echo=echo)
    return RunOutcome(dag_id, run_id, state, time.monotonic() - t0, killed, killed_task)


def kill_machine(pgid: int) -> int:
    """SIGKILL a worker as if its machine were lost: its process group and every process below it.

    The task processes are in process groups of their own (the Task SDK's supervisor puts each
    in one), so the group alone would leave them running; a lost machine takes them too.
    Returns how many processes were killed.
    """
    try:
        procs = [psutil.Process(pgid), *psutil.Process(pgid).children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    for proc in procs:
        with suppress(psutil.Error):
            proc.kill()
    return len(procs)


def task_tries(stack: LiveStack, dag_id: str, run_id: str) -> list[dict]:
    """Every try of every task instance of a run (``task_id``, ``map_index``, ``try_number``, ``state``, ``hostname``)."""
    tries = []
    for ti in stack.api.task_instances(dag_id, run_id):
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/tries"
        tries += stack.api.call("GET", path, map_index=ti["map_index"])["task_instances"]
    return tries


def model_versions(mlflow_url: str, model: str) -> list[dict]:
    """Every version of a registered model on the MLflow server (REST), with its tags as a dict."""
    query = urllib.parse.urlencode({"filter": f"name='{model}'", "max_results": 1000})
    found = http_json("GET", f"{mlflow_url}/api/2.0/mlflow/model-versions/search?{query}")
    versions = found.get("model_versions", [])
    return [{**v, "tags": {t["key"]: t["value"] for t in v.get("tags", [])}} for v in versions]


def duplicate_versions(versions: list[dict]) -> int:
    """Versions beyond the first registered by the same Airflow run (a retry must reuse, never add)."""
    runs = [v["tags"].get("airflow_run_id") for v in versions]
    return sum(runs.count(r) - 1 for r in set(runs) if r)
