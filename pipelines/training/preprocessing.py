"""The registry's feature checks and preprocessing: which raw columns a model can take, and the
encoders every model pipeline starts with (one-hot + scaling, ordinal codes, pandas categories).

Missing values become their own ``__missing__`` category; a category first seen at predict time
never fails. ``pipelines.training.algorithms`` re-exports every name (pickled models and the serving
fast path refer to these functions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

MISSING = "__missing__"


@dataclass(frozen=True)
class FeatureSpec:
    """Which raw columns are numeric and which categorical (from the gold manifest)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    def __post_init__(self):
        # Manifests come from JSON: accept lists, store tuples (hashable, immutable).
        object.__setattr__(self, "numeric", tuple(self.numeric))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ValueError(f"columns {both} are listed as both numeric and categorical; keep each in one list")

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


def check_features(frame: pd.DataFrame, features: FeatureSpec) -> None:
    """Raise ValueError naming every feature column that is missing or that no preprocessing handles."""
    problems = []
    missing = [c for c in features.columns if c not in frame.columns]
    if missing:
        present = ", ".join(map(str, list(frame.columns)[:30]))
        problems += [
            f"column {c!r} is missing from the data (columns present: {present}); add it or drop it from the feature list"
            for c in missing
        ]
    for name in features.numeric:
        if name in frame.columns:
            problem = _numeric_problem(frame[name])
            if problem:
                problems.append(f"column {name!r} {problem}")
    for name in features.categorical:
        if name in frame.columns:
            problem = _categorical_problem(frame[name])
            if problem:
                problems.append(f"column {name!r} {problem}")
    if len(problems) == 1:
        raise ValueError(problems[0])
    if problems:
        raise ValueError(f"{len(problems)} feature columns cannot be used:\n- " + "\n- ".join(problems))


def _unhandled(column: pd.Series, values: pd.Series | None = None) -> str:
    """The message for a column no preprocessing handles; ``values`` are what to inspect (category -> categories)."""
    dtype, odd, values = column.dtype, "", column if values is None else values
    if pd.api.types.is_object_dtype(values.dtype):
        kinds = sorted(_value_types(values) - {"str", "number"})
        odd = f" ({', '.join(kinds)} values)" if kinds else ""
    return (
        f"has dtype {dtype}{odd}: no preprocessing handles it; derive numeric or string columns from it "
        "(e.g. year/day-of-week from a date, one column per list item) or drop it from the feature list"
    )


def _numeric_problem(column: pd.Series) -> str | None:
    dtype = column.dtype
    if pd.api.types.is_complex_dtype(dtype):
        return _unhandled(column)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return None
    kinds = (
        _value_types(column)
        if pd.api.types.is_object_dtype(dtype)
        else ({"str"} if _is_stringlike(dtype) else {"other"})
    )
    if kinds <= {"number"}:
        return None
    if kinds <= {"str", "number"}:
        return f"is listed as numeric but has dtype {dtype}: cast it to numbers or list it as categorical"
    return _unhandled(column)


def _categorical_problem(column: pd.Series) -> str | None:
    dtype = column.dtype
    values = column.cat.categories.to_series() if isinstance(dtype, pd.CategoricalDtype) else column
    inner = values.dtype
    if pd.api.types.is_bool_dtype(inner) or pd.api.types.is_integer_dtype(inner) or pd.api.types.is_float_dtype(inner):
        return None
    if pd.api.types.is_object_dtype(inner) or _is_stringlike(inner):
        kinds = _value_types(values)
        if kinds <= {"str", "number"}:
            return None
        return _unhandled(column, values)
    return _unhandled(column)


def _is_stringlike(dtype) -> bool:
    return pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)


def _value_types(column: pd.Series) -> set[str]:
    """Kinds of the non-missing values in an object column: str, number, or the Python type name."""
    kinds = set()
    for value in column.dropna().map(type).unique():
        if issubclass(value, str):
            kinds.add("str")
        elif issubclass(value, (bool, int, float, np.bool_, np.integer, np.floating)):
            kinds.add("number")
        else:
            kinds.add(value.__name__)
    return kinds


