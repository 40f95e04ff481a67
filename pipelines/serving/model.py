"""A registered model loaded by alias, with its request schema (from the signature) and data contract.

``load(tracking_uri, name, alias)`` resolves the alias to a version and loads the fitted
scikit-learn model (``mlflow.sklearn``: the same object the training DAG logged, with
``predict_proba``). The request schema is a pydantic model built from the signature's input
columns: every feature is required (null allowed: the pipelines impute), extra keys are refused,
and ``unit_id`` (A/B routing, label joins) is optional. Types are strict, so a value is scored as
sent or refused, never reinterpreted: a number feature takes a JSON number (not ``true``, not
``"40"``), finite and, for an integer feature, within int64 (``40.0`` counts as the integer 40);
text must be valid Unicode (no lone surrogates). Both the fast path and the pipeline only ever see
values that passed, which is what keeps their answers equal.

The data contract of the dataset the version was trained on (``find_contract``: the version's
``dataset`` tag, which the training DAG sets) adds the rules silver applied to the training rows:
nullability, min/max and allowed values; ``ServedModel.violations`` lists the ones a row breaks
(the API rejects or flags them, ``serving.contract_policy``).

Single rows and small batches go through ``fastpath`` (the pipeline's steps compiled to plain
Python, checked against the pipeline at load) when the model's steps allow it: a LightGBM pipeline
answers a row in tens of microseconds instead of milliseconds. Everything else, and any row the
fast path refuses, goes through the pipeline's ``predict_proba``.

The request schema is ``schema``; the error kinds are ``errors``; ``store.ModelStore`` keeps the
served versions in step with their aliases.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.features.contracts import ColumnRule, Contract
from pipelines.serving.errors import (  # noqa: F401 - re-exported: the API and tests import them from here
    ModelNotFound,
    ModelUnavailable,
    RegistryUnreachable,
    UnscorableRows,
    _cause,
    safe_uri,
)
from pipelines.serving.schema import (  # noqa: F401 - re-exported
    INT64_MAX,
    INT64_MIN,
    UNIT_ID,
    lone_surrogate,
    request_model,
    signature_columns,
)

log = logging.getLogger(__name__)

# MLflow settings of the prediction service (serve; where the environment sets one, it wins).
# MLflow's HTTP client retries a failed call 7 times with growing waits (about 4 minutes) and waits
# up to 120 s for an answer; the service gives up within seconds instead: a start against a server
# that is not there fails at once, and a poll soon reports an unreachable registry while the loaded
# versions keep serving. No download progress bars in the service's output.
SERVICE_MLFLOW_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# MLflow error codes of a registered model or alias that does not exist (sqlite store and REST API alike).
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
# MLflow signature column types -> pandas dtypes of the frame.
_DTYPES = {"double": "float64", "float": "float64", "long": "int64", "integer": "int64", "boolean": "bool"}
FAST_MAX_ROWS = 64  # bigger batches go through the pipeline: its vectorised predict_proba is as fast per row
MAX_REPORTED_ROWS = 10  # a batch the model cannot score: at most this many rows are named
# What a pipeline raises on values it cannot take (an unknown category, a NaN it cannot impute): the
# request's fault, a 4xx. Anything else is the server's.
ROW_ERRORS = (ValueError, TypeError, ArithmeticError)


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
    contract: Contract | None = None  # the training dataset's contract (find_contract); None: types only
    contract_source: str = "none"  # where the contract came from, or why there is none, for GET /model
    classes: list[str] | None = None  # a multi-class model's class names (predict: a column each); binary: None
    _explainers: dict = field(default_factory=dict)  # class index (None: binary) -> SHAP explainer
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def features(self) -> list[str]:
        return [c for c, _ in self.columns]

    @functools.cached_property
    def rules(self) -> list[ColumnRule]:
        """The contract's rules for the served features (a contract column the model does not read is not checked).

        Read once, on the first request (``_load_version`` sets ``contract`` before the model is served)."""
        if self.contract is None:
            return []
        features = set(self.features)
        return [r for r in self.contract.columns if r.name in features]

    @functools.cached_property
    def _allowed(self) -> dict[str, frozenset]:
        return {r.name: frozenset(r.allowed) for r in self.rules if r.allowed is not None}

    def describe(self) -> dict:
        rules = {r.name: r for r in self.rules}

        def feature(column: str, kind: str) -> dict:
            out = {"name": column, "type": kind, "required": True, "nullable": True}
            rule = rules.get(column)
            if rule is not None:
                out["contract"] = {"nullable": rule.nullable, "min": rule.min, "max": rule.max}
                out["contract"]["allowed"] = list(rule.allowed) if rule.allowed is not None else None
            return out

        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "fast_path": self.fast_path,
            "contract": self.contract_source,
            "features": [feature(c, t) for c, t in self.columns],
        }

    def violations(self, row: dict) -> list[tuple[str, str, str]]:
        """(feature, rule, message) for each contract rule the (type-checked) row breaks."""
        out = []
        for rule in self.rules:
            value = row.get(rule.name)
            if value is None:
                if not rule.nullable:
                    out.append((rule.name, "nullable", "missing value: the data contract requires one"))
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and rule.min is not None and value < rule.min:
                out.append((rule.name, "min", f"{value!r} is below the data contract's minimum {rule.min:g}"))
            if number and rule.max is not None and value > rule.max:
                out.append((rule.name, "max", f"{value!r} is above the data contract's maximum {rule.max:g}"))
            if rule.allowed is not None and str(value) not in self._allowed[rule.name]:
                shown = ", ".join(rule.allowed[:20]) + (", ..." if len(rule.allowed) > 20 else "")
                out.append((rule.name, "allowed", f"{str(value)[:100]!r} is not an allowed value ({shown})"))
        return out

    def frame(self, rows: list[dict]) -> pd.DataFrame:
        """Validated rows as the DataFrame the model was trained on (signature order and dtypes)."""
        frame = pd.DataFrame({c: [r.get(c) for r in rows] for c in self.features}, columns=self.features)
        for c, t in self.columns:
            dtype = _DTYPES.get(t)
            if dtype == "int64" and frame[c].isna().any():
                dtype = "float64"  # a missing integer: NaN, as pandas reads it
            if dtype and not (dtype == "bool" and frame[c].isna().any()):
                frame[c] = frame[c].astype(dtype)
        return frame

    def predict(self, rows: list[dict]) -> np.ndarray:
        """P(class 1) per row (multi-class: a row of class probabilities); raises UnscorableRows naming the
        rows the model cannot score.

        Small batches take the fast path; a batch it refuses, and every bigger one, goes through
        the pipeline. A row fails the same way alone or in any batch: the pipeline's error on it
        (found by halving a failed batch), or a non-finite probability.
        """
        proba = None
        if self.fast is not None and len(rows) <= FAST_MAX_ROWS:
            with contextlib.suppress(Exception):  # Unsupported, or anything else: the pipeline answers (or raises)
                proba = self.fast(rows)
        if proba is None:
            try:
                proba = self.predict_pipeline(rows)
            except ROW_ERRORS:
                problems = self._failing_rows(rows, 0)
                if not problems:  # no row fails alone: not the rows' fault
                    raise
                raise UnscorableRows(problems) from None
        bad = np.flatnonzero(~np.isfinite(proba).reshape(len(proba), -1).all(axis=1))[:MAX_REPORTED_ROWS]
        if len(bad):
            raise UnscorableRows({int(i): f"the model gave no probability for this row ({proba[i]})" for i in bad})
        return proba

    def _failing_rows(self, rows: list[dict], offset: int) -> dict[int, str]:
        """The rows (index + offset) the pipeline raises on, at most MAX_REPORTED_ROWS, by halving."""
        if len(rows) == 1:
            try:
                self.predict_pipeline(rows)
            except ROW_ERRORS as exc:
                nulls = [c for c in self.features if rows[0].get(c) is None]
                hint = f" (null: {', '.join(nulls)}; this model may not take missing values)" if nulls else ""
                return {offset: f"the model cannot score this row: {type(exc).__name__}: {str(exc)[:300]}{hint}"}
            return {}
        found: dict[int, str] = {}
        half = len(rows) // 2
        for start, part in ((0, rows[:half]), (half, rows[half:])):
            if len(found) >= MAX_REPORTED_ROWS:
                break
            try:
                self.predict_pipeline(part)
            except ROW_ERRORS:
                found.update(self._failing_rows(part, offset + start))
        return dict(list(found.items())[:MAX_REPORTED_ROWS])

    def predict_pipeline(self, rows: list[dict]) -> np.ndarray:
        proba = np.asarray(self.model.predict_proba(self.frame(rows))).astype(float)
        return proba if self.classes is not None else proba[:, 1]

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

    def explainer(self, tracking_uri: str, permutations: int = 4, seed: int = 0, k: int | None = None):
        """The SHAP explainer rebuilt from the background rows stored on the model's run (built once).

        A multi-class model gets one per class ``k``: that class's probability against the rest, as
        the training DAG's explain step explains it (``multiclass.OneClass``)."""
        with self._lock:
            if k not in self._explainers:
                import mlflow

                from pipelines.training import explain, multiclass
                from pipelines.training.run import SHAP_BACKGROUND

                mlflow.set_tracking_uri(tracking_uri)
                try:
                    path = mlflow.artifacts.download_artifacts(run_id=self.run_id, artifact_path=SHAP_BACKGROUND)
                except Exception as exc:
                    raise ModelNotFound(
                        f"{self.name} version {self.version} has no SHAP background ({SHAP_BACKGROUND} on run "
                        f"{self.run_id}): {exc}; run the training DAG's explain step for it"
                    ) from None
                model = self.model if k is None else multiclass.OneClass(self.model, k)
                self._explainers[k] = explain.build_explainer(
                    model, pd.read_parquet(path), features=self.features, permutations=permutations, seed=seed
                )
            return self._explainers[k]


