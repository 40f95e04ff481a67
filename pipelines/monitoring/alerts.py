"""Alerts: one row per finding, stored in the lake and sent by a configurable notifier.

Notifiers: ``log`` (a WARNING line per alert, in the task log) and ``webhook`` (one JSON POST of
all of a run's alerts to ``monitoring.webhook_url``; a failed POST is logged, never fatal, since
the alerts are stored already).
"""

from __future__ import annotations

import logging
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


def store(lake: Lake, model: str, ds: str, alerts: list[dict]) -> str:
    """Write a date's alerts (replacing an earlier run's for that date); returns the relative path."""
    rel = f"{MONITORING}/{model}_alerts/ds={ds}/alerts.parquet"
    frame = pd.DataFrame(alerts, columns=COLUMNS)
    lake.write_parquet(
        rel, pa.Table.from_pandas(frame.astype({"value": float, "threshold": float}), preserve_index=False)
    )
    return rel


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
