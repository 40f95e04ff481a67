"""Bronze: each landing file as it came (CSV values as text, Parquet in its own types) plus ingest metadata.

One call per landing file (the DAG maps over them). A malformed CSV line goes to
``quarantine/bronze`` with its reason. A file that cannot be taken in at all (not UTF-8 text,
no header line, columns that do not fit the dataset's contract, corrupt Parquet or gzip, ...)
goes there as one record naming the file and why, with its rows counted where they can be.
Either way the other files go through: a bad file is a data problem of its own, never a
failure of the task (only an I/O error, which a retry may cure, fails it). Parts are written
to staging and committed together by ``commit_bronze``; gold publishes them with silver and
gold (pipelines/features/publish.py), so a rerun replaces the partition and a killed or
failed run leaves nothing half-written in it.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import re
import zlib
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
    ROW_ID,
    ROW_NUMBER,
    SOURCE_FILE,
)
from pipelines.errors import DataError
from pipelines.features.contracts import Contract, ContractError, match_columns, snake_case
from pipelines.lake import Lake

QUARANTINE_BRONZE = f"{QUARANTINE}/{BRONZE}"
QUARANTINE_SCHEMA = pa.schema(
    [(SOURCE_FILE, pa.string()), (ROW_NUMBER, pa.int64()), (REASON, pa.string()), (RAW, pa.string())]
)
RESERVED_COLUMNS = {INGESTED_AT, SOURCE_FILE, BATCH_ID, ROW_NUMBER, ROW_ID, REASON, RAW}
_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_NEWLINE = re.compile(rb"\r\n|\r|\n")
_NUMBER = re.compile(r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$")
_READABLE = "not a readable CSV file"
_NUL = "NUL bytes (binary data, or UTF-16/32 text without a byte-order mark); land UTF-8 CSV or Parquet files"


class CorruptFileError(DataError, ValueError):
    """A landing file that cannot be taken in at all; ``rows``: its data rows, when they can be counted."""

    def __init__(self, message: str, rows: int | None = None):
        super().__init__(message)
        self.rows = rows


def read_raw(data: bytes, name: str, contract: Contract | None = None) -> tuple[pa.Table, list[dict]]:
    """Parse a raw file into all-string columns (CSV) or its own types (Parquet) with 1-based row
    numbers; bad lines are returned apart. With a contract, a file whose columns do not fit it is
    refused whole (CorruptFileError, as for any file that cannot be read)."""
    lower = name.lower()
    if lower.endswith(".parquet"):
        table, numbers, bad = _read_parquet(data, name), None, []
    elif lower.endswith((".csv", ".csv.gz")):
        table, numbers, bad = _read_csv(_gunzip(data, name) if lower.endswith(".gz") else data, name)
    else:
        raise CorruptFileError(f"{name}: unsupported file type; land .csv, .csv.gz or .parquet files")
    _check_columns(table, len(bad), name, contract, header_line=numbers is not None)
    if numbers is None:
        numbers = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return table.append_column(ROW_NUMBER, pa.array(numbers)), bad


def _gunzip(data: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # in-memory bytes: a bad stream, not an I/O failure
        raise CorruptFileError(f"{name}: not a readable gzip file ({exc}); land the whole file again") from None


def _read_csv(data: bytes, name: str) -> tuple[pa.Table, np.ndarray, list[dict]]:
    """Rows as text and their numbers (data lines, the header excluded), and the malformed lines apart."""
    data = _utf8(data, name)
    header = _header(data, name)
    bad: list[dict] = []
    table = _parse(data, header, bad, name)
    # Row numbers count records (header and empty lines excluded); skipped lines keep their own numbers.
    numbers = np.arange(1, table.num_rows + len(bad) + 1, dtype=np.int64)
    if bad:
        numbers = numbers[~np.isin(numbers, np.fromiter((b[ROW_NUMBER] for b in bad), np.int64))]
    return table, numbers, bad


def _utf8(data: bytes, name: str) -> bytes:
    """The file as UTF-8: UTF-16/32 with a byte-order mark re-encoded; anything else must be UTF-8 already."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec).encode()
            except UnicodeDecodeError as exc:
                raise CorruptFileError(
                    f"{name}: {_READABLE}: it starts with a {codec.upper()} byte-order mark but is not "
                    f"{codec.upper()} text ({exc.reason} at byte {exc.start}); re-save it as UTF-8"
                ) from None
    try:
        data.decode()  # pyarrow would only say "invalid UTF8 data": find where, to say so
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"byte 0x{data[exc.start]:02x} on line {line}"
        if b"\x00" in data:
            raise CorruptFileError(f"{name}: {_READABLE}: {where} is not UTF-8, and it holds {_NUL}") from None
        raise CorruptFileError(
            f"{name}: {_READABLE}: not UTF-8 text ({where}), probably a legacy encoding such as "
            "Latin-1 or Windows-1252; re-save it as UTF-8",
            rows=_count_rows(data.decode(errors="replace").encode(), name),
        ) from None
    return data


