"""Sales forecasting: daily series from gold, rolling-origin backtests, five model families, MLflow registry.

Modules, each small: ``data`` (gold -> a gap-free daily history and a plan of future drivers),
``windows`` (calendar features, origins, scalers, neural windows), ``metrics`` (MAE, RMSE, MAPE,
sMAPE, MASE at daily/weekly/monthly levels), ``models`` (seasonal naive, SARIMAX, gradient
boosting and the registry), ``neural`` (LSTM and LSTM + Transformer encoder; torch loads lazily),
``backtest``, ``tune`` (Bayesian search for the neural models), ``pyfunc`` (the MLflow model),
``plots`` and ``run`` (the DAG's steps). Importing this package imports none of torch,
statsmodels, lightgbm, xgboost or mlflow.
"""

MODELS = ("seasonal_naive", "sarimax", "lightgbm", "xgboost", "lstm", "lstm_transformer")
