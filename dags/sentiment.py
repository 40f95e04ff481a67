"""
### sentiment: review sentiment from raw text (English and Korean), the best model registered in MLflow

Runs when the `features` DAG publishes gold (Asset `lake://gold`) for the reviews dataset
(Women's E-Commerce Clothing Reviews; runs triggered only by other datasets' gold skip at once),
or by hand with the form. **A review is positive when its rating is 4 or 5**, negative for 1..3.

1. **for_this_dataset**: skips the run when it was triggered only by gold of other datasets.
2. **train**: TF-IDF + logistic regression and an embedding + bidirectional LSTM on gold's train
   rows (title and review text through a tokenizer that handles Hangul as well as Latin words),
   the best by validation ROC-AUC; test ROC-AUC and F1 per model as nested MLflow runs
   (experiment `deep`), the ROC plot on the parent run; the best is registered as
   `sentiment_classifier` (a pyfunc: a `text` column in, `label`, `confidence`, `p_positive` out),
   alias `champion` when it beats the current champion's test ROC-AUC, else `challenger`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

GOLD = Asset(name="gold", uri="lake://gold")


def _step(name: str, *args, **kwargs):
    from _steps import step

    return step("pipelines.deep.steps", name, *args, **kwargs)


def _events(triggering_asset_events) -> list[dict]:
    from _steps import asset_events

    return asset_events(triggering_asset_events)


@dag(
    dag_id="sentiment",
    schedule=[GOLD],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one run at a time: the LSTM already fills a core for minutes
    tags=["deep-learning", "nlp", "mlflow"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "dataset": Param("reviews", type="string", description="Reviews dataset in gold (title, review_text, rating)."),
        "ds": Param(
            "",
            type="string",
            description="Use gold up to this date (YYYY-MM-DD). Empty: the triggering gold event's date, else the run's logical date.",
        ),
        "models": Param(["tfidf_logreg", "lstm"], type="array", description="Models to train: tfidf_logreg, lstm."),
        "epochs": Param(
            4, type="integer", minimum=1, maximum=50, description="LSTM epochs (early stopping may end sooner)."
        ),
        "max_rows": Param(
            0, type="integer", minimum=0, description="Train on at most this many rows (0: all). Smaller is faster."
        ),
    },
)
def sentiment():
    @task.short_circuit
    def for_this_dataset(params=None, triggering_asset_events=None) -> bool:
        return _step("sentiment_wanted", params["dataset"], _events(triggering_asset_events))

    @task
    def train(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        return _step("sentiment", dict(params), run_id, _events(triggering_asset_events), logical_ds=ds)

    for_this_dataset() >> train()


sentiment()
