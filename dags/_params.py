"""Shared by the DAG files: their Params (trigger forms), built from ``pipelines/steps/params.json``.

Not a DAG file. Imported at the top of a DAG file, so it reads the JSON with the standard library
only and imports nothing of ``pipelines`` (``find_spec`` locates the package without running it).
A Param whose default is null takes its setting (``pipelines/steps/params.py``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from airflow.sdk import Param


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
