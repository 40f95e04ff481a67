"""The image DAG's CNN step: train on the reference data or a user's images, log to MLflow, register a pyfunc."""

from __future__ import annotations

import numpy as np

from pipelines.deep.vision.data import ImageData, ImageDataError, load_gold_images, load_images
from pipelines.deep.vision.models import CNNClassifier
from pipelines.deep.vision.pyfunc import POLICY

REFERENCE = ("auto", "fashion_mnist", "digits")
MIN_STEPS = 1000  # without an `epochs` Param, small datasets get enough epochs for this many optimiser steps
MAX_EPOCHS = 200


def image_data(params: dict, settings, ds: str | None = None) -> ImageData:
    """The Param ``dataset`` (a ``kind: images`` dataset's gold up to ``ds``) when set, else the reference
    data of Param ``source``; at most ``max_rows`` training images."""
    dataset = params.get("dataset") or ""
    if not dataset or dataset in REFERENCE:
        source = dataset or params.get("source", settings.deep.image_dataset)
        return load_images(source, settings.seed, max_train_rows=params.get("max_rows", 0))
    from pipelines.lake import Lake

    spec = settings.datasets.get(dataset)
    if spec is None or spec.kind != "images":
        kind = "unknown" if spec is None else f"of kind {spec.kind or 'unsaid'!r}"
        raise ImageDataError(
            f"dataset {dataset!r} is {kind}; the image DAG trains on a dataset added with "
            f"`python -m pipelines dataset add {dataset} --source FOLDER --kind images --size HxW`, "
            f"or on the reference data ({', '.join(REFERENCE)})"
        )
    shape = list((spec.options or {}).get("shape") or [])
    if len(shape) != 3:
        raise ImageDataError(f"dataset {dataset!r} needs options.shape [height, width, channels] in its entry")
    if not ds:
        raise ImageDataError("no date: set the `ds` Param (YYYY-MM-DD)")
    data = load_gold_images(Lake(settings.lake_root), dataset, ds, shape[:2], int(shape[2]))
    rows = int(params.get("max_rows", 0) or 0)
    if rows and len(data.y_train) > rows:
        keep = np.random.default_rng(settings.seed).choice(len(data.y_train), rows, replace=False)
        data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    return data


def model_name(data: ImageData, cfg) -> str:
    return cfg.image_model if data.name in REFERENCE else f"{data.name}_image"


def evaluate(model: CNNClassifier, X, y) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss

    proba = model.predict_proba(X)
    pred = model.classes_[proba.argmax(1)]
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "log_loss": float(log_loss(y, np.clip(proba, 1e-7, 1), labels=model.classes_)),
        "confusion": confusion_matrix(y, pred, labels=model.classes_),
        "pred": pred,
    }


