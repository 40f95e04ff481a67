"""The monitoring DAG's step: join the prediction log with labels, score, detect, alert.

Inputs in the lake: ``predictions/<model>/ds=*/*.parquet`` (written by the serving API) and
``labels/<model>/ds=*/*.parquet`` (``unit_id``, ``label``: outcomes as they arrive, any date; the
latest label of a unit wins). The data-drift reference is the training rows of the gold dataset
``monitoring.reference_dataset`` up to the date; the prediction-drift baseline is the champion's
probabilities on its held-out (test split) rows. Outputs: ``monitoring/<model>_batches``,
``monitoring/<model>_drift`` and ``monitoring/<model>_alerts`` (one file per date, replaced on a
re-run), an MLflow run per date in the ``monitoring`` experiment, and the alerts sent by the
notifier.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.config import Settings
from pipelines.lake import Lake
from pipelines.monitoring import alerts as al
from pipelines.monitoring import anomaly, drift, performance
from pipelines.serving import ab, predlog
from pipelines.steps import RunContext, fill, resolve_ds

log = logging.getLogger(__name__)

LABELS_UNIT, LABELS_LABEL = "unit_id", "label"
REFERENCE_ROWS = 20_000


def read_labels(lake: Lake, dataset: str, model: str, ds: str | None = None) -> pd.DataFrame:
    """Every label of the model's units up to ``ds`` (latest per unit)."""
    frames = []
    for day in lake.list_partitions(dataset, model):
        if ds and day > ds:
            continue
        for rel in lake.list_files(f"{dataset}/{model}/ds={day}", suffixes=(".parquet",)):
            frames.append(lake.read_parquet(rel).to_pandas())
    if not frames:
        return pd.DataFrame(columns=[LABELS_UNIT, LABELS_LABEL])
    labels = pd.concat(frames, ignore_index=True)
    missing = [c for c in (LABELS_UNIT, LABELS_LABEL) if c not in labels.columns]
    if missing:
        raise ValueError(f"label files under {lake.uri(dataset, model)} lack column(s) {missing}")
    labels[LABELS_UNIT] = labels[LABELS_UNIT].astype(str)
    return labels.drop_duplicates(LABELS_UNIT, keep="last")[[LABELS_UNIT, LABELS_LABEL]]


def write_labels(lake: Lake, dataset: str, model: str, ds: str, labels: pd.DataFrame) -> str:
    """Write a date's labels (unit_id, label), e.g. from the demo's replay."""
    rel = f"{dataset}/{model}/ds={ds}/labels.parquet"
    frame = labels[[LABELS_UNIT, LABELS_LABEL]].astype({LABELS_UNIT: str, LABELS_LABEL: int})
    lake.write_parquet(rel, pa.Table.from_pandas(frame, preserve_index=False))
    return rel


