"""A leaderboard: rank every model of a DAG run (failures last, with their reason), store it as a
gold table of the run's date and log it on the parent MLflow run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pipelines.constants import GOLD
from pipelines.steps.context import RunContext

if TYPE_CHECKING:
    import pandas as pd

OK = "ok"


@dataclass
class Result:
    """One model's outcome in a DAG run: ``status`` "ok", or "failed" with the ``reason``; never raised.

    A domain's evaluation adds its own fields; ``record`` is the leaderboard row, keyed by ``KEY``.
    """

    KEY: ClassVar[str] = "model"

    name: str
    family: str
    status: str  # "ok" or "failed"
    metrics: dict[str, Any]
    reason: str | None = None

    def record(self) -> dict[str, Any]:
        """The JSON-able part, for XCom and the leaderboard."""
        row = {self.KEY: self.name, "family": self.family, "status": self.status, "reason": self.reason}
        return {**row, **self.metrics}


@dataclass(frozen=True)
class Leaderboard:
    """The ranked table (column ``rank`` first), keyed by the ``key`` column (``model``, ``algorithm``)."""

    table: pd.DataFrame
    key: str

    @property
    def ok(self) -> pd.DataFrame:
        return self.table[self.table["status"] == OK]

    @property
    def best(self) -> pd.Series | None:
        ok = self.ok
        return ok.iloc[0] if len(ok) else None

    @property
    def failed(self) -> list[dict[str, Any]]:
        """``{key, reason}`` of every row that did not finish."""
        bad = self.table[self.table["status"] != OK]
        cols = [self.key, "reason"] if "reason" in bad else [self.key]
        return bad[cols].to_dict("records")

    def best_value(self, column: str) -> Any:
        """The best row's ``column`` as a plain value (None without a best row)."""
        best = self.best
        if best is None:
            return None
        value = best[column]
        return value.item() if hasattr(value, "item") else value


def rank(
    records: Sequence[Mapping[str, Any] | None],
    by: Sequence[str],
    *,
    ascending: bool | Sequence[bool] = False,
    key: str = "model",
) -> Leaderboard:
    """Rank records (``status`` "ok" first, then by the ``by`` columns, NaN last); empty records are dropped.

    A ``by`` column no record has is added as NaN, so a run where everything failed still ranks.
    """
    import pandas as pd

    table = pd.DataFrame([dict(r) for r in records if r])
    if "status" not in table:
        table["status"] = pd.Series(dtype=object)
    for col in by:
        if col not in table:
            table[col] = float("nan")
    order = [ascending] * len(by) if isinstance(ascending, bool) else list(ascending)
    if len(order) != len(by):
        raise ValueError(f"ascending has {len(order)} values for {len(by)} ranking columns {list(by)}")
    table["_ok"] = table["status"].eq(OK)
    table = table.sort_values(["_ok", *by], ascending=[False, *order], na_position="last", kind="stable")
    table = table.drop(columns="_ok").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return Leaderboard(table, key)


def write(ctx: RunContext, board: Leaderboard | pd.DataFrame, dataset: str, **manifest: Any) -> dict[str, Any]:
    """The table as gold partition ``dataset``/ds of the run (replaced on a re-run); its manifest."""
    import pyarrow as pa

    table = board.table if isinstance(board, Leaderboard) else board
    extra = {"parent_run_id": ctx.parent_run_id, **manifest}
    return ctx.lake.write_partition(GOLD, dataset, ctx.ds, pa.Table.from_pandas(table, preserve_index=False), extra)


def log(board: Leaderboard, table: pd.DataFrame | None = None, failed_tag: str | None = None) -> None:
    """On the active (parent) run: ``leaderboard.json`` and ``.csv`` (``table``, default the board's), and a
    tag naming the failures (``failed_<key>s``, "none" when every row finished)."""
    import mlflow

    from pipelines.tracking import log_frame

    frame = board.table if table is None else table
    log_frame(frame, "leaderboard.json")
    mlflow.log_text(frame.to_csv(index=False), "leaderboard.csv")
    failed = ",".join(str(r[board.key]) for r in board.failed) or "none"
    mlflow.set_tag(failed_tag or f"failed_{board.key}s", failed)