def default_epochs(cfg, n_train: int = 0) -> int:
    """``deep.image_epochs``, or more for a small training set: one-cycle training over a few dozen
    steps underfits (digits, 1,257 images: 12 epochs are 120 steps, test accuracy 0.87; 60 epochs 0.98)."""
    steps = -(-int(n_train) // int(cfg.image_batch_size)) if n_train else 0
    return max(int(cfg.image_epochs), min(MAX_EPOCHS, -(-MIN_STEPS // steps))) if steps else int(cfg.image_epochs)


def model_params(params: dict, cfg, dataset: str = "fashion_mnist", n_train: int = 0) -> dict:
    """CNNClassifier keyword arguments (all but activation and optimiser) from DAG params (epochs,
    patience) and ``deep`` settings; mirroring is used on Fashion-MNIST only."""
    return {
        "max_epochs": int(params.get("epochs") or default_epochs(cfg, n_train)),
        "patience": int(params.get("patience", cfg.image_patience)),
        "lr": float(cfg.image_lr),
        "batch_size": int(cfg.image_batch_size),
        "weight_decay": float(cfg.image_weight_decay),
        "schedule": str(cfg.image_schedule),
        "augment": bool(cfg.image_augment) and dataset == "fashion_mnist",
        "threads": int(cfg.image_threads),
        "time_budget_s": float(cfg.image_time_budget_s),
        "coefficients": tuple(float(c) for c in cfg.poly_coefficients),
        "clamp": float(cfg.poly_clamp),
        "poly_adam_c": float(cfg.poly_adam_c),
        "poly_adam_bounds": tuple(float(b) for b in cfg.poly_adam_bounds),
    }


def train_image(params: dict | None = None, settings=None, tags: dict | None = None, ds: str | None = None) -> dict:
    """Train the ReLU CNN, log metrics and figures to MLflow (experiment ``deep``), register it as a pyfunc."""
    import mlflow

    from pipelines.config import load_settings
    from pipelines.deep.common import confusion_figure, curves_figure
    from pipelines.deep.vision.plots import samples_figure
    from pipelines.deep.vision.pyfunc import log_image_model
    from pipelines.registry import log_decision, register_and_promote
    from pipelines.tracking import get_or_start_run

    settings = settings or load_settings()
    params, cfg = dict(params or {}), settings.deep
    ds = params.get("ds") or ds
    data = image_data(params, settings, ds)
    registered = model_name(data, cfg)
    model = CNNClassifier(
        seed=settings.seed, optimizer=cfg.image_optimizer, **model_params(params, cfg, data.name, len(data.y_train))
    )
    model.fit(data.X_train, data.y_train, data.X_valid, data.y_valid)
    result = evaluate(model, data.X_test, data.y_test)
    tags = {"kind": "image", **(tags or {})}
    with get_or_start_run(settings, "deep", f"image cnn ({data.name})", tags) as run:
        mlflow.set_tags({"image_dataset": data.name})
        mlflow.log_params(
            {
                **data.summary(),
                "activation": "relu",
                **{k: str(v) for k, v in model.get_params().items() if k not in ("coefficients", "clamp")},
            }
        )
        metrics = {
            "test_accuracy": result["accuracy"],
            "test_log_loss": result["log_loss"],
            "train_seconds": model.train_seconds_,
            "epochs_run": model.n_epochs_,
            "best_epoch": model.best_epoch_,
            "n_parameters": model.n_parameters_,
            "epoch_seconds_mean": float(np.mean(model.epoch_seconds_)) if model.epoch_seconds_ else 0.0,
            "stopped_by_budget": int(model.stopped_by_budget_),
        }
        mlflow.log_metrics(metrics)
        for i, (tl, vl, va) in enumerate(zip(*model.history_.values(), strict=True), start=1):
            mlflow.log_metrics({"train_loss": tl, "valid_loss": vl, "valid_accuracy": va}, step=i)
        mlflow.log_figure(confusion_figure(result["confusion"], data.class_names), "plots/confusion_matrix.png")
        mlflow.log_figure(
            samples_figure(data.X_test, data.y_test, result["pred"], data.class_names), "plots/samples.png"
        )
        mlflow.log_figure(
            curves_figure({"train": [model.history_["train_loss"]], "valid": [model.history_["valid_loss"]]}, "loss"),
            "plots/loss_curves.png",
        )
        mlflow.log_dict({"confusion": result["confusion"].tolist(), "classes": data.class_names}, "confusion.json")
        run_id = run.info.run_id
        decision = register_and_promote(
            settings.mlflow.tracking_uri,
            registered,
            POLICY,
            run_id,
            lambda: log_image_model(model, data.class_names, data.X_test),
            score=result["accuracy"],
            tags={**tags, "image_dataset": data.name},
        )
    log_decision(settings.mlflow.tracking_uri, run_id, decision)
    return {
        "run_id": run_id,
        "dataset": data.name,
        "test_accuracy": round(result["accuracy"], 4),
        "train_seconds": round(model.train_seconds_, 2),
        "epochs_run": model.n_epochs_,
        "registered_model": registered,
        "version": decision.version,
        "model_uri": f"models:/{registered}/{decision.version}",
        "alias": decision.alias,
    }