def join(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Predictions that have a label (inner join on the unit id)."""
    p = predictions.assign(**{predlog.UNIT_ID: predictions[predlog.UNIT_ID].astype(str)})
    return p.merge(labels, left_on=predlog.UNIT_ID, right_on=LABELS_UNIT, how="inner")


def _reference(settings: Settings, lake: Lake, ds: str):
    """Gold of the reference dataset up to ``ds`` (a sample): X_train is the data-drift reference, X_test
    the rows of the prediction-drift baseline."""
    from pipelines.training.data import load_training_data

    return load_training_data(
        lake, settings.monitoring.reference_dataset, ds, sample=REFERENCE_ROWS, seed=settings.seed, sample_test=True
    )


def _reference_probabilities(settings: Settings, model: str, held_out: pd.DataFrame):
    """The champion's probability on held-out reference rows (the baseline of prediction drift), None if it
    cannot load: the number the service logs, P(class 1), or a multi-class model's top class probability.
    Held out: on the rows it was fitted on a model is over-confident, so its production outputs would look
    drifted (PSI 0.20-0.24 on clean days with a tuned xgboost champion, 0.01 here)."""
    import mlflow

    if held_out.empty:
        log.warning("prediction drift: the reference has no held-out (test split) rows to score")
        return None
    try:
        mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
        fitted = mlflow.sklearn.load_model(f"models:/{model}@champion")
        proba = np.asarray(fitted.predict_proba(held_out.head(5000)), dtype=np.float64)
        return pd.Series(proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1))
    except Exception as exc:
        log.warning("prediction drift: cannot score the reference with %s@champion: %s", model, exc)
        return None


def run_params(params: dict | None, settings: Settings) -> dict:
    """The form's values over the ``monitoring`` settings (an empty Param takes the setting)."""
    cfg = settings.monitoring
    p = fill(
        params,
        model=cfg.model,
        window=cfg.window,
        max_auc_drop=cfg.max_auc_drop,
        psi_threshold=cfg.psi_threshold,
        batch_rows=0,
    )
    return {**p, "window": int(p["window"]), "batch_rows": int(p["batch_rows"])} | {
        k: float(p[k]) for k in ("max_auc_drop", "psi_threshold")
    }


def check(ds: str, params: dict | None = None, airflow_run_id: str = "", settings: Settings | None = None) -> dict:
    """Monitor one date; returns a small summary (for XCom) with ``retrain`` set when the training DAG should run."""
    ctx = RunContext.create(settings=settings, dag_id="monitoring", airflow_run_id=airflow_run_id or "manual")
    p = run_params(params, ctx.settings)
    ctx = ctx.with_(dataset=p["model"], ds=resolve_ds(None, p["model"], ds), params=p)
    settings, lake, cfg, ds, model = ctx.settings, ctx.lake, ctx.settings.monitoring, ctx.ds, p["model"]
    window, max_drop, psi_threshold = p["window"], p["max_auc_drop"], p["psi_threshold"]

    predictions = predlog.read_predictions(lake, model)
    if len(predictions):
        predictions = predictions[pd.to_datetime(predictions[predlog.TS], utc=True).dt.strftime("%Y-%m-%d") <= ds]
    today = predictions[pd.to_datetime(predictions[predlog.TS], utc=True).dt.strftime("%Y-%m-%d") == ds]
    labels = read_labels(lake, cfg.labels_dataset, model, ds)
    joined = join(predictions, labels) if len(predictions) and len(labels) else pd.DataFrame()
    alerts: list[dict] = []
    summary: dict = {"ds": ds, "model": model, "predictions": len(predictions), "today": len(today)}
    summary["labelled"] = len(joined)

    metrics = pd.DataFrame()
    if len(joined) and not _binary(joined[LABELS_LABEL]):
        summary["degradation"] = {"degraded": False, "reason": NOT_BINARY}
    elif len(joined):
        joined["batch"] = performance.batches(joined, predlog.TS, p["batch_rows"])
        metrics = performance.batch_metrics(joined, label=LABELS_LABEL, probability=predlog.PROBABILITY)
        verdict = performance.degradation(metrics, window, max_drop)
        summary["degradation"] = verdict
        if verdict["degraded"]:
            alerts.append(al.alert(ds, model, al.DEGRADATION, "roc_auc", verdict["drop"], max_drop, verdict["reason"]))
        _write(lake, f"{al.MONITORING}/{model}_batches/ds={ds}/batches.parquet", metrics)
        if predlog.ARM in joined.columns and (joined[predlog.ARM] == ab.CHALLENGER_ARM).any():
            summary["ab_test"] = ab.analyse(
                joined, arm=predlog.ARM, label=LABELS_LABEL, probability=predlog.PROBABILITY, seed=settings.seed
            )

    drift_table = pd.DataFrame()
    if len(today):
        gold = _reference(settings, lake, ds)
        reference = gold.X_train
        features = [c for c in reference.columns if c in today.columns]
        drift_table = drift.feature_drift(reference, today, features, cfg.psi_bins, psi_threshold, cfg.p_value)
        for row in drift_table[drift_table["drifted"]].itertuples():
            alerts.append(
                al.alert(ds, model, al.FEATURE_DRIFT, row.feature, row.psi, psi_threshold,
                         f"{row.feature}: PSI {row.psi:.3f} > {psi_threshold} ({row.test} p={row.p_value:.2g})")
            )  # fmt: skip
        baseline = _reference_probabilities(settings, model, gold.X_test)
        if baseline is not None:
            p_psi = drift.psi(baseline, today[predlog.PROBABILITY], bins=cfg.psi_bins, categorical=False)
            summary["prediction_psi"] = p_psi
            if p_psi > psi_threshold:
                alerts.append(
                    al.alert(ds, model, al.PREDICTION_DRIFT, "probability", p_psi, psi_threshold,
                             f"predicted probabilities: PSI {p_psi:.3f} > {psi_threshold} vs the reference")
                )  # fmt: skip
        gmm = anomaly.fit(reference, features, cfg.gmm_max_components, cfg.anomaly_quantile, seed=settings.seed)
        found = anomaly.batch_anomaly(gmm, today[features], cfg.anomaly_max_share)
        summary["anomaly"] = found
        if found["anomalous"]:
            alerts.append(
                al.alert(ds, model, al.ANOMALY, "rows", found["share_above"], cfg.anomaly_max_share,
                         f"{found['share_above']:.1%} of the rows are unusual (over {cfg.anomaly_max_share:.0%})")
            )  # fmt: skip
        _write(lake, f"{al.MONITORING}/{model}_drift/ds={ds}/drift.parquet", drift_table)
        summary["drifted_features"] = drift_table.loc[drift_table["drifted"], "feature"].tolist()

    summary["alerts"] = len(alerts)
    summary["alerts_uri"] = lake.uri(al.store(lake, model, ds, alerts))
    summary["notified"] = al.notify(alerts, cfg.notifier, cfg.webhook_url)
    summary["retrain"] = bool(cfg.retrain_on_alert and any(a["kind"] in al.RETRAIN_KINDS for a in alerts))
    summary["mlflow_run_id"] = _log_mlflow(ctx, summary, metrics, drift_table)
    return summary


NOT_BINARY = (
    "labels are not 0/1 (a multi-class model?): the degradation rule (ROC-AUC) and the A/B test need binary "
    "outcomes, so neither ran; drift and anomalies were checked"
)


def _binary(labels: pd.Series) -> bool:
    return bool(pd.to_numeric(labels, errors="coerce").isin([0, 1]).all())


def _write(lake: Lake, rel: str, frame: pd.DataFrame) -> None:
    lake.write_parquet(rel, pa.Table.from_pandas(frame, preserve_index=False))


def _log_mlflow(ctx: RunContext, summary: dict, metrics: pd.DataFrame, drift_table: pd.DataFrame) -> str:
    """One run per model and date in the ``monitoring`` experiment (a retry logs into it again)."""
    import mlflow

    from pipelines.tracking import get_or_start_run, log_frame

    tags = {"model": ctx.dataset, "ds": ctx.ds, "airflow_run_id": ctx.airflow_run_id}
    with get_or_start_run(ctx.settings, "monitoring", f"{ctx.dataset} {ctx.ds}", tags) as run:
        values = {"predictions": summary["predictions"], "labelled": summary["labelled"], "alerts": summary["alerts"]}
        deg = summary.get("degradation") or {}
        values.update({f"auc_{k}": deg[k] for k in ("latest", "before", "drop") if deg.get(k) is not None})
        if "prediction_psi" in summary:
            values["prediction_psi"] = summary["prediction_psi"]
        if "anomaly" in summary:
            values["anomaly_share"] = summary["anomaly"]["share_above"]
        for row in drift_table.itertuples():
            values[f"psi_{row.feature}"] = row.psi
        mlflow.log_metrics({k: float(v) for k, v in values.items()})
        if len(metrics):
            log_frame(metrics, "monitoring/batches.json")
        if len(drift_table):
            log_frame(drift_table, "monitoring/drift.json")
        if summary.get("ab_test"):
            mlflow.log_dict(summary["ab_test"], "monitoring/ab_test.json")
            mlflow.set_tag("ab_recommendation", summary["ab_test"]["recommendation"])
        mlflow.set_tag("retrain", str(summary["retrain"]))
        return run.info.run_id
