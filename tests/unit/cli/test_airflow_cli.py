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


_PROBE = (
    "import os, sys, threading\n"
    "from pipelines.cli.airflow_cli import preload\n"
    "preload()\n"
    "print(threading.active_count(), 'torch' in sys.modules, 'mlflow' in sys.modules,"
    " '_MLFLOW_TELEMETRY_SESSION_ID' in os.environ)"
)


def _env(**switches: str) -> dict:
    import os

    # Without the session id an MLflow import in this test process may have set: the probe must set none itself.
    dropped = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "_MLFLOW_TELEMETRY_SESSION_ID")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**env, **switches}


def test_preloaded_modules_start_no_thread_and_leave_out_torch_and_mlflow_with_telemetry_on():
    # Airflow's supervisor forks each task from a LocalExecutor worker: only the forking thread
    # survives a fork, so a preloaded module must not have started any other. With telemetry on,
    # MLflow's import-time telemetry client broke inherited artifact downloads: it stays out.
    assert _python(_PROBE, env=_env()).split() == ["1", "False", "False", "False"]


def test_mlflow_is_preloaded_when_its_telemetry_is_off():
    for switches in ({"MLFLOW_DISABLE_TELEMETRY": "true"}, {"DO_NOT_TRACK": "true"}):
        assert _python(_PROBE, env=_env(**switches)).split() == ["1", "False", "True", "False"], switches


def test_telemetry_switches():
    from pipelines.cli.airflow_cli import telemetry_off

    assert telemetry_off({"MLFLOW_DISABLE_TELEMETRY": "True"}) and telemetry_off({"MLFLOW_DISABLE_TELEMETRY": "1"})
    assert telemetry_off({"DO_NOT_TRACK": "true"})
    assert not telemetry_off({}) and not telemetry_off({"MLFLOW_DISABLE_TELEMETRY": "false"})


def test_the_platforms_airflow_runs_with_mlflow_telemetry_off_unless_told_otherwise(tmp_path):
    from pipelines.cli import stack
    from pipelines.config import load_settings
    from tests.integration.isolation import isolated_environ

    environ = isolated_environ(tmp_path)
    settings = load_settings(environ)
    assert stack.airflow_env(settings, base=environ)["MLFLOW_DISABLE_TELEMETRY"] == "true"
    on = stack.airflow_env(settings, base={**environ, "MLFLOW_DISABLE_TELEMETRY": "false"})
    assert on["MLFLOW_DISABLE_TELEMETRY"] == "false"


def test_the_launcher_runs_airflows_cli(tmp_path):
    import os

    import airflow

    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    out = _python("", "-m", "pipelines.cli.airflow_cli", "version", env=env)
    assert out.strip() == airflow.__version__
