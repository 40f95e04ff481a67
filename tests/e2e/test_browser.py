"""The UIs in a real browser: headless Chromium (Debian's package) driven by Playwright.

Logs in to the Airflow UI, sees the triggered runs of ``features`` and ``training`` in green,
follows the training task's "MLflow run" link, and finds the registered model with its champion
alias in the MLflow UI. Screenshots of every page are kept under ``MLP_E2E_ARTIFACTS``
(default ``.state/artifacts/e2e``), printed at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from pipelines.constants import REPO_ROOT
from pipelines.tracking import mlflow_run_url

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

CHROMIUM = os.environ.get("MLP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
TIMEOUT_MS = 60_000
GREEN = re.compile(r"rgb\((\d+), (\d+), (\d+)\)")


@pytest.fixture(scope="module")
def artifacts() -> Path:
    base = Path(os.environ.get("MLP_E2E_ARTIFACTS", REPO_ROOT / ".state" / "artifacts" / "e2e"))
    path = base / time.strftime("%Y%m%dT%H%M%S")
    path.mkdir(parents=True, exist_ok=True)
    yield path
    print(f"\n[e2e] browser screenshots: {path}")


@pytest.fixture(scope="module")
def page(tmp_path_factory, artifacts):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: `make test-integration` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        try:
            yield page
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _shot(page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    (artifacts / f"{name}.html").write_text(page.content())
    return path


def _login(page, live, artifacts):
    page.goto(f"{live.airflow_url}/")
    page.get_by_label(re.compile("username", re.I)).fill("admin")
    page.get_by_label(re.compile("password", re.I)).fill(live.api.password)
    _shot(page, artifacts, "01-airflow-login")
    page.get_by_role("button", name=re.compile("sign in|log in|login", re.I)).click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))


def test_airflow_ui_shows_green_runs(page, live, runs, artifacts):
    assert runs.states == {"features": "success", "training": "success"}
    _login(page, live, artifacts)
    for i, (dag_id, run_id) in enumerate(runs.ids.items(), start=2):
        page.goto(f"{live.airflow_url}/dags/{dag_id}/runs/{quote(run_id, safe='')}")
        badge = page.get_by_text("success", exact=True).first
        badge.wait_for()
        _shot(page, artifacts, f"0{i}-airflow-{dag_id}-run")
        page.get_by_text(run_id).first.wait_for()


def test_training_task_links_to_its_mlflow_run(page, live, runs, artifacts):
    run_id = runs.ids["training"]
    xcom = live.api.call(
        "GET", f"dags/training/dagRuns/{run_id}/taskInstances/train/xcomEntries/return_value", map_index=0
    )
    expected = mlflow_run_url(live.settings.mlflow.browser_url, xcom["value"]["mlflow_run_id"])
    page.goto(f"{live.airflow_url}/dags/training/runs/{quote(run_id, safe='')}/tasks/train/mapped/0")
    link = page.get_by_role("link", name="MLflow run")
    link.wait_for()
    _shot(page, artifacts, "04-airflow-train-task")
    assert link.get_attribute("href") == expected
    page.goto(expected)
    page.get_by_text(xcom["value"]["mlflow_run_id"]).first.wait_for()
    _shot(page, artifacts, "05-mlflow-run-from-link")


def test_mlflow_ui_shows_the_champion(page, live, runs, artifacts):
    page.goto(f"{live.mlflow_url}/#/models/adult_classifier")
    page.get_by_text("adult_classifier").first.wait_for()
    page.get_by_text(re.compile("champion")).first.wait_for()
    _shot(page, artifacts, "06-mlflow-registered-model")
