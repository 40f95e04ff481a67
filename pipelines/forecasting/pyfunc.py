"""The registered model: an MLflow pyfunc that takes a history window and future covariates, returns a forecast.

Input: one DataFrame, a row per day: the time column, the target, and the covariates. Rows
with a target are the history (consecutive days, at least ``min_history`` of them); the rows
after the last of them are the days to forecast (at most ``horizon``), with their known
covariates filled and the target and past-only covariates left empty (they are unknown
there). Output: the time column
and ``forecast`` for each day to forecast.
"""

from __future__ import annotations

import pandas as pd
from mlflow.pyfunc import PythonModel

from pipelines.forecasting.data import SeriesSpec


class ForecastInputError(ValueError):
    """The model input is not a history window followed by the days to forecast."""


class ForecastModel(PythonModel):
    def __init__(self, forecaster, spec: SeriesSpec, horizon: int, model_name: str):
        self.forecaster = forecaster
        self.spec = spec
        self.horizon = horizon
        self.model_name = model_name

    @property
    def min_history(self) -> int:
        return int(self.forecaster.min_history)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        history, future = split_input(model_input, self.spec, self.horizon, self.min_history)
        forecast = self.forecaster.predict(history, future)
        return pd.DataFrame({self.spec.time: future.index, "forecast": forecast})


def split_input(frame: pd.DataFrame, spec: SeriesSpec, horizon: int, min_history: int = 1):
    """(history, future) out of one input frame, refusing what the model cannot use and saying why."""
    if not isinstance(frame, pd.DataFrame):
        raise ForecastInputError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    needed = [spec.time, spec.target, *spec.covariates]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ForecastInputError(f"input lacks column(s) {missing}; it needs {needed}")
    frame = frame.copy()
    f = spec.f
    frame[spec.time] = f.floor(frame[spec.time])
    frame = frame.sort_values(spec.time).set_index(spec.time)
    if frame.index.has_duplicates:
        raise ForecastInputError(
            f"input has several rows for one {f.units[:-1]}: {list(frame.index[frame.index.duplicated()][:3])}"
        )
    columns = [spec.target, *spec.covariates]
    frame[columns] = frame[columns].apply(pd.to_numeric, errors="coerce").astype("float64")
    observed = frame.index[frame[spec.target].notna()]
    if len(observed) == 0:
        raise ForecastInputError(f"input has no history: no row with a value of {spec.target!r}")
    history, future = frame.loc[: observed[-1], columns], frame.loc[frame.index > observed[-1], list(spec.known)]
    expected = f.periods(history.index[0], history.index[-1])
    if len(history) != len(expected) or history.isna().any().any():
        raise ForecastInputError(
            f"history rows must be consecutive {f.units} with every column filled ({history.index[0]} to "
            f"{history.index[-1]}: {len(expected) - len(history)} {f.units[:-1]}(s) missing, "
            f"{int(history.isna().any(axis=1).sum())} with empty values)"
        )
    if len(history) < min_history:
        raise ForecastInputError(f"history has {len(history)} periods; this model needs at least {min_history}")
    if not 1 <= len(future) <= horizon:
        raise ForecastInputError(
            f"after the history come {len(future)} {f.units[:-1]}(s) to forecast; give 1 to {horizon} rows with the known "
            f"covariates {list(spec.known)} and an empty {spec.target!r}"
        )
    want = f.after(history.index[-1], len(future))
    if not future.index.equals(want) or future.isna().any().any():
        raise ForecastInputError(
            f"{f.units} to forecast must follow the history one after another with every known "
            f"covariate {list(spec.known)} filled"
        )
    return history, future


def example_input(history: pd.DataFrame, future: pd.DataFrame, spec: SeriesSpec, days: int) -> pd.DataFrame:
    """The last ``days`` of history and the future rows, as the model takes them (time as a column)."""
    hist = history.iloc[-days:].copy()
    fut = future.reindex(columns=hist.columns).astype("float64")
    frame = pd.concat([hist, fut]).rename_axis(spec.time).reset_index()
    frame[spec.time] = pd.to_datetime(frame[spec.time])
    return frame


def requirements(family: str) -> list[str]:
    """Pinned pip requirements of a forecaster's family, or of several joined by ``+`` (an ensemble's members)."""
    from importlib.metadata import version

    packages = ["mlflow", "pandas", "numpy", "scikit-learn", "cloudpickle", "pyarrow"]
    for one in family.split("+"):
        packages += {"statistical": ["statsmodels", "pmdarima"], "neural": ["torch"]}.get(one, [])
        if one == "boosting":
            packages += ["lightgbm", "xgboost"]
    return [f"{p}=={version(p)}" for p in packages]


def log_model(forecaster, spec: SeriesSpec, horizon: int, name: str, family: str, history, future):
    """Log the forecaster as a pyfunc named ``model`` in the active run, with signature and input example."""
    import mlflow
    from mlflow.models import infer_signature

    model = ForecastModel(forecaster, spec, horizon, name)
    window = 56 if spec.freq in ("daily", "hourly") else 3 * spec.m + 8
    example = example_input(history, future, spec, max(model.min_history, window))
    output = model.predict(None, example)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        signature=infer_signature(example, output),
        input_example=example,
        pip_requirements=requirements(family),
    )
