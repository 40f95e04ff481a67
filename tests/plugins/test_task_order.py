"""plugins/task_order.py: Airflow loads the rule by name, and earlier map indexes weigh more.

Runs in a subprocess with a throwaway AIRFLOW_HOME and this repo's plugins folder, so the rule is
resolved by the name the training DAG gives it, exactly as the scheduler resolves it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from pipelines.constants import REPO_ROOT

SCRIPT = textwrap.dedent(
    """
    import json
    from types import SimpleNamespace
    from airflow.task.priority_strategy import validate_and_load_priority_weight_strategy

    rule = validate_and_load_priority_weight_strategy("task_order.MapIndexOrder")
    task = SimpleNamespace(priority_weight=1)
    weights = [rule.get_weight(SimpleNamespace(task=task, map_index=i)) for i in (-1, 0, 1, 7, 5000)]
    print(json.dumps({"rule": type(rule).__name__, "weights": weights}))
    """
)


def test_the_rule_loads_by_name_and_orders_by_map_index(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLP_"))},
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rule"] == "MapIndexOrder"
    unmapped, first, second, eighth, far = out["weights"]
    assert first > second > eighth > far == 1  # the list's order is the start order; past the span: the base
    assert unmapped == first  # an unmapped task counts as index 0


def test_the_training_dag_starts_its_algorithms_longest_first():
    from pipelines.training import algorithms

    assert sorted(algorithms.LONGEST_FIRST) == sorted(algorithms.BASE_ALGORITHMS)
    assert algorithms.start_order(["logreg", "svm_rbf", "new_one", "xgboost"]) == [
        "svm_rbf",
        "xgboost",
        "logreg",
        "new_one",
    ]
    source = (REPO_ROOT / "dags" / "training.py").read_text()
    assert '@task(weight_rule="task_order.MapIndexOrder")\n    def train(' in source
