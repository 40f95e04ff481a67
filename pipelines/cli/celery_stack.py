"""Scale-out mode: the same DAGs on Airflow's CeleryExecutor, Redis as the broker, several workers.

``CELERY_SETTINGS`` is the one place the executor, queue and ack/retry settings live: the
integration mode (``live_stack(..., celery_workers=2)``) runs with them, ``docker-compose.yaml``
holds exactly them (``tests/integration/test_compose.py`` compares the two), and
``docs/operations.md`` explains each.

A worker here is started as if it were another machine: its own ``AIRFLOW_HOME``, state folder,
dataset cache, log folder, temp folder and host name (``PIPELINES_WORKER_HOSTNAME``, reported through
``[core] hostname_callable``). What it shares with the rest of the stack is what a remote worker
would: the code and DAGs, the broker and result backend, the Execution API URL and its signing
key, the lake URI and the MLflow server (artifacts go through the server, never a shared disk).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.cli.stack import Service, _bin, write_private

# The settings this mode proves (see docs/operations.md, "Scale out"); docker-compose.yaml uses them verbatim.
CELERY_SETTINGS: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
    # A task's message is acknowledged when the task has finished, not when a worker takes it: a worker
    # lost before or while running it leaves the message unacknowledged instead of silently dropping it.
    "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
    # A worker reserves no more tasks than it runs (concurrency x 1): a lost worker strands nothing queued.
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    "AIRFLOW__CELERY__TASK_TRACK_STARTED": "True",
    # A failed task's message is acknowledged and a pool child that dies is not re-queued by Celery:
    # retries are Airflow's (the DAG's retries), never a second copy of the same try.
    "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": '{"task_acks_on_failure_or_timeout": true, "task_reject_on_worker_lost": false}',
    # Redis re-delivers an unacknowledged message after this many seconds: longer than any task (6 h), so a
    # long training task is never handed to a second worker while the first still runs it.
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
    # A task whose worker stopped heartbeating (killed, machine lost) is failed after 60 s and retried by
    # Airflow on a live worker. The supervisor heartbeats every 5 s ([workers] min_heartbeat_interval).
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
}
QUEUES = "default"
WORKER_NAMES = ("worker-a", "worker-b", "worker-c", "worker-d")


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the workers started here: the name of the machine they stand for."""
    return os.environ.get("PIPELINES_WORKER_HOSTNAME") or socket.getfqdn()


@dataclass(frozen=True)
class Broker:
    """A throwaway Redis (the distribution's ``redis-server``) on 127.0.0.1, password required, no persistence."""

    root: Path
    port: int
    password: str = field(repr=False)
    host: str = "127.0.0.1"

    @classmethod
    def create(cls, root: Path, port: int) -> Broker:
        root.mkdir(parents=True, exist_ok=True)
        broker = cls(root=root, port=port, password=secrets.token_urlsafe(24))
        config = [
            f"bind {broker.host}",
            f"port {port}",
            "protected-mode yes",
            f"dir {root}",
            'save ""',
            "appendonly no",
            f"requirepass {broker.password}",  # in an owner-only file: never on a command line
        ]
        write_private(root / "redis.conf", "\n".join(config) + "\n", replace=True)
        return broker

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/{db}"

    def service(self) -> Service:
        return Service(
            "redis",
            [redis_server(), str(self.root / "redis.conf")],
            health_url=f"redis://{self.host}:{self.port}",
            url=f"redis://{self.host}:{self.port}",
            cwd=str(self.root),
            probe=self.answers,
        )

    def has_worker(self, name: str) -> bool:
        """A Celery worker named ``name@...`` listens for remote-control commands (it is consuming)."""
        import redis

        try:
            members = redis.Redis.from_url(self.url(), socket_timeout=2).smembers("_kombu.binding.celery.pidbox")
        except redis.RedisError:
            return False
        return any(f"{name}@".encode() in member for member in members)

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url(), socket_timeout=2).ping())
        except redis.RedisError:
            return False


def redis_server() -> str:
    """The ``redis-server`` binary: ``MLP_REDIS_SERVER``, else PATH, else a clear error."""
    found = os.environ.get("MLP_REDIS_SERVER") or shutil.which("redis-server")
    if not found:
        raise RuntimeError(
            "redis-server not found: install the distribution's package "
            "(apt-get install redis-server, done by `make integration-deps`) or set MLP_REDIS_SERVER"
        )
    return found


def celery_env(env: dict[str, str], broker_url: str, result_backend: str) -> dict[str, str]:
    """``env`` with the CeleryExecutor: ``CELERY_SETTINGS``, the broker and Celery's result backend."""
    return {
        **env,
        **CELERY_SETTINGS,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{result_backend}",
    }


def worker_env(env: dict[str, str], home: Path, hostname: str, seed_cache: Path | None = None) -> dict[str, str]:
    """The environment of a worker standing for another machine: its own folders and host name.

    Nothing under another component's folders is reachable through it: ``AIRFLOW_HOME``, the state
    folder, the dataset cache (seeded with the dataset wheels, as an image would ship them), the
    task log folder and ``TMPDIR`` are the worker's own. The lake URI and MLflow URI stay shared.
    """
    folders = {name: home / name for name in ("airflow", "state", "cache", "logs", "tmp")}
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    if seed_cache and (seed_cache / "wheels").is_dir():
        shutil.copytree(seed_cache / "wheels", folders["cache"] / "wheels", dirs_exist_ok=True)
    wenv = {k: v for k, v in env.items() if k != "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"}
    wenv.update(
        {
            "AIRFLOW_HOME": str(folders["airflow"]),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(folders["logs"]),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
            "PIPELINES_WORKER_HOSTNAME": hostname,
            "MLP_STATE_DIR": str(folders["state"]),
            "MLP_CACHE_DIR": str(folders["cache"]),
            "TMPDIR": str(folders["tmp"]),
        }
    )
    return wenv


def worker_service(
    name: str, env: dict[str, str], log_path: Path, broker: Broker, concurrency: int, queues: str = QUEUES
) -> Service:
    """``airflow celery worker`` named ``name`` (its Celery node ``name@host``), ready once Celery says so
    in its log or the worker has bound its remote-control queue on the broker.

    Without the log server (it would listen on every interface): the task logs stay in the
    worker's own folder; see docs/operations.md for reading them from other machines.
    """
    command = [
        _bin("airflow"),
        "celery",
        "worker",
        "--celery-hostname",
        f"{name}@%h",
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        "--skip-serve-logs",
    ]
    return Service(
        name,
        command,
        "",
        "",
        cwd=env["AIRFLOW_HOME"],
        probe=lambda: _says_ready(log_path, name) or broker.has_worker(name),
    )


def _says_ready(log_path: Path, name: str) -> bool:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return False
    return f"{name}@" in text and " ready." in text
