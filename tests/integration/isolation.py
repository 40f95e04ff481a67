"""A private embedded stack for a test: its own state folder, lake and free loopback ports."""

import os
import socket
from pathlib import Path


def free_port() -> int:
    """A free loopback port: any (the OS picks), or one of TEST_PORT_RANGE (e.g. "8101-8199") when that is
    set, for machines where several test runs share the loopback and each keeps to its own ports."""
    low, _, high = os.environ.get("TEST_PORT_RANGE", "").partition("-")
    for port in range(int(low), int(high or low) + 1) if low else [0]:
        if port in _handed_out:  # given out earlier, maybe not bound yet
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in TEST_PORT_RANGE={os.environ['TEST_PORT_RANGE']}")


_handed_out: set[int] = set()


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
