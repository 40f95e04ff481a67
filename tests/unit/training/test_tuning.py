"""Hyperparameter search on tiny data: modes, stopping rules, spaces and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skopt.space import Integer, Real

from pipelines.training import tuning
from pipelines.training.algorithms import BASE_ALGORITHMS, FeatureSpec
from pipelines.training.data import TrainingData
from pipelines.training.evaluate import EvalConfig

FEATURES = FeatureSpec(numeric=("x1", "x2"), categorical=("color",))
CONFIG = EvalConfig(folds=3, seed=3)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    rng = np.random.default_rng(1)
    n = 300
    frame = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "color": rng.choice(["r", "g"], n).astype(object)}
    )
    y = pd.Series(((frame["x1"] + frame["x2"] * (frame["color"] == "r") + rng.logistic(size=n)) > 0).astype(int))
    return TrainingData("toy", "2026-01-01", FEATURES, frame, y, frame[:50], y[:50], {})


def test_bayes_search_runs_the_calls_and_tracks_the_best(data):
    seen = []
    result = tuning.tune("logreg", data, CONFIG, mode="bayes", n_calls=7, patience=100, on_trial=seen.append, seed=0)
    assert [t.number for t in result.trials] == list(range(1, 8)) and seen == result.trials
    assert all(1e-3 <= t.params["model__C"] <= 100 for t in result.trials)
    assert result.best.cv_roc_auc == max(t.cv_roc_auc for t in result.trials) > 0.6
    best = result.best_so_far()
    assert best == sorted(best) and best[-1] == result.best.cv_roc_auc
    assert result.stopped_because == "7 trials done"


def test_random_search_is_reproducible(data):
    a = tuning.tune("logreg", data, CONFIG, mode="random", n_calls=4, seed=5)
    b = tuning.tune("logreg", data, CONFIG, mode="random", n_calls=4, seed=5)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.cv_roc_auc for t in a.trials] == [t.cv_roc_auc for t in b.trials]


def test_grid_mode_tries_every_point(data):
    grid = {"model__n_estimators": [5, 10], "model__max_depth": [2, 3], "model__learning_rate": [0.1]}
    result = tuning.tune("xgboost", data, CONFIG, mode="grid", grid=grid, n_calls=100, patience=1)
    assert len(result.trials) == 4 and result.stopped_because == "grid exhausted"  # patience does not cut a grid
    assert {(t.params["model__n_estimators"], t.params["model__max_depth"]) for t in result.trials} == {
        (5, 2), (5, 3), (10, 2), (10, 3)
    }  # fmt: skip


def test_default_grids_have_27_points():
    from sklearn.model_selection import ParameterGrid

    for name in ("xgboost", "lightgbm"):
        assert len(ParameterGrid(tuning.GRIDS[name])) == 27
        box = tuning.grid_box(tuning.GRIDS[name])
        assert isinstance(box["model__n_estimators"], Integer) and (
            box["model__n_estimators"].low,
            box["model__n_estimators"].high,
        ) == (100, 500)
        assert isinstance(box["model__learning_rate"], Real) and box["model__learning_rate"].prior == "log-uniform"


def test_search_stops_when_nothing_improves(data):
    flat = {"model__max_iter": Integer(1000, 2000)}  # changes nothing: every trial scores the same
    result = tuning.tune("logreg", data, CONFIG, mode="random", n_calls=20, patience=3, space=flat)
    assert len(result.trials) == 4 and result.stopped_because == "no improvement in the last 3 trials"


def test_time_budget_and_target_stop_the_search(data):
    result = tuning.tune("logreg", data, CONFIG, mode="bayes", n_calls=10, time_budget_s=0)
    assert len(result.trials) == 1 and "time budget" in result.stopped_because
    result = tuning.tune("logreg", data, CONFIG, mode="random", n_calls=10, target=0.0)
    assert len(result.trials) == 1 and result.stopped_because.startswith("reached the target")
    assert result.evals_to_reach(0.0) == 1 and result.evals_to_reach(1.01) is None


def test_every_base_algorithm_has_a_space_and_errors_are_clear(data):
    assert all(tuning.search_space(name) for name in BASE_ALGORITHMS)
    with pytest.raises(ValueError, match="unknown tuning mode 'annealing'"):
        tuning.tune("logreg", data, CONFIG, mode="annealing")
    with pytest.raises(ValueError, match="'voting' is an ensemble"):
        tuning.tune("voting", data, CONFIG)
    with pytest.raises(ValueError, match="no grid for 'logreg'"):
        tuning.tune("logreg", data, CONFIG, mode="grid")
    with pytest.raises(ValueError, match="no search space for 'nope'"):
        tuning.search_space("nope")


def test_convergence_figure_draws_one_line_per_search(data):
    results = [tuning.tune("logreg", data, CONFIG, mode=m, n_calls=3, seed=0) for m in ("bayes", "random")]
    fig = tuning.convergence_figure(results)
    assert len(fig.axes[0].lines) == 2


def test_checkpoints_span_the_prefixes_up_to_the_fit():
    assert tuning.checkpoints(100, 100) == [100] and tuning.checkpoints(100, 90) == [90]
    counts = tuning.checkpoints(100, 500)
    assert counts[0] == 100 and counts[-1] == 500 and len(counts) == tuning.PREFIX_CHECKPOINTS
    assert counts == sorted(set(counts))
    assert tuning.checkpoints(10, 13, count=16) == [10, 11, 12, 13]


@pytest.mark.parametrize("algorithm", tuning.PREFIX_SCORED)
def test_prefix_scores_are_the_scores_of_refits(algorithm, data):
    """One fit of 30 trees per fold scores 5, 12 and 30 trees as separate fits would."""
    from pipelines.training.evaluate import cross_validate

    def make(n):
        return lambda: tuning._build(algorithm, data, CONFIG.seed, {"model__n_estimators": n, "model__max_depth": 2})

    means, best, cv = tuning.prefix_cross_validate(make(30), data, CONFIG, [5, 12, 30])
    refits = {n: cross_validate(make(n), data, CONFIG) for n in (5, 12, 30)}
    for n, refit in refits.items():
        assert means[n] == pytest.approx(np.mean(refit.aucs), abs=1e-6), n
    assert best == max(refits, key=lambda n: np.mean(refits[n].aucs))
    np.testing.assert_array_equal(cv.oof, refits[best].oof)  # exact, not only by rank
    assert cv.aucs == refits[best].aucs and means[best] == np.mean(cv.aucs)


@pytest.mark.parametrize("mode", ["bayes", "random"])
def test_boosting_trials_keep_their_best_prefix(mode, data):
    """Every trial fits the top of the tree range and keeps its best prefix from the bottom up."""
    space = {"model__n_estimators": Integer(5, 40), "model__learning_rate": Real(0.05, 0.5, prior="log-uniform")}
    result = tuning.tune("lightgbm", data, CONFIG, mode=mode, n_calls=6, patience=100, space=space, seed=1)
    assert len(result.trials) == 6 and len({t.params["model__learning_rate"] for t in result.trials}) == 6
    for t in result.trials:
        assert list(t.prefixes) == tuning.checkpoints(5, 40) and t.trees_fitted == 40
        assert t.params["model__n_estimators"] == max(t.prefixes, key=t.prefixes.get)
        assert t.cv_roc_auc == t.prefixes[t.params["model__n_estimators"]] == np.mean(t.cv.aucs)
    grid = tuning.tune("lightgbm", data, CONFIG, mode="grid", grid={"model__n_estimators": [5, 40]})
    assert [t.prefixes for t in grid.trials] == [{}, {}]  # a grid scores exactly its points


def test_bayes_search_leaves_the_tree_count_to_the_prefixes(data, monkeypatch):
    """gp_minimize searches the other dimensions and sees each trial's best prefix."""
    import skopt

    seen, minimize = {}, skopt.gp_minimize

    def spy(func, dimensions, **kwargs):
        seen["dimensions"], seen["values"] = dimensions, []
        return minimize(lambda x: seen["values"].append(func(x)) or seen["values"][-1], dimensions, **kwargs)

    monkeypatch.setattr(skopt, "gp_minimize", spy)
    space = {"model__n_estimators": Integer(5, 40), "model__max_depth": Integer(2, 4)}
    result = tuning.tune("xgboost", data, CONFIG, mode="bayes", n_calls=7, patience=100, space=space, seed=2)
    assert seen["dimensions"] == [space["model__max_depth"]]
    assert seen["values"] == [-t.cv_roc_auc for t in result.trials] and len(result.trials) == 7
    assert {t.trees_fitted for t in result.trials} == {40}
