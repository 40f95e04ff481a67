"""Shared by the DAG files (Airflow puts dags/ on sys.path): run a pipelines step inside a task.

Not a DAG file. Bad data or settings (``pipelines.errors.DataError``) fail the task at once,
since retrying cannot fix them; anything else is left to the task's retries.
"""

from __future__ import annotations


def step(module: str, name: str, *args, **kwargs):
    import importlib

    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.errors import DataError

    try:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    except DataError as exc:
        raise AirflowFailException(str(exc)) from exc


def asset_events(triggering_asset_events) -> list[dict]:
    """The ``extra`` dicts (dataset, ds, ...) of the gold Asset events that triggered a run ([] for manual runs)."""
    return [dict(e.extra or {}) for evs in (triggering_asset_events or {}).values() for e in evs]
