"""Security of the running services: Airflow keeps out anonymous users; everything listens on loopback only."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request

import psutil
import pytest

from pipelines.cli import stack
from pipelines.constants import REPO_ROOT
from tests.integration.reliability.conftest import _free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _status(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_airflow_refuses_anonymous_requests_and_bad_logins(scheduler_stack):
    s = scheduler_stack
    assert s.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "false").lower() == "false"
    json_headers = {"Content-Type": "application/json"}
    for method, path, body in [
        ("GET", "/api/v2/dags", None),
        ("GET", "/api/v2/dags/features/dagRuns", None),
        ("POST", "/api/v2/dags/features/dagRuns", b'{"logical_date": null}'),
        ("PATCH", "/api/v2/dags/features", b'{"is_paused": true}'),
        ("GET", "/api/v2/connections", None),
        ("GET", "/api/v2/variables", None),
        ("GET", "/ui/dags", None),  # what the UI's pages read
    ]:
        assert _status(f"{s.url}{path}", method, body, json_headers) in (401, 403), (method, path)
    bad_token = {"Authorization": "Bearer not-a-token", **json_headers}
    assert _status(f"{s.url}/api/v2/dags", headers=bad_token) in (401, 403)
    wrong = json.dumps({"username": stack.ADMIN_USER, "password": secrets.token_urlsafe(16)}).encode()
    assert _status(f"{s.url}/auth/token", "POST", wrong, json_headers) == 401
    # The UI sends a visitor without a session to the login page; the admin login works.
    assert _status(f"{s.url}/auth/login") == 200
    assert s.request("GET", "/api/v2/dags/features")["dag_id"] == "features"


def _listening(pids: set[int]) -> list[tuple[str, int, int]]:
    found = []
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections("inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(c.laddr.ip, c.laddr.port, pid) for c in conns if c.status == psutil.CONN_LISTEN]
    return found


def _group(pgid: int) -> set[int]:
    pids = set()
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                pids.add(proc.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return pids


def test_every_service_listens_on_loopback_only(scheduler_stack):
    """api-server, scheduler, dag-processor, MLflow and the prediction API: every listening socket is 127.0.0.1."""
    from tests.unit.serving.registry_helpers import NAME, log_version

    s = scheduler_stack
    log_version(s.settings.mlflow.server_url)  # a champion for the prediction API to serve
    port = _free_port({s.settings.airflow.port, s.settings.mlflow.port})
    env = {
        **s.env,
        "MLP_SERVING__MODEL": NAME,
        "MLP_SERVING__PORT": str(port),
        "MLFLOW_TRACKING_URI": s.settings.mlflow.server_url,
    }
    log = open(s.settings.state_dir / "logs" / "serving.log", "ab")  # noqa: SIM115 (closed below)
    serving = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "serve"],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: stack.is_healthy(f"http://127.0.0.1:{port}/health"), 180, "the prediction API")
        groups = {
            "airflow api-server": stack.running_pid(s.settings, "airflow"),
            "mlflow": stack.running_pid(s.settings, "mlflow"),
            "scheduler": s.procs["scheduler"].pid,
            "dag-processor": s.procs["dag-processor"].pid,
            "serving": serving.pid,
        }
        sockets = {name: _listening(_group(pgid)) for name, pgid in groups.items()}
        ports = {name: {p for _, p, _ in found} for name, found in sockets.items()}
        assert s.settings.airflow.port in ports["airflow api-server"]
        assert s.settings.mlflow.port in ports["mlflow"]
        assert port in ports["serving"]
        exposed = {name: [f for f in found if f[0] not in LOOPBACK] for name, found in sockets.items()}
        assert exposed == {name: [] for name in groups}, exposed
    finally:
        os.killpg(serving.pid, 15)
        serving.wait(60)
        log.close()
