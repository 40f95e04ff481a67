"""Silver: bronze rows typed, normalised and checked against the dataset's contract.

Rows that break a rule, and exact repeats of a row already seen in the batch, go to
``quarantine/silver/<dataset>`` with the reason and their raw values. Counts reconcile
exactly: bronze rows = silver rows + quarantined rows, and the manifest says so. The batch
fails when more than ``max_quarantine_fraction`` of the rows landed were quarantined, in
bronze (malformed lines, files refused whole) and here together.

Silver reads the bronze this run staged (or the published one when none is staged) and
stages its own partitions; gold publishes them (pipelines/features/publish.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.constants import (
    BATCH_ID,
    BRONZE,
    GOLD,
    INGESTED_AT,
    QUARANTINE,
    REASON,
    ROW_ID,
    ROW_NUMBER,
    SILVER,
    SOURCE_FILE,
)
from pipelines.features.bronze import QUARANTINE_BRONZE
from pipelines.features.contracts import Contract, ContractError, apply_contract
from pipelines.features.landing import EmptyBatchError
from pipelines.features.rowids import mix64, row_ids
from pipelines.lake import Lake

QUARANTINE_SILVER = f"{QUARANTINE}/{SILVER}"
_LINEAGE = [SOURCE_FILE, ROW_NUMBER, INGESTED_AT, BATCH_ID]


def build_silver(lake: Lake, contract: Contract, dataset: str, ds: str, max_quarantine_fraction: float) -> dict:
    staged = lake.has_staged(BRONZE, dataset, ds)
    bronze_manifest = lake.read_manifest(BRONZE, dataset, ds, staged)
    part_dir = lake.folder(BRONZE, dataset, ds, staged)
    # Part by part: each landing file keeps its own types in bronze (text from CSV, Parquet's own).
    parts = sorted(bronze_manifest["files"])
    raws = [lake.read_parquet(f"{part_dir}/{name}", dictionary=True) for name in parts]
    n = sum(r.num_rows for r in raws)
    if n == 0:
        refused = "; ".join(bronze_manifest.get("quarantined_files", {}).values()) or "none"
        raise EmptyBatchError(
            f"bronze {dataset} {ds} has no rows ({len(bronze_manifest.get('sources', []))} landing file(s); "
            f"files quarantined whole: {refused}); nothing to validate. Fix or replace those files and rerun "
            f"the date; {_kept(lake, dataset, ds)}"
        )
    results = []
    for part, raw in zip(parts, raws, strict=True):
        try:
            results.append(apply_contract(contract, raw))
        except ContractError as exc:  # bronze had no contract to check this file's columns against
            raise ContractError(f"{bronze_manifest['files'][part]['source']}: {exc}") from None
    ok = np.concatenate([r.ok for r in results])
    if contract.key:
        ids = np.concatenate([row_ids(r.typed, list(contract.key)) for r in results])
        ok_idx = np.flatnonzero(ok)
        dup_idx = ok_idx[pd.Series(ids[ok_idx]).duplicated().to_numpy()]
    else:  # `key: []`: identical rows are all kept; the n-th repeat of the same values gets an id of its own
        ids = np.concatenate([row_ids(r.typed, r.typed.column_names) for r in results])
        repeat = pd.Series(ids).groupby(ids).cumcount().to_numpy().astype(np.uint64)
        ids = np.where(repeat > 0, mix64(ids ^ repeat), ids)
        dup_idx = np.array([], dtype=np.intp)
    good = ok.copy()
    good[dup_idx] = False
    key_name = "/".join(contract.key) if len(contract.key) < 4 else "values"

    silver_parts, quarantine_parts, rejected, start = [], [], {}, 0
    for part, raw, result in zip(parts, raws, results, strict=True):
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
            rejected[bronze_manifest["files"][part]["source"]] = len(bad)
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
    lake.write_partition(QUARANTINE_SILVER, dataset, ds, quarantine, {"reasons": summary}, staged=True)
    # Rows landed: those of the files read, and those of files refused whole (where they could be counted).
    in_files = bronze_manifest.get("rows_in_quarantined_files", 0)
    landed = bronze_manifest["rows_in"] + in_files
    quarantined = bronze_manifest["quarantined_rows"] + in_files + rows_q
    fraction = quarantined / landed
    if fraction > max_quarantine_fraction:
        raise ContractError(
            f"silver {dataset} {ds}: {quarantined} of {landed} rows landed ({fraction:.1%}) were quarantined, above "
            f"features.max_quarantine_fraction={max_quarantine_fraction}. By file: "
            f"{_by_file(bronze_manifest, rejected)}; top reasons in silver (contract {contract.name!r}): {summary}. "
            f"Fix those files and rerun the date, or raise the fraction (MLP_FEATURES__MAX_QUARANTINE_FRACTION). "
            f"The quarantined rows are in {lake.uri(lake.staging(QUARANTINE_BRONZE, dataset, ds))} and "
            f"{lake.uri(lake.staging(QUARANTINE_SILVER, dataset, ds))}; {_kept(lake, dataset, ds)}"
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
            "quarantine_fraction": round(fraction, 6),
            "extra_columns_dropped": sorted({c for r in results for c in r.extra_columns}),
            "bronze_content_hash": bronze_manifest.get("content_hash"),
        },
        staged=True,
    )


def _by_file(bronze_manifest: dict, rejected: dict[str, int], k: int = 10) -> str:
    """The files with the most rows quarantined, each with its counts ('?': rows that cannot be counted)."""
    lines = []
    for source, c in bronze_manifest.get("by_source", {}).items():
        bronze_q = c["quarantined"]
        total = None if bronze_q is None else bronze_q + rejected.get(source, 0)
        where = "refused whole in bronze" if c["file_quarantined"] else f"{bronze_q} malformed in bronze"
        detail = f"{source}: {_n(total)} of {_n(c['rows_in'])} rows ({where}, {rejected.get(source, 0)} in silver)"
        lines.append((-1 if total is None else total, detail))
    lines.sort(key=lambda line: -line[0])
    return "; ".join(d for total, d in lines[:k] if total != 0) or "none"


def _n(count: int | None) -> str:
    return "?" if count is None else str(count)


def _kept(lake: Lake, dataset: str, ds: str) -> str:
    """What a failed run leaves published for the date."""
    if lake.exists(lake.partition(GOLD, dataset, ds)):
        return f"this batch was not published: {dataset} {ds} keeps its previous bronze, silver and gold"
    return f"nothing was published for {dataset} {ds}"


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


def series_rows(table: pa.Table, contract: Contract, features: list[str], where: str) -> tuple[pa.Table, list[str]]:
    """A time series' silver rows as one row per period: the contract's ``gold.aggregate`` (sum | count |
    mean of the label per period, numeric features summed or averaged alike, text features left out)
    turns event rows into the series; without it, rows that repeat a timestamp are refused, naming the
    first repeats. Returns the rows (sorted by time) and the features kept."""
    from pipelines.forecasting import freq as freqs

    time, how = contract.time, contract.series.get("aggregate")
    frame = table.to_pandas()
    if not how:
        repeated = frame[time][frame[time].duplicated() & frame[time].notna()]
        if len(repeated):
            first = ", ".join(str(t) for t in sorted(set(repeated))[:5])
            raise ContractError(
                f"{where}: {len(repeated)} row(s) repeat a timestamp of {time!r} (first: {first}); a series has one "
                "row per period: declare how rows add up with gold.aggregate (sum | count | mean) in the contract, "
                "or remove the repeats"
            )
        return table, features
    kinds = {r.name: r.type for r in contract.columns}
    numeric = [f for f in features if kinds[f] in ("int", "float")]
    try:
        f = freqs.resolve(frame[time].dropna(), contract.series.get("freq"), where)
    except ValueError as exc:
        raise ContractError(str(exc)) from None
    frame = frame.dropna(subset=[time])
    frame[time] = f.floor(frame[time])
    groups = frame.groupby(time, sort=True)
    label = contract.label
    out = pd.DataFrame({label: groups.size() if how == "count" else getattr(groups[label], how)()})
    for col in numeric:
        out[col] = getattr(groups[col], "sum" if how == "sum" else "mean")()
    out = out.reset_index()
    seconds = out[time].to_numpy().astype("datetime64[s]").astype(np.int64).astype(np.uint64)
    out.insert(0, ROW_ID, mix64(seconds ^ np.uint64(0x5E41E5)))  # one id per period, the same in every run
    types = {ROW_ID: pa.uint64(), time: table.schema.field(time).type, label: pa.float64()}
    types.update({c: pa.float64() for c in numeric})
    arrays = {c: pa.array(out[c].to_numpy()).cast(types[c]) for c in types}
    return pa.table({c: arrays[c] for c in [ROW_ID, time, *numeric, label]}), numeric
