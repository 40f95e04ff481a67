"""Forecast figures for MLflow: backtest forecast vs actual, the future forecast, the leaderboard, tuning."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def forecast_vs_actual(backtest: pd.DataFrame, history: pd.Series, title: str, models: list[str] | None = None):
    """Actuals over the backtest period (with some history before it) and each model's fold forecasts."""
    fig, ax = plt.subplots(figsize=(12, 4.5))
    start = backtest["date"].min() - pd.Timedelta(days=28)
    shown = history[history.index >= start]
    ax.plot(shown.index, shown.to_numpy(), color="black", lw=1.4, label="actual")
    names = models or (sorted(backtest["model"].unique()) if "model" in backtest else [None])
    for name in names:
        part = backtest if name is None else backtest[backtest["model"] == name]
        for k, (_, fold) in enumerate(part.groupby("origin")):
            ax.plot(
                fold["date"],
                fold["forecast"],
                lw=1.1,
                alpha=0.85,
                color=_color(names, name),
                label=name if k == 0 else None,
            )
    for origin in backtest["origin"].unique():
        ax.axvline(origin, color="grey", ls=":", lw=0.8)
    ax.set(title=f"Backtest forecast vs actual - {title}", ylabel=history.name or "target")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def future(history: pd.Series, forecasts: pd.DataFrame, title: str):
    """The last 90 days and each model's forecast of the days after them (the best model drawn bold)."""
    fig, ax = plt.subplots(figsize=(12, 4.2))
    tail = history.iloc[-90:]
    ax.plot(tail.index, tail.to_numpy(), color="black", lw=1.4, label="actual")
    names = list(forecasts["model"].unique())
    for name in names:
        part = forecasts[forecasts["model"] == name]
        best = bool(part["is_best"].iloc[0]) if "is_best" in part else False
        ax.plot(
            part["date"],
            part["forecast"],
            lw=2.4 if best else 1.0,
            color=_color(names, name),
            label=name + (" (best)" if best else ""),
        )
    ax.set(title=f"Forecast - {title}", ylabel=history.name or "target")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def leaderboard(board: pd.DataFrame, metric: str = "mase_daily"):
    ok = board[board["status"] == "ok"].sort_values(metric, ascending=False)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(ok) + 1.5))
    ax.barh(ok["model"], ok[metric], color="#4c72b0")
    for y, v in enumerate(ok[metric]):
        ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
    ax.axvline(1.0, color="grey", ls="--", lw=0.8)
    ax.set(xlabel=f"{metric} (lower is better; 1 = in-sample seasonal naive)", title="Backtest leaderboard")
    fig.tight_layout()
    return fig


def tuning(trials: list[dict], title: str):
    """Validation MAE per call and the best so far."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    scores = np.array([t["val_mae"] for t in trials])
    ax.plot(range(1, len(scores) + 1), scores, "o", label="call")
    ax.plot(range(1, len(scores) + 1), np.minimum.accumulate(scores), "-", label="best so far")
    ax.set(xlabel="call", ylabel="validation MAE", title=f"Bayesian tuning - {title}")
    ax.legend()
    fig.tight_layout()
    return fig


def learning_curve(history: list[dict], title: str):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax.set(xlabel="epoch", ylabel="MSE (scaled)", title=f"Learning curve - {title}")
    ax.legend()
    fig.tight_layout()
    return fig


def _color(names, name):
    cmap = plt.get_cmap("tab10")
    return cmap(names.index(name) % 10) if name in names else cmap(0)
