"""After `make demo`: every DAG's latest run green in the Airflow UI and every experiment in the MLflow UI.

Runs against the UIs ``make up`` serves on the demo's state (``bench/demo.py`` does exactly that), only
with ``PIPELINES_DEMO_UI=1``: it needs a finished demo, which the test suite does not run (about ten
minutes). Screenshots are kept under ``PIPELINES_E2E_ARTIFACTS``.
"""

from __future__ import annotations

import os
import re

import pytest

from pipelines.cli import dagruns, stack
from pipelines.cli.demo_outputs import experiment_urls
from pipelines.config import load_settings
from tests.e2e.browser import BACKGROUND_RGB, is_green, login, shot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("PIPELINES_DEMO_UI") != "1", reason="after `make demo` and `make up` only"),
]

DAGS = ("features", "training", "monitoring", "sentiment", "image", "forecasting", "recommendation")
EXPERIMENTS = ("features", "training", "deep", "forecasting", "recommendation")


@pytest.fixture(scope="module")
def settings():
    return load_settings()


@pytest.mark.parametrize("dag_id", DAGS)
def test_latest_run_of_every_dag_is_green(page, settings, artifacts, dag_id):
    api = dagruns.client(settings)
    latest = api.call("GET", f"dags/{dag_id}/dagRuns", order_by="-run_after", limit=1)["dag_runs"]
    assert latest, f"{dag_id} has no run"
    run = latest[0]
    assert run["state"] == "success", f"{dag_id} {run['dag_run_id']} is {run['state']}"
    if not page.url.startswith(settings.airflow.url) or "/auth/login" in page.url:
        login(page, settings.airflow.url, stack.admin_password(settings) or "", artifacts)
    page.goto(dagruns.run_url(settings.airflow.url, dag_id, run["dag_run_id"]))
    badge = page.get_by_test_id("state-badge").first
    badge.wait_for()
    shot(page, artifacts, f"airflow-{dag_id}-latest-run")
    assert badge.inner_text().strip().lower() == "success"
    assert is_green(badge.evaluate(BACKGROUND_RGB)), badge.evaluate(BACKGROUND_RGB)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_opens_in_mlflow(page, settings, artifacts, name):
    urls = experiment_urls(settings)
    experiment = settings.mlflow.experiment(name)
    assert experiment in urls, f"no MLflow experiment {experiment!r}: {sorted(urls)}"
    page.goto(urls[experiment])
    page.get_by_text(re.compile(f"^{re.escape(experiment)}$")).first.wait_for()
    shot(page, artifacts, f"mlflow-experiment-{name}")
