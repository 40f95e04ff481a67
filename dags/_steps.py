"""Shared by the DAG files (Airflow puts dags/ on sys.path): run a pipelines step inside a task.

Not a DAG file. Bad data or settings (``pipelines.errors.DataError``) fail the task at once,
since retrying cannot fix them; anything else is left to the task's retries.
"""

from __future__ import annotations


def call(fn, *args, **kwargs):
    """Run the step callable ``fn``; a DataError fails the task without retries. The task log gets the
    seconds spent in ``fn`` (``STEP_TIMING``), so Airflow's own overhead per task can be measured."""
    import logging
    import time

    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.errors import DataError

    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        raise AirflowFailException(str(exc)) from exc
    finally:
        logging.getLogger("pipelines.step").info(
            STEP_TIMING, f"{fn.__module__}.{fn.__name__}", time.perf_counter() - t0
        )


STEP_TIMING = "step %s took %.3f s"  # bench/demo.py reads this line from the task logs


def asset_events(triggering_asset_events) -> list[dict]:
    """The ``extra`` dicts (dataset, ds, ...) of the gold Asset events that triggered a run ([] for manual runs)."""
    return [dict(e.extra or {}) for evs in (triggering_asset_events or {}).values() for e in evs]
