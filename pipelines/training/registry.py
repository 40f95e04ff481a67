"""The MLflow model registry: register the selected model, make it the challenger, and move the
champion alias to it only when it beats the current champion on the test split.

Aliases (``champion``, ``challenger``), never the deprecated stages. Both models are scored on
the SAME held-out test rows at decision time (the current champion is loaded from the registry
and re-scored), so a champion trained on older data is judged on today's test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.constants import CHALLENGER, CHAMPION


@dataclass(frozen=True)
class Decision:
    name: str
    version: str
    promoted: bool
    reason: str
    challenger_test_auc: float
    champion_version: str | None  # the champion before the decision
    champion_test_auc: float | None

    def record(self) -> dict:
        return dict(self.__dict__)


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


def _version_of_run(client, name: str, run_id: str):
    """The version already registered from this run (a retried task must not register twice)."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return min(found, key=lambda v: int(v.version)) if found else None


def _alias_version(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def scored_auc(model_uri: str, X_test, y_test) -> float:
    """ROC-AUC on the test rows of the pyfunc model at ``model_uri`` (P(class 1) or its two columns)."""
    import mlflow
    from sklearn.metrics import roc_auc_score

    out = np.asarray(mlflow.pyfunc.load_model(model_uri).predict(X_test))
    proba = out[:, 1] if out.ndim == 2 else out
    return float(roc_auc_score(np.asarray(y_test), proba))


def register(
    tracking_uri: str,
    name: str,
    model_uri: str,
    run_id: str,
    X_test,
    y_test,
    *,
    margin: float = 0.0,
    tags: dict[str, str] | None = None,
    description: str = "",
) -> Decision:
    """Register the model logged at ``model_uri`` by run ``run_id`` as a version of ``name``, alias it
    ``challenger``, and maybe ``champion``.

    The champion moves when there is none yet, or when the new version's test ROC-AUC is at least
    the current champion's (re-scored on the same rows) plus ``margin``. The decision and its
    reason are written as tags on the new version.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    client = _client(tracking_uri)
    tags = {k: str(v) for k, v in (tags or {}).items()}
    version = _version_of_run(client, name, run_id)
    if version is None:
        version = mlflow.register_model(model_uri, name, tags=tags)
    else:
        for k, v in tags.items():
            client.set_model_version_tag(name, version.version, k, v)
    if description:
        client.update_model_version(name, version.version, description=description)

    challenger_auc = scored_auc(f"models:/{name}/{version.version}", X_test, y_test)
    champion = _alias_version(client, name, CHAMPION)
    champion_auc = None
    if champion is None:
        promoted, reason = True, "no champion yet"
    elif str(champion.version) == str(version.version):
        champion_auc = challenger_auc
        promoted, reason = True, f"version {version.version} is the champion already"
    else:
        champion_auc = scored_auc(f"models:/{name}/{champion.version}", X_test, y_test)
        promoted = challenger_auc >= champion_auc + margin
        verdict = "beats" if promoted else "does not beat"
        reason = (
            f"test ROC-AUC {challenger_auc:.5f} {verdict} champion version {champion.version} "
            f"({champion_auc:.5f}) + margin {margin:g}"
        )
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    for k, v in {
        "decision": "promoted to champion" if promoted else "kept as challenger",
        "decision_reason": reason,
        "test_roc_auc_at_decision": f"{challenger_auc:.6f}",
    }.items():
        client.set_model_version_tag(name, version.version, k, v)
    return Decision(
        name,
        str(version.version),
        promoted,
        reason,
        challenger_auc,
        None if champion is None else str(champion.version),
        champion_auc,
    )


def versions_table(tracking_uri: str, name: str):
    """Every registered version of ``name`` side by side: aliases, algorithm, scores and decision."""
    import pandas as pd

    client = _client(tracking_uri)
    model = client.get_registered_model(name)
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for v in client.search_model_versions(f"name = '{name}'"):
        t = v.tags or {}
        rows.append(
            {
                "version": int(v.version),
                "aliases": ",".join(sorted(aliases.get(str(v.version), []))),
                "algorithm": t.get("algorithm"),
                "cv_roc_auc": _float(t.get("cv_roc_auc")),
                "test_roc_auc_at_decision": _float(t.get("test_roc_auc_at_decision")),
                "latency_p99_ms": _float(t.get("latency_p99_ms")),
                "complexity": _float(t.get("complexity")),
                "interpretability": _float(t.get("interpretability")),
                "decision": t.get("decision"),
                "decision_reason": t.get("decision_reason"),
                "gold_content_hash": t.get("gold_content_hash"),
                "airflow_run_id": t.get("airflow_run_id"),
                "run_id": v.run_id,
                "created": pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC").isoformat(),
            }
        )
    return pd.DataFrame(rows).sort_values("version").reset_index(drop=True)


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
