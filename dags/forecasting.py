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

from datetime import datetime, timedelta

from _params import form
from airflow.sdk import Asset, dag, task

GOLD = Asset(name="gold", uri="lake://gold")


@dag(
    dag_id="forecasting",
    schedule=[GOLD],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one forecasting run at a time: its mapped models already fill both cores
    tags=["forecasting", "time-series", "mlflow"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params=form("forecasting"),  # pipelines/steps/params.json: an empty (null) Param takes its setting
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
