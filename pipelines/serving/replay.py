"""Replay held-out rows through the prediction API (for the demo): traffic, injected drift, labels later.

``client`` is anything with ``post(path, json=...)`` returning a response with ``status_code``
and ``json()``: an ``httpx.Client(base_url=...)`` against a running service, or FastAPI's
``TestClient``. The labels of the replayed units go to the lake table the monitoring DAG joins
(``labels/<model>/ds=<ds>``). The prediction log stamps rows with the service's clock, so the
monitoring DAG sees replayed traffic on the day it was replayed (or in ``batch_rows`` chunks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd


def inject_drift(
    frame: pd.DataFrame,
    shift: Mapping[str, float] | None = None,
    replace: Mapping[str, str] | None = None,
    fraction: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A copy with ``fraction`` of the rows changed: numeric columns moved by ``shift`` standard
    deviations, categorical columns set to ``replace``'s value."""
    missing = [c for c in [*(shift or {}), *(replace or {})] if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot inject drift into column(s) {missing}: not in {list(frame.columns)}")
    out = frame.copy()
    rows = np.random.default_rng(seed).random(len(out)) < fraction
    for column, sds in (shift or {}).items():
        out.loc[rows, column] = out.loc[rows, column] + sds * float(out[column].std() or 1.0)
    for column, value in (replace or {}).items():
        out.loc[rows, column] = value
    return out


def _jsonable(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, np.generic):
            v = v.item()
        if (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            v = None
        out[k] = v
    return out


def replay(
    client,
    rows: pd.DataFrame,
    unit_ids: list[str],
    *,
    batch_size: int = 50,
) -> pd.DataFrame:
    """Send the rows (features only) in batches; returns unit_id, probability, version, arm per row."""
    if len(unit_ids) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(unit_ids)} unit ids")
    records = [_jsonable(r) for r in rows.to_dict("records")]
    out = []
    for start in range(0, len(records), batch_size):
        body = [
            {**r, "unit_id": u} for r, u in zip(records[start : start + batch_size], unit_ids[start:], strict=False)
        ]
        response = client.post("/predict", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"/predict answered {response.status_code}: {response.text[:500]}")
        out += response.json()["predictions"]
    return pd.DataFrame(out)[["unit_id", "probability", "version", "arm"]]
