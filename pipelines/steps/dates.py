"""Which date a DAG run works on, the same way for every DAG."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipelines.errors import DataError
from pipelines.lake import Lake, check_ds, run_date


def resolve_ds(
    lake: Lake | None,
    datasets: str | Sequence[str],
    wanted: str | None = "",
    events: Iterable[Mapping[str, Any]] = (),
    logical_ds: str | None = None,
    *,
    error: type[DataError] = DataError,
    hint: str = "",
) -> str:
    """The form's ``wanted`` date, else the latest triggering gold event of one of ``datasets``, else
    the logical date, else (with a lake) the latest gold partition of the first dataset.

    The date is checked (YYYY-MM-DD). No date at all raises ``error`` naming the dataset and
    ``hint`` (what to run first).
    """
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    evs = [dict(e) for e in events]
    try:
        if lake is not None:
            ds = run_date(lake, names, wanted or "", evs, logical_ds)
        else:
            candidates = [wanted, *[e.get("ds") for e in reversed(evs) if e.get("dataset") in names], logical_ds]
            ds = next((check_ds(c) for c in candidates if c), None)
    except ValueError as exc:
        raise error(str(exc)) from None
    if ds is None and lake is None:
        raise error(f"no date for dataset {names[0]!r}: set the `ds` Param (YYYY-MM-DD){'; ' + hint if hint else ''}")
    if ds is None:
        raise error(f"no gold partitions for dataset {names[0]!r}; {hint or 'run the features DAG for it first'}")
    return ds
