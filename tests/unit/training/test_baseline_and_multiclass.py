"""The baseline gate (pure, on leaderboard rows) and the multi-class pieces that need no MLflow."""

import numpy as np
import pandas as pd
import pytest

from pipelines.training import baseline, ensembles, multiclass, pareto, pyfunc

GATE = {"cv_roc_auc_lift": "> 0.002", "cv_roc_auc_lift_z": "> 2"}  # settings training.gate


def _board(std=0.002, **aucs):
    return pd.DataFrame(
        [
            {
                "algorithm": name,
                "status": "ok",
                "cv_roc_auc": auc,
                "cv_roc_auc_std": std,
                "cv_folds_done": 5,
                "latency_p99_ms": 1.0,
                "complexity": 2.0 if name.startswith("logreg") else 4.0,
                "interpretability": 0.9 if name.startswith("logreg") else 0.3,
            }
            for name, auc in aucs.items()
        ]
    )


def test_a_model_must_beat_the_plain_baseline_by_the_margin_and_logreg_the_dummy():
    board = baseline.with_lift(
        _board(logreg=0.90, lightgbm=0.93, ridge=0.901, svm=0.9015), {"dummy": (0.5, 0.0), "logreg": (0.90, 0.002)}
    )
    rows = board.set_index("algorithm")
    assert rows.loc["logreg", "baseline"] == "dummy" and rows.loc["logreg", "cv_roc_auc_lift"] == pytest.approx(0.40)
    assert rows.loc["lightgbm", "baseline"] == "logreg" and rows.loc["lightgbm", "cv_roc_auc_lift"] == pytest.approx(
        0.03
    )
    selection = pareto.select(board, gate=GATE)
    table = selection.table.set_index("algorithm")
    assert table["passed_gate"].to_dict() == {"logreg": True, "lightgbm": True, "ridge": False, "svm": False}
    assert "cv_roc_auc_lift 0.001 <= 0.002" in table.loc["ridge", "failed_rules"]  # the reason names the rule
    assert "ridge: cv_roc_auc_lift" in selection.reason


def test_when_nothing_beats_logistic_regression_it_is_the_one_selected():
    board = baseline.with_lift(_board(logreg=0.995, lightgbm=0.990), {"dummy": (0.5, 0.0), "logreg": (0.995, 0.002)})
    selection = pareto.select(board, gate=GATE)
    assert selection.selected == "logreg"


def test_a_simpler_model_the_folds_tell_apart_from_the_best_is_not_traded_for_it():
    # logreg is simpler, faster and easier to read, so the weighted score would pick it, but the best
    # model's CV ROC-AUC is 0.004 ahead with a standard error of 0.002 / sqrt(5) = 0.0009: 4.5 of them
    board = baseline.with_lift(
        _board(logreg=0.990, lightgbm=0.994, xgboost=0.9935).assign(latency_p99_ms=[0.2, 1.0, 1.0]),
        {"dummy": (0.5, 0.0), "logreg": (0.990, 0.002)},
    )
    assert pareto.select(board).selected == "logreg"  # no near-best rule
    selection = pareto.select(board, near_best_se=1.0)
    table = selection.table.set_index("algorithm")
    assert selection.selected in ("lightgbm", "xgboost")
    assert table["passed_gate"].to_dict() == {"logreg": False, "lightgbm": True, "xgboost": True}  # 0.0005 is 0.56 SE
    assert table.loc["logreg", "failed_rules"] == (
        "cv_roc_auc 0.99 is 0.004 behind the best that passed (lightgbm 0.994): "
        "more than 1 standard error(s) of its CV mean (0.00089)"
    )
    assert "near the best: within 1 SE" in selection.reason and selection.record()["near_best_se"] == 1.0
    assert pareto.select(board, near_best_se=5.0).selected == "logreg"  # within 5 of them: the trade is allowed


def test_the_best_that_passed_the_gate_is_the_yardstick_of_the_near_best_rule():
    # the best CV ROC-AUC fails the user's latency rule: the others are measured against the next best
    board = _board(logreg=0.990, lightgbm=0.994, xgboost=0.9935).assign(latency_p99_ms=[1.0, 500.0, 2.0])
    selection = pareto.select(board, gate={"latency_p99_ms": "< 100"}, near_best_se=1.0)
    table = selection.table.set_index("algorithm")
    assert table["passed_gate"].to_dict() == {"logreg": False, "lightgbm": False, "xgboost": True}
    assert "behind the best that passed (xgboost 0.9935)" in table.loc["logreg", "failed_rules"]
    assert selection.selected == "xgboost"
    assert pareto.select(board.drop(columns="cv_roc_auc_std"), near_best_se=1.0).selected == "logreg"  # no spread


def test_when_nothing_beats_the_dummy_nothing_is_selected_and_the_reason_says_so():
    board = baseline.with_lift(
        _board(logreg=0.501, random_forest=0.49), {"dummy": (0.5, 0.0), "logreg": (0.501, 0.002)}
    )
    selection = pareto.select(board, gate=GATE)
    assert selection.selected is None
    assert selection.reason.startswith(
        "nothing selected: none of the 2 model(s) passed the gate (cv_roc_auc_lift > 0.002 and cv_roc_auc_lift_z > 2)"
    )
    assert "logreg: cv_roc_auc_lift 0.001 <= 0.002" in selection.reason


def test_a_lift_within_the_cv_noise_fails_even_above_the_margin():
    # AUC 0.53 against the dummy's 0.5, but folds spread by 0.06: the lift's standard error is 0.027
    board = baseline.with_lift(_board(std=0.06, logreg=0.53), {"dummy": (0.5, 0.0)})
    assert board.loc[0, "cv_roc_auc_lift_z"] == pytest.approx(0.03 / (0.06 / 5**0.5))
    selection = pareto.select(board, gate=GATE)
    assert selection.selected is None and "cv_roc_auc_lift_z 1.118 <= 2" in selection.reason


