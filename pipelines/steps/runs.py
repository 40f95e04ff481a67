"""MLflow runs of a DAG run: one parent run (tagged with the gold content hash) and a nested run
per model, trial or step; parameters and figures logged the same way everywhere.

Runs are found again by their tags (``pipelines.tracking.find_or_create_run``), so a retried task
logs into the run its earlier attempt made instead of starting a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pipelines.steps.context import RunContext
from pipelines.tracking import find_or_create_run


def param_strings(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """MLflow params: lists and dicts as JSON, anything else as ``str``."""
    return {
        f"{prefix}{k}": json.dumps(v, default=str) if isinstance(v, list | tuple | dict) else str(v)
        for k, v in params.items()
    }


def open_parent(
    ctx: RunContext,
    experiment: str,
    *,
    gold_content_hash: str,
    params: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> RunContext:
    """Find or create the DAG run's parent run, tag it with the gold hash, log the params and the data
    summary (``data_summary.json``); the context with ``parent_run_id`` and ``gold_content_hash`` set."""
    import mlflow

    tags = {"dag_id": ctx.dag_id, **ctx.run_tags()}
    parent = find_or_create_run(ctx.settings, experiment, run_name or f"{ctx.dataset} {ctx.ds}", tags)
    with mlflow.start_run(run_id=parent):
        mlflow.set_tags({"gold_content_hash": gold_content_hash, "role": "parent"})
        mlflow.log_params(param_strings(ctx.params if params is None else params))
        if summary is not None:
            mlflow.log_dict(dict(summary), "data_summary.json")
    return ctx.with_(parent_run_id=parent, gold_content_hash=gold_content_hash)


@contextmanager
def parent_run(ctx: RunContext) -> Iterator[str]:
    """The DAG run's parent run, active for the block; yields its id."""
    import mlflow

    if not ctx.parent_run_id:
        raise ValueError("the run context has no parent_run_id: open the parent run first (open_parent)")
    mlflow.set_tracking_uri(ctx.settings.mlflow.tracking_uri)
    with mlflow.start_run(run_id=ctx.parent_run_id):
        yield ctx.parent_run_id


@contextmanager
def nested_run(ctx: RunContext, experiment: str, name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """A child run of the parent, active for the block; yields its id.

    ``tags`` name the child within the DAG run (e.g. ``{"model": name}``); the context's run tags
    are added. An exception in the block ends the run FAILED with a ``failure_reason`` tag, then
    propagates; ``fail`` does the same for a failure the block turns into a record.
    """
    import mlflow

    run_id = find_or_create_run(ctx.settings, experiment, name, ctx.run_tags(**tags), parent_run_id=ctx.parent_run_id)
    with mlflow.start_run(run_id=run_id):
        try:
            yield run_id
        except Exception as exc:
            if mlflow.active_run() is not None:
                mlflow.set_tag("failure_reason", f"{type(exc).__name__}: {exc}"[:5000])
            raise


def fail(reason: str, traceback: str | None = None) -> None:
    """End the active run FAILED, saying why (tag ``failure_reason``, ``traceback.txt``)."""
    import mlflow

    mlflow.set_tag("failure_reason", reason[:5000])
    if traceback:
        mlflow.log_text(traceback, "traceback.txt")
    mlflow.end_run(status="FAILED")


def log_figure(fig: Any, path: str) -> None:
    """Log a matplotlib figure to the active run and close it (pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt
    import mlflow

    try:
        mlflow.log_figure(fig, path)
    finally:
        plt.close(fig)
