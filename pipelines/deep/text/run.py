"""The sentiment step: fit every model on gold's train rows, pick by validation ROC-AUC, register the best.

The reviews (``deep.sentiment_dataset``) keep their rule (positive = rating >= 4) and register as
``deep.sentiment_model``; a user's text dataset (``kind: text``) trains on its own classes, binary
or not, and registers as ``<dataset>_sentiment``. The tokenizer is ``ko_en`` when the training
texts are Korean/English, else ``plain`` (Param ``tokenizer`` forces one).
"""

from __future__ import annotations

import time

import pandas as pd

from pipelines.deep.text.data import NEGATIVE, POSITIVE, TEXT, TOKENIZERS, TextDataError, pick_tokenizer
from pipelines.deep.text.models import MODELS, Blend, build, scores
from pipelines.deep.text.pyfunc import EXAMPLES, POLICY


def model_name(dataset: str, cfg) -> str:
    return cfg.sentiment_model if dataset == cfg.sentiment_dataset else f"{dataset}_sentiment"


def load_data(settings, dataset: str, ds: str) -> tuple[dict[str, pd.DataFrame], list[str], str]:
    """({split: frame(text, label)}, class names, what the label means) for the reviews or a ``kind: text`` dataset."""
    from pipelines.deep.text.data import load_reviews, load_text
    from pipelines.lake import Lake

    lake, cfg = Lake(settings.lake_root), settings.deep
    spec = settings.datasets.get(dataset)
    if spec is not None and spec.kind == "text":
        cols = dict(spec.columns or {})
        if not cols.get("text") or not cols.get("label"):
            raise TextDataError(f"dataset {dataset!r} (kind text) needs columns.text and columns.label in its entry")
        positive = (spec.options or {}).get("positive")
        data, classes = load_text(lake, dataset, ds, cols["text"], cols["label"], positive)
        return data, classes, f"label = {cols['label']} ({len(classes)} classes)"
    if spec is not None and spec.kind and dataset != cfg.sentiment_dataset:
        raise TextDataError(
            f"dataset {dataset!r} is of kind {spec.kind!r}; sentiment trains on the reviews or a dataset added with "
            f"`python -m pipelines dataset add {dataset} --source FILE --kind text`"
        )
    data = load_reviews(lake, dataset, ds, cfg.sentiment_min_positive_rating)
    return data, [NEGATIVE, POSITIVE], f"positive = rating >= {cfg.sentiment_min_positive_rating}"


def _log_scores(settings, name: str, tags: dict, parent: str, result: dict, model=None) -> None:
    import mlflow

    from pipelines.deep.common import curves_figure
    from pipelines.tracking import find_or_create_run

    child = find_or_create_run(settings, "deep", name, {**tags, "model": name}, parent)
    with mlflow.start_run(run_id=child, nested=True):
        metrics = {**{f"valid_{k}": v for k, v in result["valid"].items()}}
        metrics.update({f"test_{k}": v for k, v in result["test"].items()})
        mlflow.log_metrics({**metrics, "fit_seconds": result["fit_s"]})
        if hasattr(model, "history_"):
            hist = model.history_
            fig = curves_figure({"train": [hist["train_loss"]], "valid": [hist["valid_loss"]]}, "loss")
            mlflow.log_figure(fig, "plots/loss_curves.png")
            for i, (tl, vl) in enumerate(zip(*hist.values(), strict=True), start=1):
                mlflow.log_metrics({"train_loss": tl, "valid_loss": vl}, step=i)


