"""Real-time serving: a FastAPI app over the registry's champion (and challenger during an A/B test).

- ``model``: load a registered model by alias, its request schema from the signature, hot swap.
- ``predlog``: the prediction log: a per-process journal written before the answer, batched into Parquet
  files in the lake; rows that cannot be stored go to its dead letter.
- ``app``: the HTTP API (``create_app``); ``python -m pipelines serve`` runs it on uvicorn.
- ``ab``: stable A/B routing and the analysis of outcomes.

No airflow. mlflow, fastapi and uvicorn are imported inside functions or the app module.
"""