def test_chance_se_is_hanley_mcneil_at_auc_one_half():
    assert baseline.chance_se(np.r_[np.zeros(100), np.ones(100)]) == pytest.approx((201 / (12 * 100 * 100)) ** 0.5)
    assert baseline.chance_se(np.repeat([0, 1, 2], [50, 30, 20])) == pytest.approx((101 / (12 * 20 * 80)) ** 0.5)


def test_without_a_plain_baseline_every_model_is_compared_with_the_dummy():
    board = baseline.with_lift(_board(lightgbm=0.7), {"dummy": (0.5, 0.0)})
    assert board.loc[0, "baseline"] == "dummy" and board.loc[0, "cv_roc_auc_lift"] == pytest.approx(0.2)


def test_multiclass_scores_and_metrics():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    proba = np.eye(3)[y] * 0.7 + 0.1
    assert multiclass.scores(proba).shape == (9, 3)
    assert multiclass.scores(proba[:, :2]).shape == (9,)
    assert multiclass.roc_auc(y, proba) == pytest.approx(1.0)
    m = multiclass.multiclass_metrics(y, proba, ("a", "b", "c"))
    assert m["accuracy"] == 1.0 and m["f1_b"] == 1.0 and m["roc_auc_c"] == 1.0 and m["misclassified"] == 0
    assert np.allclose(multiclass.softmax(np.log(proba)), proba / proba.sum(axis=1, keepdims=True))


def test_multiclass_voting_and_stacking_from_out_of_fold_probabilities():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    fold = np.tile(np.arange(4), 30)
    good = np.clip(np.eye(3)[y] + rng.normal(0, 0.3, (120, 3)), 0.01, None)
    good /= good.sum(axis=1, keepdims=True)
    noise = rng.dirichlet(np.ones(3), 120)
    oof = np.hstack([good, noise])  # two bases, three classes each
    voting = ensembles.cross_validation("voting", oof, y, fold, 0, classes=3)
    assert voting.oof.shape == (120, 3) and np.allclose(voting.oof, (good + noise) / 2)
    stacking = ensembles.cross_validation("stacking", oof, y, fold, 0, classes=3)
    assert len(stacking.aucs) == 4 and np.mean(stacking.aucs) > 0.9
    with pytest.raises(ValueError, match="at least 2 bases"):
        ensembles.cross_validation("voting", good, y, fold, 0, classes=3)


def test_the_logged_model_predicts_one_probability_or_a_column_per_class():
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 7})
    binary = pyfunc.wrap(LogisticRegression().fit(X, np.arange(30) > 14))
    assert binary.predict(X).shape == (30,) and pyfunc.class_names(binary) is None
    three = pyfunc.wrap(LogisticRegression().fit(X, np.arange(30) // 10), ["low", "mid", "high"])
    out = three.predict(X)
    assert list(out.columns) == ["low", "mid", "high"] and np.allclose(out.sum(axis=1), 1)
    assert pyfunc.class_names(three) == ["low", "mid", "high"]
    assert pyfunc.unwrap(three) is three.estimator and three.predict_proba(X).shape == (30, 3)


def test_boosting_prefix_cv_scores_multiclass_margins():
    from pipelines.training import algorithms, tuning
    from pipelines.training.data import TrainingData
    from pipelines.training.evaluate import EvalConfig

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.normal(size=240), "z": rng.normal(size=240)})
    y = pd.Series(np.digitize(X["x"] + rng.normal(0, 0.3, 240), [-0.5, 0.5]))
    features = algorithms.FeatureSpec(numeric=("x", "z"), categorical=())
    data = TrainingData("t", "d", features, X, y, X, y, {}, classes=("a", "b", "c"))
    make = lambda: algorithms.build("xgboost", features, 0).set_params(model__n_estimators=40)  # noqa: E731
    means, best, cv = tuning.prefix_cross_validate(make, data, EvalConfig(folds=3), [10, 20, 40])
    assert set(means) == {10, 20, 40} and best in means and cv.oof.shape == (240, 3)
    assert min(means.values()) > 0.8


def test_a_class_too_rare_for_every_fold_still_trains_and_scores():
    """ecoli-like: a class of 2 rows misses some CV folds; its probability column is 0 where a fold's model
    never saw it, and ROC-AUC is the mean over the classes each fold holds."""
    from pipelines.training import algorithms
    from pipelines.training.data import TrainingData
    from pipelines.training.evaluate import EvalConfig, evaluate

    rng = np.random.default_rng(2)
    y = np.r_[np.repeat([0, 1, 2], 60), [3, 3]]
    X = pd.DataFrame({"x": y + rng.normal(0, 0.4, len(y)), "z": rng.normal(size=len(y))})
    features = algorithms.FeatureSpec(numeric=("x", "z"), categorical=())
    test = np.arange(len(y)) % 4 == 0
    data = TrainingData(
        "t", "d", features, X[~test].reset_index(drop=True), pd.Series(y[~test]), X[test].reset_index(drop=True),
        pd.Series(y[test]), {}, classes=("a", "b", "c", "rare"),
    )  # fmt: skip
    result = evaluate("logreg", "linear", lambda: algorithms.build("logreg", features, 0), data, EvalConfig(folds=3))
    assert result.status == "ok", result.reason
    assert result.metrics["cv_roc_auc"] > 0.9 and result.oof.shape == (int((~test).sum()), 4)
    assert np.isnan(result.metrics["test_roc_auc_rare"]) or 0 <= result.metrics["test_roc_auc_rare"] <= 1
