"""The typed run context every step takes: where it runs (settings, lake) and what it works on
(dataset, date, params, the DAG run and its parent MLflow run).

Airflow passes it between tasks as a flat JSON-able dict (``to_xcom``); the next task rebuilds it
with ``RunContext.from_xcom(data, settings)``. Settings and the lake never go through XCom: each
task reads them when it runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from pipelines.config import Settings, load_settings
from pipelines.lake import Lake

_LOCAL = ("settings", "extra")  # fields that are not written to XCom as such


@dataclass(frozen=True)
class RunContext:
    """One DAG run's step context.

    ``params``: the run's checked choices. ``extra``: a domain's own JSON-able keys (a
    protocol, a staging key, ...), kept at the top level of the XCom dict.
    """

    settings: Settings = field(repr=False, compare=False)
    dataset: str = ""
    ds: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    dag_id: str = "cli"
    airflow_run_id: str = ""
    parent_run_id: str | None = None
    gold_content_hash: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, dataset: str = "", ds: str = "", settings: Settings | None = None, **values: Any) -> RunContext:
        """A context from settings (loaded when None); ``seed`` defaults to ``settings.seed``."""
        settings = settings or load_settings()
        values.setdefault("seed", settings.seed)
        known = {f.name for f in fields(cls)}
        extra = {k: values.pop(k) for k in list(values) if k not in known}
        return cls(settings, dataset, ds, extra={**dict(values.pop("extra", {})), **extra}, **values)

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.settings.lake_root)

    def to_xcom(self) -> dict[str, Any]:
        """The JSON-able dict a task returns: every field but settings, ``extra`` flattened in."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _LOCAL}
        out["params"] = dict(self.params)
        return {**dict(self.extra), **out}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any] | RunContext, settings: Settings | None = None) -> RunContext:
        """The context a task received (a dict from XCom, or a context in-process)."""
        if isinstance(data, RunContext):
            return data if settings is None else replace(data, settings=settings)
        return cls.create(settings=settings, **dict(data))

    def with_(self, **changes: Any) -> RunContext:
        """A copy with fields (or ``extra`` keys) changed."""
        known = {f.name for f in fields(self)}
        extra = {k: changes.pop(k) for k in list(changes) if k not in known}
        if extra:
            changes["extra"] = {**dict(self.extra), **extra}
        return replace(self, **changes)

    def __getitem__(self, key: str) -> Any:
        """``ctx["key"]`` reads a field or an ``extra`` key, as the XCom dict would."""
        return self.to_xcom()[key]

    def run_tags(self, **more: str) -> dict[str, str]:
        """Tags that find a run of this DAG run again on a retry (nested runs add their name)."""
        return {"airflow_run_id": self.airflow_run_id, "dataset": self.dataset, "ds": self.ds, **more}

    def lineage_tags(self, **more: Any) -> dict[str, str]:
        """Where a registered model comes from: DAG, run, data and its content hash."""
        tags = {**self.run_tags(), "dag_id": self.dag_id, "gold_content_hash": self.gold_content_hash or ""}
        return {k: str(v) for k, v in {**tags, **more}.items()}


def content_hash(hashes: Mapping[str, str]) -> str:
    """One hash over several partitions' content hashes (order-independent): the run's gold hash."""
    return hashlib.sha256("".join(hashes[k] for k in sorted(hashes)).encode()).hexdigest()
