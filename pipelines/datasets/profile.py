"""Profile a user's CSV or Parquet file: per column, what a contract would need to know.

The sample is read the way bronze reads a landing file (CSV values as text, Parquet in its
own types), and every type is decided by running the contract's own rules over the column's
distinct values: a type the profile reports is a type silver accepts for every sampled row.
Large files are profiled from their first ``DEFAULT_SAMPLE_ROWS`` rows.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.datasets.files import SUPPORTED, is_table_file
from pipelines.errors import DataError
from pipelines.features.bronze import CorruptFileError, read_raw
from pipelines.features.contracts import ContractResult, apply_contract, parse_contract, snake_case
from pipelines.features.rowids import row_ids

DEFAULT_SAMPLE_ROWS = 200_000
NA_VALUES = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "?")  # read as missing (values are trimmed first)
LISTED_MAX = 50  # value counts are kept for columns with at most this many distinct values
TYPE_ORDER = ("bool", "int", "float", "date")  # tried in this order on text; "string" when none fits


class ProfileError(DataError, ValueError):
    """The file cannot be profiled; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class ColumnProfile:
    """What the sample says about one column (values as the contract sees them: trimmed, NA as null)."""

    source: str  # the name in the file
    name: str  # the contract (snake_case) name
    type: str  # int, float, bool, date or string
    rows: int
    nulls: int
    distinct: int  # distinct non-null values
    min: float | int | str | None = None  # numbers; dates as YYYY-MM-DD
    max: float | int | str | None = None
    counts: dict[str, int] | None = None  # text value -> rows, when at most LISTED_MAX distinct values
    has_space: bool = False  # some text value holds whitespace (free text, not an id)
    not_numbers: tuple[str, ...] = ()  # a text column that is numeric but for these few values

    @property
    def non_null(self) -> int:
        return self.rows - self.nulls

    @property
    def unique(self) -> bool:
        """Every row holds a value of its own."""
        return self.rows > 0 and self.nulls == 0 and self.distinct == self.rows


@dataclass(frozen=True)
class TableProfile:
    source: str
    format: str  # csv or parquet
    rows: int  # rows profiled
    truncated: bool  # the file has more rows than were profiled
    columns: tuple[ColumnProfile, ...]
    duplicate_rows: int  # rows identical in every column to an earlier row of the sample
    malformed_lines: int = 0  # CSV lines with the wrong number of fields (bronze quarantines them)
    skipped: tuple[str, ...] = field(default_factory=tuple)  # columns a contract cannot hold, with why
    typed: pa.Table | None = field(default=None, repr=False)  # the sample, typed as profiled

    def repeats(self, names: list[str]) -> int:
        """Sampled rows whose values in these columns repeat an earlier row's."""
        ids = row_ids(self.typed, [snake_case(n) for n in names])
        return len(ids) - len(np.unique(ids))

    def column(self, name: str) -> ColumnProfile | None:
        """By contract name or by the file's own spelling."""
        key = snake_case(name)
        return next((c for c in self.columns if c.name == key), None)


@dataclass(frozen=True)
class Sample:
    table: pa.Table  # as bronze holds it: CSV text, Parquet types (plus bronze's _row_number)
    format: str
    truncated: bool
    malformed_lines: int


def read_sample(paths: list[Path], max_rows: int = DEFAULT_SAMPLE_ROWS) -> Sample:
    """The first ``max_rows`` rows of the file(s), read as bronze would read them."""
    if max_rows < 1:
        raise ProfileError(f"the sample needs at least one row, got max_rows={max_rows}")
    tables, formats, truncated, malformed = [], set(), False, 0
    for path in paths:
        left = max_rows - sum(t.num_rows for t in tables)
        if left <= 0:
            truncated = True
            break
        if not is_table_file(path):
            raise ProfileError(f"{path} is not a supported file (supported: {SUPPORTED})")
        if ".parquet" in path.name.lower():
            table, more = _parquet_head(path, left)
            formats.add("parquet")
        else:
            table, more, bad = _csv_head(path, left)
            malformed += bad
            formats.add("csv")
        tables.append(table)
        truncated = truncated or more
    if not tables:
        raise ProfileError("no file to profile")
    try:
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ProfileError(
            f"the files of this source do not share column types ({exc}); give --source one of them"
        ) from None
    if table.num_rows == 0:
        raise ProfileError(f"{paths[0]} holds no data rows: a contract is drafted from the data")
    return Sample(table, "/".join(sorted(formats)), truncated, malformed)


def _csv_head(path: Path, max_rows: int) -> tuple[pa.Table, bool, int]:
    """Header plus up to ``max_rows`` lines, parsed by bronze's CSV reader."""
    lines, more = [], False
    with (gzip.open if path.name.lower().endswith(".gz") else open)(path, "rb") as fh:
        for line in fh:
            if len(lines) > max_rows:
                more = True
                break
            lines.append(line)
    try:  # bronze's reader: the same decoding (UTF-8, a BOM is fine), the same errors
        table, bad = read_raw(b"".join(lines), "sample.csv")
    except CorruptFileError as exc:
        raise ProfileError(f"{path}: {str(exc).removeprefix('sample.csv: ')}") from None
    return table, more, len(bad)


def _parquet_head(path: Path, max_rows: int) -> tuple[pa.Table, bool]:
    try:
        pf = pq.ParquetFile(path)
        first = next(pf.iter_batches(batch_size=max_rows), None)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ProfileError(f"{path} is not a readable Parquet file ({exc})") from None
    table = pa.Table.from_batches([first]) if first is not None else pf.schema_arrow.empty_table()
    return table, pf.metadata.num_rows > table.num_rows


