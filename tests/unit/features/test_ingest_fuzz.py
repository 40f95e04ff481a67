"""Property-based fuzzing of landing files through the real bronze -> silver -> gold functions.

Whatever lands next to a good file (random bytes, a valid CSV in another encoding or with
mutated lines, a Parquet file of random schema), the ingest raises nothing, a file refused
whole is named in its reason, the good file's rows all reach gold, and every row of the bad
file is accounted for: gold + quarantined == the rows it holds, counted independently (the
standard library's csv module; Parquet's own row count) wherever they can be counted.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import gzip
import io
import os
import sys
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.config import SplitSettings
from pipelines.features import bronze, publish
from pipelines.features.contracts import parse_contract
from pipelines.features.gold import build_gold
from pipelines.features.silver import build_silver
from pipelines.lake import Lake
from tests.unit.features.helpers import DS, SPEC

CONTRACT = parse_contract(SPEC)
FOLDER = f"landing/people/ds={DS}"
GOOD_FILE = f"{FOLDER}/good.csv"
GOOD = "age,city,score,grade\n" + "".join(f"{i},good{i},{i / 2},{'AB'[i % 2]}\n" for i in range(20))
# Rows of the files to mutate; their cities differ from the good file's, so none is a duplicate of a good row.
ROWS = [f"{i},city{i % 7},{i / 4},{'ABab'[i % 4]}" for i in range(40)]
FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # a lake per example: in memory when it can
csv.field_size_limit(sys.maxsize)


def _ingest(name: str, data: bytes) -> tuple[dict, dict]:
    """Land the good file and ``name`` on a fresh lake, run the layers; (its accounting, the good file's)."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        lake = Lake(f"file://{tmp}")
        source = f"{FOLDER}/{name}"
        lake.write_bytes(GOOD_FILE, GOOD.encode())
        lake.write_bytes(source, data)
        parts = [bronze.ingest_file(lake, "people", DS, f, "fuzz", CONTRACT) for f in (GOOD_FILE, source)]
        bronze.commit_bronze(lake, "people", DS, parts)
        build_silver(lake, CONTRACT, "people", DS, 1.0)
        build_gold(lake, CONTRACT, "people", DS, SplitSettings(0.7, 0.15, 0.15), seed=1)
        rows = publish.rows_by_file(lake, "people", DS)
    return rows[source], rows[GOOD_FILE]


def _records(data: bytes) -> int | None:
    """Data records of a UTF-8 CSV by the csv module (header excluded); None when it is not UTF-8 text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    return max(len(records) - 1, 0)


def _check(name: str, data: bytes, rows_in: int | None) -> dict:
    got, good = _ingest(name, data)
    assert good == {"rows_in": 20, "gold": 20, "quarantined": 0, "refused": None}  # never blocked
    if got["refused"] is not None:
        assert got["refused"].startswith(f"{FOLDER}/{name}: ") and got["gold"] == 0
    if rows_in is not None and got["quarantined"] is not None:
        if got["refused"] and "no header line" in got["refused"]:
            rows_in += 1  # its first line was data, not the header the count skipped
        assert got["gold"] + got["quarantined"] == rows_in, got
    return got


# ---- random bytes -----------------------------------------------------------------------------------
@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".csv", ".csv.gz", ".parquet"]))
def test_random_bytes_are_quarantined_or_accounted_for(data, suffix):
    _check(f"random{suffix}", data, _records(data) if suffix == ".csv" else None)


# ---- a valid CSV, mutated line by line, in some encoding ---------------------------------------------
MUTATIONS = {
    "extra field": lambda line, draw: line + ",extra",
    "missing field": lambda line, draw: line.rsplit(",", 1)[0],
    "quote": lambda line, draw: _insert(line, '"', draw),
    "nul": lambda line, draw: _insert(line, "\x00", draw),
    "long": lambda line, draw: _insert(line, "x" * draw(st.integers(1000, 200_000)), draw),
    "text": lambda line, draw: _insert(line, draw(st.text(max_size=20)), draw),
    "blank": lambda line, draw: "",
    "spaces": lambda line, draw: "  ",
    "repeat": lambda line, draw: line + "\n" + line,
}


def _insert(line: str, text: str, draw) -> str:
    at = draw(st.integers(0, len(line)))
    return line[:at] + text + line[at:]


@st.composite
def mutated_csv(draw) -> str:
    header = draw(st.sampled_from([["age,city,score,grade"], ["Grade,SCORE,City,Age"], []]))  # any order, or none
    lines = [*header, *draw(st.lists(st.sampled_from(ROWS), min_size=1, max_size=30, unique=True))]
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = MUTATIONS[draw(st.sampled_from(sorted(MUTATIONS)))](lines[at], draw)
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines)))
    return "".join(line + end for line, end in zip(lines, endings, strict=True))


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-32", "utf-16-le", "utf-16-be", "latin-1", "cp1252"]


@FUZZ
@given(
    text=mutated_csv(),
    encoding=st.sampled_from(ENCODINGS),
    gz=st.booleans(),
    cut=st.none() | st.integers(0, 5000),
)
def test_mutated_csv_in_any_encoding_gzipped_or_cut_is_quarantined_or_accounted_for(text, encoding, gz, cut):
    data = text.encode(encoding, errors="replace")
    file = gzip.compress(data, mtime=0) if gz else data
    landed = file[:cut]
    whole = len(landed) == len(file)
    if encoding in ("utf-16", "utf-32"):  # a byte-order mark: read like UTF-8, when it came whole
        expected = _records(text.encode()) if whole else None
    elif gz and not whole:
        expected = None
    else:
        plain = landed if not gz else data
        expected = _records(plain) if encoding.startswith("utf-8") or data.isascii() else None
    got = _check("mutated.csv.gz" if gz else "mutated.csv", landed, expected)
    if encoding in ("utf-16-le", "utf-16-be") and landed and not gz:
        assert got["refused"] and "without a byte-order mark" in got["refused"]


# ---- Parquet of a random schema ------------------------------------------------------------------------
TYPES = {
    "int64": (pa.int64(), lambda i: i),
    "int8": (pa.int8(), lambda i: i % 100),
    "uint32": (pa.uint32(), lambda i: abs(i)),
    "float64": (pa.float64(), lambda i: i / 3),
    "float16": (pa.float16(), None),
    "string": (pa.string(), str),
    "large_string": (pa.large_string(), lambda i: f" {i} "),
    "dictionary": (pa.dictionary(pa.int32(), pa.string()), lambda i: "AB"[i % 2]),
    "bool": (pa.bool_(), lambda i: i % 2 == 0),
    "date": (pa.date32(), lambda i: datetime.date(2024, 1, 1) + datetime.timedelta(days=i)),
    "timestamp": (pa.timestamp("ms", tz="UTC"), lambda i: datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)),
    "decimal": (pa.decimal128(9, 2), lambda i: decimal.Decimal(i) / 4),
    "binary": (pa.binary(), lambda i: bytes([i % 256])),
    "list": (pa.list_(pa.int64()), lambda i: [i]),
    "struct": (pa.struct([("x", pa.int64())]), lambda i: {"x": i}),
    "null": (pa.null(), lambda i: None),
}


@st.composite
def random_parquet(draw) -> tuple[bytes, int]:
    names = draw(
        st.lists(st.sampled_from(["age", "Age", "city", "score", "grade", "note", "_raw"]), min_size=1, unique=True)
    )
    values = draw(st.lists(st.none() | st.integers(-200, 200), max_size=40))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(sorted(TYPES)))
        arrow_type, make = TYPES[kind]
        if make is None:  # float16 takes numpy halves
            columns[name] = pa.array([None if v is None else v / 2 for v in values], pa.float64()).cast(arrow_type)
        else:
            columns[name] = pa.array([None if v is None else make(v) for v in values], arrow_type)
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue(), len(values)


@FUZZ
@given(parquet=random_parquet())
def test_parquet_of_any_schema_is_quarantined_or_accounted_for(parquet):
    data, rows = parquet
    got = _check("random.parquet", data, rows)
    assert got["quarantined"] is not None  # a whole Parquet file can always be counted
