"""The recommenders on tiny matrices: hand-checked neighbours and predictions, unknown users and items,
empty histories, and the estimator contract for every model."""

import math
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from pipelines.constants import ITEM_ID, RATING, USER_ID
from pipelines.recommendation import models
from pipelines.recommendation.data import synthetic_ratings
from pipelines.recommendation.models.base import NotFittedOrUnsupported, lookup
from pipelines.recommendation.models.neighbours import ItemKNN, UserKNN

# Users 10, 20, 30; items "a", "b", "c" (ids of any type work).
#        a  b  c
#   10:  5  3  .      user mean 4     -> centred +1, -1
#   20:  4  2  5      user mean 11/3  -> centred +1/3, -5/3, +4/3
#   30:  1  .  2      user mean 3/2   -> centred -1/2, +1/2
TINY = pd.DataFrame(
    {
        USER_ID: [10, 10, 20, 20, 20, 30, 30],
        ITEM_ID: ["a", "b", "a", "b", "c", "a", "c"],
        RATING: [5, 3, 4, 2, 5, 1, 2],
    }
)


def _fit(model, frame=TINY):
    return model.fit(frame[[USER_ID, ITEM_ID]], frame[RATING])


def test_user_knn_similarities_and_predictions_by_hand():
    m = _fit(UserKNN(k=2, shrinkage=0))
    S = m.neighbours_.toarray()
    # cos(10, 20) = (1 * 1/3 + -1 * -5/3) / (sqrt(2) * sqrt(42)/3) = 6 / sqrt(84)
    assert S[0, 1] == pytest.approx(6 / math.sqrt(84))
    # cos(20, 30) = (1/3 * -1/2 + 4/3 * 1/2) / (sqrt(42)/3 * sqrt(1/2))
    assert S[1, 2] == pytest.approx(0.5 / (math.sqrt(42) / 3 * math.sqrt(0.5)))
    assert S[0, 2] == 0 and S[2, 0] == 0  # cos(10, 30) = -1/2 / ... < 0: not a neighbour
    assert np.allclose(S, S.T) and (np.diag(S) == 0).all()
    raw = m._rating_block(np.array([0, 2]))
    # user 10, item c: only neighbour 20 rated c (+4/3): 4 + 4/3; user 30, item b: 20 rated b (-5/3): 3/2 - 5/3
    assert raw[0, 2] == pytest.approx(4 + 4 / 3) and raw[1, 1] == pytest.approx(1.5 - 5 / 3)
    pred = m.predict(pd.DataFrame({USER_ID: [10, 30], ITEM_ID: ["c", "b"]}))
    assert pred.tolist() == [5.0, 1.0]  # clipped to the 1..5 range seen in training
    # ranking score: similarity-weighted count of neighbours who rated the item
    assert m._score_block(np.array([0]))[0, 2] == pytest.approx(6 / math.sqrt(84))


def test_item_knn_similarities_and_predictions_by_hand():
    m = _fit(ItemKNN(k=2, shrinkage=0))
    # item means a 10/3, b 5/2, c 7/2; centred columns a (5/3, 2/3, -7/3), b (1/2, -1/2), c (3/2, -3/2) over users 20, 30
    S = m.neighbours_.toarray()
    norm_a = math.sqrt(78) / 3
    assert S[0, 1] == pytest.approx((5 / 6 - 2 / 6) / (norm_a * math.sqrt(0.5)))
    assert S[0, 2] == pytest.approx((2 / 3 * 3 / 2 + 7 / 3 * 3 / 2) / (norm_a * math.sqrt(4.5)))
    assert S[1, 2] == 0  # (-1/2 * 3/2) < 0
    raw = m._rating_block(np.array([0, 2]))
    # user 10, item c: neighbour a, rated 5 by user 10 (+5/3 from a's mean): 7/2 + 5/3
    assert raw[0, 2] == pytest.approx(3.5 + 5 / 3)
    # user 30, item b: neighbour a, rated 1 (-7/3): 5/2 - 7/3
    assert raw[1, 1] == pytest.approx(2.5 - 7 / 3)


