"""The embedded stack the Adult DAG tests (test_dags_e2e.py) and the bring-your-own-data test (test_byod_e2e.py)
share: one Airflow + MLflow start-up for both modules. They use other datasets, dates and model names, so
neither sees the other's runs."""

import pytest

from tests.integration.isolation import embedded_stack


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory):
    from pipelines.cli import stack

    with embedded_stack(tmp_path_factory.mktemp("stack")) as (settings, env):  # its own user overlay (isolation)
        yield settings, env
    assert stack.running_pid(settings, "airflow") is None  # stopped by PID file
