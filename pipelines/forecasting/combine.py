"""A combination of the best forecasters, as a leaderboard candidate of its own (``ensemble``).

Why: selecting one model on a few backtest folds is noisy; the simple mean of a few good
forecasts is a well-known robust choice (it averages away the members' independent errors and
rarely does much worse than its best member). So the leaderboard adds ``ensemble``: the mean
forecast of the ``forecasting.ensemble_top_k`` models (default 3) with the lowest backtest MASE.
It exists only when that many models succeeded, all on the same backtest origins.

Its backtest needs no refit: every model forecast the same folds, so the ensemble's fold
forecasts are the mean of its members' and are scored by the same metrics (``metrics.score``,
MASE scaled on each fold's own training data). The members are chosen on that same backtest, so
its score flatters it a little; it is ranked with the others and selected only when its
backtest MASE is the lowest. Its registered model (``Ensemble`` inside the usual pyfunc) holds
the members as they were fitted on the whole history and averages their forecasts of the
window it is given.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pipelines.estimators import hyperparameters
from pipelines.forecasting import metrics
from pipelines.forecasting.models import Forecaster

NAME = "ensemble"
KEYS = ["kind", "origin", "date"]


@hyperparameters
class Ensemble(Forecaster):
    """The mean of the members' forecasts; ``fit`` fits every member on the same history."""

    members: tuple = ()

    @property
    def min_history(self) -> int:  # type: ignore[override]
        return max((int(m.min_history) for m in self.members), default=1)

    @classmethod
    def of_fitted(cls, members: list[Forecaster], spec, horizon: int) -> Ensemble:
        """An ensemble of members already fitted on one history (what the leaderboard has)."""
        model = cls(spec, horizon, members=list(members))
        model.n_train_days_ = max(int(m.n_train_days_) for m in members)
        model.constant_ = None
        return model

    def fit(self, history: pd.DataFrame):
        """Fit every member on ``history`` (a constant history too: the members judge it themselves)."""
        self._check_history(history)
        self.n_train_days_ = len(history)
        self.constant_ = None
        for member in self.members:
            member.fit(history)
        return self

    def _predict(self, history, future):
        return np.mean([m.predict(history, future) for m in self.members], axis=0)


def members(records: list[dict], metric: str, k: int) -> list[dict]:
    """The ``k`` successful models with the lowest backtest ``metric`` (ties: lower MAE), or [] when fewer."""
    mae = metric.replace("mase_", "mae_")
    ok = [r for r in records if r.get("status") == "ok" and r.get(metric) is not None and r.get("model_uri")]
    ok = [r for r in ok if r["model"] != NAME and np.isfinite(r[metric])]
    ok.sort(key=lambda r: (r[metric], r.get(mae) if r.get(mae) is not None else np.inf))
    return ok[:k] if k >= 2 and len(ok) >= k else []


def mean_forecast(staged: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The members' staged rows (backtest and forecast) averaged row by row; None when the rows differ."""
    frames = list(staged.values())
    first = frames[0].sort_values(KEYS).reset_index(drop=True)
    values = []
    for frame in frames:
        frame = frame.sort_values(KEYS).reset_index(drop=True)
        if len(frame) != len(first) or not frame[KEYS].equals(first[KEYS]):
            return None
        values.append(frame["forecast"].to_numpy(np.float64))
    return first.assign(forecast=np.mean(values, axis=0), model=NAME)


def score(combined: pd.DataFrame, target: pd.Series, freq: str, season: int, seasons: dict | None) -> dict:
    """The combined backtest's metrics, fold by fold as ``backtest.run_backtest`` scores a model."""
    y = target.to_numpy(np.float64)
    back = combined[combined["kind"] == "backtest"]
    folds = []
    for origin, fold in back.groupby("origin", sort=True):
        fold = fold.sort_values("date")
        end = target.index.get_loc(pd.Timestamp(origin))
        folds.append((y[: end + 1], fold["actual"].to_numpy(np.float64), fold["forecast"].to_numpy(np.float64)))
    levels, seasons = metrics.levels_for(freq, season, seasons)
    return metrics.score(folds, seasons, levels)


def candidate(context: dict, records: list[dict], series, settings, lake, staging: str, experiment: str) -> dict | None:
    """The ensemble's leaderboard record (its forecasts staged next to the members', its nested MLflow
    run with the pyfunc model), or None when there is nothing to combine.

    A retry of the leaderboard finds the record the first try logged, even after the staging was cleared.
    """
    import mlflow
    import pyarrow as pa

    from pipelines.forecasting import pyfunc
    from pipelines.forecasting.data import future_covariates
    from pipelines.tracking import find_or_create_run

    metric = context.get("rank_metric") or f"mase_{series.spec.freq}"
    top = members(records, metric, int(settings.forecasting.ensemble_top_k))
    if not top:
        return None
    tags = {"airflow_run_id": context["airflow_run_id"], "model": NAME, "dataset": context["dataset"]}
    tags["ds"] = context["ds"]
    run_id = find_or_create_run(settings, experiment, NAME, tags, parent_run_id=context["parent_run_id"])
    logged = mlflow.MlflowClient(settings.mlflow.tracking_uri).get_run(run_id).data.tags.get("record")
    if logged:
        return json.loads(logged)
    paths = {r["model"]: f"{staging}/{r['model']}.parquet" for r in top}
    if not all(lake.exists(p) for p in paths.values()):
        return None
    combined = mean_forecast({m: lake.read_parquet(p).to_pandas() for m, p in paths.items()})
    if combined is None:
        return None
    spec, horizon = series.spec, context["params"]["horizon"]
    scores = score(combined, series.history[spec.target], spec.freq, spec.m, dict(settings.forecasting.seasons))
    fitted = [mlflow.pyfunc.load_model(r["model_uri"]).unwrap_python_model().forecaster for r in top]
    model = Ensemble.of_fitted(fitted, spec, horizon)
    record = {
        "model": NAME,
        "family": NAME,
        "status": "ok",
        "reason": None,
        **{k: float(v) for k, v in scores.items() if np.isfinite(v)},
        "tune_s": 0.0,
        "backtest_s": 0.0,
        "train_s": 0.0,
        "params": {"members": [r["model"] for r in top], "combine": "mean"},
        "covariates": top[0].get("covariates", ""),
        "mlflow_run_id": run_id,
    }
    lake.write_parquet(f"{staging}/{NAME}.parquet", pa.Table.from_pandas(combined, preserve_index=False))
    families = "+".join(sorted({r["family"] for r in top}))
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"family": NAME, "status": "ok", "members": ",".join(record["params"]["members"])})
        mlflow.log_metrics({k: v for k, v in record.items() if k.startswith(tuple(f"{m}_" for m in metrics.METRICS))})
        known = future_covariates(series, horizon)[0]
        record["model_uri"] = pyfunc.log_model(model, spec, horizon, NAME, families, series.history, known).model_uri
        mlflow.set_tag("record", json.dumps(record))
    return record
