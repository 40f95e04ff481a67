"""
### training: every candidate algorithm on the same gold data, side by side

Runs when the `features` DAG publishes gold (Asset `lake://gold`), or by hand with the form; gold
of other datasets makes the run skip. Every algorithm is judged the same way (one mapped task
each, a nested MLflow run each), then ensembles, tuning of the best, a gate and the Pareto front
pick one model, SHAP explains it, and it is registered as `<dataset>_classifier` (alias
`champion` only when it beats the current one).

Tasks, Params, metrics and outputs: `docs/dags/training.md` in the repository.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

GOLD = Asset(name="gold", uri="lake://gold")
ENSEMBLES = ["voting", "bagging", "stacking"]


def _step(name: str, *args, **kwargs):
    from _steps import step

    return step("pipelines.training.run", name, *args, **kwargs)


def _events(triggering_asset_events) -> list[dict]:
    from _steps import asset_events

    return asset_events(triggering_asset_events)


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
        "tune_top_k": Param(
            2, type="integer", minimum=0, maximum=8, description="Tune this many of the best base algorithms (0: none)."
        ),
        "tune_mode": Param(
            "bayes",
            enum=["bayes", "random", "grid"],
            description="bayes: Gaussian-process search (gp_minimize); random: random search; grid: a 27-point grid (xgboost, lightgbm, random_forest).",
        ),
        "tune_calls": Param(20, type="integer", minimum=1, description="Trials per tuned algorithm (at most)."),
        "tune_time_budget_s": Param(
            600, type="integer", minimum=10, description="Per tuned algorithm: stop searching after this many seconds."
        ),
        "tune_patience": Param(
            8, type="integer", minimum=1, description="Stop a search after this many trials without improvement."
        ),
        "gate": Param(
            {},
            type="object",
            description="Rules a model must pass to be selected: leaderboard column -> '<op> <number>' (op: >, >=, <, <=). "
            'Empty: settings training.gate, by default {"cv_roc_auc_lift": "> 0.002", "cv_roc_auc_lift_z": "> 2"} '
            "(CV ROC-AUC above the baseline's in the same folds by 0.002 and by twice its standard error; the "
            "baseline: a dummy for logistic regression, the better of dummy and plain logistic regression for the "
            'rest). The absolute rules: {"cv_roc_auc": "> 0.85", "latency_p99_ms": "< 100"}.',
        ),
        "pareto_weights": Param(
            {"roc_auc": 0.4, "latency_p99_ms": 0.3, "complexity": 0.2, "interpretability": 0.1},
            type="object",
            description="Weights of the normalised objectives when choosing among the Pareto front.",
        ),
        "model_name": Param("", type="string", description="Registered model name (empty: <dataset>_classifier)."),
        "explain_time_budget_s": Param(
            120,
            type="integer",
            minimum=5,
            description="SHAP global summary: explain test rows (up to 500) until this many seconds are spent.",
        ),
        "promotion_margin": Param(
            0.001,
            type="number",
            minimum=0,
            description="The new model takes the champion alias only if its test ROC-AUC beats the champion's by this much.",
        ),
    },
)
def training():
    @task.short_circuit
    def for_this_dataset(params=None, triggering_asset_events=None) -> bool:
        from pipelines.lake import triggered_for

        return triggered_for(params["dataset"], _events(triggering_asset_events))

    @task
    def prepare(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        events = _events(triggering_asset_events)
        return _step("prepare", params["dataset"], dict(params), "training", run_id, events=events, logical_ds=ds)

    @task
    def algorithms(context: dict) -> list[str]:
        return context["params"]["algorithms"]

    # Mapped instances start in list order (longest fits first): plugins/task_order.py.
    @task(weight_rule="task_order.MapIndexOrder")
    def train(algorithm: str, context: dict) -> dict:
        return _step("train", context, algorithm)

    @task
    def train_ensemble(name: str, context: dict, base: list[dict]) -> dict:
        return _step("train_ensemble", context, name, list(base))

    @task(trigger_rule="all_done")
    def leaderboard(context: dict, base: list[dict], ensembles: list[dict]) -> dict:
        return _step("leaderboard", context, [*base, *ensembles])

    @task
    def tune_candidates(context: dict, board: dict) -> list[str]:
        return _step("tune_candidates", context, board)

    @task
    def tune(algorithm: str, context: dict) -> dict:
        return _step("tune", context, algorithm)

    @task(trigger_rule="all_done")
    def select(context: dict, base: list[dict], ensembles: list[dict], tuned: list[dict]) -> dict:
        return _step("select", context, [*base, *ensembles, *(tuned or [])])

    @task
    def explain(context: dict, selection: dict) -> dict:
        return _step("explain", context, selection)

    @task
    def register(context: dict, selection: dict) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        decision = _step("register", context, selection)
        if not decision["registered"]:  # nothing passed the gate: skipped (not green), with the reason
            raise AirflowSkipException(f"nothing registered: {decision['reason']}")
        return decision

    context = prepare()
    for_this_dataset() >> context
    base = train.partial(context=context).expand(algorithm=algorithms(context))
    ensembles = train_ensemble.partial(context=context, base=base).expand(name=ENSEMBLES)
    board = leaderboard(context, base, ensembles)
    tuned = tune.partial(context=context).expand(algorithm=tune_candidates(context, board))
    selection = select(context, base, ensembles, tuned)
    explain(context, selection) >> register(context, selection)


training()
