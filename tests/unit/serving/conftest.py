"""The serving tests' registry: a throwaway sqlite MLflow store with version 1 of the toy model as champion."""

from __future__ import annotations

import pytest

from tests.unit.serving.registry_helpers import NAME, log_version, sqlite_registry


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(settings environ, tracking uri) with version 1 as champion."""

    tmp = tmp_path_factory.mktemp("serving")
    uri = sqlite_registry(tmp)
    log_version(uri)
    environ = {
        "MLP_LAKE_ROOT": str(tmp / "lake"),
        "MLP_STATE_DIR": str(tmp / "state"),
        "MLFLOW_TRACKING_URI": uri,
        "MLP_SERVING__MODEL": NAME,
    }
    return environ, uri, tmp
