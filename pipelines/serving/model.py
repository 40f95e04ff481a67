"""A registered model loaded by alias, its request schema from the signature, and hot swapping.

``load(tracking_uri, name, alias)`` resolves the alias to a version and loads the fitted
scikit-learn model (``mlflow.sklearn``: the same object the training DAG logged, with
``predict_proba``). The request schema is a pydantic model built from the signature's input
columns: every feature is required (null allowed: the pipelines impute), extra keys are refused,
and ``unit_id`` (A/B routing, label joins) is optional.

Single rows and small batches go through ``fastpath`` (the pipeline's steps compiled to plain
Python, checked against the pipeline at load) when the model's steps allow it: a LightGBM pipeline
answers a row in tens of microseconds instead of milliseconds. Everything else, and any row the
fast path refuses, goes through the pipeline's ``predict_proba``.

``ModelStore`` holds the served models by alias and polls the aliases every N seconds; a moved
alias loads the new version next to the old one and then swaps the reference (one assignment), so
a request always sees one consistent version.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import DataError

log = logging.getLogger(__name__)

UNIT_ID = "unit_id"
# MLflow signature column types -> Python types of the request schema and pandas dtypes of the frame.
_PY_TYPES = {"double": float, "float": float, "long": int, "integer": int, "boolean": bool, "string": str}
_DTYPES = {"double": "float64", "float": "float64", "long": "int64", "integer": "int64", "boolean": "bool"}
FAST_MAX_ROWS = 64  # bigger batches go through the pipeline: its vectorised predict_proba is as fast per row


class ModelNotFound(DataError):
    """The registered model or alias does not exist."""


@dataclass
class ServedModel:
    name: str
    version: str
    alias: str
    run_id: str
    model: Any  # fitted scikit-learn estimator with predict_proba
    columns: list[tuple[str, str]]  # (feature, signature type) in signature order
    request_model: Any = None  # pydantic model of one row
    fast: Any = None  # fastpath.compile_model's function, verified against the pipeline; None: no fast path
    fast_path: str = "not compiled"  # what became of the fast path, for GET /model
    _explainer: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def features(self) -> list[str]:
        return [c for c, _ in self.columns]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "fast_path": self.fast_path,
            "features": [{"name": c, "type": t, "required": True, "nullable": True} for c, t in self.columns],
        }

    def frame(self, rows: list[dict]) -> pd.DataFrame:
        """Validated rows as the DataFrame the model was trained on (signature order and dtypes)."""
        frame = pd.DataFrame([{c: r.get(c) for c in self.features} for r in rows], columns=self.features)
        for c, t in self.columns:
            dtype = _DTYPES.get(t)
            if dtype == "int64" and frame[c].isna().any():
                dtype = "float64"  # a missing integer: NaN, as pandas reads it
            if dtype and not (dtype == "bool" and frame[c].isna().any()):
                frame[c] = frame[c].astype(dtype)
        return frame

    def predict(self, rows: list[dict]) -> np.ndarray:
        if self.fast is not None and len(rows) <= FAST_MAX_ROWS:
            try:
                return self.fast(rows)
            except Exception:  # noqa: BLE001 - Unsupported, or anything else: the pipeline answers (or raises)
                pass
        return self.predict_pipeline(rows)

    def predict_pipeline(self, rows: list[dict]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self.frame(rows)))[:, 1].astype(float)

    def compile(self, example: list[dict]) -> None:
        """Set up the fast path if the pipeline's steps allow it and it agrees with the pipeline on probe rows."""
        from pipelines.serving import fastpath

        try:
            fast = fastpath.compile_model(self.model, self.features)
        except fastpath.Unsupported as exc:
            self.fast, self.fast_path = None, f"off: {exc}"
            return
        probes = fastpath.probe_rows(example, self.columns)
        checked, problem = fastpath.verify(fast, self.predict_pipeline, probes)
        if problem is None and checked < len(example):
            problem = f"it answered only {checked} of the {len(example)} example rows"
        if problem is not None:
            log.warning("serving: %s v%s fast path not used: %s", self.name, self.version, problem)
            self.fast, self.fast_path = None, f"off: not verified against the pipeline: {problem}"
            return
        self.fast, self.fast_path = fast, f"on: matched the pipeline on {checked} probe rows"

    def explainer(self, tracking_uri: str, permutations: int = 4, seed: int = 0):
        """The SHAP explainer rebuilt from the background rows stored on the model's run (built once)."""
        with self._lock:
            if self._explainer is None:
                import mlflow

                from pipelines.training import explain
                from pipelines.training.run import SHAP_BACKGROUND

                mlflow.set_tracking_uri(tracking_uri)
                try:
                    path = mlflow.artifacts.download_artifacts(run_id=self.run_id, artifact_path=SHAP_BACKGROUND)
                except Exception as exc:
                    raise ModelNotFound(
                        f"{self.name} version {self.version} has no SHAP background ({SHAP_BACKGROUND} on run "
                        f"{self.run_id}): {exc}; run the training DAG's explain step for it"
                    ) from None
                background = pd.read_parquet(path)
                self._explainer = explain.build_explainer(
                    self.model, background, features=self.features, permutations=permutations, seed=seed
                )
            return self._explainer


