"""
### sentiment: text classification from raw text (reviews, or your own text dataset), the best model registered

Runs when the `features` DAG publishes gold (Asset `lake://gold`) for the form's dataset (gold of
other datasets makes the run skip), or by hand with the form. Trains TF-IDF + logistic regression
and a bidirectional LSTM, registers the better one as `sentiment_classifier` (or `NAME_sentiment`
for a dataset added with `dataset add NAME --kind text`); runs in the MLflow experiment `deep`.

Tasks, Params, labels and outputs: `docs/dags/deep.md` in the repository.
"""

from __future__ import annotations

from _params import GOLD, dag_args
from airflow.sdk import dag, task


@dag(
    **dag_args("sentiment", __doc__),
    schedule=[GOLD],
    max_active_runs=1,  # one run at a time: the LSTM already fills a core for minutes
    tags=["deep-learning", "nlp", "mlflow"],
)
def sentiment():
    @task.short_circuit
    def for_this_dataset(params=None, triggering_asset_events=None) -> bool:
        from _steps import asset_events, call

        from pipelines.deep.steps import sentiment_wanted

        return call(sentiment_wanted, params["dataset"], asset_events(triggering_asset_events))

    @task
    def train(params=None, ds=None, run_id=None, triggering_asset_events=None) -> dict:
        from _steps import asset_events, call

        from pipelines.deep.steps import sentiment

        return call(sentiment, dict(params), run_id, asset_events(triggering_asset_events), logical_ds=ds)

    for_this_dataset() >> train()


sentiment()