def _reference_user_knn(R: np.ndarray, k: int, shrinkage: float) -> np.ndarray:
    """The formulas with explicit loops (0 = unrated), as a check of the vectorised version."""
    n_u, n_i = R.shape
    rated = R > 0
    mean = np.array([R[u, rated[u]].mean() for u in range(n_u)])
    C = np.where(rated, R - mean[:, None], 0.0)
    S = np.zeros((n_u, n_u))
    for u in range(n_u):
        for v in range(n_u):
            if u != v:
                s = C[u] @ C[v] / (np.linalg.norm(C[u]) * np.linalg.norm(C[v]))
                co = (rated[u] & rated[v]).sum()
                S[u, v] = max(s * co / (co + shrinkage), 0.0)
        keep = np.argsort(-S[u], kind="stable")[:k]
        S[u, np.setdiff1d(np.arange(n_u), keep)] = 0.0
    P = np.zeros((n_u, n_i))
    for u in range(n_u):
        for i in range(n_i):
            w = [(S[u, v], C[v, i]) for v in range(n_u) if S[u, v] > 0 and rated[v, i]]
            den = sum(s for s, _ in w)
            P[u, i] = mean[u] + (sum(s * c for s, c in w) / den if den > 0 else 0.0)
    return P


def test_user_knn_matches_a_loop_reference_on_a_random_matrix():
    rng = np.random.default_rng(3)
    R = np.where(rng.random((9, 7)) < 0.6, rng.integers(1, 6, (9, 7)), 0).astype(float)
    R[:, 0] = np.maximum(R[:, 0], 1)  # every user rated something
    u, i = np.nonzero(R)
    frame = pd.DataFrame({USER_ID: u, ITEM_ID: i, RATING: R[u, i]})
    m = _fit(UserKNN(k=3, shrinkage=2.0), frame)
    got = m._rating_block(np.arange(9))
    assert np.allclose(got[:, m.item_ids_], _reference_user_knn(R, 3, 2.0)[:, m.item_ids_])


def test_unknown_users_and_items_fall_back_to_the_baseline():
    m = _fit(UserKNN())
    X = pd.DataFrame({USER_ID: [10, 99, 99, 10], ITEM_ID: ["zz", "a", "zz", "a"]})
    p = m.predict(X)
    mu, bu, bi = m.global_mean_, m.baseline_user_, m.baseline_item_
    assert p[0] == pytest.approx(mu + bu[0])  # known user, unknown item
    assert p[1] == pytest.approx(mu + bi[0])  # unknown user, known item
    assert p[2] == pytest.approx(mu)  # both unknown
    assert np.isfinite(p).all()
    # the baseline is the regularised fixed point: b_i = sum(r - mu - b_u) / (10 + n_i)
    a = TINY[TINY[ITEM_ID] == "a"]
    u_idx = lookup(a[USER_ID].to_numpy(), m.user_ids_)
    assert bi[0] == pytest.approx((a[RATING] - mu - bu[u_idx]).sum() / (10 + 3), rel=1e-3)


def test_recommend_excludes_seen_items_and_gives_unknown_users_popular_items():
    m = _fit(UserKNN())
    out = m.recommend([30, 10, 12345], n=3)
    assert list(out.columns) == [USER_ID, "rank", ITEM_ID, "score", "source"]
    assert out.loc[out[USER_ID] == 30, ITEM_ID].tolist() == ["b"]  # 30 rated a and c: only b is left
    assert out.loc[out[USER_ID] == 10, ITEM_ID].tolist() == ["c"]
    stranger = out[out[USER_ID] == 12345]
    assert stranger[ITEM_ID].tolist() == ["a", "b", "c"]  # by number of ratings: a 3, then b and c 2 (b first)
    assert (stranger["source"] == "popular").all() and stranger["rank"].tolist() == [1, 2, 3]
    with_seen = m.recommend([30], n=3, exclude_seen=False)
    assert len(with_seen) == 3


def test_a_user_who_rated_everything_gets_an_empty_list_not_an_error():
    m = _fit(ItemKNN())
    assert m.recommend([20], n=5).empty
    assert m.top_n(np.array([1]), 2)[0].tolist() == [[-1, -1]]


