"""Review sentiment and text classification on any labelled text dataset.

``data`` (tokenizers, the reviews' positive rule, gold readers), ``models`` (TF-IDF + logistic
regression, bidirectional LSTM, their blend), ``pyfunc`` (the registered model: raw text in),
``plots`` (ROC curves), ``run`` (the DAG step). The names below stay importable from
``pipelines.deep.text`` (models registered before the split unpickle through them).
"""

from pipelines.deep.text.data import (
    NEGATIVE,
    POSITIVE,
    TEXT,
    TextDataError,
    load_reviews,
    load_text,
    pick_tokenizer,
    positive_label,
    review_text,
    tokenize,
)
from pipelines.deep.text.models import MODELS, Blend, LSTMClassifier, NBScaler, TfidfLogReg, build, scores
from pipelines.deep.text.pyfunc import POLICY
from pipelines.deep.text.run import run_sentiment

__all__ = [
    "MODELS",
    "NEGATIVE",
    "POLICY",
    "POSITIVE",
    "TEXT",
    "Blend",
    "LSTMClassifier",
    "NBScaler",
    "TextDataError",
    "TfidfLogReg",
    "build",
    "load_reviews",
    "load_text",
    "pick_tokenizer",
    "positive_label",
    "review_text",
    "run_sentiment",
    "scores",
    "tokenize",
]
