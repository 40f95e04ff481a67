"""A priority weight rule for mapped tasks: the order of the mapped list is the order they start in.

Airflow gives every mapped instance of a task the same priority, so when a task maps over more
items than there are executor slots, which ones start first is arbitrary (``airflow dags test``
queues them in the iteration order of a set). With this rule as a task's ``weight_rule``, mapped
instance i weighs the task's ``priority_weight`` plus ``1000 - i``: the executor starts the first
items of the list first. The training DAG lists its algorithms longest first, so they start in
the same order in every run (see the README's training benchmark for what that did and did not
change). Registered through this plugin, as Airflow requires of custom rules.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from airflow.task.priority_strategy import PriorityWeightStrategy

SPAN = 1000  # map indexes beyond this all get the lowest extra weight


class MapIndexOrder(PriorityWeightStrategy):
    def get_weight(self, ti) -> int:
        base = getattr(ti.task, "priority_weight", 1) if getattr(ti, "task", None) is not None else 1
        return base + max(0, SPAN - max(ti.map_index, 0))


class TaskOrderPlugin(AirflowPlugin):
    name = "task_order"
    priority_weight_strategies = [MapIndexOrder]