def request_model(name: str, columns: list[tuple[str, str]]):
    """A pydantic model of one request row: each feature required (nullable) with its type, extra keys refused."""
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    for i, (column, kind) in enumerate(columns):
        typ = _PY_TYPES.get(kind, Any)
        fields[f"f{i}"] = (typ | None if typ is not Any else Any, Field(..., alias=column))
    fields["unit_id_"] = (str | int | None, Field(None, alias=UNIT_ID))
    return create_model(
        f"{name}_row",
        __config__=ConfigDict(extra="forbid", strict=False, populate_by_name=False),
        **fields,
    )


def signature_columns(model_uri: str, signature) -> list[tuple[str, str]]:
    """(feature, type) of the model's input signature (``Model.signature`` of ``model_uri``)."""
    if signature is None or signature.inputs is None:
        raise ModelNotFound(f"{model_uri} has no signature: log the model with one (see training.run._log_model)")
    cols = []
    for spec in signature.inputs.inputs:
        kind = getattr(spec.type, "name", str(spec.type))
        cols.append((spec.name, str(kind)))
    return cols


def registered_name(name: str) -> str:
    """``name`` if it names a registered model; a path or URI in its place is refused.

    Serving loads models from the registry only (``models:/<name>/<version>`` after resolving an
    alias), never from a file, a run's artifacts or another URI, so what is served is always a
    version that went through the training DAG's gate. MLflow forbids '/' and ':' in model names.
    """
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/:\\"):
        raise ModelNotFound(
            f"serving loads registered models only (models:/<name>@<alias>): {name!r} is a path or URI, not the name "
            "of a registered model; set serving.model (MLP_SERVING__MODEL) to a registered model name such as "
            "adult_classifier"
        )
    return name


def load(tracking_uri: str, name: str, alias: str) -> ServedModel:
    """The version of ``name`` that ``alias`` points at, loaded."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = registered_name(name)
    client = MlflowClient(tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelNotFound(
            f"no version of registered model {name!r} has alias {alias!r} at {tracking_uri} ({exc.message}); "
            "run the training DAG first or set serving.model"
        ) from None
    return _load_version(tracking_uri, name, alias, str(version.version), version.run_id)


def _load_version(tracking_uri: str, name: str, alias: str, version: str, run_id: str) -> ServedModel:
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow.models import Model

    mlflow.set_tracking_uri(tracking_uri)
    uri = f"models:/{registered_name(name)}/{version}"
    with tempfile.TemporaryDirectory(prefix="served-model-") as tmp:
        model = mlflow.sklearn.load_model(uri, dst_path=tmp)  # downloads the model's directory into tmp
        local = next(Path(tmp).rglob("MLmodel")).parent
        meta = Model.load(str(local))
        try:
            example = meta.load_input_example(str(local))
        except Exception:  # noqa: BLE001 - a missing or unreadable example only costs the fast path
            example = None
    if not hasattr(model, "predict_proba"):
        raise ModelNotFound(f"{uri} has no predict_proba: the API serves binary classifiers")
    columns = signature_columns(uri, meta.signature)
    served = ServedModel(name, version, alias, run_id, model, columns)
    served.request_model = request_model(name, columns)
    if isinstance(example, pd.DataFrame) and len(example):
        served.compile(example.astype(object).where(example.notna(), None).to_dict("records"))
    else:
        served.fast_path = "off: the model was logged without an input example to check it against"
    log.info("serving: %s v%s (%s) fast path %s", name, version, alias, served.fast_path)
    return served


class ModelStore:
    """The served models by alias, kept in step with the registry by a polling thread."""

    def __init__(self, tracking_uri: str, name: str, aliases: tuple[str, ...], interval_s: float = 30.0):
        self.tracking_uri, self.aliases, self.interval_s = tracking_uri, aliases, interval_s
        self.name = registered_name(name)
        self.models: dict[str, ServedModel] = {}
        self.reloads = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self, required: tuple[str, ...] = ()) -> ModelStore:
        """Load every alias; ``required`` ones must exist, the others are skipped when missing."""
        models = {}
        for alias in self.aliases:
            try:
                models[alias] = load(self.tracking_uri, self.name, alias)
            except ModelNotFound:
                if alias in required:
                    raise
                log.warning("serving: %s has no alias %r; not served", self.name, alias)
        self.models = models
        return self

    def refresh(self) -> list[str]:
        """Reload the aliases that moved; returns the aliases swapped."""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(self.tracking_uri)
        swapped, models = [], dict(self.models)
        for alias in self.aliases:
            try:
                found = client.get_model_version_by_alias(self.name, alias)
            except MlflowException:
                continue  # a removed alias keeps serving what it had
            current = models.get(alias)
            if current is None or current.version != str(found.version):
                models[alias] = _load_version(self.tracking_uri, self.name, alias, str(found.version), found.run_id)
                swapped.append(alias)
                log.info("serving: %s@%s now version %s", self.name, alias, found.version)
        if swapped:
            self.models = models  # one assignment: requests see the old dict or the new one
            self.reloads += 1
        return swapped

    def start(self) -> ModelStore:
        self._thread = threading.Thread(target=self._run, name="alias-poll", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except Exception:
                log.exception("serving: polling the aliases of %s failed; keeping the loaded versions", self.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