def find_contract(tracking_uri: str, name: str, version: str, run_id: str) -> tuple[Contract | None, str]:
    """The data contract of the dataset a version was trained on, and where it came from (or why there is none).

    The training DAG tags the version (and its run) with ``dataset``; that dataset's contract is the
    one silver applied to the rows the model learned from (``datasets.<name>.contract``, else the
    dataset's own name, as the features DAG resolves it).
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from pipelines.config import SettingsError, load_settings
    from pipelines.features.contracts import ContractError, load_contract

    client = MlflowClient(tracking_uri)
    try:
        dataset = client.get_model_version(name, version).tags.get("dataset")
    except Exception as exc:  # noqa: BLE001 - the registry answered a moment ago: it stopped answering
        raise RegistryUnreachable(
            f"cannot read the tags of {name} version {version} at {safe_uri(tracking_uri)}: {_cause(exc)}"
        ) from None
    if not dataset and run_id:
        try:
            dataset = client.get_run(run_id).data.tags.get("dataset")
        except MlflowException:
            dataset = None
    if not dataset:
        return None, "none: the version and its run have no `dataset` tag (the training DAG sets it); types only"
    try:
        spec = load_settings().datasets.get(dataset)
    except SettingsError:
        spec = None
    contract_name = (spec.contract if spec is not None else None) or dataset
    try:
        contract = load_contract(contract_name)
    except ContractError as exc:
        return None, f"none: {exc}; types only"
    return contract, f"{contract.name} (the contract of dataset {dataset!r})"


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

    name = registered_name(name)
    found = _resolve(MlflowClient(tracking_uri), tracking_uri, name, alias)
    if found is None:
        raise _no_alias(tracking_uri, name, alias)
    return _load_version(tracking_uri, name, alias, str(found.version), found.run_id)


def _no_alias(tracking_uri: str, name: str, alias: str) -> ModelNotFound:
    return ModelNotFound(
        f"no version of registered model {name!r} has alias {alias!r} at {safe_uri(tracking_uri)}; "
        "run the training DAG first or set serving.model"
    )


def _resolve(client, tracking_uri: str, name: str, alias: str):
    """The model version ``alias`` points at; None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except Exception as exc:  # noqa: BLE001 - anything but "not found" means the registry did not answer
        if isinstance(exc, MlflowException) and exc.error_code in _NOT_FOUND:
            return None
        raise RegistryUnreachable(
            f"the MLflow registry at {safe_uri(tracking_uri)} did not answer the look-up of {name}@{alias} "
            f"({_cause(exc)}); start the MLflow server (`make up`) or set MLFLOW_TRACKING_URI to a running one"
        ) from None


