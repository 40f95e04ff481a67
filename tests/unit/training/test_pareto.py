"""Pareto selection on small hand-made leaderboards whose answers are worked out in the comments."""

import json
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from pipelines.errors import DataError
from pipelines.training.pareto import (
    DEFAULT_GATE,
    DEFAULT_OBJECTIVES,
    DEFAULT_WEIGHTS,
    Gate,
    Objective,
    ParetoError,
    Rule,
    apply_gate,
    check_weights,
    default_objectives,
    dominates,
    normalise,
    pareto_front,
    plot_front_2d,
    plot_front_3d,
    select,
    weighted_scores,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = [
    "algorithm",
    "status",
    "reason",
    "cv_roc_auc",
    "test_roc_auc",
    "latency_p99_ms",
    "complexity",
    "interpretability",
]


def _board(*rows):
    """Rows of (algorithm, cv_roc_auc, latency_p99_ms, complexity, interpretability), status ok, test = cv."""
    return pd.DataFrame(
        [(a, "ok", None, roc, roc, lat, cx, interp) for a, roc, lat, cx, interp in rows], columns=COLUMNS
    )


# The main example. Directions: ROC-AUC max, latency min, complexity min, interpretability max.
#
#   model  roc   latency  complexity  interp   on the front?
#   a      0.90   10       2.0         0.9      yes
#   b      0.87   50       3.0         0.5      no: a is better on all four
#   c      0.92   80       5.0         0.3      yes: the best ROC-AUC
#   d      0.90   10       2.5         0.9      no: a ties on three and has lower complexity
#
# A naive "all >= and one >" on the raw numbers gets it wrong twice: it keeps b (a's lower
# latency reads as "worse") and drops a (d's higher complexity reads as "better").
#
# Weighted score over the front {a, c}, each objective scaled to [0, 1] with 1 = best:
#   a: roc 0, latency 1, complexity 1, interp 1 -> 0.4*0 + 0.3 + 0.2 + 0.1 = 0.6
#   c: roc 1, latency 0, complexity 0, interp 0 -> 0.4
BOARD = _board(
    ("a", 0.90, 10.0, 2.0, 0.9),
    ("b", 0.87, 50.0, 3.0, 0.5),
    ("c", 0.92, 80.0, 5.0, 0.3),
    ("d", 0.90, 10.0, 2.5, 0.9),
)
OBJECTIVE_COLUMNS = [o.column for o in DEFAULT_OBJECTIVES]


def _naive_front(frame):
    values = frame[OBJECTIVE_COLUMNS].to_numpy()
    return np.array([not any((other >= v).all() and (other > v).any() for other in values) for v in values], dtype=bool)


def _row(frame, name):
    return frame.set_index("algorithm").loc[name]


# --- objectives and dominance ----------------------------------------------------------------


def test_front_respects_each_direction_where_a_naive_test_does_not():
    assert pareto_front(BOARD).tolist() == [True, False, True, False]
    assert _naive_front(BOARD).tolist() == [False, True, True, True]  # the mistake the spec warns about


def test_dominates_uses_each_objectives_direction():
    a, b, c, d = (BOARD.iloc[i].to_dict() for i in range(4))
    assert dominates(a, b) and dominates(a, d)
    assert not dominates(b, a) and not dominates(d, a)
    assert not dominates(a, c) and not dominates(c, a)  # a trade-off
    assert not dominates(a, a)  # nothing strictly better


def test_two_objectives_with_opposite_directions():
    objectives = (Objective("auc", "auc", "max"), Objective("ms", "ms", "min"))
    frame = pd.DataFrame({"algorithm": ["fast", "slow", "good"], "auc": [0.8, 0.8, 0.9], "ms": [1.0, 9.0, 5.0]})
    assert pareto_front(frame, objectives).tolist() == [True, False, True]


def test_identical_models_share_the_front_or_leave_it_together():
    twins = _board(("x", 0.9, 10.0, 2.0, 0.9), ("y", 0.9, 10.0, 2.0, 0.9))
    assert pareto_front(twins).tolist() == [True, True]
    better = pd.concat([twins, _board(("z", 0.95, 5.0, 1.0, 1.0))], ignore_index=True)
    assert pareto_front(better).tolist() == [False, False, True]


def test_front_matches_pairwise_dominance_on_random_ties():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.integers(0, 3, size=(25, 4)), columns=OBJECTIVE_COLUMNS).assign(
        algorithm=[f"m{i}" for i in range(25)]
    )
    rows = frame.to_dict("records")
    expected = [not any(dominates(other, row) for other in rows) for row in rows]
    assert pareto_front(frame).tolist() == expected


