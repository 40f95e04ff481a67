"""Shared by the DAG files (Airflow puts dags/ on sys.path): run a pipelines step inside a task.

Not a DAG file. Bad data or settings (``pipelines.errors.DataError``) fail the task at once,
since retrying cannot fix them; anything else is left to the task's retries.
"""

from __future__ import annotations


def call(fn, *args, **kwargs):
    """Run the step callable ``fn``; a DataError fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.errors import DataError

    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        raise AirflowFailException(str(exc)) from exc


def step(module: str, name: str, *args, **kwargs):
    """``call`` on the step named by its module and name (imported inside the task)."""
    import importlib

    return call(lambda: getattr(importlib.import_module(module), name)(*args, **kwargs))


def asset_events(triggering_asset_events) -> list[dict]:
    """The ``extra`` dicts (dataset, ds, ...) of the gold Asset events that triggered a run ([] for manual runs)."""
    return [dict(e.extra or {}) for evs in (triggering_asset_events or {}).values() for e in evs]
