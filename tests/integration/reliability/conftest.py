"""A private scheduler-driven Airflow stack for the fault and security tests.

Airflow's api-server, scheduler (LocalExecutor) and dag-processor, plus an MLflow server, each in
its own process group on 127.0.0.1, with a throwaway state folder and lake. DAG runs are
triggered through the REST API with a login, as a user would from the UI, and the scheduler runs
them. ``PIPELINES_FAULT_DIR`` switches on the fault points of ``pipelines.faults``.

The scheduler's timers are shortened (orphan checks every 15 s instead of 300 s) so that the
recovery the tests wait for happens in seconds; the behaviour is Airflow's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipelines.cli import stack
from pipelines.config import Settings, load_settings
from pipelines.constants import REPO_ROOT
from tests.integration.isolation import isolated_environ

PORTS = range(8301, 8400)  # the loopback ports these tests may use
TERMINAL = ("success", "failed")


def _free_port(taken: set[int]) -> int:
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free port in {PORTS}")


@dataclass
class Stack:
    root: Path
    settings: Settings
    env: dict[str, str]
    fault_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _token: str | None = None

    # ---- processes ---------------------------------------------------------------------------
    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = self.settings.state_dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [stack._bin("airflow"), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=REPO_ROOT,
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a component's whole process group (the component and every process it started)."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(60)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                pass
            # Children the leader left behind (orphaned task processes) share its group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            self.procs.pop(name)

    def start_scheduler(self) -> None:
        # The LocalExecutor writes task logs to this machine's disk, where the api-server reads
        # them: no log server (it would listen on every interface).
        self.spawn("scheduler", "scheduler", "--skip-serve-logs")

    # ---- REST API ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.settings.airflow.url

    def token(self) -> str:
        if self._token is None:
            password = stack.admin_password(self.settings)
            body = self.request("POST", "/auth/token", {"username": stack.ADMIN_USER, "password": password}, auth=False)
            self._token = body["access_token"]
        return self._token

    def request(self, method: str, path: str, data: dict | None = None, auth: bool = True):
        req = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(data).encode() if data is not None else None, method=method
        )
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token()}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def trigger(self, dag_id: str, ds: str, conf: dict | None = None) -> str:
        run_id = f"fault__{ds}__{time.time_ns()}"
        body = {"dag_run_id": run_id, "logical_date": f"{ds}T00:00:00Z", "conf": conf or {}}
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def tasks(self, dag_id: str, run_id: str) -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict | None:
        return next((t for t in self.tasks(dag_id, run_id) if t["task_id"] == task_id), None)

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        state = wait_for(lambda: (s := self.run_state(dag_id, run_id)) in TERMINAL and s, timeout, f"run {run_id}")
        return state

    def log(self, name: str) -> str:
        return stack._tail(self.settings.state_dir / "logs" / f"{name}.log", 60)

    # ---- fault points ------------------------------------------------------------------------
    def arm(self, point: str, pattern: str = "") -> None:
        for leftover in (f"{point}.paused", f"{point}.release"):  # of an earlier use of the point
            (self.fault_dir / leftover).unlink(missing_ok=True)
        (self.fault_dir / f"{point}.armed").write_text(pattern)

    def wait_paused(self, point: str, timeout: float = 600) -> tuple[int, str]:
        path = self.fault_dir / f"{point}.paused"
        wait_for(path.exists, timeout, f"fault point {point}")
        pid, detail = path.read_text().splitlines()[:2]
        return int(pid), detail

    def release(self, point: str) -> None:
        (self.fault_dir / f"{point}.release").write_text("")


def wait_for(predicate, timeout: float, what: str, every: float = 1.0):
    """Poll until ``predicate()`` is truthy (returned); a test fails naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (urllib.error.URLError, OSError, KeyError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="session")
def scheduler_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    environ = isolated_environ(root)
    taken: set[int] = set()
    environ.update(
        {
            "MLP_AIRFLOW__PORT": str(_free_port(taken)),
            "MLP_MLFLOW__PORT": str(_free_port(taken)),
            "PIPELINES_FAULT_DIR": str(root / "faults"),
            # Fail fast while the MLflow server is down and leave the retrying to Airflow.
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
        }
    )
    (root / "faults").mkdir()
    settings = load_settings(environ)
    env = stack.airflow_env(settings, base=environ)
    env.update(
        {
            # A scheduler whose heartbeat is 30 s old (the default) is dead: its tasks are reset.
            # Shorter makes a live scheduler on a busy machine reset its own running tasks.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "30",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # parse once: keeps 2 cores free
        }
    )
    s = Stack(root, settings, env, root / "faults")
    stack.migrate(settings, env)
    try:
        stack.start(settings, stack.mlflow_service(settings), env)
        stack.start(settings, stack.airflow_services(settings, standalone=False), env)
        s.start_scheduler()
        s.spawn("dag-processor", "dag-processor")
        wait_for(lambda: s.request("GET", "/api/v2/dags/features"), 300, "the features DAG to be parsed", every=2)
        s.request("PATCH", "/api/v2/dags/features", {"is_paused": False})
        yield s
    finally:
        s.stop_all()
        for name in ("airflow", "mlflow"):
            stack.stop(settings, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.fault_passed = report.passed


@pytest.fixture
def fault_record(request):
    """A dict the test fills (fault name, row reconciliation); logged with pass/fail after the test."""
    from tests.integration.reliability.accounting import record

    info: dict = {"rows": {}}
    yield info
    record(info.get("fault", request.node.name), bool(getattr(request.node, "fault_passed", False)), info["rows"])
