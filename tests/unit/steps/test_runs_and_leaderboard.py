"""Parent and nested MLflow runs, figures and the leaderboard against a throwaway MLflow store and lake."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pytest  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from pipelines.constants import GOLD  # noqa: E402
from pipelines.steps import (  # noqa: E402
    RunContext,
    fail,
    leaderboard,
    log_figure,
    nested_run,
    open_parent,
    param_strings,
    parent_run,
    rank,
)
from pipelines.tracking import read_frame  # noqa: E402

EXPERIMENT = "steps_test"


@pytest.fixture
def ctx(settings):
    ctx = RunContext.create(
        "sales", "2026-01-01", settings, params={"models": ["a", "b"], "k": 3}, dag_id="d", airflow_run_id="manual__1"
    )
    return open_parent(ctx, EXPERIMENT, gold_content_hash="g1", summary={"rows": 5})


def test_parent_run_is_tagged_and_found_again_on_a_retry(ctx):
    parent = mlflow.get_run(ctx.parent_run_id)
    assert parent.data.tags["gold_content_hash"] == "g1" and parent.data.tags["role"] == "parent"
    assert parent.data.params == {"models": '["a", "b"]', "k": "3"}
    assert ctx.gold_content_hash == "g1"
    again = open_parent(ctx.with_(parent_run_id=None), EXPERIMENT, gold_content_hash="g1")
    assert again.parent_run_id == ctx.parent_run_id
    with parent_run(ctx) as run_id:
        assert mlflow.active_run().info.run_id == run_id == ctx.parent_run_id
    with pytest.raises(ValueError, match="no parent_run_id"), parent_run(ctx.with_(parent_run_id=None)):
        pass


def test_nested_run_ends_failed_with_the_reason_and_a_retry_reuses_it(ctx):
    with pytest.raises(RuntimeError), nested_run(ctx, EXPERIMENT, "a", {"model": "a"}) as first:
        raise RuntimeError("out of memory")
    run = mlflow.get_run(first)
    assert run.info.status == "FAILED" and run.data.tags["failure_reason"] == "RuntimeError: out of memory"
    assert run.data.tags["mlflow.parentRunId"] == ctx.parent_run_id and run.data.tags["model"] == "a"
    with nested_run(ctx, EXPERIMENT, "a", {"model": "a"}) as retry:
        mlflow.log_metric("score", 1.0)
    assert retry == first and mlflow.get_run(first).info.status == "FINISHED"
    with nested_run(ctx, EXPERIMENT, "b", {"model": "b"}) as other:
        fail("diverged", traceback="Traceback ...")
    run = mlflow.get_run(other)
    assert other != first and run.info.status == "FAILED" and run.data.tags["failure_reason"] == "diverged"
    assert mlflow.active_run() is None


def test_log_figure_logs_and_closes_it(ctx):
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    with parent_run(ctx):
        log_figure(fig, "plots/line.png")
    assert not plt.get_fignums()
    assert "plots/line.png" in {a.path for a in MlflowClient().list_artifacts(ctx.parent_run_id, "plots")}


def test_param_strings():
    assert param_strings({"a": [1], "b": {"x": 1}, "c": 2.5, "d": None}, "p.") == {
        "p.a": "[1]", "p.b": '{"x": 1}', "p.c": "2.5", "p.d": "None"
    }  # fmt: skip


RECORDS = [
    {"model": "slow", "status": "ok", "score": 0.7, "mae": 1.0},
    {"model": "broken", "status": "failed", "reason": "boom"},
    None,  # a mapped task that crashed
    {"model": "best", "status": "ok", "score": 0.9, "mae": 2.0},
    {"model": "tie", "status": "ok", "score": 0.7, "mae": 0.5},
    {"model": "nan", "status": "ok", "score": float("nan"), "mae": 0.1},
]


def test_rank_puts_failures_last_and_nan_after_numbers():
    board = rank(RECORDS, ["score", "mae"], ascending=[False, True])
    assert board.table["model"].tolist() == ["best", "tie", "slow", "nan", "broken"]
    assert board.table["rank"].tolist() == [1, 2, 3, 4, 5] and board.table.columns[0] == "rank"
    assert (
        board.best["model"] == "best"
        and board.best_value("score") == 0.9
        and isinstance(board.best_value("mae"), float)
    )
    assert board.failed == [{"model": "broken", "reason": "boom"}]
    lower = rank(RECORDS, ["mae"], ascending=True)
    assert lower.table["model"].tolist()[:2] == ["nan", "tie"]


def test_rank_copes_with_all_failures_and_refuses_a_bad_order():
    board = rank([{"algorithm": "x", "status": "failed", "reason": "r"}], ["cv_roc_auc"], key="algorithm")
    assert board.best is None and board.best_value("cv_roc_auc") is None and math.isnan(board.table["cv_roc_auc"][0])
    with pytest.raises(ValueError, match="ascending has 1 values for 2 ranking columns"):
        rank(RECORDS, ["score", "mae"], ascending=[True])


def test_leaderboard_written_to_gold_and_mlflow_once_per_retry(ctx):
    board = rank(RECORDS, ["score"])
    for _ in range(2):  # a retried leaderboard task replaces the table
        manifest = leaderboard.write(ctx, board, "sales_board", ranked_by="score")
        with parent_run(ctx):
            leaderboard.log(board)
    table = ctx.lake.read_partition(GOLD, "sales_board", ctx.ds).to_pandas()
    assert table["model"].tolist() == board.table["model"].tolist() and manifest["ranked_by"] == "score"
    assert manifest["parent_run_id"] == ctx.parent_run_id
    assert read_frame(ctx.parent_run_id, "leaderboard.json")["model"].tolist() == table["model"].tolist()
    assert mlflow.get_run(ctx.parent_run_id).data.tags["failed_models"] == "broken"