def profile_table(sample: Sample, source: str = "") -> TableProfile:
    """Profile every column bronze keeps (names starting with '_' are bronze's own and skipped)."""
    table = sample.table
    names = [c for c in table.column_names if not c.startswith("_")]
    seen: dict[str, str] = {}
    for col in names:
        key = snake_case(col)
        if not key:
            raise ProfileError(f"column {col!r} has no letter or digit in its name; rename it in the file")
        if key in seen:
            raise ProfileError(
                f"columns {seen[key]!r} and {col!r} both become {key!r} in a contract (names are matched "
                "in snake_case); rename one of them in the file"
            )
        seen[key] = col
    columns, typed, skipped = [], {}, []
    for col in names:
        arrow_type = table.schema.field(col).type
        if pa.types.is_nested(arrow_type) or pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
            skipped.append(f"{col} ({arrow_type}: not a flat column; silver drops it)")
            continue
        profile, values = _profile_column(col, table.column(col))
        columns.append(profile)
        typed[profile.name] = values
    typed_table = pa.table(typed)
    profile = TableProfile(
        source=source,
        format=sample.format,
        rows=table.num_rows,
        truncated=sample.truncated,
        columns=tuple(columns),
        duplicate_rows=0,
        malformed_lines=sample.malformed_lines,
        skipped=tuple(skipped),
        typed=typed_table,
    )
    return replace(profile, duplicate_rows=profile.repeats(typed_table.column_names))


def _apply(name: str, values: pa.ChunkedArray | pa.Array, rule: dict) -> ContractResult:
    """The contract's own check of one column under one rule."""
    spec = {"name": "profile", "na_values": list(NA_VALUES), "key": [], "columns": {name: rule}}
    return apply_contract(parse_contract(spec), pa.table({name: values}))


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _profile_column(source: str, column: pa.ChunkedArray) -> tuple[ColumnProfile, pa.ChunkedArray]:
    """The column's profile and its values typed as the profile says."""
    name = snake_case(source)
    string_rule = {"type": "string", "nullable": True}
    kind, not_numbers, counts = _own_type(column), (), None
    if kind is None:  # text: the distinct values decide, as the contract reads them (trimmed, NA as null)
        text = _plain(_apply(name, column, string_rule).typed.column(name))
        counts = _counts(pc.value_counts(text.combine_chunks()))
        kind, not_numbers = _text_type(name, pa.array(list(counts), pa.string()))
    typed = _plain(_apply(name, column, {"type": kind, "nullable": True}).typed.column(name))
    if counts is None:  # a typed source: count its values, spelled as the contract spells them as text
        values = pc.value_counts(typed.combine_chunks())
        spelled = _apply(name, values.field("values"), string_rule).typed.column(name)
        counts = _counts(
            pa.StructArray.from_arrays([_plain(spelled).combine_chunks(), values.field("counts")], ["values", "counts"])
        )
    lo = hi = None
    if kind in ("int", "float", "date") and typed.null_count < len(typed):
        bounds = pc.min_max(typed).as_py()
        lo, hi = (str(v) if kind == "date" else v for v in (bounds["min"], bounds["max"]))
    distinct = pa.array(list(counts), pa.string())
    profile = ColumnProfile(
        source=source,
        name=name,
        type=kind,
        rows=len(typed),
        nulls=typed.null_count,
        distinct=len(counts),
        min=lo,
        max=hi,
        counts=dict(sorted(counts.items())) if len(counts) <= LISTED_MAX else None,
        has_space=bool(len(distinct)) and pc.any(pc.match_substring_regex(distinct, r"\s")).as_py(),
        not_numbers=not_numbers,
    )
    return profile, typed


def _counts(value_counts: pa.StructArray) -> dict[str, int]:
    """{value: rows} of pc.value_counts output, nulls left out."""
    return {v["values"]: v["counts"] for v in value_counts.to_pylist() if v["values"] is not None}


def _own_type(column: pa.ChunkedArray) -> str | None:
    """The contract type a typed source (Parquet, or bronze's inferred first CSV column) brings; None for text."""
    arrow_type = column.type
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        # The contract's date type keeps the day: a time of day would be cut off, so such a column stays text.
        midnight = pc.all(pc.equal(pc.floor_temporal(column, unit="day"), column)).as_py() is not False
        return "date" if midnight else "string"
    return None


def _text_type(name: str, distinct: pa.Array) -> tuple[str, tuple[str, ...]]:
    """The type of text values, and (for text that is numeric but for a few values) those values."""
    if len(distinct) == 0:
        return "string", ()
    for kind in TYPE_ORDER:
        result = _apply(name, distinct, {"type": kind})
        if not result.ok.all():
            continue
        values = result.typed.column(name)
        if kind == "bool" and pc.count_distinct(values).as_py() != 2:
            continue  # one spelling of true (or false) alone is a constant, not a yes/no column
        if kind == "float" and pc.all(pc.match_substring_regex(distinct, r"^[+-]?[0-9]+$")).as_py():
            return "string", ()  # whole numbers too long for int64 (e.g. 20-digit ids): exact as text
        return kind, ()
    result = _apply(name, distinct, {"type": "float"})
    bad = ~result.ok
    if len(distinct) >= 20 and bad.sum() <= 0.05 * len(distinct):
        return "string", tuple(distinct.filter(pa.array(bad)).to_pylist()[:5])
    return "string", ()
