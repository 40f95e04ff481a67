"""Monitoring of a served model: performance per batch, degradation, data/prediction drift, anomalies, alerts.

- ``drift``: PSI, KS (numeric) and chi-square (categorical) per feature against a reference.
- ``performance``: labelled predictions per batch, and the degradation window rule.
- ``anomaly``: a GaussianMixture (components chosen by BIC) fitted on the reference; rows that are
  unlikely under it score high.
- ``alerts``: what an alert holds, where it is stored, how it is sent (log or webhook).
- ``run``: the monitoring DAG's step, joining the prediction log with labels in the lake.

Pure functions on DataFrames except ``run`` and ``alerts.notify``; no airflow.
"""
