"""The default gate's yardstick: baselines judged in the same CV folds as every model.

- ``dummy``: predicts the train rows' class shares whatever the row (scikit-learn's
  ``DummyClassifier(strategy="prior")``): CV ROC-AUC 0.5 on any data;
- ``logreg``: the registry's plain logistic regression (one-hot + standardised features, C=1),
  its leaderboard row when the run trained it on every fold, else fitted here on the same folds.

Each model is compared with the best baseline that is not itself: a logistic regression
(``logreg``, ``logreg_tuned``) with the dummy, every other model with the better of the two. So a
model more complex than the plain baseline has to earn its complexity, and the plain one is
registered when nothing beats it (but it beats guessing). ``with_lift`` adds ``baseline``,
``baseline_cv_roc_auc``, ``cv_roc_auc_lift`` (CV ROC-AUC minus the baseline's) and
``cv_roc_auc_lift_z`` (the lift over its standard error, ``sqrt(std_model^2 + std_baseline^2) /
sqrt(folds)`` from the fold-to-fold spreads: a lift CV noise could give has a small z) to the board.
The dummy's spread is at least that of a chance AUC on the train rows (``chance_se``, times
sqrt(folds)): a few folds can agree by luck on small data, and a model must be told apart from chance.
The default gate (settings ``training.gate``) is ``cv_roc_auc_lift > 0.002`` and
``cv_roc_auc_lift_z > 2``: better than the baseline by a margin, and by more than the noise.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DUMMY, PLAIN = "dummy", "logreg"
PLAIN_MODELS = ("logreg", "logreg_tuned")  # compared with the dummy only


def scores(board: pd.DataFrame, data, config) -> dict[str, tuple[float, float]]:
    """(mean, std) of each baseline's CV ROC-AUC over the folds of ``evaluate.fold_ids`` (one that fails is
    left out)."""
    from sklearn.dummy import DummyClassifier

    from pipelines.training import algorithms
    from pipelines.training.evaluate import cross_validate

    dummy = cross_validate(lambda: DummyClassifier(strategy="prior"), data, config).aucs
    out = {DUMMY: (float(np.mean(dummy)), max(float(np.std(dummy)), chance_se(data.y_train) * math.sqrt(len(dummy))))}
    done = board
    for column, value in (("algorithm", PLAIN), ("status", "ok"), ("cv_folds_done", config.folds)):
        done = done[done[column] == value] if column in done.columns else done.iloc[0:0]
    if len(done):
        out[PLAIN] = (float(done["cv_roc_auc"].iloc[0]), float(done["cv_roc_auc_std"].iloc[0]))
        return out
    try:
        aucs = cross_validate(lambda: algorithms.build(PLAIN, data.features, config.seed), data, config).aucs
        out[PLAIN] = (float(np.mean(aucs)), float(np.std(aucs)))
    except Exception:  # noqa: BLE001 - the dummy remains the yardstick
        pass
    return out


def chance_se(y) -> float:
    """Standard error of the ROC-AUC of a model no better than chance on these labels (Hanley & McNeil,
    AUC 0.5): the smallest class against the rest, so multi-class labels get the widest of their classes'."""
    counts = np.bincount(np.asarray(y, dtype=int))
    n1 = int(counts[counts > 0].min())
    n0 = int(len(y) - n1)
    return math.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0)) if n1 and n0 else math.nan


def with_lift(board: pd.DataFrame, baselines: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """``board`` plus each model's baseline, that baseline's CV ROC-AUC, the lift over it and its z."""
    names, values, lifts, zs = [], [], [], []
    for _, row in board.iterrows():
        allowed = {DUMMY: baselines[DUMMY]}
        if row["algorithm"] not in PLAIN_MODELS and PLAIN in baselines:
            allowed[PLAIN] = baselines[PLAIN]
        name = max(allowed, key=lambda k: allowed[k][0])
        mean, std = allowed[name]
        auc, spread = _number(row.get("cv_roc_auc")), _number(row.get("cv_roc_auc_std"))
        folds = _number(row.get("cv_folds_done"))
        lift = auc - mean
        se = math.sqrt(spread**2 + std**2) / math.sqrt(folds) if folds and folds > 0 else math.nan
        names.append(name)
        values.append(mean)
        lifts.append(lift)
        zs.append(_z(lift, se))
    return board.assign(baseline=names, baseline_cv_roc_auc=values, cv_roc_auc_lift=lifts, cv_roc_auc_lift_z=zs)


def _z(lift: float, se: float) -> float:
    """lift / se; with no spread at all (se 0: one fold, or identical folds) the lift's sign alone."""
    if se > 0:
        return lift / se
    if se == 0:
        return math.copysign(math.inf, lift) if lift else 0.0
    return math.nan


def _number(value) -> float:
    return float(value) if value is not None and not pd.isna(value) else math.nan
