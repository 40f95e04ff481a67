"""Recommendations from ratings: neighbourhood CF, matrix factorisation and a neural two-tower model.

- ``data``: ratings (and the optional item and user tables) from gold, in canonical columns.
- ``models``: the recommenders, one estimator contract (``fit`` / ``predict`` / ``recommend``).
- ``split``, ``metrics``, ``evaluate``: k-fold rating prediction and the per-user ranking protocol.
- ``pyfunc``: the MLflow model people call (user ids in, top-n items out).
- ``run``: the recommendation DAG's steps.

Importing this package loads neither torch nor mlflow.
"""
