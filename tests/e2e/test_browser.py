"""The UIs in a real browser: headless Chromium (Debian's package) driven by Playwright.

Logs in to the Airflow UI, sees the triggered runs of ``features`` and ``training`` in green,
follows the training task's "MLflow run" link, and finds the registered model with its champion
alias in the MLflow UI. Screenshots of every page are kept under ``PIPELINES_E2E_ARTIFACTS``
(default ``.state/artifacts/e2e``), printed at the end.
"""

from __future__ import annotations

import re

import pytest

from pipelines.tracking import mlflow_run_url
from tests.e2e.browser import BACKGROUND_RGB, is_green, login, shot

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_airflow_ui_shows_green_runs(page, live, runs, artifacts):
    assert runs.states == {"features": "success", "training": "success"}
    login(page, live.airflow_url, live.api.password, artifacts)
    for i, (dag_id, run_id) in enumerate(runs.ids.items()):
        page.goto(f"{live.airflow_url}/dags/{dag_id}/runs")
        row = page.locator("tr").filter(has=page.locator(f'a[href="/dags/{dag_id}/runs/{run_id}"]')).first
        badge = row.get_by_test_id("state-badge")
        badge.wait_for()
        shot(page, artifacts, f"0{2 + 2 * i}-airflow-{dag_id}-runs")
        assert badge.inner_text().strip().lower() == "success"
        assert is_green(badge.evaluate(BACKGROUND_RGB)), badge.evaluate(BACKGROUND_RGB)
        # The run's grid: every task instance of the run in a green (success) square.
        page.goto(f"{live.airflow_url}/dags/{dag_id}/runs/{run_id}")
        page.get_by_test_id("state-badge").first.wait_for()
        shot(page, artifacts, f"0{3 + 2 * i}-airflow-{dag_id}-run")


def test_training_task_links_to_its_mlflow_run(page, live, runs, artifacts):
    run_id = runs.ids["training"]
    xcom = live.api.call(
        "GET", f"dags/training/dagRuns/{run_id}/taskInstances/train/xcomEntries/return_value", map_index=0
    )
    mlflow_run_id = xcom["value"]["mlflow_run_id"]
    expected = mlflow_run_url(live.settings.mlflow.browser_url, mlflow_run_id)
    # The task instance's Details tab lists its extra links.
    page.goto(f"{live.airflow_url}/dags/training/runs/{run_id}/tasks/train/mapped/0/details")
    link = page.get_by_role("link", name="MLflow run")
    link.wait_for()
    shot(page, artifacts, "06-airflow-train-task-details")
    assert link.get_attribute("href") == expected
    page.goto(expected)
    page.get_by_text(mlflow_run_id).first.wait_for()
    shot(page, artifacts, "07-mlflow-run-from-link")


def test_mlflow_ui_shows_the_champion(page, live, runs, artifacts):
    page.goto(f"{live.mlflow_url}/#/models/adult_classifier")
    page.get_by_role("heading", name="adult_classifier").first.wait_for()
    page.get_by_text(re.compile(r"^@?\s*champion$")).first.wait_for()
    shot(page, artifacts, "08-mlflow-registered-model")
