"""Airflow's CLI with the task modules imported up front: ``python -m pipelines.cli.airflow_cli <args>``.

The LocalExecutor forks its workers from the process that runs it (``airflow scheduler``, ``airflow
dags test --use-executor``) and every task process from a worker (Airflow's supervisor calls
``os.fork``). What that process imported before Airflow started is inherited by every task,
which otherwise imports pandas, pyarrow, scikit-learn and the pipeline modules itself: about 2 s of
CPU per task, 20 times in a training run. Nothing that starts threads or loads torch is preloaded
(a fork only copies the calling thread), and neither is MLflow: its import creates a telemetry
client and a session id in the environment, and tasks that inherited them failed artifact
downloads with KeyError '_MLFLOW_TELEMETRY_SESSION_ID'; each task imports MLflow itself.
"""

from __future__ import annotations

import importlib
import runpy
import sys

PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "sklearn.pipeline",
    "pipelines.features",
    "pipelines.training.run",
    "pipelines.training.evaluate",
)


def main() -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    from pipelines.cli.stack import _bin

    script = _bin("airflow")  # Airflow's own console script, run as a program: pipelines never imports airflow
    sys.argv[0] = script
    runpy.run_path(script, run_name="__main__")  # the script ends with sys.exit(main())


if __name__ == "__main__":
    main()