def _load_version(tracking_uri: str, name: str, alias: str, version: str, run_id: str) -> ServedModel:
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import Model

    mlflow.set_tracking_uri(tracking_uri)
    uri = f"models:/{registered_name(name)}/{version}"
    what = f"{name} version {version} (alias {alias!r})"
    try:
        files = MlflowClient(tracking_uri).get_model_version_download_uri(name, version)
    except Exception as exc:  # noqa: BLE001 - the registry answered the alias a moment ago: it stopped answering
        raise RegistryUnreachable(
            f"cannot find the files of {what} at {safe_uri(tracking_uri)}: {_cause(exc)}"
        ) from None
    if files.startswith("mlflow-artifacts:") and not tracking_uri.startswith(("http://", "https://")):
        raise ModelUnavailable(
            f"cannot load {what}: its files are at {safe_uri(files)}, which only the MLflow server serves, but the tracking "
            f"URI {safe_uri(tracking_uri)} opens the server's database directly; start the server (`make up`) and "
            "set MLFLOW_TRACKING_URI to it (http://127.0.0.1:5000 with the default settings)"
        )
    with tempfile.TemporaryDirectory(prefix="served-model-") as tmp:
        try:
            model = mlflow.sklearn.load_model(uri, dst_path=tmp)  # downloads the model's directory into tmp
            local = next(Path(tmp).rglob("MLmodel")).parent
            meta = Model.load(str(local))
        except Exception as exc:  # noqa: BLE001 - missing, truncated or unreadable files: say which version and where
            raise ModelUnavailable(
                f"cannot load {what} from {safe_uri(files)}: {_cause(exc)}; if its files are missing or damaged, point "
                f"{alias!r} at a version whose files are intact or run the training DAG to register a new one"
            ) from None
        try:
            example = meta.load_input_example(str(local))
        except Exception:  # noqa: BLE001 - a missing or unreadable example only costs the fast path
            example = None
    if not hasattr(model, "predict_proba"):
        raise ModelNotFound(f"{uri} has no predict_proba: the API serves classifiers")
    from pipelines.training import pyfunc

    classes = pyfunc.class_names(model)
    model = pyfunc.unwrap(model)  # the fitted pipeline itself: the fast path compiles its steps
    columns = signature_columns(uri, meta.signature)
    served = ServedModel(name, version, alias, run_id, model, columns, classes=classes)
    served.request_model = request_model(name, columns)
    served.contract, served.contract_source = find_contract(tracking_uri, name, version, run_id)
    if isinstance(example, pd.DataFrame) and len(example):
        served.compile(example.astype(object).where(example.notna(), None).to_dict("records"))
    else:
        served.fast_path = "off: the model was logged without an input example to check it against"
    log.info("serving: %s v%s (%s) fast path %s", name, version, alias, served.fast_path)
    return served
