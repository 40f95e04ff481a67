"""The deep-learning DAGs' steps (``dags/sentiment.py``, ``dags/image.py``): small JSON-able results for XCom.

The date a step reads gold up to: the form's ``ds``, else the triggering gold event's for the
dataset, else the run's logical date (``pipelines.steps.resolve_ds``). An empty Param takes its
``deep`` setting (``sentiment_params``, ``image_params``). The training modules are imported inside
each step, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.config import Settings, load_settings
from pipelines.errors import DataError
from pipelines.steps.params import fill


class ParamError(DataError, ValueError):
    """A DAG Param that cannot work."""


def sentiment_params(params: Mapping[str, Any] | None, settings: Settings | None = None) -> dict:
    """The sentiment DAG's choices: its Params, an empty one taking the ``deep`` setting."""
    from pipelines.deep.text.models import MODELS

    cfg = (settings or load_settings()).deep
    defaults = {"dataset": cfg.sentiment_dataset, "epochs": cfg.sentiment_epochs, "models": list(MODELS)}
    return fill(params, ds="", **defaults, max_rows=0, tokenizer="auto")


def image_params(params: Mapping[str, Any] | None, settings: Settings | None = None) -> dict:
    """The image DAG's choices: its Params, an empty one taking the ``deep`` setting (``epochs``: left
    empty, ``deep.image_epochs`` or more on a small dataset, decided when the data is known)."""
    cfg = (settings or load_settings()).deep
    return fill(
        params,
        dataset="",
        ds="",
        source=cfg.image_dataset,
        epochs=None,
        patience=cfg.image_patience,
        seeds=cfg.seeds,
        max_rows=0,
        experiment_max_rows=6000,
        run_experiment=True,
    )


def sentiment_wanted(dataset: str | None, events: list[dict] = (), settings: Settings | None = None) -> bool:
    """False when the run was triggered only by gold events of other datasets (the DAG then skips);
    no dataset: ``deep.sentiment_dataset``."""
    from pipelines.lake import triggered_for

    return triggered_for(dataset or (settings or load_settings()).deep.sentiment_dataset, events)


def sentiment(params: dict, airflow_run_id: str, events: list[dict] = (), logical_ds: str | None = None) -> dict:
    """The sentiment models on gold of the Param ``dataset`` (the reviews, or a ``kind: text`` dataset)."""
    from pipelines.deep.text import MODELS, run_sentiment
    from pipelines.steps import resolve_ds

    params = sentiment_params(params)
    dataset = params["dataset"]
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

    params = image_params(params)
    return train_image(params, tags=_image_tags(airflow_run_id), ds=params["ds"] or logical_ds)


def poly_experiment(params: dict, airflow_run_id: str) -> dict:
    """The poly-vs-ReLU experiment: always on the reference data (Param ``source``)."""
    from pipelines.deep.vision.experiment import run_poly_experiment

    reference = {k: v for k, v in image_params(params).items() if k != "dataset"}
    return run_poly_experiment(reference, tags=_image_tags(airflow_run_id))


def cluster(params: dict, airflow_run_id: str, logical_ds: str | None = None) -> dict:
    from pipelines.deep.gmm import run_gmm

    params = image_params(params)
    return run_gmm(params, tags=_image_tags(airflow_run_id), ds=params["ds"] or logical_ds)
