import math

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from pipelines.training.metrics import (
    FAMILIES,
    best_threshold_for_cost,
    classification_metrics,
    complexity_score,
    count_parameters,
    interpretability_score,
    latency,
    model_size_bytes,
    requirements,
)

# The hand-worked example, threshold 0.5 (flag when proba >= 0.5):
#
#   row  y  proba  flagged  outcome
#    0   0  0.10     no      TN
#    1   0  0.20     no      TN
#    2   0  0.30     no      TN
#    3   0  0.60     yes     FP
#    4   0  0.40     no      TN
#    5   1  0.70     yes     TP
#    6   1  0.80     yes     TP
#    7   1  0.45     no      FN
#
#                 predicted 0   predicted 1
#   actual 0         TN=4          FP=1
#   actual 1         FN=1          TP=2
Y = [0, 0, 0, 0, 0, 1, 1, 1]
P = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.45]


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=80) > 0).astype(int)
    return X, y


def test_classification_metrics_match_hand_arithmetic():
    m = classification_metrics(Y, P, threshold=0.5, fp_cost=1.0, fn_cost=5.0)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (4, 1, 1, 2)
    expected = {
        "accuracy": (4 + 2) / 8,  # 0.75
        "precision": 2 / (2 + 1),  # tp / (tp + fp)
        "recall": 2 / (2 + 1),  # tp / (tp + fn)
        "f1": 2 / 3,  # 2 * (2/3) * (2/3) / (4/3)
        "precision_1": 2 / 3,
        "recall_1": 2 / 3,
        "f1_1": 2 / 3,
        "precision_0": 4 / (4 + 1),  # tn / (tn + fn)
        "recall_0": 4 / (4 + 1),  # tn / (tn + fp)
        "f1_0": 0.8,
        # ROC-AUC = share of (positive, negative) pairs ranked right: 3 * 5 = 15 pairs.
        # 0.70 and 0.80 beat all 5 negatives; 0.45 beats 0.1, 0.2, 0.3, 0.4 but not 0.6 -> 14/15.
        "roc_auc": 14 / 15,
        # Average precision, positives by falling score: 0.8 (P=1/1), 0.7 (P=2/2), [0.6 is a negative],
        # 0.45 (P=3/4); each adds 1/3 of recall -> (1 + 1 + 3/4) / 3 = 11/12.
        "pr_auc": 11 / 12,
        # Squared errors: .01 .04 .09 .36 .16 | .09 .04 .3025 -> 1.0925 / 8.
        "brier": 1.0925 / 8,
        # Probability given to the true class: .9 .8 .7 .4 .6 | .7 .8 .45, product 0.03048192.
        "log_loss": -math.log(0.03048192) / 8,
        # Costs: 1 FP * 1 + 1 FN * 5 = 6 over 8 rows; flagging nothing costs 3 positives * 5 = 15.
        "fp_cost": 1.0,
        "fn_cost": 5.0,
        "total_cost": 6.0,
        "cost_per_row": 0.75,
        "cost_ratio": 6 / 15,
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key
    assert set(m) == set(expected) | {"tn", "fp", "fn", "tp"}
    assert all(type(v) is float for v in m.values())


def test_threshold_moves_the_confusion_matrix_and_the_costs():
    # At 0.42 row 7 (0.45) becomes a TP: TN=4 FP=1 FN=0 TP=3 -> cost 1, ratio 1/15.
    m = classification_metrics(Y, P, threshold=0.42, fp_cost=1.0, fn_cost=5.0)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (4, 1, 0, 3)
    assert m["total_cost"] == 1.0 and m["cost_ratio"] == pytest.approx(1 / 15)
    # Above every probability nothing is flagged: the cost is the baseline's, ratio exactly 1,
    # and precision_1 has no predicted positives -> 0.0 (scikit-learn's zero_division=0).
    m = classification_metrics(Y, P, threshold=0.9, fp_cost=1.0, fn_cost=5.0)
    assert (m["tp"], m["fp"], m["cost_ratio"], m["precision"]) == (0, 0, 1.0, 0.0)
    # Threshold-free metrics do not depend on the threshold.
    assert m["roc_auc"] == pytest.approx(14 / 15)


def test_log_loss_survives_certain_wrong_predictions():
    m = classification_metrics([0, 1], [1.0, 0.0])
    assert math.isfinite(m["log_loss"]) and m["log_loss"] > 30
    assert m["brier"] == 1.0 and m["roc_auc"] == 0.0


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 1], [0.1, 0.9], "length mismatch"),
        ([], [], "empty"),
        ([1, 1, 1], [0.2, 0.5, 0.9], "single class.*ROC-AUC"),
        ([0, 1], [0.2, 1.5], r"\[0, 1\]"),
        ([0, 1], [-0.1, 0.5], r"\[0, 1\]"),
        ([0, 1], [0.2, float("nan")], "NaN"),
        ([0, 2], [0.2, 0.4], "binary labels"),
        ([0, 1], [[0.8, 0.2], [0.1, 0.9]], r"\[:, 1\]"),
    ],
)
def test_bad_inputs_say_what_is_wrong(y, p, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, p)
    with pytest.raises(ValueError, match=message):
        best_threshold_for_cost(y, p, 1.0, 5.0)


