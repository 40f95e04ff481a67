"""Shared by the DAG files: the ``@dag`` arguments every DAG declares alike, the gold Asset, and
their Params (trigger forms), built from ``pipelines/steps/params.json``.

Not a DAG file. Imported at the top of a DAG file, so it reads the JSON with the standard library
only and imports nothing of ``pipelines`` (``find_spec`` locates the package without running it).
A Param whose default is null takes its setting (``pipelines/steps/params.py``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from airflow.sdk import Asset, Param

GOLD = Asset(name="gold", uri="lake://gold")  # the features DAG publishes it, the model DAGs run on it


@cache
def _forms() -> dict:
    spec = find_spec("pipelines")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the pipelines package is not importable: put the repository root on PYTHONPATH")
    return json.loads((Path(next(iter(spec.submodule_search_locations))) / "steps" / "params.json").read_text())


def form(dag_id: str) -> dict[str, Param]:
    """The DAG's Params, in the file's order."""
    return {
        name: Param(
            p["default"],
            description=p.get("description"),
            **{k: v for k, v in p.items() if k not in ("default", "description")},
        )
        for name, p in _forms()[dag_id].items()
    }


def dag_args(dag_id: str, doc_md: str | None, *, retry_delay_s: int = 30) -> dict:
    """The ``@dag`` arguments alike in every DAG: a static start date, no catchup, the DAG file's
    docstring as ``doc_md``, two retries of every task, and the Params of ``form(dag_id)``. Each DAG
    file still names its schedule, tags and ``max_active_runs`` (the integrity tests want it explicit)."""
    return {
        "dag_id": dag_id,
        "start_date": datetime(2026, 1, 1),
        "catchup": False,
        "doc_md": doc_md,
        "default_args": {"retries": 2, "retry_delay": timedelta(seconds=retry_delay_s)},
        "params": form(dag_id),  # pipelines/steps/params.json: an empty (null) Param takes its setting
    }
