"""A few rows through a fitted scikit-learn pipeline without pandas: the serving API's fast path.

A Pipeline's preprocessing costs milliseconds per call whatever the number of rows (a pandas
frame, ColumnTransformer's dispatch and checks), while a LightGBM booster scores an encoded row in
microseconds. ``compile_model`` turns a fitted pipeline built from the steps below into a function
from request rows (dicts of feature: value) to P(class 1); ``verify`` checks it against the
pipeline's own ``predict_proba`` before the service uses it. A pipeline with any other step gets no
fast path, and a row the fast path cannot encode (say, an unknown category for an encoder that
refuses them) raises ``Unsupported``: the caller then sends that request through the pipeline, so
the answer, or the error, is always the pipeline's.

Supported:
- ``Pipeline`` (nested too) and ``ColumnTransformer`` (columns by name, position or mask; drop,
  passthrough and the remainder; a sparse output is scored dense, which ``verify`` checks);
- ``OneHotEncoder`` (no ``drop``, no infrequent categories), ``OrdinalEncoder`` (no infrequent
  categories), ``SimpleImputer`` (no indicator), ``StandardScaler``;
- ``FunctionTransformer`` without a function, or with one of the training DAG's ``_as_strings``, ``_as_unicode``,
  ``_as_float``, ``_as_category_frame``, ``_as_float_frame`` (``training.algorithms``);
- the final classifier: LightGBM (its booster called directly, on one thread, with LightGBM's own
  mapping of pandas categoricals to codes), HistGradientBoosting (without the training DAG's per-call thread
  limit, which costs more than scoring one row), or any binary classifier's ``predict_proba``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np

Step = Callable[[list], list]  # one row's values in, its transformed values out


class _Category(str):
    """A value of a pandas ``category`` column (``training.algorithms._as_category_frame``), for LightGBM."""


class Unsupported(Exception):
    """This pipeline, or this row, is not for the fast path: use the pipeline itself."""


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_MISSING_KEY = object()  # lookup key of a NaN/None category


def _key(value):
    return _MISSING_KEY if _missing(value) else value


def _lookup(categories: np.ndarray) -> dict:
    return {_key(c.item() if isinstance(c, np.generic) else c): i for i, c in enumerate(categories)}


def _infrequent(est) -> bool:
    """Whether the encoder groups rare categories (``max_categories`` set and some column had more)."""
    if not getattr(est, "_infrequent_enabled", False):
        return False
    return any(c is not None for c in getattr(est, "infrequent_categories_", [None]))


def _one_hot(est) -> Step:
    if est.drop_idx_ is not None or _infrequent(est):
        raise Unsupported("OneHotEncoder with drop or infrequent categories")
    lookups = [_lookup(c) for c in est.categories_]
    offsets = np.cumsum([0] + [len(c) for c in est.categories_]).tolist()
    width, ignore = offsets[-1], est.handle_unknown != "error"

    def step(values: list) -> list:
        out = [0.0] * width
        for lookup, offset, value in zip(lookups, offsets[:-1], values, strict=True):
            i = lookup.get(_key(value))
            if i is not None:
                out[offset + i] = 1.0
            elif not ignore:
                raise Unsupported(f"unknown category {value!r}")
        return out

    return step


def _ordinal(est) -> Step:
    if _infrequent(est):
        raise Unsupported("OrdinalEncoder with infrequent categories")
    lookups = [_lookup(c) for c in est.categories_]
    has_missing = [_MISSING_KEY in lookup for lookup in lookups]
    unknown = float(est.unknown_value) if est.handle_unknown == "use_encoded_value" else None
    missing_code = float(est.encoded_missing_value)

    def step(values: list) -> list:
        out = []
        for lookup, missing_seen, value in zip(lookups, has_missing, values, strict=True):
            key = _key(value)
            if key is _MISSING_KEY and missing_seen:
                out.append(missing_code)
                continue
            i = lookup.get(key)
            if i is None:
                if unknown is None:
                    raise Unsupported(f"unknown category {value!r}")
                out.append(unknown)
            else:
                out.append(float(i))
        return out

    return step


def _imputer(est) -> Step:
    mv = est.missing_values
    if est.add_indicator or not (mv is None or (isinstance(mv, float) and math.isnan(mv))):
        raise Unsupported("SimpleImputer with an indicator or a custom missing value")
    fill = [s.item() if isinstance(s, np.generic) else s for s in est.statistics_]
    if any(_missing(f) for f in fill):
        raise Unsupported("SimpleImputer with an all-missing column")  # sklearn drops such columns

    def step(values: list) -> list:
        return [f if _missing(v) else v for v, f in zip(values, fill, strict=True)]

    return step


def _scaler(est) -> Step:
    mean = est.mean_.tolist() if est.with_mean else None
    scale = est.scale_.tolist() if est.with_std else None

    def step(values: list) -> list:
        out = [float(v) for v in values]
        if mean is not None:
            out = [v - m for v, m in zip(out, mean, strict=True)]
        if scale is not None:
            out = [v / s for v, s in zip(out, scale, strict=True)]
        return out

    return step


def _function(est) -> Step:
    from pipelines.training import algorithms

    if est.func is None:
        return lambda values: values
    if est.kw_args:
        raise Unsupported("FunctionTransformer with arguments")
    if est.func in (algorithms._as_strings, algorithms._as_unicode):
        missing = algorithms.MISSING

        def strings(values: list) -> list:
            return [missing if _missing(v) else algorithms._to_str(v) for v in values]

        return strings
    if est.func is algorithms._as_category_frame:
        missing = algorithms.MISSING

        def categories(values: list) -> list:
            return [_Category(missing if _missing(v) else algorithms._to_str(v)) for v in values]

        return categories
    if est.func in (algorithms._as_float, algorithms._as_float_frame):

        def floats(values: list) -> list:
            try:
                return [math.nan if v is None else float(v) for v in values]
            except (TypeError, ValueError) as exc:
                raise Unsupported(str(exc)) from None

        return floats
    raise Unsupported(f"FunctionTransformer({getattr(est.func, '__name__', est.func)})")


def _column_transformer(ct) -> Step:
    from pipelines.training.explain import _resolve

    names_in = [str(c) for c in getattr(ct, "feature_names_in_", [])]
    if not names_in:
        raise Unsupported("ColumnTransformer fitted without column names")
    position = {n: i for i, n in enumerate(names_in)}
    parts: list[tuple[list[int], Step]] = []
    for name, trans, cols in ct.transformers_:
        part = ct.output_indices_.get(name, slice(0, 0))
        if trans == "drop" or part.stop == part.start:
            continue
        resolved = _resolve(ct, cols)
        if resolved is None:
            raise Unsupported(f"ColumnTransformer column selection {cols!r}")
        parts.append(([position[c] for c in resolved], _identity if trans == "passthrough" else _step(trans)))

    def step(values: list) -> list:
        out: list = []
        for idx, fn in parts:
            out += fn([values[i] for i in idx])
        return out

    return step


def _identity(values: list) -> list:
    return values


def _pipeline(pipe) -> Step:
    steps = [_step(t) for _, t in pipe.steps if t not in (None, "passthrough")]

    def step(values: list) -> list:
        for fn in steps:
            values = fn(values)
        return values

    return step


def _step(est) -> Step:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

    for kind, build in (
        (Pipeline, _pipeline),
        (ColumnTransformer, _column_transformer),
        (OneHotEncoder, _one_hot),
        (OrdinalEncoder, _ordinal),
        (SimpleImputer, _imputer),
        (StandardScaler, _scaler),
        (FunctionTransformer, _function),
    ):
        if type(est) is kind:  # exact types: a subclass may transform differently
            return build(est)
    raise Unsupported(f"no fast path for {type(est).__name__}")


def _as_array(encoded: list[list]) -> np.ndarray:
    try:
        return np.asarray(encoded, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Unsupported(f"encoded row is not numeric: {exc}") from None


def _lightgbm_codes(categories: list) -> Callable[[list], list]:
    """LightGBM's own mapping of pandas categoricals: the code of the value in the training categories, else NaN."""
    lookups = [{str(c): float(i) for i, c in enumerate(cats)} for cats in categories]

    def codes(values: list) -> list:
        out, k = [], 0
        for v in values:
            if isinstance(v, _Category):
                if k == len(lookups):
                    raise Unsupported("more categorical columns than LightGBM was fitted on")
                out.append(lookups[k].get(v, math.nan))
                k += 1
            else:
                out.append(v)
        if k != len(lookups):
            raise Unsupported("fewer categorical columns than LightGBM was fitted on")
        return out

    return codes


