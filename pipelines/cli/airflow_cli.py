"""Airflow's CLI with the task modules imported up front: ``python -m pipelines.cli.airflow_cli <args>``.

The LocalExecutor forks its workers from the process that runs it (``airflow scheduler``, ``airflow
dags test --use-executor``) and every task process from a worker (Airflow's supervisor calls
``os.fork``). What that process imported before Airflow started is inherited by every task,
which otherwise imports pandas, pyarrow, scikit-learn and the pipeline modules itself: about 2 s of
CPU per task, 20 times in a training run. Nothing that starts threads or loads torch is preloaded
(a fork only copies the calling thread).

MLflow is preloaded only while its usage telemetry is off (``MLFLOW_DISABLE_TELEMETRY`` or
``DO_NOT_TRACK`` true; the platform's Airflow environment sets the former unless it is already
set, see ``stack.airflow_env``). With telemetry on, its import creates a telemetry client and a
session id in the environment, and tasks that inherited them failed artifact downloads with
KeyError '_MLFLOW_TELEMETRY_SESSION_ID'; then each task imports MLflow itself.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys

PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "sklearn.pipeline",
    "pipelines.features",
    "pipelines.training.run",
    "pipelines.training.evaluate",
    "pipelines.training.plots",  # matplotlib (Agg)
)


def telemetry_off(environ=None) -> bool:
    """Whether MLflow's usage telemetry is off in ``environ`` (its own switches, as MLflow reads them)."""
    environ = os.environ if environ is None else environ
    return environ.get("MLFLOW_DISABLE_TELEMETRY", "").strip().lower() in ("true", "1") or (
        environ.get("DO_NOT_TRACK", "").strip().lower() == "true"
    )


def preload() -> list[str]:
    """Import what the tasks will need; returns the module names."""
    modules = [*PRELOAD, *(["mlflow", "mlflow.sklearn"] if telemetry_off() else [])]
    for module in modules:
        importlib.import_module(module)
    return modules


def main() -> None:
    preload()
    from pipelines.cli.stack import _bin

    script = _bin("airflow")  # Airflow's own console script, run as a program: pipelines never imports airflow
    sys.argv[0] = script
    runpy.run_path(script, run_name="__main__")  # the script ends with sys.exit(main())


if __name__ == "__main__":
    main()
