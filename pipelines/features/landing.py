"""Landing: the raw files of a logical date.

Users drop CSV or Parquet files into ``landing/<dataset>/ds=YYYY-MM-DD/``. For the demo, a
simulated daily feed cuts a real dataset into ``demo.days`` dated batches (a row's day comes
from a hash of its content, so exact duplicates land on the same day) and writes each day as
``demo.files_per_day`` CSV files, so consecutive logical dates bring new rows.

A time series (a contract with ``gold.time``) needs its history, not a slice of it: its feed
lands, for any date, one CSV snapshot of what was known on that date, i.e. the rows up to the
date plus later rows that have no label yet (a plan of future drivers).
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd

from pipelines.constants import LANDING
from pipelines.errors import DataError
from pipelines.lake import Lake, check_ds

LANDING_SUFFIXES = (".csv", ".csv.gz", ".parquet")


class EmptyBatchError(DataError, RuntimeError):
    """No rows arrived for a logical date."""


def landing_dir(dataset: str, ds: str) -> str:
    return f"{LANDING}/{dataset}/ds={check_ds(ds)}"


def demo_day(ds: str, start: str, days: int) -> int | None:
    """Index of the demo batch for a date, or None outside the simulated range."""
    offset = (date.fromisoformat(check_ds(ds)) - date.fromisoformat(start)).days
    return offset if 0 <= offset < days else None


def simulate_feed(
    lake: Lake, frame: pd.DataFrame, dataset: str, ds: str, start: str, days: int, files: int
) -> list[str]:
    """Write the demo batch of ``ds`` as raw CSV files; returns the files written (none outside the range)."""
    day = demo_day(ds, start, days)
    if day is None:
        return []
    h = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    rows = frame[(h % np.uint64(days)) == np.uint64(day)]
    shard = (h[(h % np.uint64(days)) == np.uint64(day)] // np.uint64(days)) % np.uint64(files)
    written = []
    for k in range(files):
        buf = io.StringIO()
        rows[shard == np.uint64(k)].to_csv(buf, index=False)
        rel = f"{landing_dir(dataset, ds)}/{dataset}-{ds}-{k:02d}.csv"
        lake.write_bytes(rel, buf.getvalue().encode())
        written.append(rel)
    return written


def snapshot_feed(lake: Lake, frame: pd.DataFrame, dataset: str, ds: str, time: str, label: str | None) -> list[str]:
    """Write what a time series knew on ``ds`` as one CSV: rows up to ``ds``, plus later unlabelled rows.

    ``time`` and ``label`` are contract (snake_case) names; the frame's own spelling is matched.
    Nothing is written when no row is dated on or before ``ds``.
    """
    from pipelines.features.contracts import snake_case

    names = {snake_case(c): c for c in frame.columns}
    if time not in names:
        raise DataError(f"dataset {dataset!r} has no time column {time!r}; columns: {sorted(names)}")
    when = pd.to_datetime(frame[names[time]], errors="coerce", format="ISO8601")
    if len(frame) and when.isna().all():
        raise DataError(
            f"dataset {dataset!r}: time column {time!r} holds no ISO dates (YYYY-MM-DD), "
            f"e.g. {frame[names[time]].iloc[0]!r}; write its dates as YYYY-MM-DD"
        )
    cutoff = pd.Timestamp(check_ds(ds)) + pd.Timedelta(days=1)
    known = when < cutoff
    if not known.any():
        return []
    planned = frame[names[label]].isna() & ~known if label in names else pd.Series(False, index=frame.index)
    rel = f"{landing_dir(dataset, ds)}/{dataset}-{ds}.csv"
    buf = io.StringIO()
    frame[known | planned | when.isna()].to_csv(buf, index=False)  # unparseable times go on to silver's quarantine
    lake.write_bytes(rel, buf.getvalue().encode())
    return [rel]


def landing_files(lake: Lake, dataset: str, ds: str) -> list[str]:
    """The raw files present for a date, or a clear error when nothing arrived."""
    files = lake.list_files(landing_dir(dataset, ds), LANDING_SUFFIXES)
    if not files:
        raise EmptyBatchError(
            f"no landing files for dataset {dataset!r} on {ds}: drop CSV or Parquet files into "
            f"{lake.uri(landing_dir(dataset, ds))} (the demo feed only covers its configured days)"
        )
    return files
