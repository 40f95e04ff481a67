"""The fast path and the pipeline give the same answer, or the same error, for every row the request
schema accepts: a row scores the same alone (fast path) and inside a batch of more than 64 (pipeline)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.serving.model import FAST_MAX_ROWS, INT64_MAX, INT64_MIN, ServedModel, UnscorableRows, request_model
from pipelines.training import algorithms

COLUMNS = [("age", "long"), ("hours", "double"), ("job", "string"), ("city", "string")]


@functools.cache
def _served(name: str) -> ServedModel:
    """A training-DAG pipeline fitted on toy rows, with its verified fast path."""
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype("int64"),
            "hours": rng.normal(40, 10, n),
            "job": rng.choice(["clerk", "nurse", "pilot"], n).astype(object),
            "city": rng.choice(["a", "b", "c"], n).astype(object),
        }
    )
    X.loc[::17, "hours"] = np.nan
    y = ((X["age"] > 45) ^ (X["city"] == "a") ^ (rng.random(n) < 0.1)).astype(int)
    spec = algorithms.FeatureSpec(numeric=["age", "hours"], categorical=["job", "city"])
    model = algorithms.build(name, spec, seed=0).fit(X, y)
    served = ServedModel("m", "1", "champion", "run", model, COLUMNS, request_model("m", COLUMNS))
    served.compile(X.head(5).astype(object).where(X.head(5).notna(), None).to_dict("records"))
    assert served.fast_path.startswith("on"), served.fast_path
    return served


BASE = {"age": 40, "hours": 38.5, "job": "nurse", "city": "b"}

# Every value the request schema lets through: int64's whole range, any finite float, any text, null.
VALUES = {
    "age": st.none() | st.integers(INT64_MIN, INT64_MAX) | st.sampled_from([INT64_MIN, INT64_MAX, 0, 17, 100]),
    "hours": st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e308, -1e308, 5e-324]),
    "job": st.none() | st.sampled_from(["clerk", "nurse", "pilot", "", "?"]) | st.text(max_size=12),
    "city": st.none() | st.sampled_from(["a", "b", "c"]) | st.text(max_size=12),
}
ROWS = st.lists(st.fixed_dictionaries(VALUES), min_size=1, max_size=4)


def _outcome(served: ServedModel, rows: list[dict]):
    """('ok', probabilities) or ('error', {row: message})."""
    try:
        return "ok", served.predict(rows)
    except UnscorableRows as exc:
        return "error", exc.problems


@pytest.mark.parametrize("name", ["logreg", "lightgbm"])
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
def test_fast_path_and_pipeline_agree_on_every_accepted_row(name, rows):
    served = _served(name)
    rows = [served.request_model.model_validate(r).model_dump(by_alias=True) for r in rows]  # all pass
    padded = rows + [BASE] * (FAST_MAX_ROWS + 1 - len(rows))  # over 64 rows: the pipeline scores the batch
    kind, batch = _outcome(served, padded)
    for i, row in enumerate(rows):
        alone_kind, alone = _outcome(served, [row])  # one row: the fast path
        if kind == "ok":
            assert alone_kind == "ok", (row, alone)
            assert abs(alone[0] - batch[i]) <= 1e-9, (row, alone[0], batch[i])
        else:
            assert (alone_kind == "error") == (i in batch), (row, alone, batch)
            if alone_kind == "error":
                assert alone[0] == batch[i]  # the same message alone and in the batch
