"""
### recommendation: top-n items for every user, from their ratings

Runs when the `features` DAG publishes gold (Asset `lake://gold`) for the ratings dataset named in
`recommendation:` of `include/config/settings.yaml` (or its item/user tables), or for one added
with `dataset add --kind ratings`; gold of other datasets makes the run skip. Or by hand with the
form. Compares the recommenders, registers the best by NDCG@k and publishes every user's top-n
to `gold/<ratings>_recommendations`.

Tasks, Params, models and outputs: `docs/dags/recommendation.md` in the repository.
"""

from __future__ import annotations

from _params import GOLD, dag_args
from airflow.sdk import Asset, dag, task

RECOMMENDATIONS = Asset(name="recommendations", uri="lake://gold/recommendations")


@dag(
    **dag_args("recommendation", __doc__),
    schedule=[GOLD],
    max_active_runs=1,  # one run at a time: the models already fill the executor, and the registry gets one writer
    tags=["recommendation", "mlflow"],
)
def recommendation():
    @task
    def prepare(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        from _steps import asset_events, call

        from pipelines.recommendation import run

        events = asset_events(triggering_asset_events)
        context = call(run.prepare, dict(params), "recommendation", run_id, events=events, logical_ds=ds)
        if context.get("skip"):
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(context["skip"])
        return context

    @task
    def models(context: dict) -> list[str]:
        return context["params"]["models"]

    @task
    def evaluate(model: str, context: dict) -> dict:
        from _steps import call

        from pipelines.recommendation import run

        return call(run.evaluate_model, context, model)

    # Runs when a model task crashed too (its row is missing), but not when prepare skipped the run.
    @task(trigger_rule="none_skipped")
    def leaderboard(context: dict, records: list[dict]) -> dict:
        from _steps import call

        from pipelines.recommendation import run

        return call(run.leaderboard, context, list(records))

    @task
    def register(context: dict, board: dict) -> dict:
        from _steps import call

        from pipelines.recommendation import run

        return call(run.register, context, board)

    @task(outlets=[RECOMMENDATIONS])
    def publish(context: dict, registered: dict, outlet_events=None) -> dict:
        from _steps import call

        from pipelines.recommendation import run

        summary = call(run.publish, context, registered)
        outlet_events[RECOMMENDATIONS].extra = summary
        return summary

    context = prepare()
    records = evaluate.partial(context=context).expand(model=models(context))
    board = leaderboard(context, records)
    publish(context, register(context, board))


recommendation()
