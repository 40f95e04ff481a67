"""Benchmark: every forecaster on the simulated sales series, the way the forecasting DAG judges them.

What it measures, in one run on one series:

- data: the `sales` simulator (4 years of daily history, settings.seed) through the real feature
  chain (landing -> bronze -> silver -> gold, in-process, in a temp lake), then loaded as the DAG
  loads it (``pipelines.forecasting.data.load_series``).
- per model, exactly the DAG's ``backtest`` task minus MLflow (``pipelines.forecasting.evaluate``):
  Bayesian tuning of the neural models (``--calls`` calls), a rolling-origin backtest (``--folds``
  origins, ``--horizon`` days each, refit at every origin), a final fit on the whole history.
  ``train_s`` is that final fit (one training run on all 4 years); ``tune_s`` and ``backtest_s``
  are the tuning and the backtest (its refits included).
- backtest wall time: the models run side by side in ``--workers`` processes (default 2: the 2
  cores, as the DAG runs two mapped tasks at a time), each on one thread; the wall time is from
  the first model's start to the last one's end.
- the figures the README reports: MASE per model at daily/weekly/monthly levels, whether every
  learned model beats seasonal naive on daily MASE, and the ratio of LSTM + Transformer's daily
  MASE to gradient boosting's (below 1: the transformer is better; 0.82 would be "18% better").

Run: ``python bench/forecasting.py`` (about 10 minutes on 2 cores). ``--calls 2 --folds 2`` for a
quick look. Writes ``bench/results/forecasting.json`` (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATASET, DS = "sales", "2026-01-01"
MODELS = ["seasonal_naive", "sarimax", "lightgbm", "xgboost", "lstm", "lstm_transformer"]
GBM = "lightgbm"


def _r(x, n: int = 4):
    return None if x is None else round(float(x), n)


def build_series(root: Path):
    """The simulated feed through landing -> bronze -> silver -> gold, then loaded as the DAG loads it."""
    from pipelines import features
    from pipelines.config import load_settings
    from pipelines.forecasting.run import series_for

    settings = load_settings({"MLP_STATE_DIR": str(root / "state"), "MLP_LAKE_ROOT": str(root / "lake")})
    t0 = time.perf_counter()
    layers = features.run(DATASET, DS, settings=settings)
    feature_s = time.perf_counter() - t0
    context = {"dataset": DATASET, "ds": DS, "params": {"history_days": 0}}
    from pipelines.lake import Lake

    series = series_for(context, settings, Lake(settings.lake_root))
    return settings, series, feature_s, layers


def _one(args) -> dict:
    """One model in a worker process (one thread): evaluate() and the figures kept from it."""
    series, name, config = args
    from pipelines.forecasting.evaluate import evaluate

    started = time.time()
    result = evaluate(series, name, config)
    return {
        **result.record(),
        "start": started,
        "end": time.time(),
        "tuning_trials": result.tuning.trials if result.tuning else [],
        "epochs": len(getattr(result.fitted, "history_", []) or []) or None,
        "n_parameters": getattr(result.fitted, "n_parameters_", None),
        "predictions": result.backtest.predictions if result.backtest else None,
    }


def run_models(series, models: list[str], config, workers: int) -> tuple[list[dict], float]:
    os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    t0 = time.perf_counter()
    # Slowest first, so two workers finish close together.
    order = sorted(
        models,
        key=lambda m: (
            ["lstm_transformer", "lstm", "sarimax", "xgboost", "lightgbm"].index(m)
            if m in ("lstm_transformer", "lstm", "sarimax", "xgboost", "lightgbm")
            else 9
        ),
    )
    with ProcessPoolExecutor(max_workers=workers) as pool:
        records = list(pool.map(_one, [(series, m, config) for m in order]))
    wall = time.perf_counter() - t0
    records.sort(key=lambda r: models.index(r["model"]))
    for r in records:
        print(
            f"  {r['model']:<17} {r['status']:<7} mase {r.get('mase_daily')}  ({r['end'] - r['start']:.0f}s)",
            file=sys.stderr,
        )
    return records, wall


def ensemble_of(series, records, config) -> dict | None:
    """The leaderboard's ``ensemble`` row (pipelines/forecasting/combine.py): the mean of the 3 best models'
    backtest forecasts, scored on the same folds (no refit)."""
    from pipelines.forecasting import combine

    ok = [{**r, "model_uri": "-"} for r in records if r["status"] == "ok" and r.get("predictions") is not None]
    top = combine.members(ok, "mase_daily", 3)
    if not top:
        return None
    staged = {r["model"]: r["predictions"].assign(kind="backtest") for r in top}
    combined = combine.mean_forecast(staged)
    scores = combine.score(combined, series.history[series.spec.target], "daily", series.spec.m, config.seasons)
    return {"members": [r["model"] for r in top], **{k: _r(v) for k, v in scores.items() if k.startswith("mase_")}}


def report(series, records, wall, config, feature_s, layers, args) -> dict:
    ok = {r["model"]: r for r in records if r["status"] == "ok"}
    naive = ok.get("seasonal_naive", {}).get("mase_daily")
    learned = [m for m in ok if m != "seasonal_naive"]
    beats = {
        m: (naive is not None and ok[m]["mase_daily"] is not None and ok[m]["mase_daily"] < naive) for m in learned
    }
    ratios = {}
    for gbm in ("lightgbm", "xgboost"):
        if "lstm_transformer" in ok and gbm in ok:
            ratios[f"lstm_transformer_vs_{gbm}"] = {
                level: _r(ok["lstm_transformer"][f"mase_{level}"] / ok[gbm][f"mase_{level}"], 3)
                for level in ("daily", "weekly", "monthly")
                if ok["lstm_transformer"].get(f"mase_{level}") and ok[gbm].get(f"mase_{level}")
            }
    ensemble = ensemble_of(series, records, config)
    if "lstm" in ok and GBM in ok:
        ratios[f"lstm_vs_{GBM}"] = {"daily": _r(ok["lstm"]["mase_daily"] / ok[GBM]["mase_daily"], 3)}
    best = (
        min(ok.values(), key=lambda r: r["mase_daily"] if r["mase_daily"] is not None else float("inf"))["model"]
        if ok
        else None
    )
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mase": {m: _r(r.get("mase_daily")) for m, r in ((r["model"], r) for r in records)},
        "train_s": {r["model"]: r["train_s"] for r in records},
        "backtest_wall_s": round(wall, 1),
        "best_model": best,
        "every_learned_model_beats_seasonal_naive": all(beats.values()) if beats else False,
        "beats_seasonal_naive": beats,
        "ratios": ratios,
        "ensemble": ensemble,
        "models": [
            {
                "model": r["model"],
                "family": r["family"],
                "status": r["status"],
                "reason": r["reason"],
                **{
                    f"{m}_{lvl}": _r(r.get(f"{m}_{lvl}"))
                    for m in ("mase", "mae", "rmse", "mape", "smape")
                    for lvl in ("daily", "weekly", "monthly")
                },
                "train_s": r["train_s"],
                "tune_s": r["tune_s"],
                "backtest_s": r["backtest_s"],
                "task_s": round(r["end"] - r["start"], 1),
                "params": r["params"],
                "epochs_final_fit": r["epochs"],
                "n_parameters": r["n_parameters"],
                "tuning_trials": [
                    {k: _r(v, 6) if isinstance(v, float) else v for k, v in t.items()} for t in r["tuning_trials"]
                ],
            }
            for r in records
        ],
        "config": {
            "horizon": config.horizon,
            "seq_len": config.seq_len,
            "backtest_folds": config.backtest_folds,
            "backtest_step": config.step,
            "tuning_calls": config.tuning_calls,
            "max_epochs": config.max_epochs,
            "patience": config.patience,
            "seasons": config.seasons,
            "seed": config.seed,
            "workers": args.workers,
        },
        "data": {
            **{k: v for k, v in series.summary().items() if k != "spec"},
            "known_covariates": list(series.spec.known),
            "past_covariates": list(series.spec.past),
            "quarantined_rows": layers["silver"]["rows_quarantined"],
            "gold_content_hash": layers["gold"]["content_hash"],
            "feature_chain_s": round(feature_s, 2),
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }


def print_table(rep: dict) -> None:
    head = f"{'model':<17} {'MASE d':>7} {'MASE w':>7} {'MASE m':>7} {'MAPE d %':>8} {'train s':>8} {'tune s':>7} {'backtest s':>10}"
    print(head)
    print("-" * len(head))
    for m in sorted(rep["models"], key=lambda m: (m["mase_daily"] is None, m["mase_daily"] or 0)):

        def f(v, w, p):
            return f"{v:>{w}.{p}f}" if isinstance(v, int | float) else f"{'-':>{w}}"

        line = (
            f"{m['model']:<17} {f(m['mase_daily'], 7, 3)} {f(m['mase_weekly'], 7, 3)} {f(m['mase_monthly'], 7, 3)} "
            f"{f(m['mape_daily'], 8, 2)} {f(m['train_s'], 8, 1)} {f(m['tune_s'], 7, 1)} {f(m['backtest_s'], 10, 1)}"
        )
        if m["status"] != "ok":
            line += f"  FAILED: {m['reason']}"
        print(line)
    c, d = rep["config"], rep["data"]
    print()
    print(
        f"data: {d['history_days']} days ({d['first_day']}..{d['last_day']}), {d['quarantined_rows']} rows quarantined in silver; "
        f"horizon {c['horizon']}, {c['backtest_folds']} folds every {c['backtest_step']} days, seq_len {c['seq_len']}, "
        f"{c['tuning_calls']} tuning calls"
    )
    print(
        f"backtest wall time: {rep['backtest_wall_s']:.0f}s for {len(rep['models'])} models on {c['workers']} worker(s), 1 thread each"
    )
    print(f"every learned model beats seasonal naive on daily MASE: {rep['every_learned_model_beats_seasonal_naive']}")
    if rep.get("ensemble"):
        e = rep["ensemble"]
        print(f"ensemble (mean of {', '.join(e['members'])}): MASE daily {e.get('mase_daily')}")
    for name, ratio in rep["ratios"].items():
        print(f"{name} (MASE ratio, < 1: first is better): {ratio}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--horizon", type=int, default=None, help="default: forecasting.horizon (28)")
    parser.add_argument("--folds", type=int, default=None, help="default: forecasting.backtest_folds (4)")
    parser.add_argument("--calls", type=int, default=None, help="tuning calls; default: forecasting.tuning_calls (12)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "forecasting.json")
    args = parser.parse_args(argv)

    from pipelines.forecasting.evaluate import RunConfig

    with tempfile.TemporaryDirectory(prefix="bench-forecasting-") as tmp:
        settings, series, feature_s, layers = build_series(Path(tmp))
        f = settings.forecasting
        config = RunConfig(
            horizon=args.horizon or f.horizon,
            seq_len=f.seq_len,
            backtest_folds=args.folds or f.backtest_folds,
            backtest_step=f.backtest_step,
            tuning_calls=f.tuning_calls if args.calls is None else args.calls,
            max_epochs=f.max_epochs,
            patience=f.patience,
            sarimax_max_train_days=f.sarimax_max_train_days,
            seasons=dict(f.seasons),
            seed=settings.seed,
        )
        print(f"{len(series.history)} days of history; running {args.models} ...", file=sys.stderr)
        records, wall = run_models(series, list(args.models), config, args.workers)
    rep = report(series, records, wall, config, feature_s, layers, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rep, indent=2) + "\n")
    print_table(rep)
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