def test_empty_history_and_empty_input():
    m = _fit(models.build("two_tower", max_epochs=2))
    out = m.recommend(np.array([], dtype=np.int64), n=2)
    assert out.empty and list(out.columns) == [USER_ID, "rank", ITEM_ID, "score", "source"]
    # a user from the user table with no rating at all is unknown to the model: popular items
    assert (m.recommend([77], n=2)["source"] == "popular").all()


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (TINY.head(0), "empty ratings table"),
        (pd.concat([TINY, TINY.head(1)]), "appear more than once"),
        (TINY.rename(columns={ITEM_ID: "movie"}), r"lacks column\(s\) \['item_id'\]"),
        (TINY.assign(**{RATING: [5, 3, 4, np.nan, 5, 1, 2]}), "NaN"),
    ],
    ids=["empty", "duplicate-pair", "missing-column", "nan-rating"],
)
def test_bad_input_is_refused_naming_the_problem(frame, match):
    with pytest.raises(ValueError, match=match):
        UserKNN().fit(frame.drop(columns=[RATING]), frame[RATING])


def test_ranking_only_model_does_not_predict_ratings():
    m = _fit(models.build("two_tower", max_epochs=1))
    with pytest.raises(NotFittedOrUnsupported, match="does not predict ratings"):
        m.predict(TINY)


@pytest.fixture(scope="module")
def small():
    return synthetic_ratings(60, 40, 900, seed=5)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_model_keeps_the_contract(name, small):
    model = models.build(name, seed=1, max_epochs=3)
    assert model.fit(small[[USER_ID, ITEM_ID]], small[RATING]) is model
    learned = [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    assert {"user_ids_", "item_ids_", "seen_", "item_counts_"} <= set(learned)
    assert clone(model).get_params() == model.get_params()
    assert model.n_parameters_ > 0
    top = model.recommend(small[USER_ID].unique()[:5], n=4)
    assert (top.groupby(USER_ID).size() == 4).all()
    seen = set(zip(small[USER_ID], small[ITEM_ID], strict=True))
    assert not any((u, i) in seen for u, i in zip(top[USER_ID], top[ITEM_ID], strict=True))
    first = small[USER_ID].iloc[0]
    again = pickle.loads(pickle.dumps(model)).recommend([first], n=4)
    pd.testing.assert_frame_equal(again, top[top[USER_ID] == first].reset_index(drop=True), rtol=1e-5)
    if models.get(name).tasks != ("ranking",):
        p = model.predict(small.head(50))
        assert p.shape == (50,) and np.isfinite(p).all() and p.min() >= 1 and p.max() <= 5


def test_factorisations_learn_a_low_rank_signal():
    rng = np.random.default_rng(0)
    P, Q = rng.normal(0, 1, (50, 3)), rng.normal(0, 1, (40, 3))
    u, i = np.nonzero(rng.random((50, 40)) < 0.5)
    frame = pd.DataFrame({USER_ID: u, ITEM_ID: i, RATING: 3 + 0.4 * (P[u] * Q[i]).sum(1)})
    for name in ("biased_mf", "bayesian_mf"):
        m = models.build(name).set_params(n_factors=3)
        if name == "biased_mf":
            m.set_params(reg=0.01, reg_bias=0.01)  # noiseless data: little shrinkage needed
        _fit(m, frame)
        assert m.history_[-1]["train_rmse"] < 0.25 * frame[RATING].std(), name


def test_bayesian_mf_keeps_thinned_samples():
    m = _fit(models.build("bayesian_mf").set_params(n_sweeps=30, burn_in=10, max_samples=5, n_factors=2))
    assert m.n_samples_ == 5 and m.user_factors_.shape == (3, 10) and len(m.history_) == 30
    assert m.noise_precision_ > 0


def test_max_epochs_caps_iterations_and_unknown_names_are_refused():
    assert models.build("biased_mf", max_epochs=2).n_iters == 2
    assert models.build("two_tower", max_epochs=500).max_epochs == 100  # a cap never raises the default
    with pytest.raises(ValueError, match="unknown recommender 'svd'; known: popularity"):
        models.build("svd")


def test_importing_the_package_loads_neither_torch_nor_mlflow():
    code = (
        "import sys, pipelines.recommendation, pipelines.recommendation.models, pipelines.recommendation.evaluate;"
        "import pipelines.recommendation.models.two_tower;"
        "print('torch' in sys.modules, 'mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
