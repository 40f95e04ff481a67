"""The k-fold and per-user hold-out splits."""

import numpy as np
import pytest

from pipelines.recommendation.split import kfold, per_user_holdout


def test_kfold_puts_every_rating_in_exactly_one_fold():
    folds = kfold(103, 5, seed=1)
    assert set(np.bincount(folds)) == {20, 21}
    assert np.bincount(folds).sum() == 103
    assert (kfold(103, 5, seed=1) == folds).all() and (kfold(103, 5, seed=2) != folds).any()
    with pytest.raises(ValueError, match="at least 2 folds"):
        kfold(10, 1, 0)
    with pytest.raises(ValueError, match="cannot be cut into 5 folds"):
        kfold(3, 5, 0)


def test_per_user_holdout_takes_a_quarter_of_each_user_and_keeps_one():
    users = np.repeat([10, 20, 30, 40], [8, 4, 2, 1])
    held = per_user_holdout(users, 0.25, 7)
    per_user = {u: int(held[users == u].sum()) for u in (10, 20, 30, 40)}
    assert per_user == {10: 2, 20: 1, 30: 1, 40: 0}  # round(0.25 n), at most n - 1: a user with 1 rating keeps it
    assert (per_user_holdout(users, 0.25, 7) == held).all()
    shuffled = np.random.default_rng(0).permutation(len(users))
    assert per_user_holdout(users[shuffled], 0.25, 7).sum() == held.sum()  # works on any row order


def test_per_user_holdout_edges():
    assert per_user_holdout(np.array([]), 0.25, 0).shape == (0,)
    assert not per_user_holdout(np.array([1, 1, 2]), 0.0, 0).any()
    with pytest.raises(ValueError, match="holdout fraction"):
        per_user_holdout(np.array([1]), 1.0, 0)
