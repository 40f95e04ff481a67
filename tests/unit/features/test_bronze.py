import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.constants import BRONZE, RAW, REASON, ROW_NUMBER, SOURCE_FILE
from pipelines.errors import DataError
from pipelines.features import bronze, publish
from pipelines.features.bronze import QUARANTINE_BRONZE, read_raw
from tests.unit.features.helpers import DS, land_csv


def test_csv_values_stay_text_and_rows_are_numbered():
    table, bad = read_raw(b"age,city\n007, Paris \n42,\n", "x.csv")
    assert bad == []
    assert table.column("age").to_pylist() == ["007", "42"]
    assert table.column("city").to_pylist() == [" Paris ", ""]  # as it came: no trimming, no nulls
    assert table.column(ROW_NUMBER).to_pylist() == [1, 2]


def test_malformed_csv_line_is_set_apart_with_reason_and_raw_text():
    table, bad = read_raw(b"age,city\n1,a\n2,b,EXTRA\n3,c\n", "x.csv")
    assert table.column("age").to_pylist() == ["1", "3"]
    assert table.column(ROW_NUMBER).to_pylist() == [1, 3]
    assert len(bad) == 1
    assert bad[0][ROW_NUMBER] == 2
    assert "expected 2 fields, found 3" in bad[0][REASON]
    assert bad[0][RAW] == "2,b,EXTRA"


def test_parquet_keeps_its_own_types():
    buf = io.BytesIO()
    pq.write_table(pa.table({"age": [1, 2], "score": [0.5, None]}), buf)
    table, _ = read_raw(buf.getvalue(), "x.parquet")
    assert table.column("age").type == pa.int64() and table.column("age").to_pylist() == [1, 2]
    assert table.column("score").to_pylist() == [0.5, None]
    assert table.column(ROW_NUMBER).to_pylist() == [1, 2]


def test_corrupt_and_empty_files_are_quarantined_and_the_rest_goes_through(lake):
    good = land_csv(lake, "age,city\n1,a\n2,b\n", "good.csv")
    corrupt = land_csv(lake, "PAR1 this is not parquet", "broken.parquet")
    empty = land_csv(lake, "", "empty.csv")
    parts = [bronze.ingest_file(lake, "people", DS, src, "run-1") for src in (good, corrupt, empty)]
    manifest = bronze.commit_bronze(lake, "people", DS, parts)
    assert manifest["rows"] == 2
    assert set(manifest["quarantined_files"]) == {corrupt, empty}
    assert "corrupt Parquet" in manifest["quarantined_files"][corrupt]
    assert "empty file" in manifest["quarantined_files"][empty]
    q = lake.read_partition(QUARANTINE_BRONZE, "people", DS, staged=True)
    assert sorted(q.column(SOURCE_FILE).to_pylist()) == sorted([corrupt, empty])
    table = lake.read_partition(BRONZE, "people", DS, staged=True)
    assert table.num_rows == 2
    assert set(table.column("_batch_id").to_pylist()) == {"run-1"}


def test_rerun_replaces_the_partition_instead_of_appending(lake):
    a = land_csv(lake, "age\n1\n2\n", "a.csv")
    b = land_csv(lake, "age\n3\n", "b.csv")
    bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, s, "r1") for s in (a, b)])
    assert lake.read_partition(BRONZE, "people", DS, staged=True).num_rows == 3
    # Second attempt: b.csv was withdrawn; a stale part of an earlier attempt must not leak in.
    publish.clear_staging(lake, "people", DS)
    bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, a, "r2")])
    table = lake.read_partition(BRONZE, "people", DS, staged=True)
    assert table.num_rows == 2
    assert set(table.column("_batch_id").to_pylist()) == {"r2"}
    assert len(lake.list_files(lake.staging(BRONZE, "people", DS), [".parquet"])) == 1


def test_counts_reconcile_across_malformed_lines(lake):
    src = land_csv(lake, "age,city\n1,a\n2\n3,c\n4,d,e\n")
    manifest = bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, src, "r")])
    assert (manifest["rows_in"], manifest["rows"], manifest["quarantined_rows"]) == (4, 2, 2)


GOOD = "age,city,score,grade\n1,a,1.5,A\n2,b,2,B\n3,c,0.5,A\n"


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


