"""Rows in landing against rows in gold + quarantine, counted independently of the pipeline; the fault log.

``landed_rows`` reads each landing file with the standard library's csv module (or Parquet's
footer), not with the code under test, so a row that the pipeline dropped shows up as lost.
Each fault test calls ``record``; with ``MLP_RELIABILITY_LOG`` set (bench/reliability.py sets
it) the outcome is appended there as one JSON line.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.constants import BRONZE, GOLD, SILVER
from pipelines.features.bronze import QUARANTINE_BRONZE
from pipelines.features.landing import landing_dir
from pipelines.features.silver import QUARANTINE_SILVER
from pipelines.lake import Lake

LOG_ENV = "MLP_RELIABILITY_LOG"


def count_file(data: bytes, name: str) -> int | None:
    """Data rows of one landing file (None: not readable at all)."""
    if name.endswith(".parquet"):
        try:
            return pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
        except (pa.ArrowInvalid, OSError):
            return None
    records = [r for r in csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))) if r]
    return max(len(records) - 1, 0)  # minus the header


def landed_rows(lake: Lake, dataset: str, ds: str, known: dict[str, int] | None = None) -> dict[str, int]:
    """Rows per landing file of a date; ``known`` gives the rows of files no reader can open."""
    known = known or {}
    counts = {}
    for rel in lake.list_files(landing_dir(dataset, ds)):
        name = rel.rsplit("/", 1)[-1]
        n = count_file(lake.read_bytes(rel), name)
        counts[rel] = known[name] if n is None else n
    return counts


def reconcile(lake: Lake, dataset: str, ds: str, known: dict[str, int] | None = None) -> dict:
    """Rows landed vs rows in gold + quarantine (rows and whole quarantined files) after a run."""
    landed = landed_rows(lake, dataset, ds, known)
    bronze = lake.read_manifest(BRONZE, dataset, ds)
    gold = lake.read_manifest(GOLD, dataset, ds)
    q_bronze = lake.read_manifest(QUARANTINE_BRONZE, dataset, ds)
    q_silver = lake.read_manifest(QUARANTINE_SILVER, dataset, ds)
    silver = lake.read_manifest(SILVER, dataset, ds)
    in_files = sum(landed[f] for f in bronze.get("quarantined_files", {}))
    accounted = gold["rows"] + q_bronze["rows"] + q_silver["rows"] + in_files
    rows_landed = sum(landed.values())
    return {
        "rows_landed": rows_landed,
        "gold_rows": gold["rows"],
        "silver_rows": silver["rows"],
        "quarantined_rows": q_bronze["rows"] + q_silver["rows"],
        "rows_in_quarantined_files": in_files,
        "rows_lost": rows_landed - accounted,
    }


def record(fault: str, survived: bool, rows: dict, **extra) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    entry = {"fault": fault, "survived": survived, **rows, **extra, "at": datetime.now(UTC).isoformat()}
    with open(path, "a") as f:
        f.write(json.dumps(entry, default=str) + "\n")
