"""The embedded stack: Airflow (SQLite, LocalExecutor) and an MLflow server, on 127.0.0.1.

``make up`` runs Airflow's api-server, scheduler, dag-processor and triggerer (what ``airflow
standalone`` runs, minus the log servers that would listen on every interface).

Services run as background process groups recorded in PID files under ``.state/run``;
``stop`` ends exactly those groups. Everything lives under the repo's ignored ``.state``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

from pipelines.cli.auth import (  # noqa: F401  (re-exported: the stack's secrets live in auth)
    ADMIN_USER,
    AUTH_FILE,
    admin_password,
    admin_passwords_file,
    airflow_home,
    password_hint,
    persistent_secret,
    secret_files,
    write_private,
)
from pipelines.config import Settings
from pipelines.constants import REPO_ROOT

# Airflow's SQLite connections wait this long for a lock instead of failing at once with
# "database is locked" when the scheduler, API server and a CLI command write together.
SQLITE_CONNECT_ARGS = {"timeout": 60}


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    health_url: str
    url: str
    user: str | None = None  # OS user to run as (PostgreSQL refuses root)
    cwd: str | None = None  # default: the repository root
    probe: Callable[[], bool] | None = None  # readiness check; default: health_url answers 200
    stop_signal: int = signal.SIGTERM

    def ready(self) -> bool:
        return self.probe() if self.probe else is_healthy(self.health_url)


def _bin(name: str) -> str:
    """Console scripts of the running interpreter's environment (the project's .venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def airflow_tasks_command() -> list[str]:
    """Airflow's CLI for commands whose LocalExecutor forks task processes (``airflow_cli``: task modules preloaded)."""
    return [sys.executable, "-m", "pipelines.cli.airflow_cli"]


def run_dir(settings: Settings) -> Path:
    path = settings.state_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def airflow_env(settings: Settings, base: dict | None = None, database_url: str | None = None) -> dict[str, str]:
    """Environment for every Airflow command of the embedded stack (metadata DB: SQLite, or ``database_url``)."""
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    af = settings.airflow
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(max(2, os.cpu_count() or 2) * 2),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # A task's supervisor notices its process has exited at the latest after this many seconds (it
            # waits on the task's sockets that long between heartbeats): 5 by default, often the whole
            # wait (seen: 24 of 114 demo tasks), holding an executor slot and `dags test`'s shutdown.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": env.get("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "1"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "pipelines.cli.stack.SQLITE_CONNECT_ARGS",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{af.url}/execution/",
            "AIRFLOW__API__HOST": af.host,
            "AIRFLOW__API__PORT": str(af.port),
            "AIRFLOW__API__BASE_URL": af.url,
            **{key: persistent_secret(path) for key, path in secret_files(settings).items()},
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(admin_passwords_file(settings)),
            "MLFLOW_TRACKING_URI": settings.mlflow.server_url,
            # Tasks run side by side, one model each: BLAS/OpenMP pools of one thread avoid oversubscription.
            "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
            "OPENBLAS_NUM_THREADS": env.get("OPENBLAS_NUM_THREADS", "1"),
            "MKL_NUM_THREADS": env.get("MKL_NUM_THREADS", "1"),
            # MLflow's usage telemetry off unless set otherwise: it reports nothing from the lake or
            # the models, and with it off the task launcher can preload MLflow (airflow_cli).
            "MLFLOW_DISABLE_TELEMETRY": env.get("MLFLOW_DISABLE_TELEMETRY", "true"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
            # Airflow starts some of its processes by name: find the project's own console scripts first.
            "PATH": os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p),
        }
    )
    if database_url:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = database_url
        del env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"]
    return env


def airflow_services(settings: Settings, standalone: bool = False) -> Service:
    af = settings.airflow
    command = (
        [_bin("airflow"), "standalone"]
        if standalone
        else [_bin("airflow"), "api-server", "--host", af.host, "--port", str(af.port)]
    )
    return Service("airflow", command, f"{af.url}/api/v2/monitor/health", af.url)


