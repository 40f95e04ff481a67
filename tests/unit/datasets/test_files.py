"""Reading CSV/Parquet files and folders, including the error paths."""

import pandas as pd
import pytest

from pipelines.datasets.files import read_table_file, table_files

FRAME = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})


def test_csv_and_gzipped_csv(tmp_path):
    FRAME.to_csv(tmp_path / "t.csv", index=False)
    FRAME.to_csv(tmp_path / "t.csv.gz", index=False)
    for name in ("t.csv", "t.csv.gz"):
        got = read_table_file(tmp_path / name)
        assert got["a"].tolist() == [1, 2] and got["b"].tolist() == ["x", "y"]


def test_parquet_and_codec_suffix(tmp_path):
    FRAME.to_parquet(tmp_path / "t.parquet")
    FRAME.to_parquet(tmp_path / "t.parquet.brotli", compression="brotli")
    for name in ("t.parquet", "t.parquet.brotli"):
        assert read_table_file(tmp_path / name)["b"].tolist() == ["x", "y"]


def test_folder_is_concatenated_sorted_recursively(tmp_path):
    (tmp_path / "sub").mkdir()
    pd.DataFrame({"a": [3]}).to_parquet(tmp_path / "sub" / "c.parquet")
    pd.DataFrame({"a": [2]}).to_csv(tmp_path / "b.csv", index=False)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "README.txt").write_text("ignored")
    (tmp_path / ".tmp.csv").write_text("a\n99\n")  # hidden: a writer's temp file
    assert [p.name for p in table_files(tmp_path)] == ["a.csv", "b.csv", "c.parquet"]
    got = read_table_file(tmp_path)
    assert got["a"].tolist() == [1, 2, 3] and got.index.tolist() == [0, 1, 2]


def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no CSV or Parquet"):
        read_table_file(tmp_path)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"t\.xlsx.*supported: \.csv"):
        read_table_file(path)


def test_corrupt_parquet_names_the_file(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"this is not parquet at all" * 10)
    with pytest.raises(ValueError, match=r"x\.parquet is not a readable PARQUET file"):
        read_table_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_table_file(tmp_path / "nope.csv")
