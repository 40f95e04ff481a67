"""Silver: bronze rows typed, normalised and checked against the dataset's contract.

Rows that break a rule, and exact repeats of a row already seen in the batch, go to
``quarantine/silver/<dataset>`` with the reason and their raw values. Counts reconcile
exactly: bronze rows = silver rows + quarantined rows, and the manifest says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.constants import (
    BATCH_ID,
    BRONZE,
    INGESTED_AT,
    QUARANTINE,
    REASON,
    ROW_ID,
    ROW_NUMBER,
    SILVER,
    SOURCE_FILE,
)
from pipelines.features.contracts import Contract, ContractError, apply_contract, row_ids
from pipelines.features.landing import EmptyBatchError
from pipelines.lake import Lake

QUARANTINE_SILVER = f"{QUARANTINE}/{SILVER}"
_LINEAGE = [SOURCE_FILE, ROW_NUMBER, INGESTED_AT, BATCH_ID]


def build_silver(lake: Lake, contract: Contract, dataset: str, ds: str, max_quarantine_fraction: float) -> dict:
    bronze_manifest = lake.read_manifest(BRONZE, dataset, ds)
    part_dir = lake.partition(BRONZE, dataset, ds)
    # Part by part: each landing file keeps its own types in bronze (text from CSV, Parquet's own).
    raws = [lake.read_parquet(f"{part_dir}/{name}", dictionary=True) for name in sorted(bronze_manifest["files"])]
    n = sum(r.num_rows for r in raws)
    if n == 0:
        raise EmptyBatchError(
            f"bronze {dataset} {ds} has no rows ({len(bronze_manifest.get('sources', []))} landing file(s), "
            f"quarantined files: {list(bronze_manifest.get('quarantined_files', {}))}); nothing to validate"
        )
    results = [apply_contract(contract, raw) for raw in raws]
    ok = np.concatenate([r.ok for r in results])
    ids = np.concatenate([row_ids(r.typed, list(contract.key)) for r in results])
    ok_idx = np.flatnonzero(ok)
    dup_idx = ok_idx[pd.Series(ids[ok_idx]).duplicated().to_numpy()]
    good = ok.copy()
    good[dup_idx] = False
    key_name = "/".join(contract.key) if len(contract.key) < 4 else "values"

    silver_parts, quarantine_parts, start = [], [], 0
    for raw, result in zip(raws, results, strict=True):
        stop = start + raw.num_rows
        keep, part_ids = good[start:stop], ids[start:stop]
        mask = pa.array(keep)
        # Column by column: Table.filter takes a much slower generic path.
        columns = {name: result.typed.column(name).filter(mask) for name in result.typed.column_names}
        columns[ROW_ID] = pa.array(part_ids[keep], pa.uint64())
        columns.update({name: raw.column(name).filter(mask) for name in _LINEAGE})
        silver_parts.append(pa.table(columns))
        bad = np.flatnonzero(~keep)
        if len(bad):
            reasons = result.reason.take(pa.array(bad)).to_pylist()
            for i, local in enumerate(bad):
                if reasons[i] is None:  # passed the contract: a repeat of an earlier row
                    reasons[i] = f"duplicate: same {key_name} as an earlier row (row id {part_ids[local]:016x})"
            rows = _take_as_text(raw, bad)
            rows = rows.append_column(REASON, pa.array(reasons, pa.string()))
            quarantine_parts.append(rows.append_column(ROW_ID, pa.array(part_ids[bad], pa.uint64())))
        start = stop
    silver = pa.concat_tables(silver_parts)
    quarantine = (
        pa.concat_tables(quarantine_parts, promote_options="permissive")
        if quarantine_parts
        else pa.table({REASON: pa.array([], pa.string()), ROW_ID: pa.array([], pa.uint64())})
    )
    rows_out, rows_q = silver.num_rows, quarantine.num_rows
    if rows_out + rows_q != n:
        raise RuntimeError(f"silver {dataset} {ds}: {n} rows in != {rows_out} out + {rows_q} quarantined")

    summary = top_reasons(quarantine.column(REASON))
    lake.write_partition(QUARANTINE_SILVER, dataset, ds, quarantine, {"reasons": summary})
    fraction = rows_q / n
    if fraction > max_quarantine_fraction:
        raise ContractError(
            f"silver {dataset} {ds}: {rows_q} of {n} rows ({fraction:.1%}) broke contract {contract.name!r}, above "
            f"features.max_quarantine_fraction={max_quarantine_fraction}; top reasons: {summary}. "
            f"The rows are in {lake.uri(lake.partition(QUARANTINE_SILVER, dataset, ds))}"
        )
    return lake.write_partition(
        SILVER,
        dataset,
        ds,
        silver,
        {
            "contract": contract.name,
            "rows_in": n,
            "rows_quarantined": rows_q,
            "duplicates": len(dup_idx),
            "reasons": summary,
            "extra_columns_dropped": sorted({c for r in results for c in r.extra_columns}),
            "bronze_content_hash": bronze_manifest.get("content_hash"),
        },
    )


def _take_as_text(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """The given rows with every value as text, taken batch by batch (no merge of whole columns)."""
    batches, offset = [], 0
    for batch in table.to_batches():
        local = rows[(rows >= offset) & (rows < offset + batch.num_rows)] - offset
        offset += batch.num_rows
        if len(local):
            taken = batch.take(pa.array(local))
            batches.append(pa.record_batch([c.cast(pa.string()) for c in taken.columns], names=taken.schema.names))
    return pa.Table.from_batches(batches)


def top_reasons(reasons: pa.Array, k: int = 10) -> dict[str, int]:
    """Counts of quarantine reasons with the offending value cut off ('age: not an integer')."""
    if len(reasons) == 0:
        return {}
    kinds = pc.replace_substring_regex(reasons, pattern=r" \('.*$| \(row id .*$", replacement="")
    counts = pc.value_counts(kinds).to_pylist()
    counts.sort(key=lambda c: (-c["counts"], c["values"]))
    return {c["values"]: c["counts"] for c in counts[:k]}
