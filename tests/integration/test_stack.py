"""`make up` / `make down`: Airflow's components and the MLflow server on loopback, stopped by PID file."""

import json
import os
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from pipelines.cli import stack
from pipelines.config import load_settings
from pipelines.constants import REPO_ROOT
from tests.integration.isolation import isolated_environ

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli(environ, *args):
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        env=environ,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )


def _json(url, data=None, token=None):
    req = urllib.request.Request(
        url, data=json.dumps(data).encode() if data else None, method="POST" if data else "GET"
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_up_serves_both_uis_and_down_leaves_nothing(tmp_path):
    environ = isolated_environ(tmp_path)
    settings = load_settings(environ)
    up = _cli(environ, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"Airflow UI : {settings.airflow.url}" in up.stdout
        assert f"MLflow UI  : {settings.mlflow.server_url}" in up.stdout
        password = stack.admin_password(settings)
        assert password and password not in up.stdout + up.stderr  # never printed: the file is named instead
        assert str(stack.airflow_home(settings) / stack.AUTH_FILE) in up.stdout
        names = (*(svc.name for svc in stack.airflow_components(settings)), "mlflow")
        pids = {name: stack.running_pid(settings, name) for name in names}
        assert all(pids.values()), pids  # api-server, scheduler, dag-processor, triggerer, MLflow
        group = [p for p in psutil.process_iter() if _pgid(p) in pids.values()]

        # Airflow keeps authentication on: anonymous calls are refused, the admin login works.
        with pytest.raises(urllib.error.HTTPError) as denied:
            _json(f"{settings.airflow.url}/api/v2/dags")
        assert denied.value.code in (401, 403)
        token = _json(f"{settings.airflow.url}/auth/token", {"username": "admin", "password": password})["access_token"]
        deadline, dags = time.monotonic() + 120, []
        while time.monotonic() < deadline and "features" not in dags:
            dags = [d["dag_id"] for d in _json(f"{settings.airflow.url}/api/v2/dags", token=token)["dags"]]
            time.sleep(2)
        assert "features" in dags
        assert stack.is_healthy(f"{settings.mlflow.server_url}/health")
        # Nothing they started listens beyond loopback (the log servers are off).
        listening = [(p.pid, c.laddr) for p in group for c in _listening(p)]
        assert {a.port for _, a in listening} >= {settings.airflow.port, settings.mlflow.port}
        assert [(pid, a) for pid, a in listening if a.ip not in ("127.0.0.1", "::1")] == []
    finally:
        down = _cli(environ, "down")
    assert down.returncode == 0, down.stderr
    assert all(f"{name}: stopped" in down.stdout for name in names), down.stdout
    time.sleep(1)
    left = [p for p in group if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []
    assert not stack.is_healthy(f"{settings.mlflow.server_url}/health")
    assert _cli(environ, "down").stdout.count("not running") == len(names)


def _pgid(proc):
    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, psutil.Error):
        return None


def _listening(proc):
    try:
        return [c for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN]
    except psutil.Error:
        return []
