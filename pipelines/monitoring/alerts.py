"""Alerts: one row per finding, stored in the lake and sent by a configurable notifier.

Notifiers: ``log`` (a WARNING line per alert, in the task log) and ``webhook`` (one JSON POST of
all of a run's alerts to ``monitoring.webhook_url``; a failed POST is logged, never fatal, since
the alerts are stored already).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from pipelines.lake import Lake

log = logging.getLogger(__name__)

MONITORING = "monitoring"
COLUMNS = ["ds", "model", "kind", "subject", "value", "threshold", "message", "created_at"]
DEGRADATION, FEATURE_DRIFT, PREDICTION_DRIFT, ANOMALY = "degradation", "feature_drift", "prediction_drift", "anomaly"
RETRAIN_KINDS = (DEGRADATION, FEATURE_DRIFT, PREDICTION_DRIFT)


def alert(ds: str, model: str, kind: str, subject: str, value: float, threshold: float, message: str) -> dict:
    return {
        "ds": ds,
        "model": model,
        "kind": kind,
        "subject": subject,
        "value": float(value),
        "threshold": float(threshold),
        "message": message,
        "created_at": datetime.now(UTC).isoformat(),
    }


def _rel(model: str, ds: str) -> str:
    return f"{MONITORING}/{model}_alerts/ds={ds}/alerts.parquet"


def store(lake: Lake, model: str, ds: str, alerts: list[dict]) -> str:
    """Write a date's alerts (replacing an earlier run's for that date); returns the relative path."""
    rel = _rel(model, ds)
    frame = pd.DataFrame(alerts, columns=COLUMNS)
    lake.write_parquet(
        rel, pa.Table.from_pandas(frame.astype({"value": float, "threshold": float}), preserve_index=False)
    )
    return rel


def read(lake: Lake, model: str, ds: str) -> pd.DataFrame | None:
    """A date's stored alerts; None when monitoring has not run for that date."""
    rel = _rel(model, ds)
    return lake.read_parquet(rel).to_pandas() if lake.exists(rel) else None


def detection_report(lake: Lake, model: str, dates: Sequence[str], drift_from: str | None) -> dict:
    """Score the stored alerts of ``dates`` against a drift known to start on ``drift_from`` (a replay).

    Per date: whether it was drifted, its alerts, their kinds and the drifted features. Overall: the
    first date that alerted, whether ``drift_from`` itself raised a drift alert (``detected``), the
    drifted dates without one (``missed``), and the alerts on undrifted dates (``false_alerts``,
    target 0) with their dates. A date monitoring never ran for counts as not monitored.
    """
    days, false_alerts, false_dates, missed, not_monitored = [], 0, [], [], []
    for ds in dates:
        drifted = bool(drift_from) and ds >= drift_from
        stored = read(lake, model, ds)
        if stored is None:
            not_monitored.append(ds)
            stored = pd.DataFrame(columns=COLUMNS)
        kinds = sorted(set(stored["kind"]))
        drift_alert = bool(set(kinds) & {FEATURE_DRIFT, PREDICTION_DRIFT})
        days.append(
            {
                "ds": ds,
                "drifted": drifted,
                "alerts": len(stored),
                "kinds": kinds,
                "features": sorted(stored.loc[stored["kind"] == FEATURE_DRIFT, "subject"]),
                "retrain": bool(set(kinds) & set(RETRAIN_KINDS)),
            }
        )
        if not drifted and len(stored):
            false_alerts += len(stored)
            false_dates.append(ds)
        if drifted and not drift_alert:
            missed.append(ds)
    first = next((d["ds"] for d in days if d["alerts"]), None)
    detected = any(d["ds"] == drift_from and d["ds"] not in missed for d in days) if drift_from else None
    return {
        "drift_from": drift_from,
        "first_alert": first,
        "detected": detected,
        "missed": missed,
        "false_alerts": false_alerts,
        "false_alert_dates": false_dates,
        "undrifted_dates": sum(not d["drifted"] for d in days),
        "not_monitored": not_monitored,
        "days": days,
    }


def notify(alerts: list[dict], notifier: str = "log", webhook_url: str = "") -> str:
    """Send the alerts; returns what was done (for the task's result)."""
    if not alerts:
        return "no alerts"
    if notifier == "log":
        for a in alerts:
            log.warning("ALERT %s %s/%s: %s", a["model"], a["kind"], a["subject"], a["message"])
        return f"logged {len(alerts)} alert(s)"
    if notifier == "webhook":
        if not webhook_url:
            raise ValueError("monitoring.notifier is 'webhook' but monitoring.webhook_url is empty: set the URL")
        import httpx

        try:
            response = httpx.post(webhook_url, json={"alerts": alerts}, timeout=10)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.error("webhook %s failed: %s (the alerts are stored in the lake)", webhook_url, exc)
            return f"webhook failed: {exc}"
        return f"posted {len(alerts)} alert(s) to the webhook"
    raise ValueError(f"unknown monitoring.notifier {notifier!r}; use 'log' or 'webhook'")
