"""The profiler and the contract draft on awkward inputs, through real CSV and Parquet files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.datasets.draft import DraftError, check_draft, draft_contract
from pipelines.datasets.overlay import render_contract
from pipelines.datasets.profile import ProfileError, profile_table, read_sample
from pipelines.features.contracts import parse_contract

N = 40  # enough rows for uniqueness to say "id"


def profile_csv(tmp_path, frame: pd.DataFrame | str, name="data.csv", **read):
    path = tmp_path / name
    if isinstance(frame, str):
        path.write_bytes(frame.encode())
    else:
        frame.to_csv(path, index=False)
    return profile_table(read_sample([path], **read), str(path))


def draft_of(profile, **options):
    """The draft, its YAML parsed back by the contract parser, and what it does to the sample."""
    draft = draft_contract(profile, "t", "t.csv", **options)
    contract = parse_contract(__import__("yaml").safe_load(render_contract(draft)))
    return draft, contract


def test_blank_numerics_are_nullable_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "total": [" ", "12.5", "", "7"] * 10,  # a blank written as a space, as in the churn file
            "count": ["3", "", "4", "NA"] * 10,
            "y": ["a", "b"] * 20,
        }
    )
    p = profile_csv(tmp_path, frame.astype(str).replace("nan", ""))
    total, count = p.column("total"), p.column("count")
    assert (total.type, total.nulls, total.min, total.max) == ("float", 20, 7.0, 12.5)
    assert (count.type, count.nulls) == ("int", 20)
    draft, _ = draft_of(p)
    assert draft.contract["columns"]["total"] == {"type": "float", "nullable": True, "min": 0}
    assert draft.contract["columns"]["count"] == {"type": "int", "nullable": True, "min": 0}


def test_ids_are_recognised_dropped_and_become_the_key(tmp_path):
    frame = pd.DataFrame(
        {
            "customerID": [f"{i:04d}-VHVEG" for i in range(N)],  # unique text, no spaces
            "row": range(1, N + 1),  # a counter
            "amount": np.linspace(3.0, 90.0, N).round(1),  # unique floats are measurements, not ids
            "visits": [int(x) for x in np.geomspace(1, 10_000, N)],  # unique ints with gaps: a measurement
            "churn": ["Yes", "No"] * (N // 2),
        }
    )
    p = profile_csv(tmp_path, frame)
    draft, contract = draft_of(p)
    assert contract.key == ("customerid",)
    assert set(contract.drop) == {"customerid", "row"}
    assert {"amount", "visits"} <= set(contract.features)


def test_small_tables_need_an_id_like_name(tmp_path):
    frame = pd.DataFrame({"code": ["a1", "b2", "c3"], "user_id": [7, 3, 9], "y": ["p", "q", "p"]})
    draft, contract = draft_of(profile_csv(tmp_path, frame))
    assert contract.key == ("user_id",) and contract.drop == ("user_id",)


@pytest.mark.parametrize("values", [["0", "1"], ["yes", "no"], ["Y", "N"], ["True", "False"]])
def test_two_valued_flags_are_booleans(tmp_path, values):
    frame = pd.DataFrame({"flag": values * 20, "y": ["a"] * 30 + ["b"] * 10})
    p = profile_csv(tmp_path, frame)
    assert p.column("flag").type == "bool"
    _, contract = draft_of(p)
    assert check_draft(contract, read_sample([tmp_path / "data.csv"]).table)["passed"] == 40


def test_one_spelling_of_yes_is_a_constant_not_a_boolean(tmp_path):
    p = profile_csv(tmp_path, pd.DataFrame({"flag": ["yes"] * 10, "y": ["a", "b"] * 5}))
    assert p.column("flag").type == "string"
    draft, contract = draft_of(p)
    assert "flag" in contract.drop and "constant" in draft.rules["flag"]


def test_dates_and_impossible_dates(tmp_path):
    frame = pd.DataFrame(
        {
            "day": pd.date_range("2024-01-30", periods=N).strftime("%Y-%m-%d"),
            "maybe": ["2023-02-28"] * (N - 1) + ["2023-02-30"],  # no such day: text, not a date
            "y": ["a", "b"] * (N // 2),
        }
    )
    p = profile_csv(tmp_path, frame)
    assert (p.column("day").type, p.column("day").min, p.column("day").max) == ("date", "2024-01-30", "2024-03-09")
    assert p.column("maybe").type == "string"
    _, contract = draft_of(p)
    assert "day" in contract.drop  # training does not use dates as features


def test_low_cardinality_text_gets_allowed_values_and_free_text_is_dropped(tmp_path):
    frame = pd.DataFrame(
        {
            "plan": ["monthly", "yearly", "two-year", " monthly "] * 25,  # trimmed, like silver does
            "comment": [f"note number {i}" for i in range(100)],
            "city": [f"city{i % 30}" for i in range(100)],  # many values, repeated: a feature, no allowed set
            "y": ["a", "b"] * 50,
        }
    )
    p = profile_csv(tmp_path, frame)
    draft, contract = draft_of(p)
    rules = {r.name: r for r in contract.columns}
    assert rules["plan"].allowed == ("monthly", "two-year", "yearly")
    assert rules["city"].allowed is None and "city" in contract.features
    assert "comment" in contract.drop and "free text" in draft.rules["comment"]
    assert check_draft(contract, read_sample([tmp_path / "data.csv"]).table)["passed"] == 100


def test_constant_and_all_null_columns_are_kept_but_not_features(tmp_path):
    frame = pd.DataFrame({"const": ["x"] * 10, "empty": [""] * 10, "v": range(10), "y": ["a", "b"] * 5})
    p = profile_csv(tmp_path, frame)
    assert (p.column("empty").type, p.column("empty").nulls) == ("string", 10)
    draft, contract = draft_of(p)
    assert draft.contract["columns"]["empty"] == {"type": "string", "nullable": True}
    assert set(contract.drop) == {"const", "empty"}


def test_numbers_over_int64_stay_exact_as_text(tmp_path):
    frame = pd.DataFrame({"big": [str(10**19 + i) for i in range(N)], "y": ["a", "b"] * (N // 2)})
    assert profile_csv(tmp_path, frame).column("big").type == "string"


def test_a_numeric_column_with_a_few_words_is_reported(tmp_path):
    values = [str(i) for i in range(60)] + ["unknown", "n/a "]
    frame = pd.DataFrame({"score": values, "y": ["a", "b"] * 31})
    p = profile_csv(tmp_path, frame)
    assert p.column("score").type == "string"
    assert set(p.column("score").not_numbers) == {"unknown", "n/a"}
    draft, _ = draft_of(p)
    assert "na_values" in draft.comments["score"]


def test_three_class_label_is_multiclass_unless_a_positive_class_is_given(tmp_path):
    frame = pd.DataFrame({"x": range(30), "species": ["setosa"] * 14 + ["virginica"] * 9 + ["versicolor"] * 7})
    draft, contract = draft_of(profile_csv(tmp_path, frame))
    assert (contract.label, contract.positive, contract.multiclass) == ("species", None, True)
    assert {r.name: r for r in contract.columns}["species"].allowed == ("setosa", "versicolor", "virginica")
    assert any("3 classes" in n and "multi-class" in n for n in draft.notes)
    draft, contract = draft_of(profile_csv(tmp_path, frame), positive="virginica")
    assert (contract.positive, contract.multiclass) == ("virginica", False)
    assert any("'virginica' is trained against the rest" in n for n in draft.notes)


def test_label_inference_and_positive_class(tmp_path):
    # `churn` is named like a label (not the last column); `Yes` is named like a positive class
    frame = pd.DataFrame({"churn": ["No"] * 20 + ["Yes"] * 30, "tenure": range(50)})
    _, contract = draft_of(profile_csv(tmp_path, frame))
    assert (contract.label, contract.positive) == ("churn", "Yes")
    # no label name: the last column; no positive name: the rarer class
    frame = pd.DataFrame({"a": range(50), "risk": ["good"] * 35 + ["bad"] * 15})
    _, contract = draft_of(profile_csv(tmp_path, frame, "b.csv"), positive=None)
    assert (contract.label, contract.positive) == ("risk", "good")  # `good` is a positive word
    frame = pd.DataFrame({"a": range(50), "kind": ["fish"] * 35 + ["bird"] * 15})
    draft, contract = draft_of(profile_csv(tmp_path, frame, "c.csv"))
    assert contract.positive == "bird" and any("rarer class" in n for n in draft.notes)
    _, contract = draft_of(profile_csv(tmp_path, frame, "c.csv"), positive="fish")
    assert contract.positive == "fish"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"label": "nope"}, "--label 'nope' is not a column.*a, kind"),
        ({"positive": "cat"}, "--positive 'cat' is not a value of label 'kind'.*'bird', 'fish'"),
        ({"label": "a"}, "60 distinct values.*regression"),
        ({"kind": "series"}, "no date column"),
        ({"kind": "ratings"}, "no user/item/rating column"),
        ({"kind": "series", "positive": "fish"}, "--positive do.*not apply to --kind series"),
        ({"roles": {"user": "a"}}, "--user do.*not apply to --kind classification"),
    ],
)
def test_options_that_do_not_fit_the_file_are_refused(tmp_path, options, message):
    frame = pd.DataFrame({"a": range(60), "kind": ["fish"] * 40 + ["bird"] * 20})
    with pytest.raises(DraftError, match=message):
        draft_contract(profile_csv(tmp_path, frame), "t", "t.csv", **options)


def test_parquet_keeps_its_own_types(tmp_path):
    n = 30
    frame = pd.DataFrame(
        {
            "count": pd.array([1, None, 3] * 10, dtype="Int64"),  # ints with nulls stay ints
            "price": [1.0, 2.0, 3.0] * 10,  # whole floats stay floats: tomorrow brings 2.5
            "flag": [True, False, True] * 10,
            "day": pd.date_range("2024-01-01", periods=n),  # timestamps at midnight: dates
            "seen": pd.date_range("2024-01-01 08:30", periods=n, freq="h"),  # a time of day: kept as text
            "name": pd.array(["a", "b", "c"] * 10, dtype="str"),  # pandas 3 writes large_string
            "y": ["p", "q"] * 15,
        }
    )
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    sample = read_sample([tmp_path / "t.parquet"])
    p = profile_table(sample)
    types = {c.name: c.type for c in p.columns}
    assert types == {
        "count": "int",
        "price": "float",
        "flag": "bool",
        "day": "date",
        "seen": "string",
        "name": "string",
        "y": "string",
    }
    assert p.column("count").nulls == 10 and p.column("flag").counts == {"false": 10, "true": 20}
    _, contract = draft_of(p)
    assert check_draft(contract, sample.table)["passed"] == n


def test_bom_csv(tmp_path):
    text = "\ufeffcustomer_id,plan,y\n" + "".join(f"{i},{'ab'[i % 2]},{'no' if i % 3 else 'yes'}\n" for i in range(30))
    p = profile_csv(tmp_path, text)
    assert [c.name for c in p.columns] == ["customer_id", "plan", "y"]
    _, contract = draft_of(p)
    assert contract.key == ("customer_id",)
    assert check_draft(contract, read_sample([tmp_path / "data.csv"]).table)["passed"] == 30


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("name,y\nabc,1\ncaf\xe9,0\n".encode("latin-1"))
    with pytest.raises(ProfileError, match=r"latin.csv.*UTF-?8") as err:
        read_sample([path])
    assert "line" in str(err.value) or "Row #2" in str(err.value)


def test_identical_rows_are_kept_unless_asked(tmp_path):
    rows = pd.DataFrame({"paperless": ["Yes", "No"] * 20, "tenure": [1, 2, 3, 4] * 10, "y": ["a", "b", "b", "b"] * 10})
    p = profile_csv(tmp_path, rows)  # every row repeats one of four
    assert p.column("paperless").type == "bool"  # row ids hash a boolean column too
    assert p.duplicate_rows == 36
    draft, contract = draft_of(p)
    assert contract.key == () and any("36 sampled row(s) repeat" in n for n in draft.notes)
    table = read_sample([tmp_path / "data.csv"]).table
    assert check_draft(contract, table)["passed"] == 40
    _, strict = draft_of(p, duplicates="quarantine")
    assert len(strict.key) == 3 and check_draft(strict, table)["duplicates"] == 36


def test_a_large_file_is_profiled_from_its_first_rows(tmp_path):
    frame = pd.DataFrame({"x": range(100), "y": ["a", "b"] * 50})
    p = profile_csv(tmp_path, frame, max_rows=10)
    assert (p.rows, p.truncated) == (10, True)
    draft, _ = draft_of(p)
    assert any("first 10 rows" in n for n in draft.notes)


def test_ratings_columns_are_found_by_name(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "userId": rng.integers(1, 50, 200),
            "movieId": rng.integers(1, 80, 200),
            "rating": rng.choice([1, 2, 3, 4], 200),  # nobody gave a 5 in this sample
            "timestamp": np.arange(200) + 1_600_000_000,
            "title": [f"Movie {i % 80}" for i in range(200)],
        }
    )
    draft, contract = draft_of(profile_csv(tmp_path, frame), kind="ratings")
    assert draft.entry["columns"] == {"user": "userid", "item": "movieid", "rating": "rating", "timestamp": "timestamp"}
    assert contract.unlabelled and contract.key == ("userid", "movieid", "timestamp")
    rating = {r.name: r for r in contract.columns}["rating"]
    assert (rating.min, rating.max) == (0, 5)  # the top of the scale, not the top of the sample
    draft, _ = draft_of(profile_csv(tmp_path, frame), kind="ratings", roles={"item": "title"})
    assert draft.entry["columns"]["item"] == "title"


def test_series_takes_the_date_and_a_numeric_value(tmp_path):
    frame = pd.DataFrame(
        {
            "day": pd.date_range("2024-01-01", periods=N).strftime("%Y-%m-%d"),
            "price": np.linspace(1, 2, N),
            "sales": np.arange(N) * 3.0,
        }
    )
    draft, contract = draft_of(profile_csv(tmp_path, frame), kind="series")
    assert (contract.time, contract.label, contract.positive, contract.key) == ("day", "sales", None, ("day",))
    assert "day" not in contract.drop