def test_negative_costs_are_refused():
    with pytest.raises(ValueError, match="fp_cost"):
        classification_metrics(Y, P, fp_cost=-1.0)


def test_best_threshold_separates_perfectly_separable_classes():
    # Flagging proba >= 0.8 catches both positives and no negative: cost 0.
    assert best_threshold_for_cost([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0, 5.0) == 0.8


def test_best_threshold_flags_everything_when_misses_are_expensive():
    # Missing the positive at 0.1 costs 100; flagging the two negatives costs 2 -> threshold 0.1.
    assert best_threshold_for_cost([1, 0, 0, 1], [0.1, 0.2, 0.3, 0.9], 1.0, 100.0) == 0.1


def test_best_threshold_flags_nothing_when_false_alarms_are_expensive():
    y, p = [1, 0, 1, 0], [0.2, 0.9, 0.3, 0.8]
    t = best_threshold_for_cost(y, p, 100.0, 1.0)
    assert t > 0.9
    m = classification_metrics(y, p, threshold=t, fp_cost=100.0, fn_cost=1.0)
    assert (m["tp"], m["fp"], m["total_cost"]) == (0, 0, 2.0)


def test_best_threshold_matches_a_brute_force_search_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=300)
    p = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, size=300), 0, 1), 2)  # rounded: many ties
    for fp_cost, fn_cost in [(1.0, 5.0), (5.0, 1.0), (1.0, 1.0)]:
        candidates = [*np.unique(p), np.nextafter(p.max(), 2.0)]
        costs = [
            classification_metrics(y, p, threshold=t, fp_cost=fp_cost, fn_cost=fn_cost)["total_cost"]
            for t in candidates
        ]
        best = best_threshold_for_cost(y, p, fp_cost, fn_cost)
        best_cost = classification_metrics(y, p, threshold=best, fp_cost=fp_cost, fn_cost=fn_cost)["total_cost"]
        assert best_cost == min(costs)
        assert best == max(t for t, c in zip(candidates, costs, strict=True) if c == min(costs))  # ties: highest


def test_latency_times_single_rows_then_a_batch():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    seen = []

    def predict(frame):
        seen.append(frame["a"].tolist())
        return np.zeros(len(frame))

    out = latency(predict, X, single_rows=7, warmup=2)
    assert seen[:9] == [[1.0], [2.0], [1.0], [2.0], [3.0], [1.0], [2.0], [3.0], [1.0]]  # 2 warm-up + 7 cycled
    assert seen[9:] == [[1.0, 2.0, 3.0]] * 4  # batch: 1 warm-up + best of 3
    assert out["p50_ms"] > 0 and out["mean_ms"] > 0 and out["p99_ms"] >= out["p50_ms"]
    assert out["batch_rows_per_s"] > 0
    assert (out["single_rows"], out["batch_rows"]) == (7, 3)


