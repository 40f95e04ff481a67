import numpy as np
import pytest

from pipelines.config import SplitSettings
from pipelines.constants import GOLD, LABEL, ROW_ID, SPLIT
from pipelines.features import bronze, publish
from pipelines.features.contracts import ContractError, parse_contract
from pipelines.features.gold import assign_split, build_gold
from pipelines.features.silver import build_silver
from tests.unit.features.helpers import DS, land_csv

SPLIT_70 = SplitSettings(0.7, 0.15, 0.15)


def _gold(lake, contract, text, batch="r"):
    src = land_csv(lake, text)
    publish.clear_staging(lake, "people", DS)
    bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, src, batch)])
    build_silver(lake, contract, "people", DS, 1.0)
    return build_gold(lake, contract, "people", DS, SPLIT_70, seed=7)


ROWS = "age,city,score,grade\n" + "".join(f"{i % 90},c{i % 3},{i / 10},{'AB'[i % 2]}\n" for i in range(200))


def test_gold_has_features_label_split_and_manifest(lake, contract):
    m = _gold(lake, contract, ROWS)
    t = lake.read_partition(GOLD, "people", DS)
    assert t.column_names == [ROW_ID, "age", "city", "score", LABEL, SPLIT]
    assert t.column(LABEL).to_pylist()[:2] == [1, 0]  # grade A is the positive class
    assert m["features"] == ["age", "city", "score"]
    assert m["categorical"] == ["city"] and m["numeric"] == ["age", "score"]
    assert sum(s["rows"] for s in m["splits"].values()) == m["rows"] == 200
    assert sum(s["positives"] for s in m["splits"].values()) == 100


def test_rerun_gives_identical_content_hash_and_counts(lake, contract):
    first = _gold(lake, contract, ROWS, batch="run-1")
    second = _gold(lake, contract, ROWS, batch="run-2")  # new ingest time and batch id
    assert first["content_hash"] == second["content_hash"]
    assert first["splits"] == second["splits"]


def test_split_depends_only_on_row_id_and_seed():
    ids = np.arange(100_000, dtype=np.uint64) * np.uint64(2654435761)
    a = assign_split(ids, SPLIT_70, seed=1).indices.to_numpy()
    b = assign_split(ids[::-1], SPLIT_70, seed=1).indices.to_numpy()[::-1]
    assert (a == b).all()  # order of rows does not matter
    shares = np.bincount(a) / len(a)
    assert np.allclose(shares, [0.7, 0.15, 0.15], atol=0.01)
    assert (assign_split(ids, SPLIT_70, seed=2).indices.to_numpy() != a).any()


def test_contract_without_label_is_refused(lake):
    c = parse_contract({"name": "nolabel", "columns": {"age": {"type": "int"}}})
    with pytest.raises(ContractError, match="no gold.label"):
        build_gold(lake, c, "people", DS, SPLIT_70, 1)


def test_unlabelled_contract_gives_gold_without_a_label(lake):
    c = parse_contract(
        {
            "name": "ratings",
            "columns": {"user": {"type": "int"}, "item": {"type": "int"}, "rating": {"type": "float"}},
            "gold": {"unlabelled": True},
        }
    )
    rows = "user,item,rating\n" + "".join(f"{i % 7},{i % 11},{1 + i % 5}\n" for i in range(50))
    m = _gold(lake, c, rows)
    t = lake.read_partition(GOLD, "people", DS)
    assert t.column_names == [ROW_ID, "user", "item", "rating", SPLIT]
    assert m["label"] is None and m["features"] == ["user", "item", "rating"]
    assert sum(s["rows"] for s in m["splits"].values()) == 50
    assert all("positives" not in s for s in m["splits"].values())


def test_unlabelled_and_a_label_together_are_refused():
    spec = {"columns": {"a": {"type": "int"}}, "gold": {"unlabelled": True, "label": {"column": "a", "positive": 1}}}
    with pytest.raises(ContractError, match="unlabelled is true but gold.label is set"):
        parse_contract(spec)
