"""Rating and ranking metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from pipelines.recommendation import metrics


def test_rmse_and_mae_by_hand():
    y, p = [4, 3, 5], [3.5, 3, 3]  # errors 0.5, 0, 2
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt((0.25 + 0 + 4) / 3))
    assert metrics.mae(y, p) == pytest.approx(2.5 / 3)


def test_hits_marks_relevant_items_and_never_padding():
    top = np.array([[3, 1, -1], [0, 2, 1]])
    hit = metrics.hits(top, rel_rows=[0, 0, 1], rel_items=[1, 4, 2], n_items=5)
    assert hit.tolist() == [[False, True, False], [False, True, False]]


def test_ranking_metrics_by_hand():
    # user 0: relevant {a, b, c}, list hits at ranks 1 and 3 (k = 3)
    # user 1: relevant {d}, list hits at rank 2
    # user 2: no relevant item: left out of every average
    hit = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]], bool)
    n_rel = np.array([3, 1, 0])
    m = metrics.ranking_metrics(hit, n_rel, k=3)
    d = [1 / math.log2(r + 1) for r in (1, 2, 3)]
    ndcg0 = (d[0] + d[2]) / (d[0] + d[1] + d[2])  # ideal: 3 hits in ranks 1..3
    ndcg1 = d[1] / d[0]  # ideal: the one hit at rank 1
    assert m["users"] == 2
    assert m["precision"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["recall"] == pytest.approx((2 / 3 + 1 / 1) / 2)
    assert m["ndcg"] == pytest.approx((ndcg0 + ndcg1) / 2)
    ap0 = (1 / 1 + 2 / 3) / 3  # P@1 = 1, P@3 = 2/3, over min(k, 3) = 3
    ap1 = (1 / 2) / 1  # P@2 = 1/2, over min(k, 1) = 1
    assert m["map"] == pytest.approx((ap0 + ap1) / 2)


def test_cut_off_and_short_lists():
    hit = np.array([[0, 1, 1, 1]], bool)
    at2 = metrics.ranking_metrics(hit, np.array([5]), k=2)
    assert at2["precision"] == pytest.approx(0.5) and at2["recall"] == pytest.approx(0.2)
    assert at2["map"] == pytest.approx((1 / 2) / 2)  # AP@2 divides by min(2, 5)
    # a list shorter than k: the missing ranks are misses
    short = metrics.ranking_metrics(np.array([[1]], bool), np.array([1]), k=10)
    assert short["precision"] == pytest.approx(0.1) and short["ndcg"] == pytest.approx(1.0)


def test_perfect_and_empty_lists():
    perfect = metrics.ranking_metrics(np.ones((2, 4), bool), np.array([4, 10]), k=4)
    assert perfect["ndcg"] == pytest.approx(1.0) and perfect["map"] == pytest.approx(1.0)
    assert perfect["recall"] == pytest.approx((1 + 0.4) / 2)
    nobody = metrics.ranking_metrics(np.zeros((1, 3), bool), np.array([0]), k=3)
    assert nobody["users"] == 0 and math.isnan(nobody["ndcg"])


def test_ndcg_curve_and_coverage():
    hit = np.array([[0, 1]], bool)
    assert metrics.ndcg_curve(hit, np.array([1]), [1, 2]) == pytest.approx([0.0, 1 / math.log2(3)])
    assert metrics.coverage(np.array([[0, 1], [1, -1]]), n_items=4) == 0.5
