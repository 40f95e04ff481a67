"""Sentiment: tokenizer (Korean and English), the positive rule, both models, the steps through gold and MLflow."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines import features
from pipelines.config import load_settings
from pipelines.deep import text
from pipelines.deep.text import LSTMClassifier, TextDataError, TfidfLogReg, positive_label, review_text, tokenize


def test_tokenizer_korean():
    toks = tokenize("배송이 빠르고 옷감이 정말 좋아요.")
    assert toks[:1] == ["배송이"] and {"빠르고", "옷감이", "정말", "좋아요"} <= set(toks)
    assert {"배송", "송이", "옷감", "좋아", "아요"} <= set(toks)  # Hangul bigrams
    assert "." not in toks and "배송이." not in toks
    toks = tokenize("사이즈가 너무 작고 색이 사진과 달라요.")
    assert {"사이즈가", "사이", "이즈", "즈가", "너무", "작고", "색이", "사진과", "사진", "달라요", "달라"} <= set(toks)
    assert "작" not in toks  # two-syllable words are kept whole only


def test_tokenizer_english_mixed_and_empty():
    assert tokenize("I DON'T love it, 2 stars!") == ["i", "don't", "love", "it", "2", "stars"]
    assert tokenize("Size S는 작아요") == ["size", "s", "는", "작아요", "작아", "아요"]
    assert tokenize(None) == [] and tokenize(float("nan")) == [] and tokenize("...") == []


def test_positive_rule_and_text_join():
    np.testing.assert_array_equal(positive_label([1, 2, 3, 4, 5]), [0, 0, 0, 1, 1])
    with pytest.raises(TextDataError, match="ratings must be"):
        positive_label([4, None])
    out = review_text(["Great", None, None], ["fits well", "runs small", None])
    assert list(out) == ["Great. fits well", "runs small", ""]


GOOD = ["love", "perfect", "beautiful", "comfortable", "great", "좋아요", "예뻐요"]
BAD = ["small", "cheap", "returned", "disappointed", "itchy", "달라요", "작아요"]


def _reviews(n=400, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rating = int(rng.integers(1, 6))
        words = GOOD if rating >= 4 else BAD
        other = BAD if rating >= 4 else GOOD
        body = " ".join([*rng.choice(words, 4), *rng.choice(other, 1), "the", "dress"])
        rows.append(
            {
                "Clothing ID": i,
                "Age": 30,
                "Title": None if i % 3 else "A title",
                "Review Text": None if i % 50 == 7 else f"{body} {i}",
                "Rating": rating,
                "Recommended IND": int(rating >= 4),
                "Positive Feedback Count": 0,
                "Division Name": "General",
                "Department Name": "Dresses",
                "Class Name": "Dresses",
            }
        )
    return pd.DataFrame(rows)


def test_models_contract_and_errors():
    frame = _reviews(300)
    frame = frame[frame["Review Text"].notna()]
    X, y = frame["Review Text"], positive_label(frame["Rating"])
    for model in (TfidfLogReg(), LSTMClassifier(epochs=3, embed_dim=16, hidden=16)):
        assert model.fit(X, y) is model
        p = model.predict_proba(pd.DataFrame({"text": X}))
        assert p.shape == (len(X), 2) and np.allclose(p.sum(1), 1)
        assert text.scores(y, p[:, 1])["roc_auc"] > 0.8
    with pytest.raises(TextDataError, match="column 'text'"):
        TfidfLogReg().fit(X, y).predict_proba(pd.DataFrame({"review": X}))
    with pytest.raises(TextDataError, match="two or more"):
        TfidfLogReg().fit(X[:5], [1] * 5)
    with pytest.raises(TextDataError, match="unknown sentiment model"):
        text.build("bert")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Settings over a throwaway lake and MLflow store, with the reviews through the features chain."""
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "reviews.csv"
    _reviews(400).to_csv(src, index=False)
    settings = load_settings(
        {
            "MLP_LAKE_ROOT": str(tmp_path / "lake"),
            "MLP_STATE_DIR": str(tmp_path / "state"),
            "MLP_DATASETS__REVIEWS__SOURCE": str(src),
            "MLP_DEMO__DAYS": "1",
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
        }
    )
    out = features.run("reviews", "2026-01-01", settings=settings)
    assert out["silver"]["rows_quarantined"] == 8  # the reviews without text
    return settings


