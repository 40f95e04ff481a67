"""The step layer every DAG's steps go through.

- ``RunContext``: the typed context of a DAG run (settings, lake, dataset, ds, params, parent
  run), passed between tasks as a flat JSON-able dict (``to_xcom`` / ``from_xcom``).
- ``resolve_ds``: the date a run works on (form, triggering gold event, logical date, latest gold).
- ``open_parent`` / ``parent_run`` / ``nested_run`` / ``fail``: the parent MLflow run tagged with
  the gold content hash, and nested runs per model that end FAILED with a reason.
- ``log_figure``: log a figure and close it; ``param_strings``: params as MLflow strings.
- ``leaderboard``: ``rank`` records into a ``Leaderboard``, ``write`` it to gold, ``log`` it on MLflow.
- ``fill``: a run's Params over its settings (an empty Param takes the setting: one convention for every DAG).

Registration is ``pipelines.registry.register_and_promote`` (a promotion ``Policy`` as data).
"""

from pipelines.steps import leaderboard
from pipelines.steps.context import RunContext, content_hash
from pipelines.steps.dates import resolve_ds
from pipelines.steps.leaderboard import Leaderboard, rank
from pipelines.steps.params import fill
from pipelines.steps.runs import fail, log_figure, nested_run, open_parent, param_strings, parent_run

__all__ = [
    "Leaderboard",
    "RunContext",
    "content_hash",
    "fail",
    "fill",
    "leaderboard",
    "log_figure",
    "nested_run",
    "open_parent",
    "param_strings",
    "parent_run",
    "rank",
    "resolve_ds",
]
