"""The permutation explainer, vectorised over rows: antithetic permutations and interventional
masking over the background rows (the estimator of ``shap.PermutationExplainer`` with an
``Independent`` masker). Import from ``pipelines.training.explain``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pipelines.training.explain import Explainer

_EVAL_ROWS = 50_000  # rows per predict_proba call in the permutation explainer


def _permutation_values(explainer: Explainer, X: pd.DataFrame) -> tuple[np.ndarray, float]:
    """Permutation SHAP of P(class 1) on raw features: antithetic permutations, interventional masking.

    The estimator of ``shap.PermutationExplainer`` with an ``Independent`` masker, vectorised over
    rows: shap's evaluates the model once per row (0.1-0.2 s per row for our Pipelines, mostly
    per-call overhead) and JIT-compiles its masker on first use in every process (5-12 s).
    For each row and permutation, features are switched from background to the row's values one
    at a time, forwards then backwards; each switch's change in the mean P(class 1) over the
    background rows is that feature's contribution. Every walk goes from the base value to the
    row's own output, so base_value + sum(values) == output exactly.
    """
    background = explainer.background
    n_bg, n_rows, n_features = len(background), len(X), len(explainer.features)
    codes, uniques = _codes(pd.concat([background, X], ignore_index=True))
    bg_codes, x_codes = codes[:n_bg], codes[n_bg:]

    def proba(codes: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(codes), _EVAL_ROWS):
            part = codes[start : start + _EVAL_ROWS]
            frame = pd.DataFrame(
                {c: u.take(part[:, j]) for j, (c, u) in enumerate(zip(X.columns, uniques, strict=True))}
            )
            out.append(np.asarray(explainer.model.predict_proba(frame))[:, 1])
        return np.concatenate(out).astype(np.float64)

    base = float(proba(bg_codes).mean())
    output = proba(x_codes)
    values = np.zeros((n_rows, n_features))
    steps = n_features - 1  # coalitions strictly between empty and full, per walk
    if steps == 0:
        values[:, 0] = output - base
        return values, base
    rng = np.random.default_rng(explainer.seed)
    walks = 2 * explainer.permutations  # each permutation forwards and backwards
    per_row = walks * steps * n_bg
    chunk = max(1, _EVAL_ROWS // per_row)
    for start in range(0, n_rows, chunk):
        rows = np.arange(start, min(start + chunk, n_rows))
        orders = np.array([rng.permutation(n_features) for _ in range(len(rows) * explainer.permutations)])
        orders = np.concatenate([orders, orders[:, ::-1]]).reshape(2, len(rows), -1, n_features)
        orders = orders.transpose(1, 0, 2, 3).reshape(len(rows), walks, n_features)  # (row, walk, position)
        rank = np.argsort(orders, axis=2)  # rank[r, w, j]: position of feature j in the walk
        # mask[r, w, k, j]: feature j takes the row's value in the walk's (k+1)-th coalition
        mask = rank[:, :, None, :] <= np.arange(steps)[None, None, :, None]
        mask = np.broadcast_to(mask[:, :, :, None, :], (len(rows), walks, steps, n_bg, n_features))
        x = x_codes[rows][:, None, None, None, :]
        masked = np.where(mask, x, bg_codes[None, None, None, :, :]).reshape(-1, n_features)
        v = proba(masked).reshape(len(rows), walks, steps, n_bg).mean(axis=3)
        v = np.concatenate(
            [np.full((len(rows), walks, 1), base), v, np.broadcast_to(output[rows, None, None], (len(rows), walks, 1))],
            axis=2,
        )
        gains = np.diff(v, axis=2)  # gains[r, w, k]: what the k-th feature of the walk added
        contrib = np.take_along_axis(gains, rank, axis=2)  # contrib[r, w, j] = gains[r, w, rank[r, w, j]]
        values[rows] = contrib.mean(axis=1)
    return values, base


def _codes(frame: pd.DataFrame) -> tuple[np.ndarray, list]:
    """Each column as integer codes and the values behind them (missing kept as a value, dtypes kept)."""
    codes, uniques = [], []
    for column in frame.columns:
        code, values = pd.factorize(frame[column], use_na_sentinel=False)
        codes.append(code)
        uniques.append(values)
    return np.column_stack(codes).astype(np.int64), uniques
