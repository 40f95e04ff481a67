"""A private embedded stack for a test: its own state folder, lake and free loopback ports."""

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_environ(root: Path) -> dict[str, str]:
    """The current environment minus platform/Airflow/MLflow settings, pointed at ``root``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "AIRFLOW", "MLFLOW_"))}
    environ.update(
        {
            "MLP_STATE_DIR": str(root / "state"),
            "MLP_LAKE_ROOT": str(root / "lake"),
            "MLP_AIRFLOW__PORT": str(free_port()),
            "MLP_MLFLOW__PORT": str(free_port()),
        }
    )
    return environ
