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

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

GOLD = Asset(name="gold", uri="lake://gold")
RECOMMENDATIONS = Asset(name="recommendations", uri="lake://gold/recommendations")


def _step(name: str, *args, **kwargs):
    from _steps import step

    return step("pipelines.recommendation.run", name, *args, **kwargs)


@dag(
    dag_id="recommendation",
    schedule=[GOLD],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one run at a time: the models already fill the executor, and the registry gets one writer
    tags=["recommendation", "mlflow"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "ds": Param(
            "",
            type="string",
            description="Use gold ratings up to this date (YYYY-MM-DD). Empty: the date of the gold event that triggered the run, else the run's logical date, else the latest gold partition.",
        ),
        "dataset": Param(
            "",
            type="string",
            description="Ratings dataset (empty: recommendation.ratings in settings.yaml, or the `dataset add --kind ratings` dataset whose gold triggered the run). Its entry's `columns` name the user, item, rating and timestamp columns.",
        ),
        "models": Param(
            [],
            type="array",
            description="Models to compare (empty: all of popularity, user_knn, item_knn, biased_mf, bayesian_mf, two_tower). The best by NDCG@10 is registered.",
        ),
        "cv_folds": Param(
            5,
            type="integer",
            minimum=2,
            maximum=10,
            description="Folds of the rating-prediction cross-validation (RMSE, MAE).",
        ),
        "max_epochs": Param(
            0,
            type="integer",
            minimum=0,
            description="Cap on the iterations of the iterative models (ALS iterations, Gibbs sweeps, neural epochs) for a quick run; 0 keeps each model's default.",
        ),
        "top_n": Param(
            10,
            type="integer",
            minimum=1,
            maximum=100,
            description="Items per user in the published recommendations and the registered model's default.",
        ),
    },
)
def recommendation():
    @task
    def prepare(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        from _steps import asset_events

        events = asset_events(triggering_asset_events)
        context = _step("prepare", dict(params), "recommendation", run_id, events=events, logical_ds=ds)
        if context.get("skip"):
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(context["skip"])
        return context

    @task
    def models(context: dict) -> list[str]:
        return context["params"]["models"]

    @task
    def evaluate(model: str, context: dict) -> dict:
        return _step("evaluate_model", context, model)

    # Runs when a model task crashed too (its row is missing), but not when prepare skipped the run.
    @task(trigger_rule="none_skipped")
    def leaderboard(context: dict, records: list[dict]) -> dict:
        return _step("leaderboard", context, list(records))

    @task
    def register(context: dict, board: dict) -> dict:
        return _step("register", context, board)

    @task(outlets=[RECOMMENDATIONS])
    def publish(context: dict, registered: dict, outlet_events=None) -> dict:
        summary = _step("publish", context, registered)
        outlet_events[RECOMMENDATIONS].extra = summary
        return summary

    context = prepare()
    records = evaluate.partial(context=context).expand(model=models(context))
    board = leaderboard(context, records)
    publish(context, register(context, board))


recommendation()
