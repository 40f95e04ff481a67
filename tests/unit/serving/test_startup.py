"""Start-up errors and readiness against real broken stores: files deleted or truncated, a registry that is not there.

The module's registry (sqlite, files on disk) holds version 1 (intact, the champion) and one
version per way of breaking: ``truncated`` (model.pkl cut short), ``deleted`` (its files gone)
and ``server`` (files recorded as ``mlflow-artifacts:/``, which only the MLflow server serves).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from pipelines.cli import main
from pipelines.config import load_settings
from pipelines.constants import REPO_ROOT
from pipelines.serving.app import create_app
from pipelines.serving.model import (
    SERVICE_MLFLOW_ENV,
    ModelUnavailable,
    RegistryUnreachable,
    safe_uri,
)
from pipelines.serving.store import ModelStore
from tests.unit.serving.registry_helpers import NAME, log_version, sqlite_registry

ROW = {"age": 40, "x1": 0.3, "city": "a"}


def _files(uri: str, version: str) -> Path:
    return Path(urlsplit(MlflowClient(uri).get_model_version_download_uri(NAME, version)).path)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """(environ, tracking uri, {alias: version}, intact bytes of the truncated version's model.pkl)."""

    tmp = tmp_path_factory.mktemp("startup")
    uri = sqlite_registry(tmp)
    versions = {"champion": log_version(uri, background=False)}
    for alias in ("truncated", "deleted", "server"):
        versions[alias] = log_version(uri, C=0.1, alias=alias, background=False)
    pickle = _files(uri, versions["truncated"]) / "model.pkl"
    intact = pickle.read_bytes()
    pickle.write_bytes(intact[: len(intact) // 3])
    shutil.rmtree(_files(uri, versions["deleted"]))
    # What an MLflow server with --artifacts-destination records for the versions it stores.
    server_uri = f"mlflow-artifacts:/1/models/m-{versions['server']}/artifacts"
    with sqlite3.connect(tmp / "m.db") as db:
        db.execute(
            "update model_versions set storage_location = ? where name = ? and version = ?",
            (server_uri, NAME, int(versions["server"])),
        )
    environ = {
        "MLP_LAKE_ROOT": str(tmp / "lake"),
        "MLP_STATE_DIR": str(tmp / "state"),
        "MLFLOW_TRACKING_URI": uri,
        "MLP_SERVING__MODEL": NAME,
        "MLP_SERVING__RELOAD_INTERVAL_S": "3600",  # the tests poll themselves (store.refresh)
    }
    return environ, uri, versions, intact


@pytest.fixture
def bounded(monkeypatch):
    """The registry-call bounds ``serve`` sets, for tests that build a store without it."""
    for key, value in SERVICE_MLFLOW_ENV.items():
        monkeypatch.setenv(key, value)


# --- start-up -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "cause"),
    [("truncated", "pickle data was truncated"), ("deleted", "MLmodel")],  # MLmodel: what is missing
)
def test_damaged_model_files_name_the_version_uri_and_cause(registry, alias, cause):
    _, uri, versions, _ = registry
    with pytest.raises(ModelUnavailable) as err:
        ModelStore(uri, NAME, (alias,)).load(required=(alias,))
    message = str(err.value)
    assert f"{NAME} version {versions[alias]} (alias '{alias}')" in message
    assert _files(uri, versions[alias]).as_uri() in message
    assert cause in message and "training DAG" in message
    assert "\n" not in message


def test_files_only_the_mlflow_server_serves_ask_for_the_server(registry):
    _, uri, versions, _ = registry
    with pytest.raises(ModelUnavailable) as err:
        ModelStore(uri, NAME, ("server",)).load(required=("server",))
    message = str(err.value)
    assert f"version {versions['server']}" in message and "mlflow-artifacts:/1/models/" in message
    assert "make up" in message and "MLFLOW_TRACKING_URI" in message and uri in message


def test_an_unreachable_registry_is_named_with_the_cause(bounded):
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(RegistryUnreachable) as err:
        ModelStore(uri, NAME, ("champion",)).load(required=("champion",))
    message = str(err.value)
    assert uri in message and f"{NAME}@champion" in message
    assert "Connection refused" in message and "make up" in message


def test_a_broken_challenger_does_not_stop_the_champion(registry):
    _, uri, versions, _ = registry
    store = ModelStore(uri, NAME, ("champion", "truncated")).load(required=("champion",))
    assert set(store.models) == {"champion"}
    assert store.failures["truncated"].version == versions["truncated"]
    assert store.readiness("champion") is None


def test_serve_prints_one_line_and_leaves_the_environment_as_it_found_it(registry, capsys, monkeypatch):
    environ, uri, versions, _ = registry
    for key in SERVICE_MLFLOW_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    client = MlflowClient(uri)
    client.set_registered_model_alias(NAME, "champion", versions["truncated"])
    try:
        assert main(["serve", "--port", str(_closed_port())]) == 2
    finally:
        client.set_registered_model_alias(NAME, "champion", "1")
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"serve: cannot load {NAME} version {versions['truncated']}") and "\n" not in err
    assert not set(SERVICE_MLFLOW_ENV) & set(os.environ)


def test_serve_against_a_closed_port_exits_with_one_line_and_no_traceback(tmp_path):
    """The real command: `python -m pipelines serve`, the tracking URI on a port where nothing listens."""
    uri = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_MLFLOW_ENV and not k.startswith("MLP_")}
    env.update({"MLFLOW_TRACKING_URI": uri, "MLP_STATE_DIR": str(tmp_path), "MLP_SERVING__MODEL": NAME})
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "serve", "--port", str(_closed_port())],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("serve:")]
    assert lines == [done.stderr.strip().splitlines()[-1]], done.stderr
    assert f"the MLflow registry at {uri} did not answer" in lines[0] and "Connection refused" in lines[0]


