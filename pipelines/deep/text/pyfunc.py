"""The registered sentiment model: raw text in, the class, its confidence (and P(positive) for two classes) out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.deep.text.data import NEGATIVE, POSITIVE, TEXT
from pipelines.registry import Policy

POLICY = Policy("test_roc_auc")  # champion when there is none or its test ROC-AUC beats the champion's
EXAMPLES = ["배송이 빠르고 옷감이 정말 좋아요.", "Runs small and the colour is off."]


def sentiment_model_class():
    import mlflow

    class SentimentModel(mlflow.pyfunc.PythonModel):
        """Raw text in (a ``text`` column, a list of strings, or one string); ``label`` (the class name),
        ``confidence``, and with two classes ``p_positive`` (probability of the second, positive class) out."""

        def __init__(self, model, class_names=(NEGATIVE, POSITIVE)):
            self.model = model
            self.class_names = list(class_names)

        def predict(self, context, model_input, params=None) -> pd.DataFrame:
            proba = self.model.predict_proba(model_input)
            k = proba.argmax(1)
            names = np.asarray(getattr(self, "class_names", [NEGATIVE, POSITIVE]), dtype=object)
            out = pd.DataFrame({"label": names[k], "confidence": proba.max(1)})
            if proba.shape[1] == 2:
                out["p_positive"] = proba[:, 1]
            return out

    return SentimentModel


def log_sentiment_model(model, class_names: list[str], name: str, examples=EXAMPLES) -> str:
    """Log the pyfunc (with its signature and example) on the active run; returns its model URI."""
    import mlflow
    from mlflow.models import infer_signature

    example = pd.DataFrame({TEXT: list(examples)})
    python_model = sentiment_model_class()(model, class_names)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        signature=infer_signature(example, python_model.predict(None, example)),
        input_example=example,
        pip_requirements=requirements(name),
    ).model_uri


def requirements(model: str) -> list[str]:
    from importlib.metadata import version

    pkgs = ["mlflow", "numpy", "pandas", "scikit-learn", *(["torch"] if model in ("lstm", "blend") else [])]
    return [f"{p}=={version(p)}" for p in pkgs]
