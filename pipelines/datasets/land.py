"""Land a dataset's source file(s), as they are, for one logical date: ``python -m pipelines ingest``.

The files are written into a staging folder and swapped in as ``landing/<name>/ds=<date>/``
(``Lake.publish``), so landing a date again replaces what it held and never adds a second copy,
and a crash leaves the previous landing as it was. Unlike the demo feed, nothing is cut into
demo dates: the whole file is that date's batch, unless asked to split the rows by their own time
column (``land_by_time``, ``ingest --split-by-time``): each day (week, month) of it is then landed
as its own date, its values written back as they came.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import Settings, load_settings
from pipelines.constants import LANDING
from pipelines.datasets import dataset_files
from pipelines.errors import DataError
from pipelines.features.landing import landing_dir
from pipelines.lake import Lake


def landing_names(files: list[Path]) -> list[str]:
    """Names in landing: a folder's relative paths flattened, Parquet's codec suffix dropped
    (``x.parquet.brotli`` is a Parquet file), no leading '.' or '_' (landing skips those as temp files)."""
    root = Path(os.path.commonpath([p.parent for p in files]))
    names = []
    for path in files:
        name = "__".join(path.relative_to(root).parts)
        if ".parquet." in name.lower():
            name = name[: name.lower().index(".parquet.")] + ".parquet"
        names.append(name.lstrip("._") or "data")
    return names


PERIODS = ("day", "week", "month")


class TimeSplitError(DataError, ValueError):
    """The time column to split by is not in the file, or holds values that are not times."""


def _publish(lake: Lake, name: str, ds: str, files: dict[str, bytes]) -> list[str]:
    """Write ``files`` (name -> bytes) as landing/<name>/ds=<ds>/ through a staging folder."""
    stage, final = lake.staging(LANDING, name, ds), landing_dir(name, ds)
    lake.delete_dir(stage)  # what an interrupted attempt left
    for target, data in files.items():
        lake.write_bytes(f"{stage}/{target}", data)
    lake.publish(stage, final)
    return [f"{final}/{n}" for n in files]


def land_source(name: str, ds: str, settings: Settings | None = None) -> list[str]:
    """Copy the dataset's source file(s) into landing for ``ds``; returns the landed paths (lake-relative)."""
    settings = settings or load_settings()
    files = dataset_files(name, settings)
    data = {target: path.read_bytes() for path, target in zip(files, landing_names(files), strict=True)}
    return _publish(Lake(settings.lake_root), name, ds, data)


def land_for_run(dataset: str | None, ds: str, simulate_feed: bool, land_source_file: bool) -> list[str]:
    """The features DAG's ``land`` task: the dataset's own file landed whole first when asked
    (``land_source``), else the demo feed when asked, but only for a bundled dataset: one added
    with ``dataset add`` (its entry says its ``kind``) is never cut into demo dates. Returns
    every landing file of the date. No dataset (the Param left empty): ``features.dataset``."""
    from pipelines import features

    settings = load_settings()
    dataset = features.dataset_of(dataset, settings)
    if land_source_file:
        land_source(dataset, ds, settings)
    demo = simulate_feed and not land_source_file and not settings.dataset(dataset).kind
    return features.land(dataset, ds, simulate=demo, settings=settings)


def time_column(name: str, settings: Settings, wanted: str = "") -> str:
    """The contract name of the column to split by: the one asked for, else the ratings entry's
    ``timestamp``, else the contract's ``gold.time``."""
    from pipelines.features.contracts import ContractError, load_contract

    spec = settings.dataset(name)
    if wanted or spec.columns.get("timestamp"):
        return wanted or spec.columns["timestamp"]
    try:
        time = load_contract(spec.contract or name).time
    except ContractError:
        time = None
    if not time:
        raise TimeSplitError(
            f"dataset {name!r} names no time column (no `columns.timestamp` in its entry, no `gold.time` in its "
            "contract); give one: --split-by-time COLUMN"
        )
    return time


def to_dates(values: pd.Series, column: str, source: str, period: str = "day") -> pd.Series:
    """The date (YYYY-MM-DD, the first day of its week or month) of each time value: Unix seconds
    (milliseconds when over 1e11) or dates/date-times as text; a value that is neither fails, naming it."""
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().mean() >= 0.5:  # a column of Unix times (a stray word is reported below)
        unit = "ms" if numbers.abs().max() > 1e11 else "s"
        when = pd.to_datetime(numbers, unit=unit, utc=True)
    else:
        when = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    bad = when.isna()
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        raise TimeSplitError(
            f"{source}: {len(rows):,} row(s) have no readable time in column {column!r} (first at data row "
            f"{rows[0] + 1}: {values.iloc[rows[0]]!r}); fix them or land the file whole (ingest without --split-by-time)"
        )
    when = when.dt.tz_localize(None).dt.normalize()
    if period == "week":
        when = when - pd.to_timedelta(when.dt.weekday, unit="D")
    elif period == "month":
        when = when.dt.to_period("M").dt.start_time
    return when.dt.strftime("%Y-%m-%d")


def land_by_time(name: str, settings: Settings, column: str = "", period: str = "day") -> dict[str, list[str]]:
    """Land the dataset's source rows by their own time column, one landing date per day (week, month).

    Values are written back as they came (CSV as text, blanks and spellings kept; Parquet in its
    types), each source file split into one file per date. Returns {ds: landed paths}, oldest first.
    """
    from pipelines.features.contracts import camel_snake_case, snake_case

    if period not in PERIODS:
        raise TimeSplitError(f"period must be one of {list(PERIODS)}, got {period!r}")
    wanted = time_column(name, settings, column)
    files = dataset_files(name, settings)
    by_date: dict[str, dict[str, bytes]] = {}
    for path, target in zip(files, landing_names(files), strict=True):
        parquet = target.lower().endswith(".parquet")
        frame = pq.read_table(path).to_pandas() if parquet else _read_text(path)
        found = [c for c in frame.columns if wanted in (c, snake_case(c), camel_snake_case(c))]
        if not found:
            raise TimeSplitError(f"{path}: no column {wanted!r} to split by; its columns: {list(frame.columns)}")
        dates = to_dates(frame[found[0]], found[0], str(path), period)
        target = target[:-3] if target.lower().endswith(".gz") and not parquet else target  # written back plain
        for ds, rows in frame.groupby(dates.to_numpy(), sort=True):
            by_date.setdefault(ds, {})[target] = _encode(rows, parquet)
    lake = Lake(settings.lake_root)
    return {ds: _publish(lake, name, ds, by_date[ds]) for ds in sorted(by_date)}


def _read_text(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise TimeSplitError(
            f"{path}: cannot be split by time ({exc}); land it whole (ingest without --split-by-time)"
        ) from None


def _encode(rows: pd.DataFrame, parquet: bool) -> bytes:
    if parquet:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), sink)
        return sink.getvalue()
    return rows.to_csv(index=False).encode()
