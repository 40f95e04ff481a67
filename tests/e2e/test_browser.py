"""The UIs in a real browser: headless Chromium (Debian's package) driven by Playwright.

Logs in to the Airflow UI, sees the triggered runs of ``features`` and ``training`` in green,
follows the training task's "MLflow run" link, and finds the registered model with its champion
alias in the MLflow UI. Screenshots of every page are kept under ``PIPELINES_E2E_ARTIFACTS``
(default ``.state/artifacts/e2e``), printed at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from pipelines.constants import REPO_ROOT
from pipelines.tracking import mlflow_run_url

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

CHROMIUM = os.environ.get("MLP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def artifacts() -> Path:
    base = Path(os.environ.get("PIPELINES_E2E_ARTIFACTS", REPO_ROOT / ".state" / "artifacts" / "e2e"))
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
    page.wait_for_url(re.compile(r"/auth/login"))  # authentication is on: the UI sends us to log in
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", live.api.password)
    _shot(page, artifacts, "01-airflow-login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))


# The element's background as sRGB bytes, whatever CSS colour syntax the UI uses (rgb(), oklch(), ...).
BACKGROUND_RGB = """el => {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 1;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = getComputedStyle(el).backgroundColor;
    ctx.fillRect(0, 0, 1, 1);
    return Array.from(ctx.getImageData(0, 0, 1, 1).data.slice(0, 3));
}"""


def _is_green(rgb: list[int]) -> bool:
    r, g, b = rgb
    return g > 90 and g > 1.5 * r and g > 1.5 * b


def test_airflow_ui_shows_green_runs(page, live, runs, artifacts):
    assert runs.states == {"features": "success", "training": "success"}
    _login(page, live, artifacts)
    for i, (dag_id, run_id) in enumerate(runs.ids.items()):
        page.goto(f"{live.airflow_url}/dags/{dag_id}/runs")
        row = page.locator("tr").filter(has=page.locator(f'a[href="/dags/{dag_id}/runs/{run_id}"]')).first
        badge = row.get_by_test_id("state-badge")
        badge.wait_for()
        _shot(page, artifacts, f"0{2 + 2 * i}-airflow-{dag_id}-runs")
        assert badge.inner_text().strip().lower() == "success"
        assert _is_green(badge.evaluate(BACKGROUND_RGB)), badge.evaluate(BACKGROUND_RGB)
        # The run's grid: every task instance of the run in a green (success) square.
        page.goto(f"{live.airflow_url}/dags/{dag_id}/runs/{run_id}")
        page.get_by_test_id("state-badge").first.wait_for()
        _shot(page, artifacts, f"0{3 + 2 * i}-airflow-{dag_id}-run")


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
    _shot(page, artifacts, "06-airflow-train-task-details")
    assert link.get_attribute("href") == expected
    page.goto(expected)
    page.get_by_text(mlflow_run_id).first.wait_for()
    _shot(page, artifacts, "07-mlflow-run-from-link")


def test_mlflow_ui_shows_the_champion(page, live, runs, artifacts):
    page.goto(f"{live.mlflow_url}/#/models/adult_classifier")
    page.get_by_role("heading", name="adult_classifier").first.wait_for()
    page.get_by_text(re.compile(r"^@?\s*champion$")).first.wait_for()
    _shot(page, artifacts, "08-mlflow-registered-model")
