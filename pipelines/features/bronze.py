"""Bronze: each landing file as it came (CSV values as text, Parquet in its own types) plus ingest metadata.

One call per landing file (the DAG maps over them). A malformed CSV line or an unreadable
file goes to ``quarantine/bronze`` with its reason; the rows of the other files go through.
Parts are written to staging and published together by ``commit_bronze``, so a rerun
replaces the partition and a killed task leaves nothing half-written in it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.constants import (
    BATCH_ID,
    BRONZE,
    INGESTED_AT,
    MANIFEST_FILE,
    QUARANTINE,
    RAW,
    REASON,
    ROW_NUMBER,
    SOURCE_FILE,
)
from pipelines.lake import Lake

QUARANTINE_BRONZE = f"{QUARANTINE}/{BRONZE}"
QUARANTINE_SCHEMA = pa.schema(
    [(SOURCE_FILE, pa.string()), (ROW_NUMBER, pa.int64()), (REASON, pa.string()), (RAW, pa.string())]
)


class CorruptFileError(ValueError):
    """A landing file that cannot be read at all."""


def read_raw(data: bytes, name: str) -> tuple[pa.Table, list[dict]]:
    """Parse a raw file into all-string columns with 1-based row numbers; bad lines are returned apart."""
    lower = name.lower()
    if lower.endswith(".parquet"):
        return _read_parquet(data, name), []
    if lower.endswith(".csv.gz"):
        import gzip

        data = gzip.decompress(data)
    elif not lower.endswith(".csv"):
        raise CorruptFileError(f"{name}: unsupported file type; land .csv, .csv.gz or .parquet files")
    return _read_csv(data, name)


def _read_csv(data: bytes, name: str) -> tuple[pa.Table, list[dict]]:
    text_head = data[: 1 << 16].decode("utf-8", errors="replace")
    try:
        header = next(csv.reader(io.StringIO(text_head)))
    except StopIteration:
        raise CorruptFileError(f"{name}: empty file, no header line") from None
    if not any(h.strip() for h in header):
        raise CorruptFileError(f"{name}: the first line is not a header")
    bad: list[dict] = []

    def on_invalid(row) -> str:
        bad.append(
            {
                ROW_NUMBER: (row.number or 0) - 1,
                REASON: f"malformed CSV line: expected {row.expected_columns} fields, found {row.actual_columns}",
                RAW: row.text,
            }
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False, null_values=[]
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{name}: not a readable CSV file ({exc})") from None
    # Row numbers count data lines (header excluded); skipped lines keep their own numbers.
    rows = _row_numbers(table.num_rows, {b[ROW_NUMBER] for b in bad})
    return table.append_column(ROW_NUMBER, rows), bad


def _read_parquet(data: bytes, name: str) -> pa.Table:
    try:
        text = [f.name for f in pq.read_schema(pa.BufferReader(data)) if pa.types.is_string(f.type)]
        table = pq.read_table(pa.BufferReader(data), read_dictionary=text)  # same values, encoded once
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptFileError(f"{name}: corrupt Parquet file ({exc})") from None
    # Parquet brings its own types: bronze keeps them as they came.
    return table.append_column(ROW_NUMBER, _row_numbers(table.num_rows))


def _constant_text(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string()))


def _row_numbers(n: int, skipped: set[int] = frozenset()) -> pa.Array:
    """1-based numbers of the data rows kept, with the numbers of skipped lines left out."""
    numbers = np.arange(1, n + len(skipped) + 1, dtype=np.int64)
    if skipped:
        numbers = numbers[~np.isin(numbers, np.fromiter(skipped, np.int64))]
    return pa.array(numbers)


def part_name(source: str) -> str:
    stem = source.rsplit("/", 1)[-1]
    return f"part-{stem.split('.')[0]}-{hashlib.sha256(source.encode()).hexdigest()[:8]}.parquet"


def ingest_file(lake: Lake, dataset: str, ds: str, source: str, batch_id: str) -> dict:
    """Land one raw file in bronze staging; returns a small manifest for XCom."""
    stage = lake.staging(BRONZE, dataset, ds)
    qstage = lake.staging(QUARANTINE_BRONZE, dataset, ds)
    name = part_name(source)
    now = datetime.now(UTC)
    try:
        table, bad = read_raw(lake.read_bytes(source), source)
    except CorruptFileError as exc:
        quarantine = pa.table(
            {SOURCE_FILE: [source], ROW_NUMBER: [None], REASON: [str(exc)], RAW: [None]}, schema=QUARANTINE_SCHEMA
        )
        lake.write_parquet(f"{qstage}/{name}", quarantine)
        return {
            "source": source,
            "part": None,
            "quarantine": name,
            "rows_in": None,
            "rows": 0,
            "quarantined": 0,
            "file_quarantined": str(exc),
        }
    n = table.num_rows
    table = (
        table.append_column(INGESTED_AT, pa.repeat(pa.scalar(now, pa.timestamp("us", tz="UTC")), n))
        .append_column(SOURCE_FILE, _constant_text(source, n))
        .append_column(BATCH_ID, _constant_text(batch_id, n))
    )
    lake.write_parquet(f"{stage}/{name}", table)
    if bad:
        for b in bad:
            b[SOURCE_FILE] = source
        lake.write_parquet(f"{qstage}/{name}", pa.Table.from_pylist(bad, schema=QUARANTINE_SCHEMA))
    return {
        "source": source,
        "part": name,
        "quarantine": name if bad else None,
        "rows_in": n + len(bad),
        "rows": n,
        "quarantined": len(bad),
        "file_quarantined": None,
    }


def clear_staging(lake: Lake, dataset: str, ds: str) -> None:
    """Forget parts of an earlier, unfinished attempt before the files are ingested again."""
    lake.delete_dir(lake.staging(BRONZE, dataset, ds))
    lake.delete_dir(lake.staging(QUARANTINE_BRONZE, dataset, ds))


def commit_bronze(lake: Lake, dataset: str, ds: str, parts: list[dict]) -> dict:
    """Publish the staged parts of this run (and only those) as the bronze partition."""
    rows_in = sum(p["rows_in"] or 0 for p in parts)
    rows = sum(p["rows"] for p in parts)
    quarantined = sum(p["quarantined"] for p in parts)
    if rows_in != rows + quarantined:
        raise RuntimeError(f"bronze {dataset} {ds}: {rows_in} rows in != {rows} kept + {quarantined} quarantined")
    manifest = {
        "layer": BRONZE,
        "dataset": dataset,
        "ds": ds,
        "uri": lake.uri(lake.partition(BRONZE, dataset, ds)),
        "sources": sorted(p["source"] for p in parts),
        "files": {p["part"]: {"rows": p["rows"], "source": p["source"]} for p in parts if p["part"]},
        "rows_in": rows_in,
        "rows": rows,
        "quarantined_rows": quarantined,
        "quarantined_files": {p["source"]: p["file_quarantined"] for p in parts if p["file_quarantined"]},
        "committed_at": datetime.now(UTC).isoformat(),
    }
    stage, qstage = lake.staging(BRONZE, dataset, ds), lake.staging(QUARANTINE_BRONZE, dataset, ds)
    for rel, keep in ((stage, set(manifest["files"])), (qstage, {p["quarantine"] for p in parts if p["quarantine"]})):
        for f in lake.list_files(rel):  # drop parts that this run did not produce
            if f.rsplit("/", 1)[-1] not in keep:
                lake.fs.delete_file(lake.path(f))
    for part in manifest["files"]:
        manifest["files"][part]["sha256"] = lake.sha256(f"{stage}/{part}")
    manifest["content_hash"] = hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()
    lake.write_json(f"{stage}/{MANIFEST_FILE}", manifest)
    lake.publish(stage, lake.partition(BRONZE, dataset, ds))
    qfiles = {p["quarantine"]: {"source": p["source"], "rows": p["quarantined"]} for p in parts if p["quarantine"]}
    qmanifest = {
        "layer": QUARANTINE_BRONZE,
        "dataset": dataset,
        "ds": ds,
        "rows": quarantined,
        "files": qfiles,
        "quarantined_files": manifest["quarantined_files"],
    }
    lake.write_json(f"{qstage}/{MANIFEST_FILE}", qmanifest)
    lake.publish(qstage, lake.partition(QUARANTINE_BRONZE, dataset, ds))
    return manifest