def _count_rows(data: bytes, name: str) -> int | None:
    """Data rows of a CSV file (valid UTF-8) whose values cannot be taken in, or None when it cannot be parsed."""
    try:
        table, _, bad = _read_csv(data, name)
    except CorruptFileError:
        return None
    return table.num_rows + len(bad)


def _header(data: bytes, name: str) -> list[str]:
    """Column names from the first non-empty line, read by the same parser as the rows."""
    start = 0
    while (m := _NEWLINE.search(data, start)) and m.start() == start:
        start = m.end()  # the parser skips empty lines too
    line = data[start : m.start() if m else len(data)]
    if not line.removeprefix(codecs.BOM_UTF8).strip():
        raise CorruptFileError(
            f"{name}: empty file, no header line; land it again with its header and rows, or remove it"
        )
    if b"\x00" in line:
        raise CorruptFileError(f"{name}: {_READABLE}: its first line holds {_NUL}")
    try:
        names = pacsv.read_csv(
            io.BytesIO(line + b"\n"), read_options=pacsv.ReadOptions(use_threads=False, block_size=len(line) + 2)
        ).column_names
    except pa.ArrowInvalid:
        raise CorruptFileError(
            f"{name}: {_READABLE}: its header line is not CSV (an unclosed quote?): {_clip(line.decode())}"
        ) from None
    if not any(n.strip() for n in names):
        raise CorruptFileError(f"{name}: {_READABLE}: its first line holds no column names")
    return names


def _parse(data: bytes, header: list[str], bad: list[dict], name: str) -> pa.Table:
    def on_invalid(row) -> str:
        reason = f"malformed CSV line: expected {row.expected_columns} fields, found {row.actual_columns}"
        if "\n" in row.text or "\r" in row.text:
            reason += '; the record runs over several lines: a quote (") left open?'
        bad.append({ROW_NUMBER: (row.number or 0) - 1, REASON: reason, RAW: row.text})
        return "skip"

    block_size = pacsv.ReadOptions().block_size
    while True:
        try:
            return pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(use_threads=False, block_size=block_size),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={h: pa.string() for h in header}, strings_can_be_null=False, null_values=[]
                ),
            )
        except pa.ArrowInvalid as exc:
            if "straddling" not in str(exc) or block_size >= len(data):
                raise CorruptFileError(f"{name}: {_READABLE} ({exc})") from None
            bad.clear()  # a line longer than a block: read the file as one block
            block_size = min(len(data) + 1, 2**31 - 1)


def _read_parquet(data: bytes, name: str) -> pa.Table:
    """Parquet in its own types (text columns dictionary-encoded: the same values, encoded once)."""
    try:
        text = [f.name for f in pq.read_schema(pa.BufferReader(data)) if pa.types.is_string(f.type)]
        return pq.read_table(pa.BufferReader(data), read_dictionary=text)
    except (pa.ArrowException, OSError) as exc:  # in-memory bytes: a bad file, not an I/O failure
        raise CorruptFileError(
            f"{name}: corrupt Parquet file ({exc}); land the whole file again", _parquet_rows(data)
        ) from None


def _parquet_rows(data: bytes) -> int | None:
    try:
        return pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
    except (pa.ArrowException, OSError):
        return None


