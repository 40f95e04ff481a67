import gzip

import pyarrow as pa
import pytest

from pipelines.lake import Lake, check_ds


@pytest.fixture
def lake(tmp_path):
    return Lake(tmp_path.as_uri())


def test_check_ds_refuses_what_is_not_a_date():
    assert check_ds("2026-01-02") == "2026-01-02"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        check_ds("../../etc")


def test_partition_is_replaced_as_a_whole(lake, monkeypatch):
    monkeypatch.setattr("pipelines.lake.ROWS_PER_FILE", 2)
    big = lake.write_partition("silver", "d", "2026-01-01", pa.table({"x": [1, 2, 3, 4, 5]}), {})
    assert [f["rows"] for f in big["files"].values()] == [2, 2, 1]  # written side by side, read back in order
    assert lake.read_partition("silver", "d", "2026-01-01").column("x").to_pylist() == [1, 2, 3, 4, 5]
    m = lake.write_partition("silver", "d", "2026-01-01", pa.table({"x": [3, 4]}), {"note": 1})
    assert lake.read_partition("silver", "d", "2026-01-01").column("x").to_pylist() == [3, 4]
    assert m["rows"] == 2 and m["note"] == 1
    assert len(lake.list_files(lake.partition("silver", "d", "2026-01-01"), [".parquet"])) == 1
    assert lake.read_manifest("silver", "d", "2026-01-01")["content_hash"] == m["content_hash"]
    assert lake.list_partitions("silver", "d") == ["2026-01-01"]


def test_content_hash_follows_content(lake):
    a = lake.write_partition("gold", "d", "2026-01-01", pa.table({"x": [1, 2]}), {})
    b = lake.write_partition("gold", "d", "2026-01-02", pa.table({"x": [1, 2]}), {})
    c = lake.write_partition("gold", "d", "2026-01-03", pa.table({"x": [2, 1]}), {})
    assert a["content_hash"] == b["content_hash"] != c["content_hash"]


def test_a_crash_mid_write_leaves_no_file_behind(lake, tmp_path):
    lake.write_bytes("f/data.bin", b"old")

    def explode(stream):
        stream.write(b"half")
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        lake._atomic("f/data.bin", explode)
    assert lake.read_bytes("f/data.bin") == b"old"
    assert [p.name for p in (tmp_path / "f").iterdir()] == ["data.bin"]


def test_a_crash_before_publish_keeps_the_old_partition(lake, monkeypatch):
    lake.write_partition("gold", "d", "2026-01-01", pa.table({"x": [1]}), {})

    def boom(*a, **k):
        raise RuntimeError("killed before publish")

    monkeypatch.setattr(Lake, "publish", boom)
    with pytest.raises(RuntimeError):
        lake.write_partition("gold", "d", "2026-01-01", pa.table({"x": [9]}), {})
    assert lake.read_partition("gold", "d", "2026-01-01").column("x").to_pylist() == [1]
    assert lake.list_partitions("gold", "d") == ["2026-01-01"]


def test_missing_partition_says_what_to_run(lake):
    with pytest.raises(FileNotFoundError, match="run the features DAG"):
        lake.read_manifest("gold", "d", "2026-01-01")


def test_triggered_for_skips_runs_made_only_by_other_datasets_gold():
    from pipelines.lake import triggered_for

    assert triggered_for("adult", [])  # manual or scheduled run
    assert triggered_for("adult", [{"dataset": "sales"}, {"dataset": "adult", "ds": "2026-01-02"}])
    assert not triggered_for("adult", [{"dataset": "movielens_ratings"}, {"dataset": "sales"}])


def test_a_staged_partition_is_unseen_until_published_whole(lake):
    lake.write_partition("silver", "d", "2026-01-01", pa.table({"x": [1]}), {})
    staged = lake.write_partition("silver", "d", "2026-01-01", pa.table({"x": [2, 3]}), {}, staged=True)
    assert lake.has_staged("silver", "d", "2026-01-01")
    assert lake.read_partition("silver", "d", "2026-01-01").column("x").to_pylist() == [1]  # readers: the old one
    assert lake.read_partition("silver", "d", "2026-01-01", staged=True).column("x").to_pylist() == [2, 3]
    assert lake.publish_staged("silver", "d", "2026-01-01")
    assert lake.read_manifest("silver", "d", "2026-01-01") == staged
    assert not lake.has_staged("silver", "d", "2026-01-01")
    assert not lake.publish_staged("silver", "d", "2026-01-01")  # nothing left to publish


def test_a_gz_file_is_read_as_stored(lake):
    packed = gzip.compress(b"a\n1\n")
    lake.write_bytes("landing/d/x.csv.gz", packed)
    assert lake.read_bytes("landing/d/x.csv.gz") == packed  # not inflated on the way, by its name
