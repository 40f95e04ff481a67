"""
### monitoring: is the served model still good, and is its traffic still like its training data?

Daily, on the prediction log the serving API writes to the lake and the labels that have arrived:
per-batch metrics and degradation, data and prediction drift, anomalies; alerts go to the lake,
MLflow (experiment `monitoring`), the task log and the notifier. A degradation or drift alert
triggers a `training` run (Param `retrain`; its Params from `training_conf`).

Tasks, Params, thresholds and outputs: `docs/dags/monitoring.md` in the repository.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from _params import form
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task


@dag(
    dag_id="monitoring",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # each run reads the whole prediction log; runs in parallel would only compete
    tags=["monitoring", "serving", "mlflow"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params=form("monitoring"),  # pipelines/steps/params.json: an empty (null) Param takes its setting
)
def monitoring():
    @task
    def check(params=None, ds=None, run_id=None) -> dict:
        from _steps import call

        from pipelines.monitoring import run

        return call(run.check, ds, dict(params), run_id)

    @task.short_circuit
    def should_retrain(summary: dict, params=None) -> bool:
        return bool(params["retrain"] and summary["retrain"])

    trigger = TriggerDagRunOperator(
        task_id="trigger_training",
        trigger_dag_id="training",
        # Rendered to JSON text, which the operator parses back into the run's conf.
        conf="{{ dict({'ds': ds}, **params.training_conf) | tojson }}",
        skip_when_already_exists=True,
    )
    should_retrain(check()) >> trigger


monitoring()
