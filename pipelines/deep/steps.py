"""The deep-learning DAGs' steps (``dags/sentiment.py``, ``dags/image.py``): small JSON-able results for XCom.

The date a step reads gold up to: the form's ``ds``, else the triggering gold event's for the
dataset, else the run's logical date (``pipelines.steps.resolve_ds``). The training modules are imported inside each step, so
importing this module (the DAG files do, at parse time) stays cheap.
"""

from __future__ import annotations

from pipelines.errors import DataError


class ParamError(DataError, ValueError):
    """A DAG Param that cannot work."""


def sentiment_wanted(dataset: str, events: list[dict] = ()) -> bool:
    """False when the run was triggered only by gold events of other datasets (the DAG then skips)."""
    from pipelines.lake import triggered_for

    return triggered_for(dataset, events)


def sentiment(params: dict, airflow_run_id: str, events: list[dict] = (), logical_ds: str | None = None) -> dict:
    """The sentiment models on gold of the Param ``dataset`` (the reviews, or a ``kind: text`` dataset)."""
    from pipelines.deep.text import MODELS, run_sentiment
    from pipelines.steps import resolve_ds

    dataset = params.get("dataset") or "reviews"
    ds = resolve_ds(None, dataset, params.get("ds"), events, logical_ds, error=ParamError)
    unknown = sorted(set(params.get("models") or []) - set(MODELS))
    if unknown:
        raise ParamError(f"unknown sentiment model(s) {unknown}; known: {sorted(MODELS)}")
    tags = {"dag_id": "sentiment", "airflow_run_id": airflow_run_id}
    return run_sentiment(ds, dict(params), tags=tags)


def _image_tags(airflow_run_id: str) -> dict:
    return {"dag_id": "image", "airflow_run_id": airflow_run_id}


def image(params: dict, airflow_run_id: str, logical_ds: str | None = None) -> dict:
    """The CNN on the reference images or the Param ``dataset`` (a ``kind: images`` dataset's gold)."""
    from pipelines.deep.vision.run import train_image

    return train_image(dict(params), tags=_image_tags(airflow_run_id), ds=params.get("ds") or logical_ds)


def poly_experiment(params: dict, airflow_run_id: str) -> dict:
    """The poly-vs-ReLU experiment: always on the reference data (Param ``source``)."""
    from pipelines.deep.vision.experiment import run_poly_experiment

    reference = {k: v for k, v in params.items() if k != "dataset"}
    return run_poly_experiment(reference, tags=_image_tags(airflow_run_id))


def cluster(params: dict, airflow_run_id: str, logical_ds: str | None = None) -> dict:
    from pipelines.deep.gmm import run_gmm

    return run_gmm(dict(params), tags=_image_tags(airflow_run_id), ds=params.get("ds") or logical_ds)
