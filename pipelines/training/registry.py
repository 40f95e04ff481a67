"""The training DAG's use of the shared registry step (``pipelines.registry``): register the selected
model, make it the challenger, and move the champion alias to it only when it beats the current
champion on the test split.

Both models are scored on the SAME held-out test rows at decision time (the current champion is
loaded from the registry and re-scored), so a champion trained on older data is judged on today's
test split. ``versions_table`` lays every version side by side.
"""

from __future__ import annotations

import numpy as np

from pipelines.registry import RESCORE, Decision, Policy, register_and_promote

METRIC = "test_roc_auc"


def policy(margin: float = 0.0) -> Policy:
    """The training DAG's promotion policy: test ROC-AUC of both models re-scored on today's test rows,
    better by at least ``margin``; the new version is always the challenger too (no gate here: the
    selection step has applied it)."""
    return Policy(METRIC, higher_is_better=True, margin=margin, champion_by=RESCORE, challenger_too=True)


def scored_auc(model_uri: str, X_test, y_test) -> float:
    """ROC-AUC on the test rows of the pyfunc model at ``model_uri``: P(class 1) (a model logged before the
    one-column output: its two columns), or one column per class (one-vs-rest macro ROC-AUC)."""
    import mlflow

    from pipelines.training import multiclass

    out = np.asarray(mlflow.pyfunc.load_model(model_uri).predict(X_test), dtype=np.float64)
    proba = out[:, 1] if out.ndim == 2 and out.shape[1] == 2 else out
    return multiclass.roc_auc(np.asarray(y_test), proba)


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
    ``challenger``, and ``champion`` when there is none yet or when its test ROC-AUC beats the current
    champion's (re-scored on the same rows) by at least ``margin`` (``pipelines.registry``)."""
    return register_and_promote(
        tracking_uri,
        name,
        policy(margin),
        run_id,
        model_uri,
        scorer=lambda uri: scored_auc(uri, X_test, y_test),
        tags=tags,
        description=description,
    )


def versions_table(tracking_uri: str, name: str):
    """Every registered version of ``name`` side by side: aliases, algorithm, scores and decision."""
    import pandas as pd
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
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
                "test_roc_auc_at_decision": _float(t.get(METRIC)),
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
