"""An "MLflow run" button on Airflow tasks that logged to MLflow, opening that run in the MLflow UI.

Registered as a global operator extra link: the API server computes it when the UI shows a task
instance, from the task's ``return_value`` XCom (training steps return ``mlflow_run_id`` or
``parent_run_id``; the features ``track`` step returns the run id itself). Tasks whose return
value names no MLflow run get no link. The MLflow UI address comes from the platform settings
(``mlflow.ui_url``, else ``http://<mlflow.host>:<mlflow.port>``; env ``MLP_MLFLOW__UI_URL``).
"""

from __future__ import annotations

import json

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

LINK_NAME = "MLflow run"


def _return_value(ti_key) -> object:
    """The task instance's return value as stored (JSON), without instantiating any class from it."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        stored = session.scalar(
            select(XComModel.value).where(
                XComModel.key == "return_value",
                XComModel.dag_id == ti_key.dag_id,
                XComModel.run_id == ti_key.run_id,
                XComModel.task_id == ti_key.task_id,
                XComModel.map_index == ti_key.map_index,
            )
        )
    if isinstance(stored, str | bytes):
        try:
            return json.loads(stored)
        except ValueError:
            return stored
    return stored


class MlflowRunLink(BaseOperatorLink):
    """Link from a task instance to the MLflow run its return value names."""

    name = LINK_NAME

    def get_link(self, operator, *, ti_key) -> str:
        from pipelines.config import load_settings
        from pipelines.tracking import mlflow_run_id_in, mlflow_run_url

        run_id = mlflow_run_id_in(_return_value(ti_key))
        if run_id is None:
            return ""
        return mlflow_run_url(load_settings().mlflow.browser_url, run_id)


class MlflowLinksPlugin(AirflowPlugin):
    name = "mlflow_links"
    global_operator_extra_links = [MlflowRunLink()]
