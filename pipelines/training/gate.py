"""The selection gate: rules (``column op number``) a model must all pass before it may be selected.

A missing or NaN value fails its rule; every failure says which rule and by how much. Import from
``pipelines.training.pareto``, which re-exports every name."""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.errors import DataError

if TYPE_CHECKING:
    from pipelines.training.pareto import Objective


class ParetoError(DataError, ValueError):
    """Bad selection config (objective, weight, gate rule) or a leaderboard it cannot rank."""


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float64; anything that is not a number becomes NaN."""
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise ParetoError(f"{what} column(s) {missing} not in the table; it has {sorted(map(str, frame.columns))}")


_OPS = MappingProxyType({">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le})


_NEGATION = MappingProxyType({">": "<=", ">=": "<", "<": ">=", "<=": ">"})


_RULE_TEXT = re.compile(r"\s*([<>=!]*)\s*(.*?)\s*", re.DOTALL)


_MISSING = "is missing or not a number"


@dataclass(frozen=True)
class Rule:
    """``column op threshold`` must hold for a model to pass, e.g. Rule("latency_p99_ms", "<", 100)."""

    column: str
    op: str  # >, >=, < or <=
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ParetoError(f"gate rule on {self.column!r}: unknown operator {self.op!r}; use one of {list(_OPS)}")
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t):
            raise ParetoError(f"gate rule on {self.column!r}: threshold must be a finite number; got {t!r}")
        object.__setattr__(self, "threshold", float(t))

    @classmethod
    def parse(cls, column: str, text: str) -> Rule:
        """``Rule.parse("cv_roc_auc", "> 0.85")``: an operator (>, >=, <, <=) then a number."""
        op, number = _RULE_TEXT.fullmatch(str(text)).groups()
        if op not in _OPS:
            raise ParetoError(
                f"gate rule {column}: {text!r} must be an operator ({', '.join(_OPS)}) then a number, "
                f"e.g. '> 0.85'; unknown operator {op!r}"
            )
        try:
            threshold = float(number)
        except ValueError:
            raise ParetoError(f"gate rule {column}: {text!r} must end in a number, e.g. '> 0.85'") from None
        return cls(column, op, threshold)

    def holds(self, values: np.ndarray) -> np.ndarray:
        """Element-wise; a NaN never holds."""
        with np.errstate(invalid="ignore"):
            return _OPS[self.op](np.asarray(values, dtype=np.float64), self.threshold)

    def failure(self, value: float) -> str:
        """Why ``value`` fails, e.g. ``latency_p99_ms 140.2 >= 100 (rule < 100)``."""
        rule = f"rule {self.op} {self.threshold:g}"
        if math.isnan(value):
            return f"{self.column} {_MISSING} ({rule})"
        return f"{self.column} {self._show(value)} {_NEGATION[self.op]} {self.threshold:g} ({rule})"

    def _show(self, value: float) -> str:
        """Few digits, but enough that the number shown fails the rule like the value does."""
        for digits in (4, 6, 8, 10, 12, 17):
            text = f"{value:.{digits}g}"
            if self.holds(np.array([float(text)]))[0] == self.holds(np.array([value]))[0]:
                return text
        return repr(value)

    def __str__(self) -> str:
        return f"{self.column} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Gate:
    """Rules a model must all pass before it may be promoted; no rules lets every model through."""

    rules: tuple[Rule, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, str | Sequence[str]]) -> Gate:
        """From ``{"cv_roc_auc": "> 0.85", "latency_p99_ms": "< 100"}``; a list gives one column
        several rules (``{"latency_p99_ms": [">= 0", "< 100"]}``)."""
        if isinstance(config, Gate):
            return config
        if not isinstance(config, Mapping):
            raise ParetoError(f"gate config must map columns to rules like {dict(DEFAULT_GATE_CONFIG)}; got {config!r}")
        rules = []
        for column, spec in config.items():
            texts = [spec] if isinstance(spec, str) else spec
            if not isinstance(texts, list | tuple) or not texts:
                raise ParetoError(f"gate rule {column}: expected a rule like '> 0.85' or a list of them; got {spec!r}")
            rules += [Rule.parse(str(column), t) for t in texts]
        return cls(tuple(rules))

    def __str__(self) -> str:
        return " and ".join(map(str, self.rules)) or "no rules"


DEFAULT_GATE_CONFIG = MappingProxyType({"cv_roc_auc": "> 0.85", "latency_p99_ms": "< 100"})


DEFAULT_GATE = Gate.from_config(DEFAULT_GATE_CONFIG)


def _failures(frame: pd.DataFrame, gate: Gate, objectives: Sequence[Objective] = ()) -> list[list[str]]:
    """Per row, the text of every gate rule it fails, then every objective it has no finite value for."""
    _require_columns(frame, [r.column for r in gate.rules], "gate rule")
    _require_columns(frame, [o.column for o in objectives], "objective")
    failed: list[list[str]] = [[] for _ in range(len(frame))]
    reported = set()  # (row, column) already failed by a rule: one message about it is enough
    for rule in gate.rules:
        values = _numbers(frame, rule.column)
        for i in np.flatnonzero(~rule.holds(values)):
            failed[i].append(rule.failure(values[i]))
            reported.add((i, rule.column))
    for o in objectives:
        values = _numbers(frame, o.column)
        for i in np.flatnonzero(~np.isfinite(values)):
            if (i, o.column) not in reported:
                shown = _MISSING if math.isnan(values[i]) else f"is {values[i]}"
                failed[i].append(f"{o.column} {shown} (objective {o.name} needs a finite number)")
    return failed


def _as_gate(gate: Gate | Mapping[str, str | Sequence[str]] | None) -> Gate:
    return DEFAULT_GATE if gate is None else Gate.from_config(gate)


def apply_gate(frame: pd.DataFrame, gate: Gate | Mapping[str, str | Sequence[str]] | None = None) -> pd.DataFrame:
    """A copy of ``frame`` with ``passed_gate`` (bool) and ``failed_rules`` ("; "-joined, "" when
    passed). ``gate`` is a Gate or its config mapping; None is ``DEFAULT_GATE``. A missing value
    fails its rule. Raises ParetoError when a rule names a column the frame lacks."""
    failed = _failures(frame, _as_gate(gate))
    return frame.assign(
        passed_gate=np.array([not f for f in failed], dtype=bool),
        failed_rules=pd.Series(["; ".join(f) for f in failed], index=frame.index, dtype=object),
    )