def test_latency_batch_rows_and_errors():
    X = pd.DataFrame({"a": np.arange(50.0)})
    out = latency(lambda f: f["a"].to_numpy() / 100, X, single_rows=20, warmup=0, batch_rows=10)
    assert out["batch_rows"] == 10 and out["p99_ms"] >= out["p50_ms"] > 0
    with pytest.raises(ValueError, match="empty"):
        latency(lambda f: f, X.iloc[:0])
    with pytest.raises(ValueError, match="single_rows"):
        latency(lambda f: f, X, single_rows=0)


def test_model_size_grows_with_the_model(tiny):
    X, y = tiny
    small = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    big = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    assert 0 < model_size_bytes(small) < model_size_bytes(big)


def test_count_parameters_of_linear_model_tree_and_pipeline(tiny):
    X, y = tiny  # 3 features
    assert count_parameters(LogisticRegression().fit(X, y)) == 3 + 1
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    assert count_parameters(tree) == tree.tree_.node_count > 1
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert count_parameters(pipe) == 2 * 3 + 3 + 1  # scaler mean_ + scale_, then coef_ + intercept_


def test_count_parameters_of_ensembles(tiny):
    X, y = tiny
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    assert count_parameters(forest) == sum(t.tree_.node_count for t in forest.estimators_)
    gbm = GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0).fit(X, y)
    assert count_parameters(gbm) == sum(t.tree_.node_count for t in gbm.estimators_.ravel())
    hist = HistGradientBoostingClassifier(max_iter=3, max_leaf_nodes=4, min_samples_leaf=5).fit(X, y)
    assert count_parameters(hist) == sum(len(p.nodes) for it in hist._predictors for p in it) > 3
    vote = VotingClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=2))], voting="soft"
    )
    vote.fit(X, y)
    assert count_parameters(vote) == 4 + vote.estimators_[1].tree_.node_count


def test_count_parameters_of_xgboost_counts_every_tree_node(tiny):
    xgb = pytest.importorskip("xgboost")
    X, y = tiny
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, y)
    assert count_parameters(model) == len(model.get_booster().trees_to_dataframe()) > 0


def test_count_parameters_of_lightgbm_counts_every_tree_node(tiny):
    lgb = pytest.importorskip("lightgbm")
    X, y = tiny
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, min_child_samples=5, n_jobs=1, verbose=-1).fit(X, y)
    assert count_parameters(model) == len(model.booster_.trees_to_dataframe()) > 0


def test_count_parameters_of_other_kinds(tiny):
    X, y = tiny
    svc = SVC(kernel="rbf").fit(X, y)
    n_sv = len(svc.support_vectors_)
    assert count_parameters(svc) == n_sv * 3 + n_sv + 1  # vectors, dual coefficients, intercept
    kernel = make_pipeline(Nystroem(n_components=10, random_state=0), LogisticRegression()).fit(X, y)
    assert count_parameters(kernel) == 10 * 3 + 10 + 1
    mlp = MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0)
    with pytest.warns(Warning):  # does not converge in 20 iterations, on purpose
        mlp.fit(X, y)
    assert count_parameters(mlp) == 3 * 4 + 4 + 4 * 1 + 1
    calibrated = CalibratedClassifierCV(LogisticRegression(), cv=2, method="sigmoid").fit(X, y)
    assert count_parameters(calibrated) == 2 * (4 + 2)  # 2 folds x (model + Platt's a, b)

    frame = pd.DataFrame({"num": X[:, 0], "cat": np.where(X[:, 1] > 0, "hi", "lo")})
    ct = ColumnTransformer([("num", StandardScaler(), ["num"]), ("cat", OneHotEncoder(), ["cat"])])
    pipe = Pipeline([("prep", ct), ("model", LogisticRegression())]).fit(frame, y)
    assert count_parameters(pipe) == 2 + 2 + (3 + 1)  # scaler 2, two categories, 3 coefs + intercept


class _Wrapper:
    """Stands in for a torch model wrapper: it reports its own parameter count."""

    def __init__(self):
        self.n_parameters_ = 1234


