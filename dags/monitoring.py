"""
### monitoring: is the served model still good, and is its traffic still like its training data?

Daily, on the prediction log the serving API writes to the lake and the labels that have arrived:
per-batch metrics and degradation, data and prediction drift, anomalies; alerts go to the lake,
MLflow (experiment `monitoring`), the task log and the notifier. A degradation or drift alert
triggers a `training` run (Param `retrain`; its Params from `training_conf`).

Tasks, Params, thresholds and outputs: `docs/dags/monitoring.md` in the repository.
"""

from __future__ import annotations

from _params import dag_args
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task


@dag(
    **dag_args("monitoring", __doc__),
    schedule="@daily",
    max_active_runs=1,  # each run reads the whole prediction log; runs in parallel would only compete
    tags=["monitoring", "serving", "mlflow"],
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