def _check_columns(table: pa.Table, bad: int, name: str, contract: Contract | None, header_line: bool) -> None:
    """Refuse a file whose columns cannot be told apart, or do not fit the contract, or cannot be read as text."""
    rows, names = table.num_rows + bad, table.column_names
    if contract is not None and header_line and _looks_like_values(names, contract):
        raise CorruptFileError(
            f"{name}: no header line: its first line holds values ({_clip(','.join(names))}), not column "
            f"names; add a header line naming the columns ({','.join(contract.column_names)}) at the top",
            rows + 1,
        )
    twice = sorted(n for n, k in Counter(names).items() if k > 1)
    if twice:
        raise CorruptFileError(
            f"{name}: column name(s) {twice} appear more than once; give each column its own name", rows
        )
    reserved = sorted(RESERVED_COLUMNS & set(names))
    if reserved:
        raise CorruptFileError(f"{name}: column name(s) {reserved} are the platform's own; rename them", rows)
    if contract is not None:
        try:
            match_columns(contract, names)
        except ContractError as exc:
            raise CorruptFileError(f"{name}: {exc}", rows) from None
    for field in table.schema:
        if not _plain(field.type):
            try:
                pc.cast(table.column(field.name), pa.string())
            except pa.ArrowException:
                raise CorruptFileError(
                    f"{name}: column {field.name!r} holds {field.type}, which cannot be read as text (nested or "
                    "binary data); flatten it, or leave it out of the file",
                    rows,
                ) from None


def _looks_like_values(names: list[str], contract: Contract) -> bool:
    """A first line that names no contract column and holds a number is a data line, not a header."""
    known = set(contract.column_names)
    return not any(snake_case(n) in known for n in names) and any(_NUMBER.match(n) for n in names)


def _plain(t: pa.DataType) -> bool:
    """Types every step reads directly (text, numbers, booleans, dates, times)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    checks = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_floating)
    checks += (pa.types.is_boolean, pa.types.is_date, pa.types.is_timestamp, pa.types.is_decimal, pa.types.is_null)
    return any(check(t) for check in checks)


def _clip(text: str, n: int = 120) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


def _constant_text(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string()))


def part_name(source: str) -> str:
    stem = source.rsplit("/", 1)[-1]
    return f"part-{stem.split('.')[0]}-{hashlib.sha256(source.encode()).hexdigest()[:8]}.parquet"


def ingest_file(
    lake: Lake, dataset: str, ds: str, source: str, batch_id: str, contract: Contract | None = None
) -> dict:
    """Land one raw file in bronze staging; returns a small manifest for XCom.

    With the dataset's contract, a file whose columns do not fit it is quarantined whole here,
    instead of failing silver for the whole batch.
    """
    stage = lake.staging(BRONZE, dataset, ds)
    qstage = lake.staging(QUARANTINE_BRONZE, dataset, ds)
    name = part_name(source)
    now = datetime.now(UTC)
    data = lake.read_bytes(source)  # an I/O error here fails the task, and its retry reads again
    try:
        table, bad = read_raw(data, source, contract)
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
            "file_rows": exc.rows,
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
        "file_rows": None,
    }


def commit_bronze(lake: Lake, dataset: str, ds: str, parts: list[dict]) -> dict:
    """Finish the staged parts of this run (and only those) as the bronze partition, with its manifest.

    Gold publishes it (pipelines/features/publish.py). ``rows_in`` counts the rows of the files
    read; the rows of files quarantined whole are in ``rows_in_quarantined_files`` (those that
    can be counted) and, per landing file, in ``by_source``.
    """
    rows_in = sum(p["rows_in"] or 0 for p in parts)
    rows = sum(p["rows"] for p in parts)
    quarantined = sum(p["quarantined"] for p in parts)
    if rows_in != rows + quarantined:
        raise RuntimeError(f"bronze {dataset} {ds}: {rows_in} rows in != {rows} kept + {quarantined} quarantined")
    whole = [p for p in parts if p["file_quarantined"]]
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
        "quarantined_files": {p["source"]: p["file_quarantined"] for p in whole},
        "rows_in_quarantined_files": sum(p["file_rows"] or 0 for p in whole),
        "by_source": {
            p["source"]: {
                "rows_in": p["file_rows"] if p["file_quarantined"] else p["rows_in"],
                "quarantined": p["file_rows"] if p["file_quarantined"] else p["quarantined"],
                "file_quarantined": bool(p["file_quarantined"]),
            }
            for p in parts
        },
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
    qfiles = {p["quarantine"]: {"source": p["source"], "rows": p["quarantined"]} for p in parts if p["quarantine"]}
    qmanifest = {
        "layer": QUARANTINE_BRONZE,
        "dataset": dataset,
        "ds": ds,
        "rows": quarantined,
        "files": qfiles,
        "quarantined_files": manifest["quarantined_files"],
    }
    # The quarantine first: a staged bronze manifest is what tells silver that the commit finished.
    lake.write_json(f"{qstage}/{MANIFEST_FILE}", qmanifest)
    lake.write_json(f"{stage}/{MANIFEST_FILE}", manifest)
    return manifest