BAD_FILES = {  # name: (bytes, words the reason must hold, rows it must count: None where they cannot be)
    "utf16-no-bom.csv": (GOOD.encode("utf-16-le"), "UTF-16/32 text without a byte-order mark", None),
    "latin1.csv": ("age,city,score,grade\n1,Zürich,1,A\n2,b,2,B\n".encode("latin-1"), "not UTF-8 text", 2),
    "no-header.csv": (b"1,a,1.5,A\n2,b,2,B\n", "no header line", 2),
    "wrong-header.csv": (b"years,city,score,grade\n1,a,1.5,A\n", "['age'] of contract 'people' missing", 1),
    "empty.csv": (b"", "empty file", None),
    "blank.csv": (b"\n \n", "empty file", None),
    "garbage.csv": (bytes(range(256)) * 8, "binary data", None),
    "cut.csv.gz": (gzip.compress(GOOD.encode())[:25], "not a readable gzip file", None),
    "not-gzip.csv.gz": (GOOD.encode(), "not a readable gzip file", None),
    "twice.csv": (b"age,city,city,score,grade\n1,a,b,1,A\n", "['city'] appear more than once", 1),
    "reserved.csv": (b"age,city,score,grade,_raw\n1,a,1,A,x\n", "['_raw'] are the platform's own", 1),
    "cut.parquet": (_parquet(pa.table({"age": [1, 2]}))[:40], "corrupt Parquet file", None),
    "few-columns.parquet": (_parquet(pa.table({"age": [1, 2, 3]})), "missing", 3),
    "nested.parquet": (
        _parquet(pa.table({"age": [1], "city": ["a"], "score": [1.0], "grade": ["A"], "tags": [["x"]]})),
        "column 'tags' holds list",
        1,
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_quarantined_whole_naming_it_and_the_good_file_goes_through(lake, contract, name):
    data, words, rows = BAD_FILES[name]
    good = land_csv(lake, GOOD, "good.csv")
    bad = f"landing/people/ds={DS}/{name}"
    lake.write_bytes(bad, data)
    parts = [bronze.ingest_file(lake, "people", DS, src, "r", contract) for src in (good, bad)]
    manifest = bronze.commit_bronze(lake, "people", DS, parts)
    reason = manifest["quarantined_files"][bad]
    assert reason.startswith(f"{bad}: ") and words in reason
    assert manifest["by_source"][bad] == {"rows_in": rows, "quarantined": rows, "file_quarantined": True}
    assert manifest["rows_in_quarantined_files"] == (rows or 0)
    assert (manifest["rows"], manifest["rows_in"]) == (3, 3)  # the good file, whole
    q = lake.read_partition(QUARANTINE_BRONZE, "people", DS, staged=True)
    assert q.column(SOURCE_FILE).to_pylist() == [bad] and q.column(REASON).to_pylist() == [reason]


@pytest.mark.parametrize(
    "data",
    [GOOD.encode("utf-8-sig"), GOOD.encode("utf-16"), GOOD.encode("utf-32"), GOOD.replace("\n", "\r\n").encode()],
    ids=["utf8-bom", "utf16-bom", "utf32-bom", "crlf"],
)
def test_files_with_a_byte_order_mark_or_crlf_read_like_plain_utf8(data):
    table, bad = read_raw(data, "x.csv")
    plain, _ = read_raw(GOOD.encode(), "x.csv")
    assert bad == [] and table.equals(plain)


def test_a_line_longer_than_a_parse_block_is_read():
    long = "x" * 3_000_000
    table, bad = read_raw(f"age,city\n1,{long}\n2,b\n".encode(), "x.csv")
    assert bad == [] and table.column("city").to_pylist() == [long, "b"]


def test_a_malformed_line_names_its_row_among_blank_lines():
    table, bad = read_raw(b"age,city\n1,a\n\n\n2\n3,c\n", "x.csv")
    assert table.column(ROW_NUMBER).to_pylist() == [1, 3] and [b[ROW_NUMBER] for b in bad] == [2]


def test_an_unreadable_landing_file_fails_the_task_to_be_retried(lake, contract):
    """An I/O error is not a data error: it is raised (the task's retry reads again), nothing is quarantined."""
    with pytest.raises(OSError) as caught:
        bronze.ingest_file(lake, "people", DS, f"landing/people/ds={DS}/gone.csv", "r", contract)
    assert not isinstance(caught.value, DataError)
    assert lake.list_files(lake.staging(QUARANTINE_BRONZE, "people", DS)) == []


def test_a_gzipped_csv_is_read(lake, contract):
    src = f"landing/people/ds={DS}/a.csv.gz"
    lake.write_bytes(src, gzip.compress(GOOD.encode()))
    part = bronze.ingest_file(lake, "people", DS, src, "r", contract)
    assert (part["rows"], part["file_quarantined"]) == (3, None)
