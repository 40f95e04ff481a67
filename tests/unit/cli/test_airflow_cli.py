"""The Airflow CLI launcher preloads the task modules, and nothing that a fork would break."""

from __future__ import annotations

import subprocess
import sys

from pipelines.constants import REPO_ROOT


def _python(code: str, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(
        [sys.executable, *(["-c", code] if code else []), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_preloaded_modules_start_no_thread_and_bring_in_neither_torch_nor_mlflow():
    out = _python(
        "import importlib, sys, threading\n"
        "from pipelines.cli.airflow_cli import PRELOAD\n"
        "for m in PRELOAD: importlib.import_module(m)\n"
        "print(threading.active_count(), 'torch' in sys.modules, 'mlflow' in sys.modules)"
    )
    # Airflow's supervisor forks each task from a LocalExecutor worker: only the forking thread
    # survives a fork, so a preloaded module must not have started any other. MLflow's import-time
    # telemetry client broke inherited artifact downloads, so it must not come in either.
    assert out.split() == ["1", "False", "False"]


def test_the_launcher_runs_airflows_cli(tmp_path):
    import os

    import airflow

    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    out = _python("", "-m", "pipelines.cli.airflow_cli", "version", env=env)
    assert out.strip() == airflow.__version__
