"""One register-and-promote for every DAG: a promotion policy as data, one version per source run, a decision record.

``register_and_promote`` registers the model a run logged as a version of a registered model and
gives it the ``champion`` alias when it passes the policy's gate and beats the current champion,
else ``challenger`` (aliases, never the deprecated stages). It is safe to retry:

- a version is looked up by the MLflow run that logged the model before anything is registered,
  so one run never gets two versions (a domain logs each model it may register in its own run,
  or one per DAG run);
- the decision is stored on the version (tag ``decision_record``) before any alias moves; a retry
  returns that record and only completes the alias moves it still lacks;
- an alias never moves back from a newer version, so a late retry cannot undo a later run's promotion.

``log_decision`` writes the record on a DAG run's MLflow run the same way for every domain.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.constants import CHALLENGER, CHAMPION

RESCORE, STORED = "rescore", "stored"
Scorer = Callable[[str], float]  # model URI -> score
RECORD_TAG = "decision_record"
RECORD_ARTIFACT = "registry/decision.json"


class RegistryError(ValueError):
    """A registration that cannot be made safely (a policy or call that does not fit together)."""


@dataclass(frozen=True)
class Policy:
    """How a new version is judged.

    ``metric``: the score compared (kept on every version as a tag of that name).
    ``higher_is_better``: the direction of ``metric``.
    ``gate``: higher is better: the score must be at least this; lower is better: below it. None: no gate.
    ``margin``: how much better than the champion's score the new score must be (and better at all).
    ``champion_by``: ``rescore`` (the caller's scorer scores the champion on the same data as the
    new model) or ``stored`` (the champion's ``metric`` tag).
    ``comparable_by``: with ``stored``, a version tag that must be equal on both versions for the
    champion's score to count (same data and evaluation); a champion scored otherwise is replaced.
    ``register_failing``: a model that fails the gate is still registered, as challenger (a later
    step reads it); else it is not registered.
    ``challenger_too``: the new version always takes ``challenger``, also when it becomes champion.
    """

    metric: str
    higher_is_better: bool = True
    gate: float | None = None
    margin: float = 0.0
    champion_by: str = STORED
    comparable_by: str | None = None
    register_failing: bool = False
    challenger_too: bool = False

    def __post_init__(self) -> None:
        if self.champion_by not in (RESCORE, STORED):
            raise RegistryError(f"champion_by must be {RESCORE!r} or {STORED!r}, got {self.champion_by!r}")
        if not self.margin >= 0:
            raise RegistryError(f"the promotion margin must be 0 or more, got {self.margin}")

    def gain(self, score: float, other: float) -> float:
        """How much better ``score`` is than ``other`` (negative: worse)."""
        return score - other if self.higher_is_better else other - score

    def gate_failure(self, score: float | None, baselines: Mapping[str, float | None] | None = None) -> str | None:
        """Why ``score`` fails the gate or does not beat a baseline (None when it passes)."""
        if score is None or not math.isfinite(score):
            return f"{self.metric} is undefined ({score})"
        if self.gate is not None:
            if self.higher_is_better and score < self.gate:
                return f"{self.metric} {score:.5g} is below the gate {self.gate:g}"
            if not self.higher_is_better and score >= self.gate:
                return f"{self.metric} {score:.5g} is not below the gate {self.gate:g}"
        for name, value in (baselines or {}).items():
            if value is not None and self.gain(score, value) <= 0:
                return f"{self.metric} {score:.5g} does not beat {name} ({value:.5g})"
        return None

    def beats(self, score: float, champion: float) -> bool:
        """Better than the champion, by at least ``margin``."""
        gain = self.gain(score, champion)
        return gain > 0 and gain >= self.margin


@dataclass(frozen=True)
class Decision:
    """What a registration decided; ``alias`` is the one the new version took (None: not registered)."""

    name: str
    version: str | None
    alias: str | None
    promoted: bool
    reason: str
    metric: str
    score: float | None
    champion_version: str | None = None  # the champion before the decision
    champion_score: float | None = None

    @property
    def registered(self) -> bool:
        return self.version is not None

    def record(self) -> dict:
        return {"registered": self.registered, **asdict(self)}

    @classmethod
    def from_record(cls, record: Mapping) -> Decision:
        return cls(**{k: v for k, v in record.items() if k != "registered"})


def register_and_promote(
    tracking_uri: str,
    name: str,
    policy: Policy,
    run_id: str,
    model: str | Callable[[], str],
    *,
    score: float | None = None,
    scorer: Callable[[str], float] | None = None,
    baselines: Mapping[str, float | None] | None = None,
    tags: Mapping[str, object] | None = None,
    description: str = "",
) -> Decision:
    """Register the model that run ``run_id`` logged as a version of ``name`` and decide its alias by ``policy``.

    ``model`` is the logged model's URI, or a function that logs it in ``run_id`` and returns its URI
    (called only when the run has no version yet, so a retry logs nothing again). ``score`` is the new
    model's ``policy.metric``; without it ``scorer`` (model URI -> score) computes it, as it does the
    champion's with ``champion_by="rescore"``. ``baselines`` are scores the new one must beat to pass
    the gate (e.g. a naive model's). ``tags`` go on the new version.
    """
    import mlflow
    from mlflow import MlflowClient

    if scorer is None and (score is None or policy.champion_by == RESCORE):
        raise RegistryError(
            f"registering {name!r}: give a scorer (needed without a score and to re-score the champion)"
        )
    tags = {k: str(v) for k, v in (tags or {}).items()}
    if policy.comparable_by and policy.comparable_by not in tags:
        raise RegistryError(
            f"registering {name!r}: the policy compares by tag {policy.comparable_by!r}; pass it in tags"
        )
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    version = _version_of_run(client, name, run_id)
    if version is not None and RECORD_TAG in version.tags:  # a retry: the decision is made already
        decision = Decision.from_record(json.loads(version.tags[RECORD_TAG]))
        _move_aliases(client, policy, decision)
        return decision

    uri = f"models:/{name}/{version.version}" if version is not None else None
    if score is None:
        uri = uri or _uri(model)
        assert scorer is not None  # checked above: no score without a scorer
        score = scorer(uri)
    failure = policy.gate_failure(score, baselines)
    if failure and not policy.register_failing:
        return Decision(name, None, None, False, failure, policy.metric, _finite(score))
    if version is None:
        version = mlflow.register_model(uri or _uri(model), name, tags=tags)
        if version.run_id != run_id:
            raise RegistryError(
                f"the model registered as {name} version {version.version} was logged by run {version.run_id}, "
                f"not {run_id}: log it in the run you register it for, or a retry cannot find its version"
            )
    if description and version.description != description:
        client.update_model_version(name, version.version, description=description)

    decision = _decide(client, policy, name, str(version.version), score, failure, tags, scorer)
    client.set_model_version_tag(name, version.version, policy.metric, repr(float(score)))  # full precision
    verdict = "promoted to champion" if decision.promoted else "kept as challenger"
    client.set_model_version_tag(name, version.version, "decision", verdict)
    client.set_model_version_tag(name, version.version, "decision_reason", decision.reason)
    client.set_model_version_tag(name, version.version, RECORD_TAG, json.dumps(decision.record()))
    _move_aliases(client, policy, decision)
    return decision


def log_decision(tracking_uri: str, run_id: str, decision: Decision) -> None:
    """The decision on a DAG run's MLflow run: tags people filter on, and the whole record as JSON."""
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    client = MlflowClient(tracking_uri)
    tags = {
        "registered_model": decision.name,
        "registered_version": decision.version or "none",
        "alias": decision.alias or "none",
        "promoted": str(decision.promoted).lower(),
        "registry_decision": decision.reason,
    }
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    client.log_dict(run_id, decision.record(), RECORD_ARTIFACT)


def _decide(
    client: Any,
    policy: Policy,
    name: str,
    version: str,
    score: float,
    failure: str | None,
    tags: dict,
    scorer: Scorer | None,
) -> Decision:
    champion = _alias_version(client, name, CHAMPION)
    before = None if champion is None else str(champion.version)
    champion_score, promoted = None, False
    if failure:
        reason = failure
    elif champion is None:
        promoted, reason = True, "no champion yet"
    elif before == version:
        promoted, reason = True, f"version {version} is the champion already"
    else:
        champion_score, reason = _champion_score(policy, name, champion, tags, scorer)
        if champion_score is None:
            promoted = True
        else:
            promoted = policy.beats(score, champion_score)
            verdict = "beats" if promoted else "does not beat"
            margin = f" by the margin {policy.margin:g}" if policy.margin else ""
            reason = f"{policy.metric} {score:.5f} {verdict} champion version {before} ({champion_score:.5f}){margin}"
    alias = CHAMPION if promoted else CHALLENGER
    return Decision(name, version, alias, promoted, reason, policy.metric, _finite(score), before, champion_score)


def _champion_score(
    policy: Policy, name: str, champion: Any, tags: dict, scorer: Scorer | None
) -> tuple[float | None, str]:
    """The champion's score to beat, or None with the reason it does not count."""
    if policy.champion_by == RESCORE:
        assert scorer is not None  # register_and_promote refuses rescore without a scorer
        rescored = _finite(scorer(f"models:/{name}/{champion.version}"))
        return rescored, f"champion version {champion.version} scores no finite {policy.metric} on this data"
    key = policy.comparable_by
    if key and champion.tags.get(key) != tags[key]:
        return None, f"champion version {champion.version} was scored otherwise ({key} differs): not comparable"
    try:
        stored = _finite(float(champion.tags[policy.metric]))
    except (KeyError, ValueError):
        stored = None
    return stored, f"champion version {champion.version} has no {policy.metric} to compare with"


def _move_aliases(client: Any, policy: Policy, decision: Decision) -> None:
    """Point the decision's aliases at its version, unless one already points there or at a newer version."""
    aliases = [decision.alias] if decision.alias else []
    if policy.challenger_too and decision.alias == CHAMPION:
        aliases.append(CHALLENGER)
    for alias in aliases:
        current = _alias_version(client, decision.name, alias)
        if current is None or int(current.version) < int(str(decision.version)):
            client.set_registered_model_alias(decision.name, alias, decision.version)


def _version_of_run(client: Any, name: str, run_id: str) -> Any:
    """The version already registered from this run (the earliest, should there be several)."""
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def _alias_version(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:  # no such alias, or no such registered model yet
        return None


def _uri(model: str | Callable[[], str]) -> str:
    return model() if callable(model) else model


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None
