"""Replay held-out rows through the prediction API (for the demo): traffic, injected drift, labels later.

``client`` is anything with ``post(path, json=...)`` returning a response with ``status_code``
and ``json()``: an ``httpx.Client(base_url=...)`` against a running service, or FastAPI's
``TestClient`` (``in_process``: the real app, its lifespan and prediction log, no socket). The
labels of the replayed units go to the lake table the monitoring DAG joins
(``labels/<model>/ds=<ds>``). The prediction log stamps rows with the service's clock:
``replay_days`` sets it to each simulated day, so the daily monitoring DAG sees that day's traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

import numpy as np
import pandas as pd

from pipelines.constants import GOLD, LABEL, ROW_ID, SPLIT, TEST
from pipelines.lake import Lake

DRIFT_KEYS = ("shift", "replace", "fraction")


def inject_drift(
    frame: pd.DataFrame,
    shift: Mapping[str, float] | None = None,
    replace: Mapping[str, str] | None = None,
    fraction: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A copy with ``fraction`` of the rows changed: numeric columns moved by ``shift`` standard
    deviations (integer columns stay integers, rounded), categorical columns set to ``replace``'s value."""
    missing = [c for c in [*(shift or {}), *(replace or {})] if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot inject drift into column(s) {missing}: not in {list(frame.columns)}")
    out = frame.copy()
    rows = np.random.default_rng(seed).random(len(out)) < fraction
    for column, sds in (shift or {}).items():
        moved = out[column].astype(float) + sds * float(out[column].std() or 1.0)
        if pd.api.types.is_integer_dtype(out[column].dtype):
            moved = moved.round()
        out[column] = out[column].where(~rows, moved.astype(out[column].dtype))
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


def held_out(lake: Lake, dataset: str, ds: str, seed: int = 0) -> pd.DataFrame:
    """The test split of every gold partition of ``dataset`` up to ``ds`` (rows no model trained on),
    shuffled with ``seed``: the row id, the features and the label."""
    dates = [d for d in lake.list_partitions(GOLD, dataset) if d <= ds]
    if not dates:
        raise ValueError(f"no gold partitions of {dataset!r} up to {ds}: run the features DAG first")
    frame = pd.concat([lake.read_partition(GOLD, dataset, d).to_pandas() for d in dates], ignore_index=True)
    test = frame[frame[SPLIT].astype(str) == TEST].drop(columns=[SPLIT])
    return test.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@contextmanager
def in_process(settings):
    """The real prediction API in this process (FastAPI's TestClient runs its lifespan: the champion
    is loaded, the prediction log started, and flushed when the block ends); yields (client, service)."""
    from fastapi.testclient import TestClient

    from pipelines.serving.app import Service, create_app

    service = Service(settings)
    with TestClient(create_app(settings, service), base_url="http://localhost") as client:  # a loopback Host
        yield client, service


def replay_days(
    client,
    service,
    rows: pd.DataFrame,
    dates: Sequence[str],
    *,
    rows_per_day: int,
    drift_from: str | None,
    drift: Mapping | None,
    lake: Lake,
    model: str,
    labels_dataset: str,
    seed: int = 0,
    unit_id: str = ROW_ID,
    label: str = LABEL,
) -> pd.DataFrame:
    """Replay ``rows_per_day`` fresh rows per date through POST /predict with the service's clock on that
    date (noon UTC), drift injected (``inject_drift(**drift)``) into the dates from ``drift_from`` on,
    then write the date's labels. A replay replaces what an earlier one logged for these dates, so
    replaying again never doubles a day's traffic. Returns one row per date: ds, rows, drifted,
    mean_probability, version."""
    from pipelines.monitoring.run import write_labels
    from pipelines.serving.predlog import PREDICTIONS

    unknown = set(drift or {}) - set(DRIFT_KEYS)
    if unknown:
        raise ValueError(f"unknown drift setting(s) {sorted(unknown)}; use {list(DRIFT_KEYS)}")
    needed = rows_per_day * len(dates)
    if len(rows) < needed:
        raise ValueError(f"{len(dates)} days of {rows_per_day} rows need {needed} held-out rows, got {len(rows)}")
    features = [f["name"] for f in client.get("/model").json()["features"]]
    service.log.flush()
    for ds in dates:
        lake.delete_dir(f"{PREDICTIONS}/{service.log.model}/ds={ds}")
    summary = []
    for i, ds in enumerate(dates):
        day = rows.iloc[i * rows_per_day : (i + 1) * rows_per_day]
        drifted = bool(drift_from) and ds >= drift_from
        X = inject_drift(day[features], **dict(drift or {}), seed=seed + i) if drifted else day[features]
        units = day[unit_id].astype(str).tolist()
        noon = datetime.fromisoformat(f"{ds}T12:00:00+00:00")
        service.clock = lambda noon=noon: noon
        answered = replay(client, X, units)
        write_labels(lake, labels_dataset, model, ds, pd.DataFrame({"unit_id": units, "label": day[label].astype(int)}))
        summary.append(
            {
                "ds": ds,
                "rows": len(answered),
                "drifted": drifted,
                "mean_probability": float(answered["probability"].mean()),
                "version": str(answered["version"].iloc[0]),
            }
        )
    service.log.flush()
    return pd.DataFrame(summary)
