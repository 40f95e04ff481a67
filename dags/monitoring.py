"""
### monitoring: is the served model still good, and is its traffic still like its training data?

Runs daily on the prediction log the serving API writes to the lake
(`predictions/<model>/ds=...`) and the labels that have arrived so far (`labels/<model>/ds=...`:
`unit_id`, `label`, joined on the unit id of each prediction).

1. **check**: per-batch metrics of the labelled predictions (ROC-AUC, accuracy, log loss, ...);
   **degradation**: mean ROC-AUC of the latest `window` batches vs the `window` before, alert
   when it drops by more than `max_auc_drop`; **data drift** of the day's rows per feature
   against the train split of gold (PSI on reference deciles / categories, KS for numeric,
   chi-square for categorical); **prediction drift** (PSI of the day's probabilities vs the
   champion's on the reference); an **anomaly** share from a GaussianMixture fitted on the
   reference (components chosen by BIC). Alerts go to `monitoring/<model>_alerts` in the lake,
   to an MLflow run (experiment `monitoring`) and the task log, and to the notifier
   (`monitoring.notifier`: log, or a webhook).
2. **should_retrain**: true when degradation or drift raised an alert (and `retrain` is on).
3. **trigger_training**: starts a `training` run with conf `{"ds": <date>, **training_conf}` (the
   `training_conf` Param: any of the training form's Params, e.g. a quicker retraining). The run is
   queued like any triggered run: the scheduler starts it once `training` is unpaused.
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
