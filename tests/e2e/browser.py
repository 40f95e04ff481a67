"""Headless Chromium (Debian's package) driven by Playwright, for the UI tests: the browser page and
screenshot folder fixtures, logging in to Airflow, and telling a green state badge."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from pipelines.constants import REPO_ROOT

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


def shot(page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    (artifacts / f"{name}.html").write_text(page.content())
    return path


def login(page, airflow_url: str, password: str, artifacts: Path) -> None:
    page.goto(f"{airflow_url}/")
    page.wait_for_url(re.compile(r"/auth/login"))  # authentication is on: the UI sends us to log in
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    shot(page, artifacts, "01-airflow-login")
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


def is_green(rgb: list[int]) -> bool:
    r, g, b = rgb
    return g > 90 and g > 1.5 * r and g > 1.5 * b
