"""Voting and stacking assembled from judged bases give what refitting scikit-learn's ensembles gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import PredefinedSplit

from pipelines.training import algorithms, ensembles, metrics
from pipelines.training.algorithms import FeatureSpec
from pipelines.training.data import TrainingData
from pipelines.training.evaluate import EvalConfig, cross_validate, evaluate, fold_ids

FEATURES = FeatureSpec(numeric=("x1", "x2"), categorical=("color",))
CONFIG = EvalConfig(folds=3, seed=7, latency_rows=5)
BASES = ("logreg", "hist_gb")


def _data(n: int = 600, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "color": rng.choice(["r", "g", "b"], n).astype(object)}
    )
    logit = 1.5 * frame["x1"] - frame["x2"] ** 2 + (frame["color"] == "r")
    y = pd.Series((logit + rng.logistic(size=n) > 0).astype(int))
    cut = int(n * 0.8)
    return TrainingData(
        "toy", "2026-01-01", FEATURES, frame[:cut], y[:cut], frame[cut:].reset_index(drop=True),
        y[cut:].reset_index(drop=True), {},
    )  # fmt: skip


def _build(name: str):
    model = algorithms.build(name, FEATURES, CONFIG.seed)
    return model.set_params(model__max_iter=40) if name == "hist_gb" else model


@pytest.fixture(scope="module")
def judged():
    data = _data()
    runs = {b: evaluate(b, algorithms.get(b).family, lambda b=b: _build(b), data, CONFIG) for b in BASES}
    assert all(r.status == "ok" for r in runs.values()), [r.reason for r in runs.values()]
    oof = np.column_stack([runs[b].oof for b in BASES])
    return data, [(b, runs[b].model) for b in BASES], oof, fold_ids(data.y_train, CONFIG)


def test_fold_ids_are_stratified_and_stable():
    y = np.array([0] * 60 + [1] * 30)
    ids = fold_ids(y, CONFIG)
    assert sorted(np.unique(ids)) == [0, 1, 2]
    assert [int((y[ids == k] == 1).sum()) for k in range(3)] == [10, 10, 10]
    assert np.array_equal(ids, fold_ids(y, CONFIG))


def test_voting_cv_from_oof_equals_refitting_a_voting_classifier(judged):
    data, _, oof, fold = judged
    reused = ensembles.cross_validation("voting", oof, data.y_train, fold, CONFIG.seed)
    refit = cross_validate(
        lambda: algorithms.build_ensemble("voting", [(b, _build(b)) for b in BASES], FEATURES, CONFIG.seed),
        data,
        CONFIG,
    )
    assert np.allclose(reused.aucs, refit.aucs, atol=1e-12)
    assert np.allclose(reused.oof, refit.oof, atol=1e-12)


def test_assembled_voting_predicts_like_the_mean_of_its_bases(judged):
    data, bases, oof, fold = judged
    model = ensembles.assemble("voting", bases, oof, data.y_train, fold, CONFIG.seed).fit(data.X_train, data.y_train)
    expected = np.mean([m.predict_proba(data.X_test)[:, 1] for _, m in bases], axis=0)
    assert np.allclose(model.predict_proba(data.X_test)[:, 1], expected)
    assert metrics.count_parameters(model) == sum(metrics.count_parameters(m) for _, m in bases)


def test_assembled_stacking_equals_sklearn_stacking_on_the_same_folds(judged):
    data, bases, oof, fold = judged
    ours = ensembles.assemble("stacking", bases, oof, data.y_train, fold, CONFIG.seed).fit(data.X_train, data.y_train)
    sklearn = StackingClassifier(
        [(b, _build(b)) for b in BASES],
        final_estimator=LogisticRegression(max_iter=1000, random_state=CONFIG.seed),
        cv=PredefinedSplit(fold),
        stack_method="predict_proba",
    ).fit(data.X_train, data.y_train)
    assert np.allclose(ours.predict_proba(data.X_test), sklearn.predict_proba(data.X_test), atol=1e-6)
    assert list(ours.predict(data.X_test[:5])) == list(sklearn.predict(data.X_test[:5]))


def test_stacking_cv_scores_each_fold_with_a_meta_model_fitted_on_the_others(judged):
    data, _, oof, fold = judged
    y = data.y_train.to_numpy()
    cv = ensembles.cross_validation("stacking", oof, y, fold, CONFIG.seed)
    meta = LogisticRegression(max_iter=1000, random_state=CONFIG.seed).fit(oof[fold != 1], y[fold != 1])
    assert np.allclose(cv.oof[fold == 1], meta.predict_proba(oof[fold == 1])[:, 1])
    assert len(cv.aucs) == 3 and all(0.5 < a <= 1 for a in cv.aucs)


def test_folds_a_base_did_not_reach_are_left_out(judged):
    data, _, oof, fold = judged
    partial = oof.copy()
    partial[fold == 2, 1] = np.nan  # the second base stopped after two folds (time budget)
    cv = ensembles.cross_validation("voting", partial, data.y_train, fold, CONFIG.seed)
    assert len(cv.aucs) == 2 and np.isnan(cv.oof[fold == 2]).all()


def test_bad_inputs_are_refused(judged):
    data, bases, oof, fold = judged
    with pytest.raises(ValueError, match="'bagging' cannot be assembled"):
        ensembles.cross_validation("bagging", oof, data.y_train, fold, 0)
    with pytest.raises(ValueError, match="at least 2 bases"):
        ensembles.cross_validation("voting", oof[:, :1], data.y_train, fold, 0)
    with pytest.raises(ValueError, match="do not match the labels"):
        ensembles.cross_validation("voting", oof[:-1], data.y_train, fold, 0)
    with pytest.raises(ValueError, match="1 base models for 2 columns"):
        ensembles.assemble("stacking", bases[:1], oof, data.y_train, fold, 0)
    with pytest.raises(ValueError, match="no CV fold was done by every base"):
        ensembles.cross_validation("voting", np.full_like(oof, np.nan), data.y_train, fold, 0)


def test_bagging_judged_in_parallel_processes_equals_the_sequential_judgement():
    """jobs=2 (the DAG's bagging task) fits folds and the final model side by side: same figures."""
    data = _data()

    def make():
        return algorithms.build_ensemble("bagging", [("hist_gb", _build("hist_gb"))], FEATURES, CONFIG.seed)

    one = evaluate("bagging", "ensemble", make, data, CONFIG)
    two = evaluate("bagging", "ensemble", make, data, CONFIG, jobs=2)
    assert one.status == two.status == "ok", (one.reason, two.reason)
    assert two.metrics["cv_folds_done"] == CONFIG.folds
    assert np.allclose(one.oof, two.oof) and np.isclose(one.metrics["cv_roc_auc"], two.metrics["cv_roc_auc"])
    assert np.allclose(one.test_proba, two.test_proba)


def test_the_ensembles_param_picks_which_ones_are_built_and_empty_means_all():
    from pipelines.config import load_settings
    from pipelines.training import run
    from pipelines.training.data import TrainingDataError

    settings = load_settings()
    assert run.run_params({}, settings)["ensembles"] == list(algorithms.ENSEMBLES)
    assert run.run_params({"ensembles": ["stacking"]}, settings)["ensembles"] == ["stacking"]
    with pytest.raises(TrainingDataError, match=r"unknown ensemble\(s\) \['boosting'\]"):
        run.run_params({"ensembles": ["boosting"]}, settings)
