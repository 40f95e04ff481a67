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

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task


def _step(name: str, *args, **kwargs):
    from _steps import step

    return step("pipelines.monitoring.run", name, *args, **kwargs)


@dag(
    dag_id="monitoring",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # each run reads the whole prediction log; runs in parallel would only compete
    tags=["monitoring", "serving", "mlflow"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "model": Param("", type="string", description="Registered model to monitor. Empty: monitoring.model."),
        "window": Param(
            0,
            type="integer",
            minimum=0,
            description="Degradation: compare the latest this many batches with as many before. 0: monitoring.window.",
        ),
        "max_auc_drop": Param(
            0.0,
            type="number",
            minimum=0,
            maximum=1,
            description="Alert when the mean ROC-AUC drops by more than this fraction. 0: monitoring.max_auc_drop.",
        ),
        "psi_threshold": Param(
            0.0,
            type="number",
            minimum=0,
            description="A feature drifts when its PSI is over this. 0: monitoring.psi_threshold.",
        ),
        "batch_rows": Param(
            0,
            type="integer",
            minimum=0,
            description="Batch size for the per-batch metrics in labelled predictions. 0: one batch per day.",
        ),
        "retrain": Param(
            True, type="boolean", description="Trigger the training DAG when degradation or drift raises an alert."
        ),
        "training_conf": Param(
            {},
            type="object",
            description='Params of the training run triggered on an alert, e.g. {"algorithms": ["logreg", "lightgbm"], "tune_top_k": 0}. Its ds is this run\'s date unless given here.',
        ),
    },
)
def monitoring():
    @task
    def check(params=None, ds=None, run_id=None) -> dict:
        return _step("check", ds, dict(params), run_id)

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
