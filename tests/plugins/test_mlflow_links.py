"""plugins/mlflow_links.py: Airflow's plugins manager loads it, and its link names the task's MLflow run.

Runs in a subprocess with a throwaway AIRFLOW_HOME and metadata DB (SQLite, migrated), so the
plugins manager reads this repo's plugins/ folder exactly as the API server does. The XCom rows
are written as Airflow stores a task's return value; the end-to-end check through the API
server and the browser is in tests/e2e.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pipelines.constants import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN = "0123456789abcdef0123456789abcdef"
UI = "http://mlflow.example.test:5999"

SCRIPT = textwrap.dedent(
    """
    import json, sqlite3, sys
    from airflow import plugins_manager
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.models.xcom import XComModel

    plugins = [p.name for p in plugins_manager._get_plugins()[0]]
    links = {link.name: link for link in plugins_manager.get_global_operator_extra_links()}
    db = sqlite3.connect(sys.argv[1])  # foreign keys off: XCom rows without their DAG run
    returns = {
        ("train", 0): {"mlflow_run_id": sys.argv[2], "algorithm": "logreg", "cv_roc_auc": 0.9},
        ("prepare", -1): {"parent_run_id": sys.argv[2], "dataset": "adult"},
        ("land", -1): ["/landing/adult/ds=2026-01-01/part-0.csv"],
    }
    for i, ((task_id, map_index), value) in enumerate(returns.items()):
        db.execute(
            "insert into xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp) "
            "values (?, ?, ?, 'return_value', 'training', 'manual__1', ?, '2026-01-01 00:00:00')",
            (i + 1, task_id, map_index, json.dumps(XComModel.serialize_value(value))),
        )
    db.commit()
    urls = {
        f"{task_id}[{map_index}]": links["MLflow run"].get_link(
            None, ti_key=TaskInstanceKey("training", task_id, "manual__1", 1, map_index)
        )
        for task_id, map_index in returns
    }
    print(json.dumps({"plugins": plugins, "links": sorted(links), "urls": urls}))
    """
)


def test_plugin_loads_and_links_a_task_to_its_mlflow_run(tmp_path):
    home = tmp_path / "airflow"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLP_", "MLFLOW_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "MLP_MLFLOW__UI_URL": UI,
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(home / "airflow.db"), RUN],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "mlflow_links" in out["plugins"]
    assert "MLflow run" in out["links"]
    assert out["urls"] == {
        "train[0]": f"{UI}/#/runs/{RUN}",
        "prepare[-1]": f"{UI}/#/runs/{RUN}",
        "land[-1]": "",
    }
