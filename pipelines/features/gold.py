"""Gold: model-ready features, the label, and a split that never changes for a row.

A contract with ``gold: {unlabelled: true}`` (ratings, dimension tables) gets gold without a
label: the features and the split only.

The split comes from a hash of the row id and the seed alone: a row lands in the same split
in every run and on every machine, and each class is cut train/valid/test in the configured
proportions (in expectation: the hash is uniform within every class).

Gold is the last step of a date: once written, it publishes itself together with the silver
and bronze it was built from (pipelines/features/publish.py).

A time series (a contract with ``gold.time``) is different: gold is ordered by time, and the
split follows time (the oldest labelled rows train, the newest test), since a shuffled split
would let a model learn from the future. Rows without a label (a plan: future dates with
their planned drivers) keep a null split. A label without a ``positive`` class is numeric
and kept as its value; a ``multiclass: true`` label is kept as its class name (text).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import SplitSettings
from pipelines.constants import GOLD, LABEL, ROW_ID, SILVER, SPLIT, TEST, TRAIN, VALID
from pipelines.features.contracts import Contract, ContractError
from pipelines.features.publish import publish_chain
from pipelines.features.rowids import mix64
from pipelines.features.silver import series_rows
from pipelines.lake import Lake

SPLITS = [TRAIN, VALID, TEST]


def assign_split(ids: np.ndarray, split: SplitSettings, seed: int) -> pa.DictionaryArray:
    """train/valid/test from the row id and seed only."""
    u = (mix64(ids ^ np.uint64(seed)) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    code = np.where(u < split.train, 0, np.where(u < split.train + split.valid, 1, 2)).astype(np.int8)
    return pa.DictionaryArray.from_arrays(pa.array(code), pa.array(SPLITS))


def label_column(column: pa.ChunkedArray, positive: str) -> pa.Array:
    """1 where the label column equals the positive class, else 0 (computed per distinct value)."""
    out = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            hit = pc.equal(chunk.dictionary.cast(pa.string()), positive).take(chunk.indices)
        else:
            hit = pc.equal(chunk.cast(pa.string()), positive)
        out.append(pc.cast(hit, pa.int8()))
    return pa.chunked_array(out, pa.int8()).combine_chunks() if out else pa.array([], pa.int8())


def _plain_text(table: pa.Table) -> pa.Table:
    """Dictionary-encoded text columns as plain strings: gold is what models and people read, and
    pandas turns dictionaries into ``category``, which MLflow's signature checks refuse as input for
    a string column. (Parquet still stores them dictionary-encoded on disk.)"""
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
    return table


def time_split(labelled: np.ndarray, split: SplitSettings) -> pa.DictionaryArray:
    """train/valid/test in time order over the labelled rows (rows already sorted by time); null when unlabelled."""
    n = int(labelled.sum())
    rank = np.cumsum(labelled) - 1  # position among the labelled rows
    cut_train, cut_valid = round(n * split.train), round(n * (split.train + split.valid))
    code = np.where(rank < cut_train, 0, np.where(rank < cut_valid, 1, 2)).astype(np.int8)
    return pa.DictionaryArray.from_arrays(pa.array(code, mask=~labelled), pa.array(SPLITS))


def build_gold(lake: Lake, contract: Contract, dataset: str, ds: str, split: SplitSettings, seed: int) -> dict:
    if not contract.label and not contract.unlabelled:
        raise ContractError(
            f"contract {contract.name!r} has no gold.label: add `gold: {{label: {{column: ..., positive: ...}}}}`, "
            "or `gold: {unlabelled: true}` for data without a label"
        )
    staged = lake.has_staged(SILVER, dataset, ds)
    silver_manifest = lake.read_manifest(SILVER, dataset, ds, staged)
    features = contract.features
    time = [contract.time] if contract.time else []
    wanted = [ROW_ID, *time, *features, *([contract.label] if contract.label else [])]
    try:
        silver = lake.read_partition(SILVER, dataset, ds, True, wanted, staged)
    except (KeyError, pa.ArrowInvalid) as exc:
        raise ContractError(f"gold {dataset} {ds}: silver lacks a contract column ({exc}); rerun silver") from None
    if contract.time:
        silver, features = series_rows(silver, contract, features, f"gold {dataset} {ds}")
        silver = silver.sort_by([(contract.time, "ascending")])
    ids = silver.column(ROW_ID).to_numpy()
    gold = _plain_text(silver.select([ROW_ID, *time, *features]))
    numeric_label = contract.label is not None and contract.positive is None and not contract.multiclass
    if contract.label:
        if contract.multiclass:  # the class as text: training codes the classes it finds over every partition
            label = pc.cast(silver.column(contract.label), pa.string()).combine_chunks()
        elif numeric_label:
            label = pc.cast(silver.column(contract.label), pa.float64()).combine_chunks()
        else:
            label = label_column(silver.column(contract.label), contract.positive)
        gold = gold.append_column(LABEL, label)
        label_np = label.to_numpy(zero_copy_only=False)
        labelled = ~_isnull(label_np)
    else:
        labelled = np.ones(len(ids), dtype=bool)
    splits = time_split(labelled, split) if contract.time else assign_split(ids, split, seed)
    gold = gold.append_column(SPLIT, splits)

    codes = splits.indices.to_numpy(zero_copy_only=False)
    counts = {}
    for i, name in enumerate(SPLITS):
        rows = labelled & (codes == i)
        counts[name] = {"rows": int(rows.sum())}
        if contract.multiclass:
            values, n = np.unique(label_np[rows].astype(str), return_counts=True)
            counts[name]["classes"] = {str(v): int(c) for v, c in zip(values, n, strict=True)}
        elif contract.label and not numeric_label:
            counts[name]["positives"] = int(label_np[rows].sum())
    kinds = {r.name: r.type for r in contract.columns}
    extra = {}
    if contract.time:
        times = silver.column(contract.time)
        extra = {
            "time": contract.time,
            "time_range": [str(pc.min(times).as_py()), str(pc.max(times).as_py())],
            "unlabelled_rows": int((~labelled).sum()),
            "series": contract.series,
        }
    manifest = lake.write_partition(
        GOLD,
        dataset,
        ds,
        gold,
        {
            "features": features,
            "categorical": [f for f in features if kinds[f] in ("string", "bool")],
            "numeric": [f for f in features if kinds[f] in ("int", "float")],
            "dtypes": {f.name: str(f.type) for f in gold.schema},
            "label": LABEL if contract.label else None,
            "label_source": {"column": contract.label, "positive": contract.positive} if contract.label else None,
            "label_kind": _label_kind(contract) if contract.label else None,
            "splits": counts,
            "split_fractions": {TRAIN: split.train, VALID: split.valid, TEST: split.test},
            "split_by": "time" if contract.time else "row hash",
            **extra,
            "seed": seed,
            "silver_content_hash": silver_manifest["content_hash"],
        },
        staged=True,
    )
    publish_chain(lake, dataset, ds, silver_manifest, staged)
    return manifest


def _label_kind(contract: Contract) -> str:
    """binary (a positive class), multiclass (every value a class) or numeric (the value itself)."""
    if contract.multiclass:
        return "multiclass"
    return "binary" if contract.positive is not None else "numeric"


def _isnull(values: np.ndarray) -> np.ndarray:
    """Null mask of a numpy array converted from Arrow (NaN for floats, None for objects)."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.array([v is None for v in values], dtype=bool)
    return np.zeros(len(values), dtype=bool)
