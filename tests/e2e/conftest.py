"""Integration mode (``make test-integration``): one live stack on PostgreSQL for the whole session.

The stack (PostgreSQL, MLflow server, Airflow's scheduler, DAG processor, triggerer and API
server) starts once; ``features`` and then ``training`` are triggered once through Airflow's
REST API; the tests then look at the outcome through the REST APIs, the databases and a browser.
Everything is stopped by PID at the end and checked to be gone. Runs only with ``PIPELINES_E2E=1``
(set by ``make test-integration``), so ``make test`` keeps its scope.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

from pipelines.cli.live import LiveStack, live_stack
from tests.e2e.browser import artifacts, page  # noqa: F401 - the browser fixtures, for every module here
from tests.integration.isolation import free_port, port_range

DS = "2026-01-01"
FEATURES_CONF = {"dataset": "adult", "simulate_feed": True}
# Small and fast: two base algorithms on a 3,000-row sample, 2 folds, the best one tuned with 3 trials.
TRAINING_CONF = {
    "dataset": "adult",
    "ds": DS,
    "algorithms": ["logreg", "lightgbm"],
    "cv_folds": 2,
    "sample_rows": 3000,
    "ensemble_top_k": 2,
    "tune_top_k": 1,
    "tune_calls": 3,
    "explain_time_budget_s": 10,
}
RUN_TIMEOUT_S = {"features": 900, "training": 1800}


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PIPELINES_E2E") == "1":
        # The CeleryExecutor module first: its stack is down before the session's LocalExecutor stack starts.
        items.sort(key=lambda item: item.path.name != "test_celery.py")  # stable: the rest keep their order
        return
    skip = pytest.mark.skip(reason="integration mode: run with `make test-integration` (PIPELINES_E2E=1)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@dataclass
class Runs:
    ids: dict[str, str]  # dag_id -> Airflow run id
    states: dict[str, str]
    seconds: dict[str, float]


def stack_ports(redis: bool = False) -> dict[str, int]:
    """Free loopback ports for a live stack (``live_stack``'s keyword arguments), from the PIPELINES_E2E_* ranges."""
    web = port_range("PIPELINES_E2E_PORTS", "8201-8299")
    ports = {"airflow_port": free_port(web)}
    ports["mlflow_port"] = free_port(web, taken={ports["airflow_port"]})
    ports["pg_port"] = free_port(port_range("PIPELINES_E2E_PG_PORTS", "5433-5439"))
    if redis:
        ports["redis_port"] = free_port(port_range("PIPELINES_E2E_REDIS_PORTS", "6380-6389"))
    return ports


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> LiveStack:
    root = tmp_path_factory.mktemp("live")
    t0 = time.monotonic()
    print(f"\n[e2e] starting the live stack under {root}")
    with live_stack(root, **stack_ports()) as stack:
        print(f"[e2e] stack up in {time.monotonic() - t0:.0f}s: Airflow {stack.airflow_url}, MLflow {stack.mlflow_url}")
        yield stack
        print("[e2e] stopping the live stack")
    print("[e2e] stopped; no process group left")


@pytest.fixture(scope="session")
def runs(live) -> Runs:
    """``features`` for one date, then ``training`` on its gold, each triggered through the REST API."""
    api = live.api
    ids, states, seconds = {}, {}, {}
    for dag_id, conf in (("features", FEATURES_CONF), ("training", TRAINING_CONF)):
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
        t0 = time.monotonic()
        ids[dag_id] = api.trigger(dag_id, DS, conf)
        states[dag_id] = api.wait_for_run(dag_id, ids[dag_id], timeout=RUN_TIMEOUT_S[dag_id])
        seconds[dag_id] = time.monotonic() - t0
        print(f"[e2e] {dag_id} {ids[dag_id]}: {states[dag_id]} in {seconds[dag_id]:.0f}s")
        if states[dag_id] != "success":
            break
    return Runs(ids, states, seconds)
