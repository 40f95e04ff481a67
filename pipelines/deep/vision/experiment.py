"""The poly-vs-ReLU experiment (reference data only): the CNN with f'(x) and PolyAdam against ReLU and Adam.

A run counts as *diverged* when its training loss becomes non-finite or its test accuracy is no
better than twice chance (2 / number of classes).
"""

from __future__ import annotations

import pandas as pd

from pipelines.deep.vision.data import ImageData, load_images
from pipelines.deep.vision.models import CNNClassifier
from pipelines.deep.vision.run import evaluate, model_params

# Ablation arms (bench/deep.py): which of the two changes does what.
ABLATION_ARMS = {
    "poly_adam": {"activation": "poly", "optimizer": "adam"},
    "relu_polyadam": {"activation": "relu", "optimizer": "poly_adam"},
}
ARMS = {
    "relu_adam": {"activation": "relu", "optimizer": "adam"},
    "poly_polyadam": {"activation": "poly", "optimizer": "poly_adam"},
}


def poly_vs_relu(
    data: ImageData, seeds: int = 5, base_seed: int = 42, arms: dict | None = None, **model_kwargs
) -> pd.DataFrame:
    """Every arm (default: both of ``ARMS``) on the same data and seeds: a row per (arm, seed) with accuracy,
    divergence and curves."""
    rows = []
    chance = 1.0 / len(data.class_names)
    for arm, spec in (arms or ARMS).items():
        for k in range(int(seeds)):
            model = CNNClassifier(seed=base_seed + k, **spec, **model_kwargs)
            model.fit(data.X_train, data.y_train, data.X_valid, data.y_valid)
            acc = evaluate(model, data.X_test, data.y_test)["accuracy"]
            rows.append(
                {
                    "arm": arm,
                    "seed": base_seed + k,
                    "test_accuracy": acc,
                    "diverged": bool(model.diverged_ or acc <= 2 * chance),
                    "nonfinite_loss": bool(model.diverged_),
                    "epochs_run": model.n_epochs_,
                    "train_seconds": model.train_seconds_,
                    "valid_loss": model.history_["valid_loss"],
                    "train_loss": model.history_["train_loss"],
                }
            )
    return pd.DataFrame(rows)


def summarise_experiment(table: pd.DataFrame) -> dict:
    out = {}
    for arm, g in table.groupby("arm", sort=False):
        ok = g[~g["diverged"]]
        out[arm] = {
            "accuracy_mean": round(float(g["test_accuracy"].mean()), 4),
            "accuracy_std": round(float(g["test_accuracy"].std(ddof=0)), 4),
            "accuracy_mean_not_diverged": round(float(ok["test_accuracy"].mean()), 4) if len(ok) else None,
            "diverged": int(g["diverged"].sum()),
            "runs": len(g),
            "train_seconds_mean": round(float(g["train_seconds"].mean()), 2),
        }
    return out


def run_poly_experiment(params: dict | None = None, settings=None, tags: dict | None = None) -> dict:
    """The poly-vs-ReLU experiment logged to MLflow: a parent run, a nested run per (arm, seed), plots."""
    import mlflow

    from pipelines.config import load_settings
    from pipelines.deep.common import curves_figure
    from pipelines.deep.vision.plots import poly_figure
    from pipelines.tracking import find_or_create_run, get_or_start_run

    settings = settings or load_settings()
    params, cfg = dict(params or {}), settings.deep
    seeds = int(params.get("seeds", cfg.seeds))
    rows = [int(r) for r in (params.get("max_rows", 0), params.get("experiment_max_rows", 0)) if r]
    data = load_images(
        params.get("source", cfg.image_dataset),
        settings.seed,
        max_train_rows=min(rows, default=0),
        max_eval_rows=int(params.get("experiment_max_rows", 0)),  # scoring in proportion to training
    )
    kwargs = model_params(params, cfg, data.name)
    table = poly_vs_relu(data, seeds, settings.seed, **kwargs)
    summary = summarise_experiment(table)
    tags = {"kind": "poly_experiment", **(tags or {})}
    with get_or_start_run(settings, "deep", f"poly vs relu ({data.name})", tags) as run:
        parent = run.info.run_id
        mlflow.set_tags({"image_dataset": data.name})
        mlflow.log_params({**data.summary(), "seeds": seeds, **{k: str(v) for k, v in kwargs.items()}})
        for arm, s in summary.items():
            mlflow.log_metrics(
                {
                    f"{arm}_accuracy_mean": s["accuracy_mean"],
                    f"{arm}_accuracy_std": s["accuracy_std"],
                    f"{arm}_diverged_of_{seeds}": s["diverged"],
                }
            )
        mlflow.log_dict(summary, "experiment/summary.json")
        mlflow.log_dict(table.to_dict(orient="records"), "experiment/runs.json")
        curves = {arm: list(g["valid_loss"]) for arm, g in table.groupby("arm", sort=False)}
        mlflow.log_figure(
            curves_figure(curves, "validation loss", "poly+PolyAdam vs ReLU+Adam"), "plots/loss_curves.png"
        )
        mlflow.log_figure(poly_figure(kwargs["coefficients"], kwargs["clamp"]), "plots/poly_f_and_derivative.png")
    for row in table.itertuples():
        child = find_or_create_run(
            settings, "deep", f"{row.arm} seed {row.seed}", {**tags, "arm": row.arm, "seed": str(row.seed)}, parent
        )
        with mlflow.start_run(run_id=child, nested=True):
            mlflow.log_metrics(
                {"test_accuracy": row.test_accuracy, "diverged": int(row.diverged), "train_seconds": row.train_seconds}
            )
            for i, (tl, vl) in enumerate(zip(row.train_loss, row.valid_loss, strict=True), start=1):
                mlflow.log_metrics({"train_loss": tl, "valid_loss": vl}, step=i)
    return {"run_id": parent, "dataset": data.name, "seeds": seeds, **summary}