def test_single_model_and_empty_table():
    assert pareto_front(BOARD.iloc[:1]).tolist() == [True]
    assert pareto_front(BOARD.iloc[:0]).tolist() == []


def test_nan_objective_is_refused_naming_model_and_column():
    frame = BOARD.assign(complexity=[2.0, np.nan, 5.0, 2.5])
    with pytest.raises(ParetoError, match=r"'b' complexity=nan"):
        pareto_front(frame)
    with pytest.raises(ParetoError, match=r"'a' latency_p99_ms=inf"):
        pareto_front(BOARD.assign(latency_p99_ms=[math.inf, 50.0, 80.0, 10.0]))


def test_objective_definition_errors():
    with pytest.raises(ParetoError, match="direction must be 'max' or 'min'"):
        Objective("roc_auc", "cv_roc_auc", "up")
    with pytest.raises(ParetoError, match="unique"):
        pareto_front(BOARD, (Objective("x", "cv_roc_auc", "max"), Objective("x", "complexity", "min")))
    with pytest.raises(ParetoError, match="non-empty"):
        pareto_front(BOARD, ())
    with pytest.raises(ParetoError, match=r"\['fit_s'\] not in the table"):
        pareto_front(BOARD, (Objective("fit", "fit_s", "min"),))
    assert isinstance(ParetoError("x"), DataError)  # the DAG fails such a task at once, no retries


def test_default_objectives_read_cv_roc_auc_and_can_read_another_column():
    assert [(o.name, o.column, o.direction) for o in DEFAULT_OBJECTIVES] == [
        ("roc_auc", "cv_roc_auc", "max"),
        ("latency_p99_ms", "latency_p99_ms", "min"),
        ("complexity", "complexity", "min"),
        ("interpretability", "interpretability", "max"),
    ]
    assert default_objectives("test_roc_auc")[0] == Objective("roc_auc", "test_roc_auc", "max")


# --- normalisation and weights ---------------------------------------------------------------


def test_normalise_makes_one_best_in_each_direction_and_a_constant_column_one():
    frame = _board(("p", 0.8, 10.0, 1.0, 0.5), ("q", 0.9, 20.0, 2.0, 0.5), ("r", 1.0, 30.0, 5.0, 0.5))
    scaled = normalise(frame)
    assert scaled.columns.tolist() == ["roc_auc", "latency_p99_ms", "complexity", "interpretability"]
    np.testing.assert_allclose(scaled["roc_auc"], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(scaled["latency_p99_ms"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(scaled["complexity"], [1.0, 0.75, 0.0])
    np.testing.assert_allclose(scaled["interpretability"], [1.0, 1.0, 1.0])  # constant: 1 for all


def test_weighted_scores_by_hand():
    front = BOARD.iloc[[0, 2]]
    scores = weighted_scores(front)
    assert scores.index.tolist() == [0, 2]
    np.testing.assert_allclose(scores, [0.6, 0.4])
    np.testing.assert_allclose(weighted_scores(BOARD.iloc[[0]]), [1.0])  # one model: every column constant


def test_check_weights_defaults_normalises_and_fills_missing_with_zero():
    assert check_weights() == pytest.approx(dict(DEFAULT_WEIGHTS))
    assert check_weights({"roc_auc": 2, "latency_p99_ms": 2}) == pytest.approx(
        {"roc_auc": 0.5, "latency_p99_ms": 0.5, "complexity": 0.0, "interpretability": 0.0}
    )
    two = (Objective("roc_auc", "cv_roc_auc", "max"), Objective("fit", "fit_s", "min"))
    assert check_weights(None, two) == {"roc_auc": 1.0, "fit": 0.0}  # defaults for the objectives present


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"latency": 0.3}, r"unknown objective\(s\) \['latency'\]"),
        ({"roc_auc": -0.1, "complexity": 1}, "weight of 'roc_auc' must be a finite number >= 0"),
        ({"roc_auc": 0, "latency_p99_ms": 0.0}, "all zero"),
        ({"roc_auc": float("nan")}, "weight of 'roc_auc'"),
        ({"roc_auc": "0.4"}, "weight of 'roc_auc'"),
        ({"roc_auc": True}, "weight of 'roc_auc'"),
        ([0.4, 0.3, 0.2, 0.1], "must map objective names"),
    ],
)
def test_weight_errors(weights, message):
    with pytest.raises(ParetoError, match=message):
        check_weights(weights)


