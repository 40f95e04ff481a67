"""
### forecasting: daily forecasts of a series, the best model registered in MLflow

Runs when the `features` DAG publishes gold (Asset `lake://gold`) for the forecast dataset
(default `sales`), or by hand with the form; gold of other datasets makes the run skip. Every
model is backtested on the same rolling origins; forecasts, backtests and the leaderboard go to
`gold/<dataset>_forecast`, `gold/<dataset>_backtest` and `gold/<dataset>_forecast_leaderboard`,
the best model to the registry as `<dataset>_forecaster`.

Tasks, Params, metrics and the covariate assumption: `docs/dags/forecasting.md` in the repository.
"""

from __future__ import annotations

from _params import GOLD, dag_args
from airflow.sdk import dag, task


@dag(
    **dag_args("forecasting", __doc__),
    schedule=[GOLD],
    max_active_runs=1,  # one forecasting run at a time: its mapped models already fill both cores
    tags=["forecasting", "time-series", "mlflow"],
)
def forecasting():
    @task.short_circuit
    def for_this_dataset(params=None, triggering_asset_events=None) -> bool:
        from _steps import asset_events, call

        from pipelines.forecasting import run

        return call(run.wanted, params["dataset"], asset_events(triggering_asset_events))

    @task
    def prepare(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        from _steps import asset_events, call

        from pipelines.forecasting import run

        events = asset_events(triggering_asset_events)
        return call(run.prepare, params["dataset"], dict(params), "forecasting", run_id, events=events, logical_ds=ds)

    @task
    def model_names(context: dict) -> list[str]:
        return context["params"]["models"]

    @task(max_active_tis_per_dagrun=2)  # 2 cores: each model trains on one thread
    def backtest(model: str, context: dict) -> dict:
        from _steps import call

        from pipelines.forecasting import run

        return call(run.backtest_model, context, model)

    @task(trigger_rule="all_done")
    def leaderboard(context: dict, records: list[dict]) -> dict:
        from _steps import call

        from pipelines.forecasting import run

        return call(run.leaderboard, context, list(records))

    context = prepare()
    for_this_dataset() >> context
    records = backtest.partial(context=context).expand(model=model_names(context))
    leaderboard(context, records)


forecasting()
