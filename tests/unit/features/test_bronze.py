import io

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.constants import BRONZE, RAW, REASON, ROW_NUMBER, SOURCE_FILE
from pipelines.features import bronze
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
    q = lake.read_partition(QUARANTINE_BRONZE, "people", DS)
    assert sorted(q.column(SOURCE_FILE).to_pylist()) == sorted([corrupt, empty])
    table = lake.read_partition(BRONZE, "people", DS)
    assert table.num_rows == 2
    assert set(table.column("_batch_id").to_pylist()) == {"run-1"}


def test_rerun_replaces_the_partition_instead_of_appending(lake):
    a = land_csv(lake, "age\n1\n2\n", "a.csv")
    b = land_csv(lake, "age\n3\n", "b.csv")
    bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, s, "r1") for s in (a, b)])
    assert lake.read_partition(BRONZE, "people", DS).num_rows == 3
    # Second attempt: b.csv was withdrawn; a stale part of an earlier attempt must not leak in.
    bronze.clear_staging(lake, "people", DS)
    bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, a, "r2")])
    table = lake.read_partition(BRONZE, "people", DS)
    assert table.num_rows == 2
    assert set(table.column("_batch_id").to_pylist()) == {"r2"}
    assert len(lake.list_files(lake.partition(BRONZE, "people", DS), [".parquet"])) == 1


def test_counts_reconcile_across_malformed_lines(lake):
    src = land_csv(lake, "age,city\n1,a\n2\n3,c\n4,d,e\n")
    manifest = bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, src, "r")])
    assert (manifest["rows_in"], manifest["rows"], manifest["quarantined_rows"]) == (4, 2, 2)
