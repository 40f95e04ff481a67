"""Gold: model-ready features, the label, and a split that never changes for a row.

A contract with ``gold: {unlabelled: true}`` (ratings, dimension tables) gets gold without a
label: the features and the split only.

The split comes from a hash of the row id and the seed alone: a row lands in the same split
in every run and on every machine, and each class is cut train/valid/test in the configured
proportions (in expectation: the hash is uniform within every class).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import SplitSettings
from pipelines.constants import GOLD, LABEL, ROW_ID, SILVER, SPLIT, TEST, TRAIN, VALID
from pipelines.features.contracts import Contract, ContractError, mix64
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


def build_gold(lake: Lake, contract: Contract, dataset: str, ds: str, split: SplitSettings, seed: int) -> dict:
    if not contract.label and not contract.unlabelled:
        raise ContractError(
            f"contract {contract.name!r} has no gold.label: add `gold: {{label: {{column: ..., positive: ...}}}}`, "
            "or `gold: {unlabelled: true}` for data without a label"
        )
    silver_manifest = lake.read_manifest(SILVER, dataset, ds)
    features = contract.features
    wanted = [ROW_ID, *features, *([contract.label] if contract.label else [])]
    try:
        silver = lake.read_partition(SILVER, dataset, ds, True, wanted)
    except (KeyError, pa.ArrowInvalid) as exc:
        raise ContractError(f"gold {dataset} {ds}: silver lacks a contract column ({exc}); rerun silver") from None
    ids = silver.column(ROW_ID).to_numpy()
    splits = assign_split(ids, split, seed)
    codes = splits.indices.to_numpy()
    gold = _plain_text(silver.select([ROW_ID, *features]))
    if contract.label:
        label = label_column(silver.column(contract.label), contract.positive)
        gold = gold.append_column(LABEL, label)
        label_np = label.to_numpy(zero_copy_only=False)
        counts = {
            name: {"rows": int((codes == i).sum()), "positives": int(label_np[codes == i].sum())}
            for i, name in enumerate(SPLITS)
        }
    else:
        counts = {name: {"rows": int((codes == i).sum())} for i, name in enumerate(SPLITS)}
    gold = gold.append_column(SPLIT, splits)
    kinds = {r.name: r.type for r in contract.columns}
    return lake.write_partition(
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
            "splits": counts,
            "split_fractions": {TRAIN: split.train, VALID: split.valid, TEST: split.test},
            "seed": seed,
            "silver_content_hash": silver_manifest["content_hash"],
        },
    )