# --- gate --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "op", "threshold"),
    [("> 0.85", ">", 0.85), (">=0.85", ">=", 0.85), ("  <  100 ", "<", 100.0), ("<= 1e3", "<=", 1000.0)],
)
def test_rule_parse(text, op, threshold):
    assert Rule.parse("x", text) == Rule("x", op, threshold)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("== 1", "unknown operator '=='"),
        ("0.85", "unknown operator ''"),
        ("> abc", "must end in a number"),
        ("> nan", "finite number"),
    ],
)
def test_rule_parse_errors(text, message):
    with pytest.raises(ParetoError, match=message):
        Rule.parse("cv_roc_auc", text)


def test_gate_config_errors():
    with pytest.raises(ParetoError, match="unknown operator '!='"):
        Rule("x", "!=", 1)
    with pytest.raises(ParetoError, match="must map columns to rules"):
        Gate.from_config(["cv_roc_auc > 0.85"])
    with pytest.raises(ParetoError, match="a rule like"):
        Gate.from_config({"cv_roc_auc": 0.85})
    with pytest.raises(ParetoError, match="a rule like"):
        Gate.from_config({"cv_roc_auc": []})


def test_default_gate_and_several_rules_per_column():
    assert str(DEFAULT_GATE) == "cv_roc_auc > 0.85 and latency_p99_ms < 100"
    gate = Gate.from_config({"latency_p99_ms": [">= 0", "< 100"]})
    assert gate.rules == (Rule("latency_p99_ms", ">=", 0.0), Rule("latency_p99_ms", "<", 100.0))
    assert str(Gate()) == "no rules"


def test_apply_gate_says_which_rule_failed():
    board = _board(
        ("ok", 0.90, 10.0, 2.0, 0.9),
        ("slow", 0.95, 140.2, 5.0, 0.3),
        ("weak", 0.80, 1.0, 1.0, 1.0),
        ("both", 0.50, 300.0, 1.0, 1.0),
        ("edge", 0.85, 100.0, 1.0, 1.0),  # the default rules are strict: equal fails
    )
    gated = apply_gate(board)
    assert gated["passed_gate"].tolist() == [True, False, False, False, False]
    assert gated["failed_rules"].tolist() == [
        "",
        "latency_p99_ms 140.2 >= 100 (rule < 100)",
        "cv_roc_auc 0.8 <= 0.85 (rule > 0.85)",
        "cv_roc_auc 0.5 <= 0.85 (rule > 0.85); latency_p99_ms 300 >= 100 (rule < 100)",
        "cv_roc_auc 0.85 <= 0.85 (rule > 0.85); latency_p99_ms 100 >= 100 (rule < 100)",
    ]
    assert "passed_gate" not in board.columns  # a copy


def test_apply_gate_takes_a_config_mapping_and_reports_missing_values():
    board = BOARD.assign(cv_roc_auc=[0.9, np.nan, 0.92, 0.9])
    gated = apply_gate(board, {"cv_roc_auc": ">= 0.9"})
    assert gated["passed_gate"].tolist() == [True, False, True, True]
    assert gated["failed_rules"][1] == "cv_roc_auc is missing or not a number (rule >= 0.9)"
    assert apply_gate(board, Gate())["passed_gate"].all()


def test_failure_shows_enough_digits_to_be_true():
    assert Rule.parse("cv_roc_auc", ">= 0.85").failure(0.8499999) == "cv_roc_auc 0.8499999 < 0.85 (rule >= 0.85)"


def test_gate_on_an_unknown_column_is_an_error_naming_it():
    with pytest.raises(ParetoError, match=r"gate rule column\(s\) \['auc'\] not in the table"):
        apply_gate(BOARD, {"auc": "> 0.8"})


# --- selection ---------------------------------------------------------------------------------


def test_select_main_example():
    selection = select(BOARD)
    table = selection.table
    assert selection.selected == "a"
    assert table["on_front"].tolist() == [True, False, True, False]
    assert table["passed_gate"].all() and table["considered"].all()
    np.testing.assert_allclose(table["score"], [0.6, np.nan, 0.4, np.nan])
    assert table["selected"].tolist() == [True, False, False, False]
    assert selection.reason.startswith("selected a: highest weighted score 0.600 among the 2 model(s)")
    assert "also on the front: c 0.400" in selection.reason


