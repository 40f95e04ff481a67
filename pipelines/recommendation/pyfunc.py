"""The MLflow model people call: user ids in, top-n items out.

``TopN`` wraps a fitted recommender as an ``mlflow.pyfunc.PythonModel``. Input: a DataFrame with a
``user_id`` column. Output: one row per (user, rank): ``user_id``, ``rank`` (1 = best),
``item_id``, ``score`` and ``source`` (``model``, or ``popular`` for a user the model has never
seen, who gets the most popular items). Items a user already rated are left out. Params at
predict time: ``n`` (items per user) and ``exclude_seen``.

Loading the model needs the platform's ``pipelines`` package importable (as for every model the
platform logs); scoring needs numpy, pandas and scipy, not torch.
"""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
import pandas as pd

from pipelines.constants import USER_ID
from pipelines.errors import DataError


class TopN(mlflow.pyfunc.PythonModel):
    def __init__(self, recommender, n: int = 10):
        self.recommender = recommender
        self.n = int(n)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        params = params or {}
        n = int(params.get("n", self.n))
        if n < 1:
            raise DataError(f"n must be at least 1, got {n}")
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if USER_ID not in frame.columns:
            raise DataError(f"the input needs a column {USER_ID!r} with the user ids; it has {list(frame.columns)}")
        users = _as_known_type(frame[USER_ID].to_numpy(), self.recommender.user_ids_)
        return self.recommender.recommend(users, n=n, exclude_seen=bool(params.get("exclude_seen", True)))


def _as_known_type(users: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Ids as the model's id type where they convert ('196' -> 196 for integer ids); others stay unknown."""
    if np.issubdtype(known.dtype, np.integer) and not np.issubdtype(users.dtype, np.integer):
        converted = pd.to_numeric(pd.Series(users), errors="coerce")
        whole = converted.notna() & (converted == np.floor(converted.fillna(0)))
        if whole.all():
            return converted.to_numpy().astype(np.int64)
        return users.astype(object)
    return users


def requirements() -> list[str]:
    """Pinned runtime packages of the model (given explicitly: MLflow's inference would load it in a subprocess)."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "numpy", "pandas", "scipy", "scikit-learn", "pyarrow")]


def log(recommender, n: int, example_users, name: str = "recommender"):
    """Log the wrapped recommender in the active run, with a signature and an input example."""
    from mlflow.models import infer_signature

    python_model = TopN(recommender, n)
    example = pd.DataFrame({USER_ID: np.asarray(example_users)})
    params = {"n": int(n), "exclude_seen": True}
    with warnings.catch_warnings():  # "integer columns cannot hold missing values": ids are never missing
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column", category=UserWarning)
        signature = infer_signature(example, python_model.predict(None, example, params), params=params)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=python_model,
        signature=signature,
        input_example=example,
        pip_requirements=requirements(),
    )
