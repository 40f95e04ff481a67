"""Image figures: a grid of test images with true and predicted labels, the polynomial and its derivative."""

from __future__ import annotations

import numpy as np

from pipelines.deep.poly import DEFAULT_CLAMP, DEFAULT_COEFFICIENTS


def samples_figure(X: np.ndarray, y_true, y_pred, class_names: list[str], n: int = 24):
    from matplotlib.figure import Figure

    n = min(n, len(X))
    cols = 6
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(cols * 1.4, rows * 1.6))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        img = np.asarray(X[i])
        if img.ndim == 3 and img.shape[0] == 3:  # colour (c, h, w) -> (h, w, c)
            ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1))
        else:
            ax.imshow(img.squeeze(), cmap="gray_r")
        ok = y_true[i] == y_pred[i]
        ax.set_title(
            f"t:{class_names[y_true[i]]}\np:{class_names[y_pred[i]]}", fontsize=7, color="black" if ok else "red"
        )
        ax.axis("off")
    fig.tight_layout()
    return fig


def poly_figure(coefficients=DEFAULT_COEFFICIENTS, clamp: float = DEFAULT_CLAMP):
    """f and f' over [-clamp - 1, clamp + 1], the clamp range shaded."""
    from matplotlib.figure import Figure

    from pipelines.deep.poly import Polynomial

    p = Polynomial(tuple(coefficients))
    x = np.linspace(-clamp - 1, clamp + 1, 400)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(x, p.f(x), label="f(x)")
    ax.plot(x, p.df(x), label="f'(x) (activation, unclamped)")
    ax.plot(x, p.df(np.clip(x, -clamp, clamp)), "--", label=f"activation f'(clamp(x, ±{clamp:g}))")
    ax.axvspan(-clamp, clamp, color="grey", alpha=0.1)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    ax.set_title("f(x) = " + " + ".join(f"{c:g}x^{k}" for k, c in enumerate(p.coefficients) if c))
    fig.tight_layout()
    return fig
