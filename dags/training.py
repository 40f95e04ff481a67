"""
### training: every candidate algorithm on the same gold data, side by side

Runs when the `features` DAG publishes gold (Asset `lake://gold`), or by hand with the form.

1. **prepare**: loads every gold partition up to the date, refuses data no model can learn
   from (no label, one class, a column no preprocessing knows), opens the parent MLflow run
   (experiment `training`, tagged with dag_id, run_id, date and the gold content hash).
2. **train** (one mapped task per algorithm, in parallel): stratified k-fold CV ROC-AUC on
   the train rows, a final fit, the held-out test score (accuracy, precision, recall, F1,
   ROC-AUC, PR-AUC, log loss, Brier, per-class scores, confusion matrix, FP/FN costs),
   single-row p50/p99 latency, batch throughput, size, complexity, interpretability; a nested
   MLflow run with the model, ROC/PR, confusion, calibration and importance plots. A failing
   algorithm becomes a leaderboard row with its reason; the others go on.
3. **train_ensemble** (mapped: voting, bagging, stacking over the best base algorithms).
4. **leaderboard**: the ranked table in the lake (`gold/<dataset>_leaderboard`) and on the
   parent MLflow run with a comparison plot.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

GOLD = Asset(name="gold", uri="lake://gold")
ENSEMBLES = ["voting", "bagging", "stacking"]


def _step(name: str, *args, **kwargs):
    from _steps import step

    return step("pipelines.training.run", name, *args, **kwargs)


@dag(
    dag_id="training",
    schedule=[GOLD],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one training run at a time: the algorithms already fill the executor
    tags=["training", "mlflow"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "dataset": Param(
            "adult", type="string", description="Gold dataset to train on (a dataset the features DAG produced)."
        ),
        "ds": Param(
            "",
            type="string",
            description="Train on gold up to this date (YYYY-MM-DD). Empty: the date of the gold event that triggered the run, else the run's logical date, else the latest gold partition.",
        ),
        "algorithms": Param(
            [],
            type="array",
            description="Base algorithms to compare (empty: all of logreg, ridge, random_forest, hist_gb, xgboost, lightgbm, svm_rbf, mlp_torch). Ensembles are always built from the best ones.",
        ),
        "cv_folds": Param(
            5, type="integer", minimum=2, maximum=10, description="Stratified k-fold CV folds on the train rows."
        ),
        "time_budget_s": Param(
            900,
            type="integer",
            minimum=10,
            description="Per algorithm: CV stops after the fold that passes this many seconds.",
        ),
        "fp_cost": Param(
            1.0, type="number", minimum=0, description="Cost of one false positive, for the cost metrics."
        ),
        "fn_cost": Param(
            5.0, type="number", minimum=0, description="Cost of one false negative, for the cost metrics."
        ),
        "ensemble_top_k": Param(
            3,
            type="integer",
            minimum=2,
            maximum=6,
            description="How many of the best base algorithms the ensembles combine.",
        ),
        "sample_rows": Param(
            0,
            type="integer",
            minimum=0,
            description="Train on a stratified sample of at most this many rows (0: all rows).",
        ),
    },
)
def training():
    @task
    def prepare(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        events = [dict(e.extra or {}) for evs in (triggering_asset_events or {}).values() for e in evs]
        return _step("prepare", params["dataset"], dict(params), "training", run_id, events=events, logical_ds=ds)

    @task
    def algorithms(context: dict) -> list[str]:
        return context["params"]["algorithms"]

    @task
    def train(algorithm: str, context: dict) -> dict:
        return _step("train", context, algorithm)

    @task
    def train_ensemble(name: str, context: dict, base: list[dict]) -> dict:
        return _step("train_ensemble", context, name, list(base))

    @task(trigger_rule="all_done")
    def leaderboard(context: dict, base: list[dict], ensembles: list[dict]) -> dict:
        return _step("leaderboard", context, [*base, *ensembles])

    context = prepare()
    base = train.partial(context=context).expand(algorithm=algorithms(context))
    ensembles = train_ensemble.partial(context=context, base=base).expand(name=ENSEMBLES)
    leaderboard(context, base, ensembles)


training()
