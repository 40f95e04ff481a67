"""Integration mode (``make test-integration``): one live stack for the whole ``tests/e2e`` package.

The stack is what ``docker-compose.yaml`` deploys, on this machine: PostgreSQL, Redis, an MLflow
server, Airflow's scheduler (CeleryExecutor), DAG processor, triggerer and API server, and two
``airflow celery worker`` processes set up as two machines. It starts once; ``features`` and then
``training`` are triggered once through Airflow's REST API, and while a ``train`` task runs its
worker is SIGKILLed (a machine lost). The tests then look at the outcome through the REST APIs,
the databases and a browser. The fixtures are package-scoped and the package's tests run first,
so everything is stopped by PID, and checked to be gone, before the other tests start. Runs only
with ``PIPELINES_E2E=1`` (set by ``make test`` and ``make test-integration``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

from pipelines.cli.live import LiveStack, live_stack
from pipelines.cli.scaleout import RunOutcome, run_dag, run_with_worker_kill
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
WORKERS = 2


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PIPELINES_E2E") == "1":
        # This package first: its stack (package-scoped) is down before the other tests start their own.
        items.sort(key=lambda item: item.path.parent.name != "e2e")  # stable: the rest keep their order
        return
    skip = pytest.mark.skip(reason="integration mode: run with `make test-integration` (PIPELINES_E2E=1)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@dataclass
class Runs:
    features: RunOutcome
    training: RunOutcome  # a worker was SIGKILLed while it ran a ``train`` task (``training.killed``)

    @property
    def ids(self) -> dict[str, str]:  # dag_id -> Airflow run id
        return {r.dag_id: r.run_id for r in (self.features, self.training)}

    @property
    def states(self) -> dict[str, str]:
        return {r.dag_id: r.state for r in (self.features, self.training)}


def stack_ports(redis: bool = False) -> dict[str, int]:
    """Free loopback ports for a live stack (``live_stack``'s keyword arguments), from the PIPELINES_E2E_* ranges."""
    web = port_range("PIPELINES_E2E_PORTS", "8201-8299")
    ports = {"airflow_port": free_port(web)}
    ports["mlflow_port"] = free_port(web, taken={ports["airflow_port"]})
    ports["pg_port"] = free_port(port_range("PIPELINES_E2E_PG_PORTS", "5433-5439"))
    if redis:
        ports["redis_port"] = free_port(port_range("PIPELINES_E2E_REDIS_PORTS", "6380-6389"))
    return ports


@pytest.fixture(scope="package")
def live(tmp_path_factory) -> LiveStack:
    root = tmp_path_factory.mktemp("live")
    t0 = time.monotonic()
    print(f"\n[e2e] starting the live stack ({WORKERS} Celery workers) under {root}")
    with live_stack(root, **stack_ports(redis=True), celery_workers=WORKERS) as stack:
        print(f"[e2e] stack up in {time.monotonic() - t0:.0f}s: Airflow {stack.airflow_url}, MLflow {stack.mlflow_url}")
        yield stack
        print("[e2e] stopping the live stack")
    print("[e2e] stopped; no process group left")


@pytest.fixture(scope="package")
def runs(live) -> Runs:
    """``features`` for one date, then ``training`` on its gold with a worker killed mid-``train``, through the REST API."""
    features = run_dag(live, "features", DS, FEATURES_CONF, RUN_TIMEOUT_S["features"])
    print(f"[e2e] features {features.run_id}: {features.state} in {features.seconds:.0f}s")
    assert features.state == "success", features
    training = run_with_worker_kill(live, "training", DS, TRAINING_CONF, RUN_TIMEOUT_S["training"])
    print(f"[e2e] training {training.run_id}: {training.state} in {training.seconds:.0f}s, killed {training.killed}")
    return Runs(features, training)
