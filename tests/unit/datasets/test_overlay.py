"""`add_dataset` and the user overlay: written apart from the bundled config, read back by settings
and contracts, safe to re-run, and an edited contract is never overwritten without force."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from pipelines.config import SettingsError, load_settings
from pipelines.datasets.overlay import OverlayError, add_dataset, is_edited
from pipelines.features.contracts import load_contract


@pytest.fixture
def overlay(tmp_path, monkeypatch):
    """A user overlay in a temp folder (never include/user of the checkout)."""
    monkeypatch.setenv("MLP_USER_DIR", str(tmp_path / "user"))
    return tmp_path / "user"


@pytest.fixture
def churn(tmp_path):
    path = tmp_path / "churn.csv"
    pd.DataFrame(
        {"tenure": [i % 12 for i in range(30)], "plan": ["a", "b", "c"] * 10, "Churn": ["No", "No", "Yes"] * 10}
    ).to_csv(path, index=False)
    return path


def add(path, name="churn", **kw):
    return add_dataset(name, str(path), load_settings(), f"dataset add {name}", **kw)


def test_writes_the_overlay_and_settings_and_contracts_read_it(overlay, churn):
    added = add(churn)
    assert added.status == "written"
    assert added.contract_path == overlay / "contracts" / "churn.yaml"
    entry = yaml.safe_load((overlay / "datasets.yaml").read_text())["datasets"]["churn"]
    assert entry["source"] == str(churn) and entry["contract"] == "churn" and entry["kind"] == "classification"
    spec = load_settings().dataset("churn")
    assert (spec.source, spec.contract, spec.kind) == (str(churn), "churn", "classification")
    contract = load_contract("churn")
    assert (contract.label, contract.positive, contract.key) == ("churn", "Yes", ())
    assert load_settings().dataset("adult").contract == "adult"  # the bundled datasets are still there


def test_same_file_same_draft(overlay, churn):
    first = add(churn).contract_path.read_bytes()
    again = add(churn)
    assert again.status == "unchanged" and again.contract_path.read_bytes() == first


def test_an_unedited_draft_is_rewritten_when_the_file_changes(overlay, churn):
    add(churn)
    pd.read_csv(churn).assign(extra=1.5).to_csv(churn, index=False)
    again = add(churn)
    assert again.status == "rewritten" and "extra" in again.contract_path.read_text()


def test_an_edited_contract_is_left_alone_unless_forced(overlay, churn):
    path = add(churn).contract_path
    edited = path.read_text().replace("tenure: {type: int, min: 0}", "tenure: {type: int, min: 0, max: 600}")
    assert edited != path.read_text()
    path.write_text(edited)
    assert is_edited(edited)
    with pytest.raises(OverlayError, match="was edited.*--force"):
        add(churn)
    assert path.read_text() == edited
    assert add(churn, force=True).status == "rewritten"
    assert "max: 600" not in path.read_text() and not is_edited(path.read_text())


def test_a_hand_written_contract_counts_as_edited(overlay, churn):
    (overlay / "contracts").mkdir(parents=True)
    (overlay / "contracts" / "churn.yaml").write_text("name: churn\ncolumns: {tenure: {type: int}}\n")
    with pytest.raises(OverlayError, match="written by hand"):
        add(churn)


def test_names_are_checked_and_bundled_names_are_not_shadowed_by_accident(overlay, churn):
    with pytest.raises(OverlayError, match="lower case.*'my_churn'"):
        add(churn, name="My Churn")
    with pytest.raises(OverlayError, match="'adult' is a bundled dataset"):
        add(churn, name="adult")
    assert not (overlay / "contracts" / "adult.yaml").exists()


def test_other_entries_survive_a_new_one(overlay, churn, tmp_path):
    add(churn)
    other = tmp_path / "other.csv"
    pd.DataFrame({"x": range(10), "y": ["a", "b"] * 5}).to_csv(other, index=False)
    add(other, name="other")
    assert {"churn", "other"} <= set(load_settings().datasets)


def test_ratings_mapping_reaches_the_settings(overlay, tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"userId": [1, 2, 3] * 5, "movieId": range(15), "rating": [4.5, 3, 5] * 5}).to_csv(path, index=False)
    add(path, name="my_ratings", kind="ratings")
    spec = load_settings().dataset("my_ratings")
    assert spec.kind == "ratings"
    assert dict(spec.columns) == {"user": "userid", "item": "movieid", "rating": "rating"}


def test_overlay_entries_are_validated(overlay):
    overlay.mkdir()
    (overlay / "datasets.yaml").write_text("datasets:\n  x: {source: a.csv, kind: regression}\n")
    with pytest.raises(SettingsError, match="datasets.x.kind must be one of"):
        load_settings()
    (overlay / "datasets.yaml").write_text("datasets:\n  x: {source: a.csv, columns: {person: uid}}\n")
    with pytest.raises(SettingsError, match="datasets.x.columns must map roles"):
        load_settings()


def test_the_overlay_folder_variable_is_not_a_setting(overlay):
    assert load_settings().datasets  # MLP_USER_DIR is set: it must not read as an unknown setting
