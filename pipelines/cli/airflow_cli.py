"""Airflow's CLI with the task modules imported up front: ``python -m pipelines.cli.airflow_cli <args>``.

The LocalExecutor forks its workers from the process that runs it (``airflow scheduler``, ``airflow
dags test --use-executor``) and every task process from a worker (Airflow's supervisor calls
``os.fork``). What that process imported before Airflow started is inherited by every task,
which otherwise imports pandas, scikit-learn, MLflow and the pipeline modules itself: about 3 s
of CPU per task, 20 times in a training run. Nothing that starts threads or loads torch is
preloaded (a fork only copies the calling thread).
"""

from __future__ import annotations

import importlib
import sys

PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "sklearn.pipeline",
    "mlflow",
    "mlflow.sklearn",
    "pipelines.features",
    "pipelines.training.run",
    "pipelines.training.evaluate",
)


def main() -> int:
    for module in PRELOAD:
        importlib.import_module(module)
    from airflow.__main__ import main as airflow_main

    sys.argv[0] = "airflow"
    return airflow_main() or 0


if __name__ == "__main__":
    raise SystemExit(main())
