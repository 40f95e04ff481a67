"""A throwaway MLflow store (sqlite) with a small registered classifier logged like the training DAG logs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

NAME = "toy_classifier"
FEATURES = ["age", "x1", "city"]


def rows(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype("int64"),
            "x1": rng.normal(size=n),
            "city": rng.choice(["a", "b", "c"], n),
        }
    )
    frame["label"] = ((frame["x1"] + (frame["city"] == "a") + rng.logistic(size=n) * 0.5) > 0.5).astype(int)
    return frame


def sqlite_registry(tmp: Path) -> str:
    """A SQLite MLflow store in ``tmp`` (the ``training`` experiment's artifacts there too), made current; its URI."""
    import mlflow

    uri = f"sqlite:///{tmp}/m.db"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("training", artifact_location=(tmp / "artifacts").as_uri())
    return uri


def log_version(
    tracking_uri: str,
    C: float = 1.0,
    alias: str = "champion",
    background: bool = True,
    name: str = NAME,
    multiclass: bool = False,
) -> str:
    """Fit, log (signature, predict_proba), store the SHAP background, register and alias; returns the version.

    ``multiclass``: three classes ("low", "mid", "high": x1's tertiles, shifted by city "a") instead of two."""
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from pipelines.training.run import SHAP_BACKGROUND

    data = rows()
    X, y = data[FEATURES], data["label"]
    if multiclass:
        score = data["x1"] + (data["city"] == "a")
        y = pd.cut(score, score.quantile([0, 1 / 3, 2 / 3, 1]), labels=["low", "mid", "high"], include_lowest=True)
        y = y.astype(str)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "x1"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(C=C)),
        ]
    ).fit(X, y)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("training")
    with mlflow.start_run(), tempfile.TemporaryDirectory() as tmp:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X.head(5), model.predict_proba(X.head(5))[:, slice(None) if multiclass else 1]),
            input_example=X.head(5),
            serialization_format="cloudpickle",  # as training.run._log_model
            pyfunc_predict_fn="predict_proba",
            pip_requirements=["scikit-learn"],
        )
        if background:
            path = Path(tmp) / "background.parquet"
            X.head(40).to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(SHAP_BACKGROUND).parent))
    version = mlflow.register_model(info.model_uri, name)
    MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version.version)
    return str(version.version)
