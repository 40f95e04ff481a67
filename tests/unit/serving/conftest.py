"""The serving tests' registry: a throwaway sqlite MLflow store with version 1 of the toy model as champion."""

from __future__ import annotations

import pytest

from tests.unit.serving.registry_helpers import NAME, log_version


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(settings environ, tracking uri) with version 1 as champion."""
    import mlflow

    tmp = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{tmp}/m.db"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("training", artifact_location=(tmp / "artifacts").as_uri())
    log_version(uri)
    environ = {
        "MLP_LAKE_ROOT": str(tmp / "lake"),
        "MLP_STATE_DIR": str(tmp / "state"),
        "MLFLOW_TRACKING_URI": uri,
        "MLP_SERVING__MODEL": NAME,
    }
    return environ, uri, tmp
