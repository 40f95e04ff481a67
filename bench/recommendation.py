"""Benchmark: recommendation quality on MovieLens 100k, and fit / top-10 speed and memory up to MovieLens-1M size.

What it measures:

- quality (MovieLens 100k, the real 100,000 ratings): every model through the same evaluation the
  DAG runs (``pipelines.recommendation.evaluate``): 5-fold RMSE and MAE for the models that
  predict ratings, and on the per-user 75/25 hold-out precision, recall, NDCG and MAP at 10 and
  catalogue coverage (every held-out item relevant, candidates = training items the user did not
  rate). Headline: the best 5-fold RMSE and the best NDCG@10 (targets <= 0.91 and >= 0.44;
  published: SVD 0.934, SVD++ 0.919; BPR 0.442).
- speed and memory, per model, on MovieLens 100k and on a synthetic set of MovieLens-1M size
  (6,000 users, 4,000 items, 1,000,000 ratings; skewed activity and popularity, users pick items
  that suit a rank-10 taste, 1..5 stars from biases + taste + noise:
  ``pipelines.recommendation.data.synthetic_ratings``): the fit
  on all ratings, then the top-10 of every user (seen items excluded). Each model runs in a fresh
  interpreter (this script with ``--child``); its peak RSS comes from ``os.wait4`` after it exits.
  Headline at 1M: the best ranking model (the one the DAG registers).

BLAS, OpenMP and torch run on one thread, as in the DAG's tasks (several models run side by side).
Generating the synthetic data is not timed. Run: ``python bench/recommendation.py`` (about 10
minutes on 2 cores); ``--models popularity item_knn --sizes 100k`` for a quick run. Writes
``bench/results/recommendation.json`` (``--out``) and prints tables.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads: one thread, as in a DAG task

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench._common import machine, write_report  # noqa: E402

TARGET_RMSE, TARGET_NDCG = 0.91, 0.44
SIZES = {"100k": None, "1m": (6_000, 4_000, 1_000_000)}  # None: the real MovieLens 100k
TOP_N, SEED = 10, 42


def movielens_100k():
    """The real ratings in canonical columns (the same rows the gold layer holds: the contract quarantines none)."""
    from pipelines.constants import ITEM_ID
    from pipelines.datasets import load_dataset
    from pipelines.recommendation.data import clean_ratings

    ratings, _ = clean_ratings(load_dataset("movielens_ratings").rename(columns={"movie_id": ITEM_ID}))
    return ratings


def ratings_for(size: str):
    from pipelines.recommendation.data import synthetic_ratings

    shape = SIZES[size]
    return movielens_100k() if shape is None else synthetic_ratings(*shape, seed=SEED)


# ---- measured runs (each in a fresh child process) -------------------------------------------
def run_quality(models: list[str]) -> dict:
    from pipelines.recommendation import models as registry
    from pipelines.recommendation.evaluate import Protocol, evaluate

    ratings, protocol, out = movielens_100k(), Protocol(folds=5, seed=SEED), {}
    for name in models:
        spec = registry.get(name)
        t0 = time.perf_counter()
        ev = evaluate(name, spec.family, spec.tasks, lambda name=name: registry.build(name, SEED), ratings, protocol)
        if ev.status != "ok":
            raise RuntimeError(f"{name} failed: {ev.reason}")
        out[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in ev.metrics.items()}
        out[name]["total_s"] = round(time.perf_counter() - t0, 1)
        print(f"  quality {name}: {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    return {"ratings": len(ratings), "protocol": protocol.as_params(), "models": out}


def run_speed(name: str, size: str) -> dict:
    from pipelines.constants import ITEM_ID, RATING, USER_ID
    from pipelines.recommendation import models as registry

    ratings = ratings_for(size)
    model = registry.build(name, SEED)
    t0 = time.perf_counter()
    model.fit(ratings[[USER_ID, ITEM_ID]], ratings[RATING].to_numpy())
    fit_s = time.perf_counter() - t0
    users = np.asarray(model.user_ids_)
    t0 = time.perf_counter()
    top = model.recommend(users, n=TOP_N)
    topn_s = time.perf_counter() - t0
    if len(top) != len(users) * TOP_N:
        raise RuntimeError(f"{name}: {len(top)} recommendations for {len(users)} users")
    extra = {}
    if hasattr(model, "n_epochs_"):  # early stopping: how many epochs the fit took
        extra = {
            "epochs": model.n_epochs_,
            "best_epoch": model.best_epoch_,
            "s_per_epoch": round(fit_s / model.n_epochs_, 2),
        }
    return {
        "ratings": len(ratings),
        "users": len(users),
        "items": len(model.item_ids_),
        "fit_s": round(fit_s, 2),
        "topn_all_users_s": round(topn_s, 2),
        "n_parameters": model.n_parameters_,
        **extra,
    }


def _child(*args: str) -> dict:
    """Run this script with ``--child`` in a fresh interpreter; its result plus its peak RSS."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as res:
        proc = subprocess.Popen([sys.executable, __file__, "--child", res.name, *args])
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"child {args} failed with exit code {os.waitstatus_to_exitcode(status)}")
        out = json.load(res)
    out["peak_mem_gib"] = round(usage.ru_maxrss / 2**20, 3)  # ru_maxrss is in KiB on Linux
    return out


