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

from airflow.sdk import Asset, Param, dag, task

GOLD = Asset(name="gold", uri="lake://gold")
MODELS = ["seasonal_naive", "sarimax", "lightgbm", "lstm", "lstm_transformer"]


def _step(name: str, *args, **kwargs):
    from _steps import step

    return step("pipelines.forecasting.run", name, *args, **kwargs)


def _events(triggering_asset_events) -> list[dict]:
    from _steps import asset_events

    return asset_events(triggering_asset_events)


@dag(
    dag_id="forecasting",
    schedule=[GOLD],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one forecasting run at a time: its mapped models already fill both cores
    tags=["forecasting", "time-series", "mlflow"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "dataset": Param(
            "sales",
            type="string",
            description="Time-series dataset in gold (its contract names gold.time and a numeric gold.label).",
        ),
        "ds": Param(
            "",
            type="string",
            description="Use gold up to this date (YYYY-MM-DD). Empty: the triggering gold event's date, else the run's logical date, else the latest gold partition.",
        ),
        "models": Param(
            MODELS,
            type="array",
            description="Models to backtest: seasonal_naive, sarimax, auto_arima, auto_ets, theta, lightgbm, xgboost, lstm, lstm_transformer.",
        ),
        "horizon": Param(
            0,
            type="integer",
            minimum=0,
            maximum=366,
            description="Periods forecast from each origin. 0: the frequency's default (28 days, 13 weeks, 12 months, 8 quarters, 4 years, 48 hours). A daily series' weekly (7-day) and monthly (28-day) sums need 7 and 28.",
        ),
        "seq_len": Param(
            0,
            type="integer",
            minimum=0,
            maximum=365,
            description="Periods of history the neural models read (window). 0: 30 days, else two seasons.",
        ),
        "backtest_folds": Param(
            4,
            type="integer",
            minimum=1,
            maximum=24,
            description="Rolling origins of the backtest; the last fold ends on the last observed day.",
        ),
        "backtest_step": Param(
            0, type="integer", minimum=0, description="Days between backtest origins (0: the horizon, no overlap)."
        ),
        "tuning_calls": Param(
            12,
            type="integer",
            minimum=0,
            maximum=100,
            description="Bayesian optimisation calls per neural model (hidden size, layers, dropout, heads, learning rate 1e-4..1e-3); 0: defaults.",
        ),
        "max_epochs": Param(
            60,
            type="integer",
            minimum=1,
            description="Most epochs per neural fit (early stopping usually ends sooner).",
        ),
        "patience": Param(6, type="integer", minimum=1, description="Epochs without validation gain before stopping."),
        "history_days": Param(
            0,
            type="integer",
            minimum=0,
            description="Use only the last this many days of history (0: all). Smaller is faster.",
        ),
        "register": Param(
            True, type="boolean", description="Register the best model in MLflow when it beats seasonal naive."
        ),
    },
)
def forecasting():
    @task.short_circuit
    def for_this_dataset(params=None, triggering_asset_events=None) -> bool:
        return _step("wanted", params["dataset"], _events(triggering_asset_events))

    @task
    def prepare(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        events = _events(triggering_asset_events)
        return _step("prepare", params["dataset"], dict(params), "forecasting", run_id, events=events, logical_ds=ds)

    @task
    def model_names(context: dict) -> list[str]:
        return context["params"]["models"]

    @task(max_active_tis_per_dagrun=2)  # 2 cores: each model trains on one thread
    def backtest(model: str, context: dict) -> dict:
        return _step("backtest_model", context, model)

    @task(trigger_rule="all_done")
    def leaderboard(context: dict, records: list[dict]) -> dict:
        return _step("leaderboard", context, list(records))

    context = prepare()
    for_this_dataset() >> context
    records = backtest.partial(context=context).expand(model=model_names(context))
    leaderboard(context, records)


forecasting()