def _scorer(est) -> Callable[[list[list]], np.ndarray]:
    """P(class 1) for encoded rows, from the pipeline's final classifier."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    classes = getattr(est, "classes_", None)
    if classes is None or len(classes) != 2 or not hasattr(est, "predict_proba"):
        raise Unsupported("the final step is not a fitted binary classifier")
    module = type(est).__module__
    if module.startswith("lightgbm") and hasattr(est, "booster_"):
        booster = est.booster_
        if est.objective_ != "binary":
            raise Unsupported(f"LightGBM objective {est.objective_!r}")
        if booster.pandas_categorical:
            codes = _lightgbm_codes(booster.pandas_categorical)
            return lambda encoded: booster.predict(_as_array([codes(r) for r in encoded]), num_threads=1)
        return lambda encoded: booster.predict(_as_array(encoded), num_threads=1)
    if isinstance(est, HistGradientBoostingClassifier):
        # The training DAG's OneThreadHistGradientBoosting wraps each call in an OpenMP thread
        # limit (~30 us a call); the base class method predicts the same without it.
        return lambda encoded: HistGradientBoostingClassifier.predict_proba(est, _as_array(encoded))[:, 1]

    def generic(encoded):
        X = _as_array(encoded)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "X does not have valid feature names"
            return est.predict_proba(X)[:, 1]

    return generic


def compile_model(model, features: Sequence[str]) -> Callable[[list[dict]], np.ndarray]:
    """``rows -> P(class 1)`` for a fitted Pipeline whose steps are all supported; raises Unsupported."""
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        raise Unsupported("not a scikit-learn Pipeline of preprocessing and a classifier")
    names_in = getattr(model, "feature_names_in_", None)
    if names_in is None:
        raise Unsupported("the pipeline was fitted without column names")
    order = [str(c) for c in names_in]
    missing = set(order) - set(features)
    if missing:
        raise Unsupported(f"the pipeline reads columns outside the signature: {sorted(missing)}")
    encode = _pipeline(Pipeline(model.steps[:-1]))
    score = _scorer(model.steps[-1][1])

    def predict(rows: list[dict]) -> np.ndarray:
        return np.asarray(score([encode([row.get(c) for c in order]) for row in rows]), dtype=np.float64)

    return predict


# Near the edges of what the request schema lets through (serving.model: int64; finite floats, here kept within
# float32, which tree models score in), where rounding and overflow would show first.
_EXTREMES = {"long": (-(2**63), 2**63 - 1), "integer": (-(2**63), 2**63 - 1), "double": (-1e38, 1e38)}


def probe_rows(example: list[dict], columns: Sequence[tuple[str, str]]) -> list[dict]:
    """The example rows, and for each feature variants with it missing, unknown or extreme."""
    rows = list(example)
    for base in example[:2]:
        for c, kind in columns:
            rows.append({**base, c: None})
            if kind == "string":
                rows.append({**base, c: "\x00 a category never seen"})
            elif kind in ("double", "float", "long", "integer"):
                extremes = _EXTREMES.get(kind, _EXTREMES["double"])
                rows += [{**base, c: v} for v in (-1e9, 1e9, 0, *extremes)]
    return rows


def verify(
    fast: Callable[[list[dict]], np.ndarray],
    slow: Callable[[list[dict]], np.ndarray],
    rows: list[dict],
    tolerance: float = 1e-9,
) -> tuple[int, str | None]:
    """(rows checked, first disagreement or None): the fast path against the pipeline, row by row.

    A row that the fast path refuses (``Unsupported`` or any other error) or that the pipeline itself
    rejects is not a disagreement: such rows are served by the pipeline.
    """
    checked = 0
    for row in rows:
        try:
            expected = float(slow([row])[0])
        except Exception:  # noqa: BLE001 - the pipeline rejects it: the fast path never answers for it
            continue
        try:
            got = float(fast([row])[0])
        except Exception:  # noqa: BLE001 - refused: ServedModel.predict sends such rows to the pipeline
            continue
        checked += 1
        if not (abs(got - expected) <= tolerance or (math.isnan(got) and math.isnan(expected))):
            return checked, f"row {row!r}: fast path {got!r}, pipeline {expected!r}"
    return checked, None