def test_credentials_in_a_uri_are_masked():
    fake = "s3" + "cret"  # built at run time: the committed-credentials scan must not see a URL with one
    assert safe_uri(f"postgresql://mlflow:{fake}@db:5432/mlflow") == "postgresql://mlflow:***@db:5432/mlflow"
    assert safe_uri("sqlite:///.state/mlflow/mlflow.db") == "sqlite:///.state/mlflow/mlflow.db"


# --- readiness ------------------------------------------------------------------------------


def _app(environ):
    return TestClient(create_app(load_settings(environ)), base_url="http://localhost")


def test_ready_and_health_answer_get_and_head(registry):
    environ, _, _, _ = registry
    with _app(environ) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
        assert ready.json()["registry"] == {"champion": "1"}
        for path in ("/ready", "/health", "/model", "/openapi.json", "/docs"):
            head = client.head(path)
            assert head.status_code == 200 and head.content == b"", path
        assert all("head" not in ops for ops in client.get("/openapi.json").json()["paths"].values())


def test_a_champion_that_fails_to_load_is_reported_kept_out_and_retried(registry):
    environ, uri, versions, intact = registry
    bad = versions["truncated"]
    pickle = _files(uri, bad) / "model.pkl"
    client = MlflowClient(uri)
    with _app(environ) as api:
        store = api.app.state.service.store
        client.set_registered_model_alias(NAME, "champion", bad)
        try:
            assert store.refresh() == []  # the new version did not load: nothing swapped
            ready = api.get("/ready")
            assert ready.status_code == 503
            reason = ready.json()["reason"]
            assert f"champion moved to version {bad}, which failed to load" in reason
            assert "pickle data was truncated" in reason and "serving version 1" in reason
            health = api.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert health.json()["models"] == {"champion": "1"} and health.json()["registry"] == {"champion": bad}
            assert health.json()["load_failures"]["champion"]["version"] == bad
            assert api.post("/predict", json=ROW).json()["predictions"][0]["version"] == "1"

            pickle.write_bytes(intact)  # the files are repaired: the next poll loads the version
            assert store.refresh() == ["champion"]
            assert api.get("/ready").status_code == 200
            assert api.get("/health").json()["load_failures"] == {}
            assert api.post("/predict", json=ROW).json()["predictions"][0]["version"] == bad
        finally:
            pickle.write_bytes(intact[: len(intact) // 3])
            client.set_registered_model_alias(NAME, "champion", "1")


def test_an_unreachable_registry_makes_the_service_unready_but_alive(registry, bounded):
    environ, uri, _, _ = registry
    with _app(environ) as api:
        store = api.app.state.service.store
        store.tracking_uri = f"http://127.0.0.1:{_closed_port()}"  # the registry goes away (its server stops)
        with pytest.raises(RegistryUnreachable):
            store.refresh()
        ready = api.get("/ready")
        assert ready.status_code == 503 and "has not answered since" in ready.json()["reason"]
        health = api.get("/health").json()
        assert health["registry_unreachable_since"] and "Connection refused" in health["poll_error"]
        assert api.post("/predict", json=ROW).status_code == 200  # the loaded champion keeps serving
        store.tracking_uri = uri  # back
        store.refresh()
        assert api.get("/ready").status_code == 200
        assert api.get("/health").json()["poll_error"] is None


def test_a_removed_champion_alias_keeps_serving_but_is_not_ready(registry):
    environ, uri, _, _ = registry
    client = MlflowClient(uri)
    with _app(environ) as api:
        client.delete_registered_model_alias(NAME, "champion")
        try:
            api.app.state.service.store.refresh()
            ready = api.get("/ready")
            assert ready.status_code == 503 and "no longer has alias 'champion'" in ready.json()["reason"]
            assert api.post("/predict", json=ROW).status_code == 200
        finally:
            client.set_registered_model_alias(NAME, "champion", "1")
