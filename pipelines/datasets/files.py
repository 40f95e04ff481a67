"""Read CSV and Parquet files, or folders of them, into one DataFrame."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa

SUPPORTED = ".csv, .csv.gz, .parquet, .parquet.<codec> (e.g. .parquet.brotli), or a folder of such files"


def _kind(path: Path) -> str | None:
    """'csv', 'parquet' or None, from the file name alone."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".parquet") or ".parquet." in name:
        return "parquet"
    return None


def is_table_file(path: Path) -> bool:
    return _kind(Path(path)) is not None


def table_files(folder: Path) -> list[Path]:
    """CSV/Parquet files under ``folder`` (recursively), sorted by relative path.

    Hidden names (starting with '.') are skipped: they are temp files of writers still at work.
    """
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if path.is_file() and is_table_file(path) and not any(p.startswith(".") for p in rel.parts):
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _read_one(path: Path) -> pd.DataFrame:
    kind = _kind(path)
    if kind is None:
        raise ValueError(f"cannot read {path}: unsupported format; supported: {SUPPORTED}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise ValueError(f"{path} is not a readable {kind.upper()} file: {exc}") from exc


def read_table_files(paths: Iterable[Path]) -> pd.DataFrame:
    """Read each file and stack them in the given order, with a fresh 0..n-1 index."""
    frames = [_read_one(Path(p)) for p in paths]
    if not frames:
        raise ValueError("no files to read")
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def read_table_file(path: Path) -> pd.DataFrame:
    """Read a CSV/Parquet file, or every such file in a folder (sorted by name, concatenated)."""
    path = Path(path)
    if path.is_dir():
        files = table_files(path)
        if not files:
            raise ValueError(f"folder {path} holds no CSV or Parquet file; supported: {SUPPORTED}")
        return read_table_files(files)
    return _read_one(path)
