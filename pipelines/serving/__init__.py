"""Real-time serving: a FastAPI app over the registry's champion (and challenger during an A/B test).

- ``model``: load a registered model by alias, with its request schema (``schema``: strict pydantic rows from
  the signature) and data contract; ``store``: the served versions by alias, polled and hot swapped;
  ``errors``: what loading raises.
- ``predlog``: the prediction log: a per-process journal (``journal``) written before the answer, batched into
  Parquet files in the lake; rows (``logrows``) that cannot be stored go to its dead letter.
- ``app``: the HTTP API (``create_app``), its bodies read and validated by ``bodies``; ``python -m pipelines
  serve`` runs it on uvicorn.
- ``ab``: stable A/B routing and the analysis of outcomes.

No airflow. mlflow, fastapi and uvicorn are imported inside functions or the app module.
"""