def _as_float(X) -> np.ndarray:
    """Numeric columns as float64; pd.NA/None become NaN."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    return frame.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)


def _to_str(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))  # 3.0 (an int column widened by a NaN) is the category "3"
    return str(value)


_TO_STR = np.frompyfunc(_to_str, 1, 1)


def _as_strings(X) -> np.ndarray:
    """Categorical columns (str, object or category dtype) as an object array of str; missing -> __missing__."""
    values = X.to_numpy(dtype=object) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=object)
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    values = np.where(pd.isna(values), MISSING, values)
    return _TO_STR(values).astype(object) if values.size else values


def _as_unicode(X) -> np.ndarray:
    """``_as_strings`` as a numpy unicode array (for the ordinal encoder).

    With an object array, OrdinalEncoder.fit counts categories (``max_categories``) in a Python
    loop with an ``isinstance`` check per value; inside Airflow task processes that loop ran about 4x
    slower than in a plain process (malloc churn: mmap/munmap under every check). A unicode array
    is counted with ``np.unique`` instead.
    """
    return _as_strings(X).astype(str)


def _as_category_frame(X) -> pd.DataFrame:
    """Categorical columns as pandas ``category`` dtype (for lightgbm, which remaps categories on predict)."""
    columns = list(X.columns) if isinstance(X, pd.DataFrame) else None
    index = X.index if isinstance(X, pd.DataFrame) else None
    strings = _as_strings(X)
    frame = pd.DataFrame(strings, columns=columns, index=index)
    return frame.astype("category")


def _as_float_frame(X) -> pd.DataFrame:
    columns = list(X.columns) if isinstance(X, pd.DataFrame) else None
    index = X.index if isinstance(X, pd.DataFrame) else None
    return pd.DataFrame(_as_float(X), columns=columns, index=index)


def _strings() -> FunctionTransformer:
    return FunctionTransformer(_as_strings, feature_names_out="one-to-one")


def _floats() -> FunctionTransformer:
    return FunctionTransformer(_as_float, feature_names_out="one-to-one")


def _onehot_prep(features: FeatureSpec) -> ColumnTransformer:
    """One-hot categoricals (unseen -> all zeros) and standardised, median-imputed numerics."""
    cat = Pipeline(
        [
            ("strings", _strings()),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32)),
        ]
    )
    num = Pipeline([("floats", _floats()), ("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    return ColumnTransformer(
        [("cat", cat, list(features.categorical)), ("num", num, list(features.numeric))],
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )


def _ordinal_prep(features: FeatureSpec) -> ColumnTransformer:
    """Ordinal codes for categoricals (unseen -> NaN, treated as missing by every tree model), then raw numerics.

    Output order is categoricals first, so ``_categorical_mask`` says which columns are codes.
    """
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        max_categories=250,  # HistGradientBoosting needs codes < max_bins (255); rarer ones are grouped
    )
    cat = Pipeline(
        [("strings", FunctionTransformer(_as_unicode, feature_names_out="one-to-one")), ("ordinal", encoder)]
    )
    return ColumnTransformer(
        [("cat", cat, list(features.categorical)), ("num", _floats(), list(features.numeric))],
        verbose_feature_names_out=False,
    )


def _categorical_mask(features: FeatureSpec) -> list[bool]:
    return [True] * len(features.categorical) + [False] * len(features.numeric)


def _category_prep(features: FeatureSpec) -> ColumnTransformer:
    """A DataFrame with categoricals as pandas ``category`` dtype and float numerics (lightgbm's native input)."""
    return ColumnTransformer(
        [
            (
                "cat",
                FunctionTransformer(_as_category_frame, feature_names_out="one-to-one"),
                list(features.categorical),
            ),
            ("num", FunctionTransformer(_as_float_frame, feature_names_out="one-to-one"), list(features.numeric)),
        ],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