def test_weights_change_the_choice():
    assert select(BOARD).selected == "a"
    assert select(BOARD, weights={"roc_auc": 1}).selected == "c"
    selection = select(BOARD, weights={"roc_auc": 0.7, "latency_p99_ms": 0.3})  # c: 0.7, a: 0.3
    assert selection.selected == "c"
    np.testing.assert_allclose(selection.table["score"].dropna(), [0.3, 0.7])


def test_single_model_is_selected_with_score_one():
    selection = select(BOARD.iloc[[1]])
    assert selection.selected == "b"
    assert selection.table["score"].tolist() == [pytest.approx(1.0)]


def test_gate_failing_every_model_selects_nothing_and_says_why():
    board = _board(("knn", 0.95, 140.2, 5.0, 0.3), ("lr", 0.80, 1.0, 1.0, 1.0), ("bad", 0.50, 300.0, 1.0, 1.0))
    selection = select(board)
    assert selection.selected is None
    assert not selection.table["selected"].any() and not selection.table["on_front"].any()
    assert selection.table["score"].isna().all()
    assert selection.reason.splitlines() == [
        "nothing selected: none of the 3 model(s) passed the gate (cv_roc_auc > 0.85 and latency_p99_ms < 100).",
        "failed the gate:",
        "  knn: latency_p99_ms 140.2 >= 100 (rule < 100)",
        "  lr: cv_roc_auc 0.8 <= 0.85 (rule > 0.85)",
        "  bad: cv_roc_auc 0.5 <= 0.85 (rule > 0.85); latency_p99_ms 300 >= 100 (rule < 100)",
    ]


def test_gate_comes_before_the_front():
    # x dominates y on the CV objectives but overfits: its test ROC-AUC fails the gate. The front
    # is taken among the models that passed, so y is on it and selected.
    board = _board(("x", 0.99, 5.0, 1.0, 1.0), ("y", 0.90, 6.0, 2.0, 0.9)).assign(test_roc_auc=[0.70, 0.89])
    assert pareto_front(board).tolist() == [True, False]
    selection = select(board, gate={"test_roc_auc": "> 0.85"})
    assert selection.selected == "y"
    assert selection.table["on_front"].tolist() == [False, True]
    assert "x: test_roc_auc 0.7 <= 0.85 (rule > 0.85)" in selection.reason


def test_failed_runs_are_not_considered_and_named():
    board = pd.concat(
        [BOARD, pd.DataFrame([{"algorithm": "mlp", "status": "failed", "reason": "MemoryError: too big"}])],
        ignore_index=True,
    )
    selection = select(board)
    assert selection.selected == "a"
    row = _row(selection.table, "mlp")
    assert not row["considered"] and not row["passed_gate"] and not row["on_front"]
    assert row["failed_rules"] == "not considered: status 'failed'"
    assert selection.reason.splitlines()[-2:] == [
        "not considered (status not ok):",
        "  mlp: failed (MemoryError: too big)",
    ]


def test_no_successful_model_even_without_metric_columns():
    board = pd.DataFrame({"algorithm": ["m"], "status": ["failed"], "reason": ["boom"], "cv_roc_auc": [np.nan]})
    selection = select(board)
    assert selection.selected is None
    assert selection.reason.splitlines() == [
        "nothing selected: no model has status ok.",
        "not considered (status not ok):",
        "  m: failed (boom)",
    ]
    assert select(board.iloc[:0]).selected is None


def test_nan_objective_excludes_that_model_by_name():
    board = BOARD.assign(interpretability=[np.nan, 0.5, 0.3, 0.9], cv_roc_auc=[0.9, 0.87, np.nan, 0.9])
    selection = select(board)
    table = selection.table
    assert table["passed_gate"].tolist() == [False, True, False, True]
    assert (
        table["failed_rules"][0]
        == "interpretability is missing or not a number (objective interpretability needs a finite number)"
    )
    assert table["failed_rules"][2] == "cv_roc_auc is missing or not a number (rule > 0.85)"  # one message per column
    assert selection.selected == "d"  # front of {b, d}: d dominates b