def test_run_sentiment_through_gold_and_registry(settings):
    summary = text.run_sentiment("2026-01-01", {"epochs": 2}, settings)
    assert (
        summary["best_model"] in ("tfidf_logreg", "lstm", "blend")
        and "blend_test_roc_auc" in summary
        and summary["test_roc_auc"] > 0.8
    )
    assert summary["alias"] == "champion"
    client = MlflowClient(settings.mlflow.tracking_uri)
    assert "plots/roc_test.png" in {a.path for a in client.list_artifacts(summary["run_id"], "plots")}
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(summary["model_uri"])
    pred = model.predict(pd.DataFrame({"text": ["love perfect beautiful", "small cheap returned disappointed"]}))
    assert list(pred["label"]) == ["positive", "negative"] and pred["confidence"].between(0.5, 1).all()
    with pytest.raises(TextDataError, match="no gold partitions"):
        text.run_sentiment("2025-01-01", {}, settings)


def test_a_retried_sentiment_task_registers_once(settings):
    """The task run again for the same DAG run keeps its version, its alias and its one logged model;
    a later DAG run that only ties the champion becomes the challenger."""
    params = {"models": ["tfidf_logreg"]}
    first = text.run_sentiment("2026-01-01", params, settings, tags={"airflow_run_id": "manual__1"})
    client = MlflowClient(settings.mlflow.tracking_uri)
    aliases = client.get_registered_model("sentiment_classifier").aliases
    retry = text.run_sentiment("2026-01-01", params, settings, tags={"airflow_run_id": "manual__1"})
    keys = ("run_id", "version", "model_uri", "alias", "test_roc_auc")
    assert [retry[k] for k in keys] == [first[k] for k in keys] and first["alias"] == "champion"
    assert len(client.search_model_versions("name = 'sentiment_classifier'")) == 1
    assert client.get_registered_model("sentiment_classifier").aliases == aliases == {"champion": 1}
    experiment = client.get_experiment_by_name("deep").experiment_id
    logged = mlflow.search_logged_models([experiment], f"source_run_id = '{first['run_id']}'", output_format="list")
    assert len(logged) == 1

    later = text.run_sentiment("2026-01-01", params, settings, tags={"airflow_run_id": "manual__2"})
    assert later["version"] == "2" and later["alias"] == "challenger"
    tags = client.get_run(later["run_id"]).data.tags
    assert tags["alias"] == "challenger" and "does not beat champion version 1" in tags["registry_decision"]


def test_nb_scaler_weights_class_words():
    import scipy.sparse as sp

    X = sp.csr_matrix(np.array([[2.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 3.0, 1.0]]))
    nb = text.NBScaler(alpha=1.0).fit(X, np.array([1, 1, 0]))
    # column 0 only in positives, column 1 only in negatives, column 2 in both
    assert nb.r_[0] > 0 > nb.r_[1]
    p, q = np.array([4.0, 1.0, 3.0]), np.array([1.0, 4.0, 2.0])
    np.testing.assert_allclose(nb.r_, np.log((p / p.sum()) / (q / q.sum())))
    np.testing.assert_allclose(nb.transform(X).toarray(), X.toarray() * nb.r_)
    model = TfidfLogReg(nb=True).fit(["good great"] * 10 + ["bad awful"] * 10, [1] * 10 + [0] * 10)
    assert model.predict(["great", "awful"]).tolist() == [1, 0]
