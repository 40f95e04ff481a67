"""The deep-learning DAGs' steps (``dags/sentiment.py``, ``dags/image.py``): small JSON-able results for XCom."""

from __future__ import annotations

from pipelines.errors import DataError


class ParamError(DataError, ValueError):
    """A DAG Param that cannot work."""


def sentiment_wanted(dataset: str, events: list[dict] = ()) -> bool:
    """False when the run was triggered only by gold events of other datasets (the DAG then skips)."""
    from pipelines.lake import triggered_for

    return triggered_for(dataset, events)


def sentiment(params: dict, airflow_run_id: str, events: list[dict] = (), logical_ds: str | None = None) -> dict:
    """Both sentiment models on gold up to the form's date, else the triggering gold event's, else the logical date."""
    from pipelines.deep import text

    dataset = params.get("dataset") or "reviews"
    ds = params.get("ds") or next(
        (e.get("ds") for e in reversed(list(events)) if e.get("dataset") == dataset and e.get("ds")), logical_ds
    )
    if not ds:
        raise ParamError("no date: set the `ds` Param (YYYY-MM-DD)")
    unknown = sorted(set(params.get("models") or []) - set(text.MODELS))
    if unknown:
        raise ParamError(f"unknown sentiment model(s) {unknown}; known: {sorted(text.MODELS)}")
    tags = {"dag_id": "sentiment", "airflow_run_id": airflow_run_id}
    return text.run_sentiment(ds, dict(params), tags=tags)


def image(params: dict, airflow_run_id: str) -> dict:
    from pipelines.deep import vision

    return vision.train_image(dict(params), tags={"dag_id": "image", "airflow_run_id": airflow_run_id})


def poly_experiment(params: dict, airflow_run_id: str) -> dict:
    from pipelines.deep import vision

    return vision.run_poly_experiment(dict(params), tags={"dag_id": "image", "airflow_run_id": airflow_run_id})


def cluster(params: dict, airflow_run_id: str) -> dict:
    from pipelines.deep import gmm

    return gmm.run_gmm(dict(params), tags={"dag_id": "image", "airflow_run_id": airflow_run_id})
