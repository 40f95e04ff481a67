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
    bronze = lake.read_partition(BRONZE, dataset, ds, dictionary=True)
    n = bronze.num_rows
    if n == 0:
        raise EmptyBatchError(
            f"bronze {dataset} {ds} has no rows ({len(bronze_manifest.get('sources', []))} landing file(s), "
            f"quarantined files: {list(bronze_manifest.get('quarantined_files', {}))}); nothing to validate"
        )
    result = apply_contract(contract, bronze)
    ok = result.ok
    ids = row_ids(result.typed, list(contract.key))
    ok_idx = np.flatnonzero(ok)
    dup_idx = ok_idx[pd.Series(ids[ok_idx]).duplicated().to_numpy()]
    good = ok.copy()
    good[dup_idx] = False

    bad_idx = np.flatnonzero(~ok)
    reasons = pa.concat_arrays(
        [
            result.reason.take(pa.array(bad_idx)).combine_chunks() if len(bad_idx) else pa.array([], pa.string()),
            pa.array(
                [
                    f"duplicate: same {'/'.join(contract.key) if len(contract.key) < 4 else 'values'} as an earlier row (row id {ids[i]:016x})"
                    for i in dup_idx
                ],
                pa.string(),
            ),
        ]
    )
    q_idx = pa.array(np.concatenate([bad_idx, dup_idx]))
    quarantine = (
        bronze.take(q_idx)
        .append_column(REASON, reasons)
        .append_column(ROW_ID, pa.array(ids[q_idx.to_numpy()], pa.uint64()))
    )
    rows_out, rows_q = int(good.sum()), quarantine.num_rows
    if rows_out + rows_q != n:
        raise RuntimeError(f"silver {dataset} {ds}: {n} rows in != {rows_out} out + {rows_q} quarantined")
    mask = pa.array(good)
    silver = result.typed.filter(mask).append_column(ROW_ID, pa.array(ids[good], pa.uint64()))
    for col in _LINEAGE:
        silver = silver.append_column(col, bronze.column(col).filter(mask))

    summary = top_reasons(reasons)
    lake.write_partition(QUARANTINE_SILVER, dataset, ds, {"part-0.parquet": quarantine}, {"reasons": summary})
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
        {"part-0.parquet": silver},
        {
            "contract": contract.name,
            "rows_in": n,
            "rows_quarantined": rows_q,
            "duplicates": len(dup_idx),
            "reasons": summary,
            "extra_columns_dropped": result.extra_columns,
            "bronze_content_hash": bronze_manifest.get("content_hash"),
        },
    )


def top_reasons(reasons: pa.Array, k: int = 10) -> dict[str, int]:
    """Counts of quarantine reasons with the offending value cut off ('age: not an integer')."""
    if len(reasons) == 0:
        return {}
    kinds = pc.replace_substring_regex(reasons, pattern=r" \('.*$| \(row id .*$", replacement="")
    counts = pc.value_counts(kinds).to_pylist()
    counts.sort(key=lambda c: (-c["counts"], c["values"]))
    return {c["values"]: c["counts"] for c in counts[:k]}
