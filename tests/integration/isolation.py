"""A private embedded stack for a test: its own state folder, lake and free loopback ports."""

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port(ports: range | None = None, taken=()) -> int:
    """A loopback port nobody listens on: the first free one of ``ports`` not in ``taken``. Without ``ports``:
    one of TEST_PORT_RANGE (e.g. "8101-8199") when that is set, for machines where several test runs share the
    loopback and each keeps to its own ports, else any (the OS picks)."""
    if ports is None and os.environ.get("TEST_PORT_RANGE"):
        ports = port_range("TEST_PORT_RANGE", "")
    for port in [p for p in ports if p not in taken and p not in _handed_out] if ports else [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        _handed_out.add(port)  # given out, maybe not bound yet: not again
        return port
    raise RuntimeError(f"no free loopback port in {ports}")


def port_range(env_var: str, default: str) -> range:
    """Ports from an environment variable such as ``PIPELINES_E2E_PORTS=8201-8299``."""
    lo, _, hi = os.environ.get(env_var, default).partition("-")
    return range(int(lo), int(hi or lo) + 1)


_handed_out: set[int] = set()


def isolated_environ(root: Path) -> dict[str, str]:
    """The current environment minus platform/Airflow/MLflow settings, pointed at ``root``: state, lake and the
    user overlay (``MLP_USER_DIR``: datasets and contracts a test adds, never the checkout's include/user)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "AIRFLOW", "MLFLOW_"))}
    environ.update(
        {
            "MLP_STATE_DIR": str(root / "state"),
            "MLP_LAKE_ROOT": str(root / "lake"),
            "MLP_USER_DIR": str(root / "user"),
            "MLP_AIRFLOW__PORT": str(free_port()),
            "MLP_MLFLOW__PORT": str(free_port()),
        }
    )
    return environ


@contextmanager
def embedded_stack(root: Path, **overrides: str) -> Iterator[tuple]:
    """A private embedded stack under ``root``: settings from ``isolated_environ`` plus ``overrides``
    (``MLP_*`` variables), Airflow's DB migrated, its API server and an MLflow server running.
    Yields ``(settings, env)``; the services are stopped on exit."""
    from pipelines.cli import stack
    from pipelines.config import load_settings

    environ = {**isolated_environ(root), **overrides}
    settings = load_settings(environ)
    env = stack.airflow_env(settings, base=environ)
    stack.migrate(settings, env)
    with stack.services(settings, env):
        yield settings, env


def task_rows(settings, run_id: str, columns: str = "task_id, map_index, state") -> list[tuple]:
    """The ``columns`` of every task instance of a DAG run, from the embedded stack's Airflow DB."""
    import sqlite3

    from pipelines.cli import stack

    with sqlite3.connect(stack.airflow_home(settings) / "airflow.db") as con:
        return con.execute(f"select {columns} from task_instance where run_id = ?", (run_id,)).fetchall()