def test_equal_scores_go_to_the_better_first_objective_then_the_name():
    objectives = (Objective("auc", "auc", "max"), Objective("ms", "ms", "min"))
    # p: auc 1, ms 0 -> 0.5; q: auc 0, ms 1 -> 0.5. Tie: p has the better auc.
    frame = pd.DataFrame({"algorithm": ["q", "p"], "auc": [0.9, 1.0], "ms": [5.0, 10.0]})
    assert select(frame, objectives, {"auc": 1, "ms": 1}, Gate()).selected == "p"
    twins = _board(("y", 0.9, 10.0, 2.0, 0.9), ("x", 0.9, 10.0, 2.0, 0.9))
    assert select(twins).selected == "x"


def test_select_input_errors():
    with pytest.raises(ParetoError, match="must be unique"):
        select(pd.concat([BOARD, BOARD.iloc[[0]]]))
    with pytest.raises(ParetoError, match=r"\['algorithm'\] not in the table"):
        select(BOARD.drop(columns="algorithm"))
    with pytest.raises(ParetoError, match=r"objective column\(s\) \['complexity'\]"):
        select(BOARD.drop(columns="complexity"))
    with pytest.raises(ParetoError, match="unknown objective"):
        select(BOARD, weights={"auc": 1})


def test_select_keeps_the_board_and_its_order_and_does_not_modify_it():
    board = BOARD.iloc[::-1].set_index("algorithm", drop=False)
    before = board.copy()
    selection = select(board)
    pd.testing.assert_frame_equal(board, before)
    assert selection.table["algorithm"].tolist() == ["d", "c", "b", "a"]
    assert set(COLUMNS) < set(selection.table.columns)


def test_record_is_json_ready():
    board = pd.concat([BOARD, _board(("slow", 0.95, 140.2, 5.0, 0.3))], ignore_index=True)
    record = json.loads(json.dumps(select(board).record()))
    assert record["selected"] == "a" and record["score"] == pytest.approx(0.6)
    assert record["front"] == ["a", "c"]
    assert record["failed_gate"] == {"slow": "latency_p99_ms 140.2 >= 100 (rule < 100)"}
    assert record["gate"] == "cv_roc_auc > 0.85 and latency_p99_ms < 100"
    assert record["weights"] == pytest.approx(dict(DEFAULT_WEIGHTS))


# --- plots ---------------------------------------------------------------------------------------


def _plotted(ax):
    """Points per legend label, over the scatter collections of an axes."""
    return {c.get_label(): len(c.get_offsets()) for c in ax.collections}


@pytest.fixture
def selection():
    extra = pd.DataFrame(
        [
            {"algorithm": "slow", "status": "ok", "cv_roc_auc": 0.95, "latency_p99_ms": 140.2},
            {"algorithm": "nan", "status": "ok", "cv_roc_auc": 0.95, "latency_p99_ms": np.nan},
            {"algorithm": "mlp", "status": "failed", "reason": "boom"},
        ]
    ).assign(complexity=5.0, interpretability=0.3)
    return select(pd.concat([BOARD, extra], ignore_index=True))


def test_plot_front_2d(selection):
    fig = plot_front_2d(selection.table, gate=selection.gate)
    try:
        (ax,) = fig.axes
        # 'nan' has no latency and mlp failed: neither is drawn; the other 5 are, once each.
        assert _plotted(ax) == {"failed gate": 1, "dominated": 2, "Pareto front": 1, "selected": 1}
        assert ax.get_xlabel() == "latency_p99_ms (← better)"
        assert ax.get_ylabel() == "cv_roc_auc (↑ better)"
        assert len(ax.lines) == 2  # the two gate thresholds
    finally:
        plt.close(fig)


def test_plot_front_3d(selection):
    fig = plot_front_3d(selection.table, "latency_p99_ms", "complexity", "interpretability")
    try:
        (ax,) = fig.axes
        fig.canvas.draw()  # 3-D points get their 2-D offsets when drawn
        assert _plotted(ax) == {"failed gate": 1, "dominated": 2, "Pareto front": 1, "selected": 1}
        assert ax.get_zlabel() == "interpretability (higher is better)"
        assert ax.get_xlabel() == "latency_p99_ms (lower is better)"
    finally:
        plt.close(fig)


def test_plot_errors():
    with pytest.raises(ParetoError, match="pass select"):
        plot_front_2d(BOARD)
    with pytest.raises(ParetoError, match="'fit_s' is not an objective"):
        plot_front_2d(select(BOARD).table, x="fit_s")
