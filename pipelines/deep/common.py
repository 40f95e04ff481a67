"""Small helpers the deep-learning modules share: one-thread torch, figures."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np


@contextmanager
def one_thread(threads: int = 1):
    """Run torch on ``threads`` threads (default one: the executor runs tasks side by side on few cores), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def confusion_figure(cm: np.ndarray, labels: list[str], title: str = "confusion matrix"):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.0 + 0.55 * len(labels), 0.8 + 0.5 * len(labels)))
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6, color="black")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def curves_figure(curves: dict[str, list[list[float]]], ylabel: str = "validation loss", title: str = ""):
    """One panel; each key is an arm, each inner list one seed's curve."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    colours = ["tab:blue", "tab:red", "tab:green", "tab:orange"]
    for k, (arm, runs) in enumerate(curves.items()):
        for i, ys in enumerate(runs):
            ax.plot(range(1, len(ys) + 1), ys, color=colours[k % 4], alpha=0.7, label=arm if i == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig
