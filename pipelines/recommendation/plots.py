"""Figures for the recommendation runs: the leaderboard, NDCG@k curves and learning curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def leaderboard(board: pd.DataFrame, k: int = 10):
    """Ranking metrics at k for every model, and 5-fold RMSE for the models that predict ratings."""
    ok = board[board["status"] == "ok"].sort_values(f"ndcg_at_{k}")
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 0.45 * len(ok) + 2))
    y = np.arange(len(ok))
    for j, (col, label) in enumerate(
        [(f"ndcg_at_{k}", f"NDCG@{k}"), (f"precision_at_{k}", f"precision@{k}"), (f"recall_at_{k}", f"recall@{k}")]
    ):
        a.barh(y + (j - 1) * 0.27, ok[col], height=0.27, label=label)
    a.set(yticks=y, yticklabels=ok["model"], xlabel="score", title=f"Top-{k} ranking (per-user hold-out)")
    a.legend(loc="lower right")
    rated = ok.dropna(subset=["rmse"]) if "rmse" in ok else ok.iloc[0:0]
    b.barh(rated["model"], rated["rmse"], xerr=rated.get("rmse_std"), color="#c0504d")
    if len(rated):
        b.set_xlim(max(0.0, float(rated["rmse"].min()) - 0.1), float(rated["rmse"].max()) + 0.03)
    b.set(xlabel="RMSE (lower is better)", title="Rating prediction (k-fold CV)")
    fig.tight_layout()
    return fig


def ndcg_curves(curves: dict[str, list[float]]):
    """NDCG@k against k = 1, 2, ... for each model ({model: [NDCG@1, NDCG@2, ...]})."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, curve in sorted(curves.items(), key=lambda kv: -kv[1][-1]):
        ax.plot(range(1, len(curve) + 1), curve, marker=".", label=name)
    ax.set(xlabel="k", ylabel="NDCG@k", title="NDCG@k on the per-user hold-out")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def learning_curve(history: list[dict], title: str):
    """Each numeric series of a model's history against its iteration (one panel per series)."""
    frame = pd.DataFrame(history)
    x = frame.columns[0]
    series = [c for c in frame.columns[1:] if pd.api.types.is_numeric_dtype(frame[c])]
    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 3.6), squeeze=False)
    for ax, col in zip(axes[0], series, strict=True):
        ax.plot(frame[x], frame[col], marker=".")
        ax.set(xlabel=x, ylabel=col, title=f"{col} - {title}")
    fig.tight_layout()
    return fig