def airflow_components(settings: Settings) -> list[Service]:
    """Airflow's four long-running components as separate services, the API server last.

    The scheduler and triggerer skip their log-serving side processes (they would listen on all
    interfaces); on one machine the API server reads task logs from the shared log folder.
    The API server's health endpoint reports the other three once they heartbeat.
    """
    alive = lambda: True  # noqa: E731  (no port of their own: started means running; health comes from the API)
    return [
        Service("airflow-scheduler", [*airflow_tasks_command(), "scheduler", "--skip-serve-logs"], "", "", probe=alive),
        Service("airflow-dag-processor", [_bin("airflow"), "dag-processor"], "", "", probe=alive),
        Service("airflow-triggerer", [_bin("airflow"), "triggerer", "--skip-serve-logs"], "", "", probe=alive),
        airflow_services(settings, standalone=False),
    ]


def airflow_health(settings: Settings) -> dict:
    """The API server's view of the metadata DB, scheduler, triggerer and DAG processor ({} if it does not answer)."""
    try:
        with urllib.request.urlopen(f"{settings.airflow.url}/api/v2/monitor/health", timeout=5) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return {}


def mlflow_service(settings: Settings, backend_from_env: bool = False) -> Service:
    """The MLflow server; its backend store is SQLite under the state dir, or ``MLFLOW_BACKEND_STORE_URI``.

    With ``backend_from_env`` the server reads its store URI from the environment it is started
    with, never from the command line, since the URI may hold a password.
    """
    m = settings.mlflow
    store = settings.state_dir / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    backend = [] if backend_from_env else ["--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}"]
    command = [
        _bin("mlflow"),
        "server",
        "--host",
        m.host,
        "--port",
        str(m.port),
        *backend,
        "--artifacts-destination",
        str(store / "artifacts"),
        "--workers",
        "1",
    ]
    return Service("mlflow", command, f"{m.server_url}/health", m.server_url)


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _pidfile(settings: Settings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid"


def running_pid(settings: Settings, name: str) -> int | None:
    """PID of a service this checkout started and that is still alive."""
    path = _pidfile(settings, name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (ValueError, ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None


def start(settings: Settings, service: Service, env: dict, timeout: float = 180) -> int:
    """Start a service in its own process group, record its PID, wait until it answers."""
    if (pid := running_pid(settings, service.name)) and service.ready():
        return pid
    if service.health_url and service.ready():
        raise RuntimeError(
            f"something else already answers on {service.url}; stop it or move {service.name} to another port "
            f"(MLP_{service.name.upper()}__PORT=...)"
        )
    log_path = settings.state_dir / "logs" / f"{service.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    as_user = {}
    if service.user:
        from pipelines.cli.postgres import run_as

        as_user = run_as(service.user)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            service.command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=service.cwd or REPO_ROOT,
            **as_user,
        )
    _pidfile(settings, service.name).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _pidfile(settings, service.name).unlink(missing_ok=True)
            raise RuntimeError(f"{service.name} exited with code {proc.returncode}; see {log_path}:\n{_tail(log_path)}")
        if service.ready():
            return proc.pid
        time.sleep(1)
    stop(settings, service.name, sig=service.stop_signal)
    raise RuntimeError(
        f"{service.name} did not answer on {service.health_url} within {timeout:.0f}s; see {log_path}:\n{_tail(log_path)}"
    )


def wait_healthy(settings: Settings, timeout: float = 300) -> None:
    """Until the API server reports the metadata DB, scheduler, triggerer and DAG processor healthy.

    Fails at once, with the log's tail, when one of the components has exited.
    """
    components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    deadline = time.monotonic() + timeout
    health: dict = {}
    while time.monotonic() < deadline:
        for svc in airflow_components(settings):
            pid = running_pid(settings, svc.name)
            if pid is None or not _group_alive(pid):  # _group_alive reaps a leader that exited (a zombie)
                log = settings.state_dir / "logs" / f"{svc.name}.log"
                raise RuntimeError(f"{svc.name} exited; see {log}:\n{_tail(log)}")
        health = airflow_health(settings)
        if all((health.get(c) or {}).get("status") == "healthy" for c in components):
            return
        time.sleep(2)
    raise RuntimeError(f"Airflow components not healthy within {timeout:.0f}s: {health}")


def stop(settings: Settings, name: str, grace: float = 20, sig: int = signal.SIGTERM) -> bool:
    """Stop the process group recorded in the service's PID file; True when something was stopped."""
    pid = running_pid(settings, name)
    if pid is None:
        return False
    for signum, wait in ((sig, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if not _group_alive(pid):
            break
    _pidfile(settings, name).unlink(missing_ok=True)
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # A zombie leader still "exists"; reap it if it is our child.
    with suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _airflow_command(settings: Settings, env: dict, *args: str) -> None:
    """Run ``airflow <args>`` to the end, its output in ``logs/airflow-<args>.log``; raise when it fails."""
    log = settings.state_dir / "logs" / f"airflow-{'-'.join(args)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        rc = subprocess.call([_bin("airflow"), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed (exit {rc}); see {log}:\n{_tail(log)}")


def reserialize(settings: Settings, env: dict) -> None:
    """Parse every DAG file once into the metadata DB (what the DAG processor does), so a scheduler can run
    triggered runs without a DAG processor of its own."""
    _airflow_command(settings, env, "dags", "reserialize")


def migrate(settings: Settings, env: dict) -> None:
    """Create or upgrade the Airflow metadata database (idempotent)."""
    _airflow_command(settings, env, "db", "migrate")


@contextmanager
def services(settings: Settings, env: dict):
    """Airflow's API server and the MLflow server for the length of a block.

    Reuses the ones ``make up`` started; stops only what this block started.
    """
    started = []
    try:
        for svc in (airflow_services(settings, standalone=False), mlflow_service(settings)):
            if running_pid(settings, svc.name) and is_healthy(svc.health_url):
                continue
            start(settings, svc, env)
            started.append(svc.name)
        yield
    finally:
        for name in reversed(started):
            stop(settings, name)


def scheduler_service(settings: Settings) -> Service:
    """``make up``'s scheduler (same name and command), ready once the API server reports its heartbeat healthy."""
    svc = next(s for s in airflow_components(settings) if s.name == "airflow-scheduler")
    return replace(
        svc,
        health_url=f"{settings.airflow.url}/api/v2/monitor/health",
        url=settings.airflow.url,
        probe=lambda: (airflow_health(settings).get("scheduler") or {}).get("status") == "healthy",
    )


@contextmanager
def scheduler(settings: Settings, env: dict):
    """A scheduler for the length of a block, to run DAG runs that wait queued (triggered by another DAG:
    ``airflow dags test`` runs only its own run). None is started, or stopped, when one already heartbeats
    (``make up``'s)."""
    svc = scheduler_service(settings)
    if svc.ready():
        yield
        return
    start(settings, svc, env)
    try:
        yield
    finally:
        stop(settings, svc.name)


def up(settings: Settings) -> int:
    env = airflow_env(settings)
    migrate(settings, env)
    pids = {svc.name: start(settings, svc, env, timeout=300) for svc in airflow_components(settings)}
    ml = start(settings, mlflow_service(settings), env)
    wait_healthy(settings)
    print(
        f"Airflow UI : {settings.airflow.url}   (user {ADMIN_USER}, {password_hint(settings)})  pid {pids['airflow']}"
    )
    print(f"MLflow UI  : {settings.mlflow.server_url}   pid {ml}")
    print(f"Logs       : {settings.state_dir / 'logs'}")
    print("Stop both with: make down")
    return 0


def down(settings: Settings) -> int:
    for name in ("mlflow", *reversed([svc.name for svc in airflow_components(settings)])):
        print(f"{name}: {'stopped' if stop(settings, name) else 'not running'}")
    return 0
