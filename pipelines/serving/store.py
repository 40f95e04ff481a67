"""``ModelStore`` holds the served models by alias and polls the aliases every N seconds; a moved
alias loads the new version next to the old one and then swaps the reference (one assignment), so
a request always sees one consistent version. A version that fails to load is recorded (version,
cause, time) and retried at the next poll while the alias keeps serving what it had; so is a
registry that does not answer. ``readiness`` turns that into GET /ready's answer. Loading fails
with a ``DataError`` naming the model, version, URI and cause: ``ModelNotFound``,
``ModelUnavailable`` (files missing, damaged or out of reach) or ``RegistryUnreachable``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from pipelines.serving.errors import ModelNotFound, ModelUnavailable, RegistryUnreachable
from pipelines.serving.model import ServedModel, _load_version, _no_alias, _resolve, registered_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadFailure:
    """A version an alias points at that did not load; the alias keeps serving what it had and retries next poll."""

    version: str
    cause: str
    at: datetime

    def describe(self) -> dict:
        return {"version": self.version, "cause": self.cause, "at": self.at.isoformat()}


class ModelStore:
    """The served models by alias, kept in step with the registry by a polling thread.

    Besides the models it keeps what the last poll found, for readiness: the version each alias
    names in the registry, the versions that failed to load (and why), and since when the
    registry has not answered.
    """

    def __init__(self, tracking_uri: str, name: str, aliases: tuple[str, ...], interval_s: float = 30.0):
        self.tracking_uri, self.aliases, self.interval_s = tracking_uri, aliases, interval_s
        self.name = registered_name(name)
        self.models: dict[str, ServedModel] = {}
        self.reloads = 0
        self.registry: dict[str, str | None] = {}  # alias -> version the registry names (None: no such alias)
        self.failures: dict[str, LoadFailure] = {}  # alias -> the version it names that did not load
        self.poll_error: str | None = None  # why the last poll failed; None when it answered
        self.unreachable_since: datetime | None = None  # first failed poll of the current run of failures
        self.polled_at: datetime | None = None  # when the registry last answered
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self, required: tuple[str, ...] = ()) -> ModelStore:
        """Load every alias; ``required`` ones must exist and load, the others are skipped (and reported) if not.

        Raises ``ModelNotFound``, ``ModelUnavailable`` or ``RegistryUnreachable`` naming the model,
        version and URI.
        """
        self._sync({}, required)
        return self

    def refresh(self) -> list[str]:
        """Reload the aliases that moved; returns the aliases swapped. A version that fails to load is recorded
        in ``failures`` and retried at the next poll while the alias keeps serving what it had."""
        down_since = self.unreachable_since
        try:
            swapped = self._sync(self.models, ())
        except RegistryUnreachable as exc:
            if down_since is None:  # logged when it stops answering and when it answers again, not every poll
                log.warning("serving: %s; keeping the loaded versions", exc)
            self.poll_error, self.unreachable_since = str(exc), down_since or datetime.now(UTC)
            raise
        if down_since is not None:
            log.info("serving: the registry answers again (it did not since %s)", down_since.isoformat())
        if swapped:
            self.reloads += 1
        return swapped

    def _sync(self, current: dict[str, ServedModel], required: tuple[str, ...]) -> list[str]:
        from mlflow import MlflowClient

        client = MlflowClient(self.tracking_uri)
        models, registry, failures, swapped = dict(current), {}, dict(self.failures), []
        for alias in self.aliases:
            found = _resolve(client, self.tracking_uri, self.name, alias)
            if found is None:
                if alias in required:
                    raise _no_alias(self.tracking_uri, self.name, alias)
                if self.registry.get(alias, "") is not None:  # once, not at every poll
                    log.warning(
                        "serving: %s has no alias %r; serving %s", self.name, alias, _version_of(models.get(alias))
                    )
                registry[alias] = None
                failures.pop(alias, None)
                continue  # a removed alias keeps serving what it had
            version = registry[alias] = str(found.version)
            if alias in models and models[alias].version == version:
                failures.pop(alias, None)
                continue
            try:
                models[alias] = _load_version(self.tracking_uri, self.name, alias, version, found.run_id)
            except (ModelNotFound, ModelUnavailable) as exc:
                if alias in required:
                    raise
                if alias not in failures or failures[alias].version != version:  # once per version, not every retry
                    log.warning("serving: %s; %s keeps serving %s", exc, alias, _version_of(models.get(alias)))
                failures[alias] = LoadFailure(version, str(exc), datetime.now(UTC))
                continue
            failures.pop(alias, None)
            swapped.append(alias)
            log.info("serving: %s@%s now version %s", self.name, alias, version)
        # Each a single assignment: a request sees the old dict or the new one.
        self.models, self.registry, self.failures = models, registry, failures
        self.polled_at, self.poll_error, self.unreachable_since = datetime.now(UTC), None, None
        return swapped

    def readiness(self, alias: str) -> str | None:
        """Why ``alias`` is not ready to serve (None: it is): served, and the version the registry names now."""
        served = self.models.get(alias)
        if served is None:
            return f"{self.name}@{alias} is not loaded"
        if self.unreachable_since is not None:
            return (
                f"the registry has not answered since {self.unreachable_since.isoformat()} ({self.poll_error}); "
                f"serving version {served.version}, which may no longer be the {alias}"
            )
        wanted = self.registry.get(alias)
        if wanted is None:
            return f"{self.name} no longer has alias {alias!r} in the registry; serving version {served.version}"
        if wanted != served.version:
            failure = self.failures.get(alias)
            if failure is not None and failure.version == wanted:
                return (
                    f"{alias} moved to version {wanted}, which failed to load at {failure.at.isoformat()}: "
                    f"{failure.cause}; serving version {served.version} until it loads (retried every "
                    f"{self.interval_s:g}s)"
                )
            return f"{alias} moved to version {wanted}, not loaded yet; serving version {served.version}"
        return None

    def status(self) -> dict:
        """What the last poll found, for GET /health and /ready."""
        return {
            "registry": dict(self.registry),
            "polled_at": _iso(self.polled_at),
            "poll_error": self.poll_error,
            "registry_unreachable_since": _iso(self.unreachable_since),
            "load_failures": {alias: failure.describe() for alias, failure in self.failures.items()},
        }

    def start(self) -> ModelStore:
        self._thread = threading.Thread(target=self._run, name="alias-poll", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except RegistryUnreachable:
                pass  # recorded for /health and /ready, and logged, by refresh
            except Exception:
                log.exception("serving: polling the aliases of %s failed; keeping the loaded versions", self.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _version_of(served: ServedModel | None) -> str:
    return f"version {served.version}" if served is not None else "nothing"
