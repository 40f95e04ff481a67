"""Stable 64-bit row ids from typed Arrow columns (silver's keys, gold's splits), the same in any process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def identity(arr: pa.Array) -> tuple:
    """Chunks read from one Parquet row group share their dictionary buffers: check it once."""
    return (arr.offset, len(arr), *[(b.address, b.size) if b is not None else None for b in arr.buffers()])


def is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def row_ids(table: pa.Table, columns: list[str]) -> np.ndarray:
    """A stable 64-bit id per row from the typed key columns (same values -> same id, in any process)."""
    h = np.full(table.num_rows, 0x9E3779B97F4A7C15, dtype=np.uint64)
    for name in columns:
        col_hash, pos, cache = np.empty(table.num_rows, np.uint64), 0, {}
        for chunk in table.column(name).chunks:
            col_hash[pos : pos + len(chunk)] = _chunk_hash(chunk, cache)
            pos += len(chunk)
        with np.errstate(over="ignore"):
            h = (h ^ col_hash) * np.uint64(0x100000001B3)
    return mix64(h)


_NULL_HASH = np.uint64(0xA5A5A5A5A5A5A5A5)


def _chunk_hash(chunk: pa.Array, cache: dict) -> np.ndarray:
    if pa.types.is_dictionary(chunk.type):
        key = identity(chunk.dictionary)
        if key not in cache:
            values = chunk.dictionary.to_numpy(zero_copy_only=False)
            cache[key] = pd.util.hash_array(values.astype(object)) if len(values) else np.zeros(1, np.uint64)
        value_hash = cache[key]
        idx = chunk.indices.fill_null(0).to_numpy().astype(np.intp)
        out = value_hash[idx]
        if chunk.null_count:
            out[chunk.is_null().to_numpy(zero_copy_only=False)] = _NULL_HASH
        return out
    zero = "" if is_text(chunk.type) else False if pa.types.is_boolean(chunk.type) else 0
    filled = pc.fill_null(chunk, pa.scalar(zero, chunk.type))
    out = pd.util.hash_array(filled.to_numpy(zero_copy_only=False))
    if chunk.null_count:
        out[chunk.is_null().to_numpy(zero_copy_only=False)] = _NULL_HASH
    return out


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits so ids are uniform (used for splits too)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x
