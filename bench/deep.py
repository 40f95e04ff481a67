"""Benchmark: the deep-learning use cases (sentiment, image CNN, the poly-vs-ReLU experiment).

What it measures:

- sentiment: the real Women's E-Commerce Clothing Reviews through the real feature chain (the
  4 demo dates into a throwaway lake), then the DAG's models on gold's train rows: test ROC-AUC
  and F1 of TF-IDF + logistic regression, the LSTM and their blend; headline ``sentiment_test_auc``
  is the model the DAG would register (best validation ROC-AUC), target >= 0.95.
- image: the ReLU CNN (the registered one, ``deep.image_*`` settings) on Fashion-MNIST when its idx
  files are installed (``make datasets``), else scikit-learn's digits (``fashion_dataset`` in the JSON
  says which): test accuracy (target >= 0.91), wall and CPU seconds of the fit, seconds per epoch,
  and the 1-minute load average sampled during the fit (other work on the machine inflates the wall
  time; the CPU seconds and the per-epoch times say by how much). The fit has a 10-minute budget:
  no epoch starts that would, at the mean epoch time so far, end past it.
- the experiment: poly activation + PolyAdam vs ReLU + Adam (and the two ablation arms), 5 seeds
  each, on ``--experiment-rows`` training images (6,000 by default) with the same settings and at
  most ``--experiment-epochs``: mean (and per-seed) test accuracy and how many runs diverged.
- own data (``own_data``, bench/deep_own_data.py): digits saved as PNG class folders and a text
  task from the reviews' wheel (department from review text), each from files to a registered
  model through the commands a user types; the registered model's test figures next to a plain
  logistic regression on the same split, and the seconds from files to model.

The LSTM runs on one thread as in a DAG task; the CNN on ``deep.image_threads``. MLflow is not
involved (the figures are the models'). Run: ``python bench/deep.py`` (about 15-25 minutes on 2
quiet cores); ``--quick`` for a smoke run, ``--skip sentiment`` for the image part alone.
Writes ``bench/results/deep.json`` (``--out``) and prints a table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEED = 42
TARGET_AUC = 0.95
TARGET_ACC = 0.91  # Fashion-MNIST test accuracy ...
TIME_BUDGET_S = 600.0  # ... within 10 minutes of CPU training (the fit's wall-clock budget)


def bench_sentiment(epochs: int, max_rows: int) -> dict:
    from pipelines import features
    from pipelines.config import load_settings
    from pipelines.constants import TEST, TRAIN, VALID
    from pipelines.deep import text
    from pipelines.lake import Lake

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({**os.environ, "MLP_LAKE_ROOT": tmp})
        for day in range(settings.demo.days):
            ds = f"2026-01-{day + 1:02d}"
            features.run("reviews", ds, settings=settings)
        data = text.load_reviews(Lake(settings.lake_root), "reviews", ds)
    train = data[TRAIN] if not max_rows else data[TRAIN].sample(max_rows, random_state=SEED)
    out, models = {}, {}
    for name in text.MODELS:
        model = text.build(name, SEED, epochs)
        t0 = time.perf_counter()
        model.fit(train[text.TEXT], train["label"])
        fit_s = time.perf_counter() - t0
        models[name] = model
        out[name] = _judge(text, model, data, VALID, TEST) | {"fit_s": round(fit_s, 1)}
        print(f"  sentiment {name}: {out[name]}", file=sys.stderr, flush=True)
    out["blend"] = _judge(text, text.Blend.fitted(models.values()), data, VALID, TEST)
    best = max(out, key=lambda n: out[n]["valid_roc_auc"])
    return {
        "rows": {s: len(data[s]) for s in (TRAIN, VALID, TEST)},
        "train_rows_used": len(train),
        "positive_rate": round(float(data[TRAIN]["label"].mean()), 4),
        "models": out,
        "best_model": best,
        "test_auc": out[best]["test_roc_auc"],
    }


def _judge(text, model, data, valid, test) -> dict:
    v = text.scores(data[valid]["label"], model.predict_proba(data[valid][text.TEXT])[:, 1])
    t = text.scores(data[test]["label"], model.predict_proba(data[test][text.TEXT])[:, 1])
    return {
        "valid_roc_auc": round(v["roc_auc"], 4),
        "test_roc_auc": round(t["roc_auc"], 4),
        "test_f1": round(t["f1"], 4),
    }


class LoadSampler:
    """The 1-minute load average every ``every`` seconds while a block runs (other work shares the CPU)."""

    def __init__(self, every: float = 10.0):
        import threading

        self.every, self.samples, self._stop = every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict:
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": round(sum(s) / len(s), 2), "max": round(max(s), 2), "samples": len(s)}


def bench_image(
    epochs: int, seeds: int, max_rows: int, experiment_rows: int, experiment_epochs: int, threads: int = 0
) -> dict:
    from pipelines.config import load_settings
    from pipelines.deep import vision

    cfg = load_settings().deep
    data = vision.load_images("auto", SEED, max_train_rows=max_rows)
    kwargs = vision.model_params({"epochs": epochs} if epochs else {}, cfg, data.name)
    kwargs["time_budget_s"] = kwargs["time_budget_s"] or TIME_BUDGET_S
    kwargs["threads"] = threads or kwargs["threads"]
    model = vision.CNNClassifier(seed=SEED, optimizer=cfg.image_optimizer, **kwargs)
    with LoadSampler() as load:
        model.fit(data.X_train, data.y_train, data.X_valid, data.y_valid)
    acc = vision.evaluate(model, data.X_test, data.y_test)["accuracy"]
    epoch_s = [round(s, 1) for s in model.epoch_seconds_]
    print(f"  image cnn: acc {acc:.4f} in {model.train_seconds_:.1f}s, epochs {epoch_s}", file=sys.stderr, flush=True)
    print(f"  load average during the fit: {load.summary()}", file=sys.stderr, flush=True)
    cnn = {
        "test_acc": round(acc, 4),
        "train_s": round(model.train_seconds_, 2),
        "train_cpu_s": round(model.train_cpu_seconds_, 1),
        "epochs_run": model.n_epochs_,
        "best_epoch": model.best_epoch_,
        "epoch_s": epoch_s,
        "epoch_s_mean": round(sum(epoch_s) / max(1, len(epoch_s)), 1),
        "stopped_by_budget": model.stopped_by_budget_,
        "valid_acc": [round(a, 4) for a in model.history_["valid_acc"]],
        "n_parameters": model.n_parameters_,
        "settings": {k: v for k, v in model.get_params().items() if k not in ("coefficients", "poly_adam_bounds")},
        "load_avg_1m": load.summary(),
        "cpus": os.cpu_count(),
    }
    # The experiment: 4 arms x seeds CNN fits, on a sample of the training images when they are many.
    exp_data = data
    if experiment_rows and len(data.y_train) > experiment_rows:
        exp_data = vision.load_images(data.name, SEED, max_train_rows=experiment_rows)
    exp_kwargs = {**kwargs, "max_epochs": experiment_epochs, "time_budget_s": 0.0}
    table = vision.poly_vs_relu(exp_data, seeds, SEED, {**vision.ARMS, **vision.ABLATION_ARMS}, **exp_kwargs)
    summary = vision.summarise_experiment(table)
    ablation = {arm: summary.pop(arm) for arm in vision.ABLATION_ARMS}
    per_seed = {arm: [round(a, 4) for a in g["test_accuracy"]] for arm, g in table.groupby("arm", sort=False)}
    return {
        "dataset": data.name,
        "shape": list(data.shape),
        "rows": data.summary(),
        **cnn,
        "experiment_train_rows": len(exp_data.y_train),
        "experiment_max_epochs": experiment_epochs,
        "experiment": summary,
        "ablation": ablation,
        "experiment_per_seed_acc": per_seed,
        "experiment_epochs": {arm: [int(e) for e in g["epochs_run"]] for arm, g in table.groupby("arm", sort=False)},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: small epochs, 2 seeds, a sample of rows")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "deep.json"))
    p.add_argument("--skip", nargs="*", default=[], choices=["sentiment", "image", "own_data"])
    p.add_argument("--epochs", type=int, default=0, help="CNN epochs (default: deep.image_epochs)")
    p.add_argument("--threads", type=int, default=0, help="torch threads of the CNN fit (default: deep.image_threads)")
    p.add_argument("--experiment-rows", type=int, default=6000, help="training images for the poly experiment")
    p.add_argument("--experiment-epochs", type=int, default=8, help="most epochs per experiment fit")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    result: dict = {}
    if args.skip and Path(args.out).exists():  # a partial run updates the other part's figures in place
        result = json.loads(Path(args.out).read_text())
    result |= {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick}
    if "sentiment" not in args.skip:
        s = bench_sentiment(epochs=2 if args.quick else 4, max_rows=3000 if args.quick else 0)
        result |= {"sentiment_test_auc": s["test_auc"], "sentiment_target_auc": TARGET_AUC, "sentiment": s}
    if "image" not in args.skip:
        im = bench_image(
            epochs=2 if args.quick else args.epochs,
            seeds=2 if args.quick else 5,
            max_rows=500 if args.quick else 0,
            experiment_rows=500 if args.quick else args.experiment_rows,
            experiment_epochs=2 if args.quick else args.experiment_epochs,
            threads=args.threads,
        )
        exp = im["experiment"]
        result |= {
            "fashion_test_acc": im["test_acc"],
            "fashion_dataset": im["dataset"],
            "fashion_note": "scikit-learn digits (8x8): Fashion-MNIST is not installed here (make datasets)"
            if im["dataset"] == "digits"
            else "Fashion-MNIST (Debian's dataset-fashion-mnist)",
            "fashion_train_s": im["train_s"],
            "fashion_train_cpu_s": im["train_cpu_s"],
            "fashion_threads": im["settings"]["threads"],
            "fashion_epochs": im["epochs_run"],
            "fashion_epoch_s_mean": im["epoch_s_mean"],
            "fashion_target_acc": TARGET_ACC,
            "fashion_time_budget_s": TIME_BUDGET_S,
            "fashion_load_avg_1m_mean": im["load_avg_1m"]["mean"],
            "fashion_load_avg_1m_max": im["load_avg_1m"]["max"],
            "poly_vs_relu_acc": {
                "poly_polyadam": exp["poly_polyadam"]["accuracy_mean"],
                "relu_adam": exp["relu_adam"]["accuracy_mean"],
            },
            f"poly_diverged_of_{exp['poly_polyadam']['runs']}": exp["poly_polyadam"]["diverged"],
            f"relu_diverged_of_{exp['relu_adam']['runs']}": exp["relu_adam"]["diverged"],
            "image": im,
        }
    if "own_data" not in args.skip:
        from deep_own_data import bench_own_data

        result["own_data"] = bench_own_data(args.quick)
    result[f"total_s_{'_'.join(p for p in ('sentiment', 'image', 'own_data') if p not in args.skip)}"] = round(
        time.perf_counter() - t0, 1
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'figure':28} value")
    for key, value in result.items():
        if not isinstance(value, dict):
            print(f"{key:28} {value}")
        elif key == "poly_vs_relu_acc":
            print(f"{key:28} poly {value['poly_polyadam']}  relu {value['relu_adam']}")
    for row in result.get("own_data", []):
        ours, base = row["ours"]["test_accuracy"], row["baseline"]["test_accuracy"]
        print(f"own {row['kind']:5} {row['name']:22} acc {ours} vs baseline {base}  {row['files_to_model_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
