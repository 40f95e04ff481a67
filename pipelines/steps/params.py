"""The one convention of the DAGs' Params: a Param left empty (``None``, ``""``, ``[]`` or ``{}``)
takes the setting (``include/config/settings.yaml``, ``MLP_`` overrides) or the pipeline's default.

Each DAG's Params are resolved by one pure function of its package (``run_params`` and the like),
built on ``fill``; ``tests/dags/test_params.py`` pins every DAG Param default to what that function
does without the Param, so a default in a DAG file can never hide a setting again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_empty(value: Any) -> bool:
    """``None``, or an empty string, list, tuple or dict: the Param was left to the setting."""
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def fill(params: Mapping[str, Any] | None, **defaults: Any) -> dict[str, Any]:
    """The keys of ``defaults``: the Param's value when given (not empty), else the default.

    Keys of ``params`` that ``defaults`` does not name are dropped (the form's ``ds``, a retired Param).
    """
    given = dict(params or {})
    return {k: default if is_empty(given.get(k)) else given[k] for k, default in defaults.items()}
