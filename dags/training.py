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

from _params import GOLD, dag_args
from airflow.sdk import dag, task


@dag(
    **dag_args("training", __doc__),
    schedule=[GOLD],
    max_active_runs=1,  # one training run at a time: the algorithms already fill the executor
    tags=["training", "mlflow"],
)
def training():
    @task.short_circuit
    def for_this_dataset(params=None, triggering_asset_events=None) -> bool:
        from _steps import asset_events

        from pipelines.lake import triggered_for

        return triggered_for(params["dataset"], asset_events(triggering_asset_events))

    @task
    def prepare(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        from _steps import asset_events, call

        from pipelines.training import run

        events = asset_events(triggering_asset_events)
        return call(run.prepare, params["dataset"], dict(params), "training", run_id, events=events, logical_ds=ds)

    @task
    def algorithms(context: dict) -> list[str]:
        return context["params"]["algorithms"]

    @task
    def ensembles_to_build(context: dict) -> list[str]:
        return context["params"]["ensembles"]

    # Mapped instances start in list order (longest fits first): plugins/task_order.py.
    @task(weight_rule="task_order.MapIndexOrder")
    def train(algorithm: str, context: dict) -> dict:
        from _steps import call

        from pipelines.training import run

        return call(run.train, context, algorithm)

    @task
    def train_ensemble(name: str, context: dict, base: list[dict]) -> dict:
        from _steps import call

        from pipelines.training import run

        return call(run.train_ensemble, context, name, list(base))

    @task(trigger_rule="all_done")
    def leaderboard(context: dict, base: list[dict], ensembles: list[dict]) -> dict:
        from _steps import call

        from pipelines.training import run

        return call(run.leaderboard, context, [*base, *ensembles])

    @task
    def tune_candidates(context: dict, board: dict) -> list[str]:
        from _steps import call

        from pipelines.training import run

        return call(run.tune_candidates, context, board)

    @task
    def tune(algorithm: str, context: dict) -> dict:
        from _steps import call

        from pipelines.training import run

        return call(run.tune, context, algorithm)

    @task(trigger_rule="all_done")
    def select(context: dict, base: list[dict], ensembles: list[dict], tuned: list[dict]) -> dict:
        from _steps import call

        from pipelines.training import run

        return call(run.select, context, [*base, *ensembles, *(tuned or [])])

    @task
    def explain(context: dict, selection: dict) -> dict:
        from _steps import call

        from pipelines.training import run

        return call(run.explain, context, selection)

    @task
    def register(context: dict, selection: dict) -> dict:
        from _steps import call
        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines.training import run

        decision = call(run.register, context, selection)
        if not decision["registered"]:  # nothing passed the gate: skipped (not green), with the reason
            raise AirflowSkipException(f"nothing registered: {decision['reason']}")
        return decision

    context = prepare()
    for_this_dataset() >> context
    base = train.partial(context=context).expand(algorithm=algorithms(context))
    ensembles = train_ensemble.partial(context=context, base=base).expand(name=ensembles_to_build(context))
    board = leaderboard(context, base, ensembles)
    tuned = tune.partial(context=context).expand(algorithm=tune_candidates(context, board))
    selection = select(context, base, ensembles, tuned)
    explain(context, selection) >> register(context, selection)


training()