# ---- report ------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_quality(quality: dict) -> None:
    print(f"MovieLens 100k ({quality['ratings']:,} ratings): 5-fold rating prediction, per-user 75/25 top-10 ranking")
    print(
        f"{'model':<12} {'RMSE':>7} {'MAE':>7} {'P@10':>7} {'R@10':>7} {'NDCG@10':>8} {'MAP@10':>7} {'cover':>6} {'s':>6}"
    )
    rows = sorted(quality["models"].items(), key=lambda kv: -kv[1]["ndcg_at_10"])
    for name, m in rows:
        rmse = f"{m['rmse']:.4f}" if "rmse" in m else "-"
        mae = f"{m['mae']:.4f}" if "mae" in m else "-"
        print(
            f"{name:<12} {rmse:>7} {mae:>7} {m['precision_at_10']:>7.4f} {m['recall_at_10']:>7.4f} "
            f"{m['ndcg_at_10']:>8.4f} {m['map_at_10']:>7.4f} {m['coverage']:>6.3f} {m['total_s']:>6.1f}"
        )


def print_speed(speed: dict) -> None:
    print("Fit on all ratings, then top-10 for every user (one thread; peak = the process's max RSS)")
    print(f"{'size':<5} {'model':<12} {'ratings':>10} {'fit s':>8} {'top-10 s':>9} {'peak GiB':>9}")
    for size, per_model in speed.items():
        for name, r in per_model.items():
            print(
                f"{size:<5} {name:<12} {r['ratings']:>10,} {r['fit_s']:>8.2f} {r['topn_all_users_s']:>9.2f} {r['peak_mem_gib']:>9.2f}"
            )


def main(argv: list[str] | None = None) -> None:
    from pipelines.recommendation import models as registry

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(registry.MODELS), choices=list(registry.MODELS))
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--no-quality", action="store_true", help="skip the MovieLens 100k quality run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "recommendation.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # internal: one measured run in this fresh process
        result, kind, *rest = args.child
        out = run_quality(rest) if kind == "quality" else run_speed(*rest)
        Path(result).write_text(json.dumps(out))
        return

    load_at_start = os.getloadavg()[0]
    quality = None
    if not args.no_quality:
        print("quality on MovieLens 100k ...", file=sys.stderr, flush=True)
        quality = _child("quality", *args.models)
    speed: dict = {}
    for size in args.sizes:
        speed[size] = {}
        for name in args.models:
            print(f"speed {size} {name} ...", file=sys.stderr, flush=True)
            speed[size][name] = _child("speed", name, size)

    report: dict = {}
    if quality:
        print_quality(quality)
        rated = {n: m for n, m in quality["models"].items() if "rmse" in m}
        best_rating = min(rated, key=lambda n: rated[n]["rmse"]) if rated else None
        best_ranking = max(quality["models"], key=lambda n: quality["models"][n]["ndcg_at_10"])
        report.update(
            rmse_5fold=rated[best_rating]["rmse"] if best_rating else None,
            rmse_5fold_model=best_rating,
            ndcg_at_10=quality["models"][best_ranking]["ndcg_at_10"],
            ndcg_at_10_model=best_ranking,
        )
    else:
        best_ranking = args.models[0]
    print()
    print_speed(speed)
    if "1m" in speed and best_ranking in speed["1m"]:
        big = speed["1m"][best_ranking]
        report.update(
            fit_s_1m=big["fit_s"],
            topn_all_users_s_1m=big["topn_all_users_s"],
            peak_mem_gib_1m=big["peak_mem_gib"],
            speed_1m_model=best_ranking,
        )
    report["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    if quality:
        report["targets"] = {
            "rmse_5fold_max": TARGET_RMSE,
            "rmse_5fold": verdict(report["rmse_5fold"] is not None and report["rmse_5fold"] <= TARGET_RMSE),
            "ndcg_at_10_min": TARGET_NDCG,
            "ndcg_at_10": verdict(report["ndcg_at_10"] >= TARGET_NDCG),
            "published": {"rmse_5fold": {"SVD": 0.934, "SVD++": 0.919}, "ndcg_at_10": {"BPR": 0.442}},
        }
        print(
            f"\ntargets: 5-fold RMSE {report['rmse_5fold']} ({best_rating}) <= {TARGET_RMSE} {report['targets']['rmse_5fold']}; "
            f"NDCG@10 {report['ndcg_at_10']} ({best_ranking}) >= {TARGET_NDCG} {report['targets']['ndcg_at_10']}"
        )
        report["quality_100k"] = quality
    report["speed"] = speed
    report["notes"] = (
        "quality: the DAG's evaluation on the real MovieLens 100k (5-fold CV for RMSE/MAE; per-user 75/25 hold-out, "
        "every held-out item relevant, for the ranking metrics; *_liked: only held-out ratings >= 4 relevant). "
        "speed: fit on all ratings + top-10 for every user, one thread, each model in a fresh process; 1m is synthetic "
        "(6,000 users x 4,000 items x 1,000,000 ratings). Headline speed figures are for the best ranking model."
    )
    report["machine"] = machine(load_at_start, numpy=np.__version__)
    write_report(args.out, report)


if __name__ == "__main__":
    main()