class _Unknown:
    """An unknown fitted type: counted by its numeric array attributes ending in `_`."""

    def fit(self, X, y=None):
        return self

    def get_params(self, deep=True):
        return {}

    def __init__(self):
        self.weights_ = np.zeros((3, 2))
        self.bias_ = np.zeros(2)
        self.classes_ = np.array([0, 1])  # describes the data: not counted
        self.note = np.zeros(100)  # no trailing underscore: not a learned attribute


def test_count_parameters_wrappers_fallback_and_unfitted():
    assert count_parameters(_Wrapper()) == 1234
    assert count_parameters(_Unknown()) == 6 + 2
    with pytest.raises(ValueError, match="not fitted"):
        count_parameters(LogisticRegression())


def test_complexity_score_is_log_of_parameter_count_and_monotonic():
    rng = np.random.default_rng(0)
    scores = []
    for n_features in (1, 5, 50):
        X = rng.normal(size=(40, n_features))
        model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
        assert complexity_score(model) == pytest.approx(math.log10(1 + n_features + 1))
        scores.append(complexity_score(model))
    assert scores == sorted(scores) and len(set(scores)) == 3


def test_interpretability_score_formula_and_ordering():
    assert FAMILIES == ("linear", "tree", "tree_ensemble", "boosting", "kernel", "neural", "ensemble")
    assert interpretability_score("linear", 0) == 1.0
    # 999 parameters: log10(1000) = 3 -> penalty 1 / 1.3.
    assert interpretability_score("tree", 999) == pytest.approx(0.6 / 1.3)
    for n in (10, 1000, 10**6):
        scores = [interpretability_score(f, n) for f in FAMILIES]
        assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
        assert (
            interpretability_score("linear", n)
            > interpretability_score("tree_ensemble", n)
            > interpretability_score("neural", n)
        )
    assert interpretability_score("boosting", 10) > interpretability_score("boosting", 10_000)


def test_interpretability_score_rejects_unknown_family_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown model family 'forest'.*linear, tree, tree_ensemble"):
        interpretability_score("forest", 10)
    with pytest.raises(ValueError, match="n_parameters"):
        interpretability_score("linear", -1)


def test_requirements_list_the_libraries_a_pickled_model_needs():
    import pandas as pd

    from pipelines.training import algorithms
    from pipelines.training.algorithms import FeatureSpec

    X = pd.DataFrame({"a": np.arange(40.0), "c": ["x", "y"] * 20})
    y = np.array([0, 1] * 20)
    features = FeatureSpec(("a",), ("c",))

    def reqs(name, **params):
        model = algorithms.build(name, features, 0).set_params(**params).fit(X, y)
        return {r.partition("==")[0] for r in requirements(model)}

    assert reqs("logreg") == {"cloudpickle", "numpy", "scikit-learn"}
    assert "xgboost" in reqs("xgboost", model__n_estimators=2) and "torch" not in reqs("xgboost", model__n_estimators=2)
    assert "torch" in reqs("mlp_torch", model__max_epochs=2)  # weights pickle as numpy, torch needed to predict
    assert all("+" not in r for r in requirements(algorithms.build("logreg", features, 0).fit(X, y)))


def test_latency_p99_is_the_median_of_block_p99s_so_one_burst_does_not_move_it():
    X = pd.DataFrame({"a": np.arange(10.0)})
    ticks = iter(range(10**9))
    slow_calls = set(range(100, 110))  # ten slow calls in a row: one burst of load, inside one block

    def clock() -> int:
        return next(ticks) * 1_000_000  # 1 ms per tick

    calls = {"n": 0}

    def predict(frame):
        calls["n"] += 1
        if calls["n"] - 1 in slow_calls:
            for _ in range(50):  # 50 more ticks of the clock: this call takes about 50 ms
                clock()
        return np.zeros(len(frame))

    out = latency(predict, X, single_rows=500, warmup=0, blocks=5, clock=clock)
    assert out["p99_ms"] < 5  # 4 of 5 blocks never saw the burst
    calls["n"] = 0
    plain = latency(predict, X, single_rows=500, warmup=0, blocks=1, clock=clock)
    assert plain["p99_ms"] > 40  # one block: the same 2% burst sets the p99