def run_sentiment(ds: str, params: dict | None = None, settings=None, tags: dict | None = None) -> dict:
    """Fit every model on train, pick by validation ROC-AUC, report test, register the best as a pyfunc."""
    import mlflow

    from pipelines.config import load_settings
    from pipelines.constants import TEST, TRAIN, VALID
    from pipelines.deep.text.plots import roc_figure
    from pipelines.deep.text.pyfunc import log_sentiment_model
    from pipelines.registry import log_decision, register_and_promote
    from pipelines.tracking import get_or_start_run

    settings = settings or load_settings()
    params, cfg = dict(params or {}), settings.deep
    dataset = params.get("dataset") or cfg.sentiment_dataset
    names = list(params.get("models") or MODELS)
    data, classes, rule = load_data(settings, dataset, ds)
    missing = [s for s in (TRAIN, VALID, TEST) if s not in data]
    if missing:
        raise TextDataError(f"gold {dataset!r} up to {ds} has no {missing} rows; more data is needed")
    max_rows = int(params.get("max_rows", 0))
    train = data[TRAIN].sample(max_rows, random_state=settings.seed) if 0 < max_rows < len(data[TRAIN]) else data[TRAIN]
    absent = sorted(set(range(len(classes))) - set(train["label"]))
    if absent:
        raise TextDataError(
            f"class(es) {[classes[i] for i in absent]} of {dataset!r} have no training rows; add examples of them"
        )
    tokenizer = params.get("tokenizer") or "auto"
    if tokenizer == "auto":
        tokenizer = pick_tokenizer(train[TEXT])
    elif tokenizer not in TOKENIZERS:
        raise TextDataError(f"tokenizer must be auto or one of {list(TOKENIZERS)}, got {tokenizer!r}")
    registered = model_name(dataset, cfg)
    tags = {"kind": "sentiment", "dataset": dataset, "ds": ds, **(tags or {})}
    with get_or_start_run(settings, "deep", f"sentiment {dataset} {ds}", tags) as run:
        parent = run.info.run_id
        mlflow.log_params(
            {
                "dataset": dataset,
                "rule": rule,
                "classes": ",".join(classes)[:500],
                "tokenizer": tokenizer,
                "models": ",".join(names),
                **{f"{s}_rows": len(data[s]) for s in (TRAIN, VALID, TEST)},
                "train_rows_used": len(train),
            }
        )
    results = {}
    for name in names:
        model = build(name, settings.seed, params.get("epochs") or cfg.sentiment_epochs, tokenizer)
        start = time.perf_counter()
        model.fit(train[TEXT], train["label"])
        fit_s = time.perf_counter() - start
        valid = scores(data[VALID]["label"], model.predict_proba(data[VALID][TEXT]))
        test = scores(data[TEST]["label"], model.predict_proba(data[TEST][TEXT]))
        results[name] = {"model": model, "valid": valid, "test": test, "fit_s": fit_s}
        _log_scores(settings, name, tags, parent, results[name], model)
    if len(results) > 1:  # soft voting over the fitted models: nothing is refitted
        blend = Blend.fitted([r["model"] for r in results.values()])
        results["blend"] = {
            "model": blend,
            "valid": scores(data[VALID]["label"], blend.predict_proba(data[VALID][TEXT])),
            "test": scores(data[TEST]["label"], blend.predict_proba(data[TEST][TEXT])),
            "fit_s": sum(r["fit_s"] for r in results.values()),
        }
        _log_scores(settings, "blend", tags, parent, results["blend"])
    best = max(results, key=lambda n: results[n]["valid"]["roc_auc"])
    chosen = results[best]
    examples = EXAMPLES if dataset == cfg.sentiment_dataset else list(data[TEST][TEXT].head(2))
    with mlflow.start_run(run_id=parent):
        probs = {n: r["model"].predict_proba(data[TEST][TEXT]) for n, r in results.items()}
        mlflow.log_figure(roc_figure(data[TEST]["label"], probs, classes), "plots/roc_test.png")
        mlflow.log_metrics({f"{n}_test_roc_auc": r["test"]["roc_auc"] for n, r in results.items()})
        mlflow.set_tag("best_model", best)
        decision = register_and_promote(
            settings.mlflow.tracking_uri,
            registered,
            POLICY,
            parent,
            lambda: log_sentiment_model(chosen["model"], classes, best, examples),
            score=chosen["test"]["roc_auc"],
            tags={**tags, "model": best},
        )
    log_decision(settings.mlflow.tracking_uri, parent, decision)
    return {
        "run_id": parent,
        "dataset": dataset,
        "classes": len(classes),
        "tokenizer": tokenizer,
        "best_model": best,
        **{f"{n}_test_roc_auc": round(r["test"]["roc_auc"], 4) for n, r in results.items()},
        **{f"{n}_test_f1": round(r["test"]["f1"], 4) for n, r in results.items()},
        **{f"{n}_fit_s": round(r["fit_s"], 1) for n, r in results.items()},
        "test_roc_auc": round(chosen["test"]["roc_auc"], 4),
        "test_accuracy": round(chosen["test"]["accuracy"], 4),
        "registered_model": registered,
        "version": decision.version,
        "model_uri": f"models:/{registered}/{decision.version}",
        "alias": decision.alias,
    }
