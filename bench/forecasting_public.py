"""Benchmark: public series at their native frequency, from a user's file to a registered model.

Series (shipped with statsmodels, no download): weekly CO2 at Mauna Loa (``co2``, Saturdays,
gaps interpolated), monthly El Nino sea-surface temperatures (``elnino``, written as YYYY-MM),
quarterly US real GDP (``macrodata.realgdp``) and yearly sunspot numbers (``sunspots``).

Per series, the way a user brings it:

1. the history (everything before the holdout) is written as a two-column CSV file;
2. ``dataset add NAME --source FILE --kind series`` (``add_dataset``) drafts its contract;
3. ``ingest`` lands it and builds bronze -> silver -> gold (``land_source`` + ``features.run``);
4. ``forecast`` (``pipelines.forecasting.run.run``) backtests every model on that history (the
   product's own rolling-origin protocol, ``backtest_folds: 0``: folds sized by the data, enough to
   score 100 periods, 3 to 12), ranks them with the ``ensemble`` of the three best, registers the best.

``file_to_model_s`` is the wall time of 2-4. The holdout (the last two seasons: 104 weeks, 24
months, 8 quarters; the last 10 % for yearly data) is seen by nothing until the final scoring:
each model's forecast of it (the gold forecast table, one forecast from the end of the history)
is scored with MASE (scaled by the in-sample seasonal naive error of the history at the series'
season) and MAPE. ``auto_arima`` is pmdarima's AutoARIMA: the reference. ``best_model`` is what
the product selected on its backtest, so it may differ from the model that happens to score
best on the holdout. ``backtest_folds_won`` says on how many backtest folds the selected model
already met each target (MAE below seasonal naive's, at most AutoARIMA's).

Targets: on every series the selected model's MASE is below seasonal naive's and at most
AutoARIMA's. One holdout of 8 quarters or 24 months is a small sample, so ``--windows K``
repeats the whole route for K earlier holdouts (each one holdout length further back, the
product seeing only what came before it) and adds ``earlier_windows`` and
``windows_meeting_targets`` per series: how often the targets hold, not just on the latest one.

Run: ``flock /tmp/heavy.lock python bench/forecasting_public.py`` (``--series elnino`` for one;
``--merge`` keeps the other series' rows of the JSON, each row says ``when`` it was measured).
Writes ``bench/results/forecasting_public.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODELS = ["seasonal_naive", "sarimax", "auto_arima", "auto_ets", "theta", "lightgbm"]
DS = "2026-01-01"


def public_series() -> dict[str, tuple[str, pd.Series, int, str]]:
    """name -> (frequency, values indexed by time, holdout length, how the file writes the time)."""
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data["co2"]
    co2.index = pd.DatetimeIndex(co2.index)
    co2 = co2.interpolate(limit_direction="both")
    nino = sm.datasets.elnino.load_pandas().data.drop(columns="YEAR")
    nino_values = pd.Series(
        nino.to_numpy().ravel(), pd.date_range("1950-01-01", periods=nino.size, freq="MS"), name="temperature"
    )
    macro = sm.datasets.macrodata.load_pandas().data
    gdp = pd.Series(
        macro["realgdp"].to_numpy(), pd.date_range("1959-01-01", periods=len(macro), freq="QS"), name="realgdp"
    )
    sun = sm.datasets.sunspots.load_pandas().data
    spots = pd.Series(
        sun["SUNACTIVITY"].to_numpy(),
        pd.to_datetime(sun["YEAR"].astype(int).astype(str) + "-01-01"),
        name="sunactivity",
    )
    return {
        "co2": ("weekly", co2.rename("co2"), 104, "%Y-%m-%d"),
        "elnino": ("monthly", nino_values, 24, "%Y-%m"),
        "macrodata_realgdp": ("quarterly", gdp, 8, "%Y-%m-%d"),
        "sunspots": ("yearly", spots, round(0.1 * len(spots)), "%Y-%m-%d"),
    }


def mase(actual, forecast, insample, m: int) -> float:
    x = np.asarray(insample, float)
    m = m if len(x) > m else 1
    return float(np.mean(np.abs(np.asarray(actual) - forecast)) / np.mean(np.abs(x[m:] - x[:-m])))


def mape(actual, forecast) -> float:
    a = np.asarray(actual, float)
    return float(np.mean(np.abs((a - forecast) / a)) * 100)


def fold_wins(backtest: pd.DataFrame, best: str | None) -> dict[str, str]:
    """On how many backtest folds the selected model's MAE was below seasonal naive's and at most
    AutoARIMA's (within a fold both share MASE's scale): how often the target held before the holdout."""
    mae = backtest.assign(err=(backtest["actual"] - backtest["forecast"]).abs()).groupby(["model", "origin"])["err"]
    fold = mae.mean().unstack("model")
    if best not in fold:
        return {}
    out = {}
    for rival, beats in (("seasonal_naive", np.less), ("auto_arima", np.less_equal)):
        if rival in fold and rival != best:
            both = fold[[best, rival]].dropna()
            out[f"vs_{rival}"] = f"{int(beats(both[best], both[rival]).sum())}/{len(both)}"
    return out


def run_one(name: str, freq: str, values: pd.Series, holdout: int, fmt: str, root: Path, folds: int) -> dict:
    from pipelines.config import load_settings
    from pipelines.constants import GOLD
    from pipelines.datasets.land import land_source
    from pipelines.datasets.overlay import add_dataset
    from pipelines.features import run as features_run
    from pipelines.forecasting import freq as freqs
    from pipelines.forecasting import run as forecasting
    from pipelines.forecasting.data import folds_for
    from pipelines.lake import Lake

    history, test = values.iloc[:-holdout], values.iloc[-holdout:]
    path = root / f"{name}.csv"
    pd.DataFrame({"date": history.index.strftime(fmt), values.name: history.to_numpy()}).to_csv(path, index=False)
    settings = load_settings()
    t0 = time.perf_counter()
    add_dataset(name, str(path), settings, "bench", kind="series", time="date", label=values.name)
    settings = load_settings()
    land_source(name, DS, settings)
    features_run(name, DS, simulate=False, batch_id="bench", settings=settings)
    params = {"models": MODELS, "horizon": holdout, "backtest_folds": folds, "tuning_calls": 0}
    summary = forecasting.run(name, DS, params, settings=settings)
    file_to_model_s = time.perf_counter() - t0

    forecast = Lake(settings.lake_root).read_partition(GOLD, f"{name}_forecast", DS).to_pandas()
    board = Lake(settings.lake_root).read_partition(GOLD, f"{name}_forecast_leaderboard", DS).to_pandas()
    m = freqs.get(freq).season
    models = {}
    for model, part in forecast.groupby("model"):
        f = part.sort_values("period_start")["forecast"].to_numpy()[:holdout]
        models[model] = {"mase": round(mase(test, f, history, m), 4), "mape": round(mape(test, f), 3)}
    for row in board.itertuples():
        models.setdefault(row.model, {"mase": None, "mape": None})
        models[row.model].update(
            {
                "status": row.status,
                "reason": None if pd.isna(row.reason) else row.reason,
                "backtest_mase": None
                if pd.isna(getattr(row, summary["rank_metric"]))
                else round(getattr(row, summary["rank_metric"]), 4),
            }
        )
    best = summary["best_model"]
    get = lambda model: (models.get(model) or {}).get("mase")  # noqa: E731
    backtest = Lake(settings.lake_root).read_partition(GOLD, f"{name}_backtest", DS).to_pandas()
    return {
        "name": name,
        "freq": freq,
        "season": m,
        "history": len(history),
        "holdout": holdout,
        "folds": folds_for(len(history), holdout, folds, holdout, m),
        "best_model": best,
        "best_mase": get(best),
        "seasonal_naive_mase": get("seasonal_naive"),
        "auto_arima_mase": get("auto_arima"),
        "backtest_folds_won": fold_wins(backtest, best),
        "file_to_model_s": round(file_to_model_s, 1),
        "registered": (summary.get("registered") or {}).get("version"),
        "models": models,
    }


WINDOW_KEYS = ["best_model", "best_mase", "seasonal_naive_mase", "auto_arima_mase", "backtest_folds_won"]


def targets(row: dict) -> dict[str, bool]:
    """The issue's targets on one holdout: the selected model below seasonal naive, at most AutoARIMA."""
    best, naive, arima = row["best_mase"], row["seasonal_naive_mase"], row["auto_arima_mase"]
    return {
        "below_seasonal_naive": best is not None and naive is not None and best < naive,
        "at_most_auto_arima": best is not None and (arima is None or best <= arima),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", nargs="*", help="only these series (default: all four)")
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="backtest folds (0: the product's auto, sized by the data; shrunk to the history)",
    )
    parser.add_argument(
        "--windows",
        type=int,
        default=0,
        help="also this many earlier holdout windows per series, each a holdout further back, chosen the same way",
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "forecasting_public.json"))
    parser.add_argument("--merge", action="store_true", help="keep the other series' rows of an earlier --out")
    args = parser.parse_args()
    now = datetime.now(UTC).isoformat(timespec="seconds")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ.update(
            {
                "MLP_USER_DIR": str(root / "user"),
                "MLP_STATE_DIR": str(root / "state"),
                "MLP_LAKE_ROOT": str(root / "lake"),
                "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            }
        )
        for name, (freq, values, holdout, fmt) in public_series().items():
            if args.series and name not in args.series:
                continue
            row = run_one(name, freq, values, holdout, fmt, root, args.folds)
            row["targets"], row["when"] = targets(row), now
            print(json.dumps({k: v for k, v in row.items() if k != "models"}), flush=True)
            if args.windows:
                row["earlier_windows"] = []
                for w in range(1, args.windows + 1):
                    part = values.iloc[: len(values) - w * holdout]
                    earlier = run_one(f"{name}_w{w}", freq, part, holdout, fmt, root, args.folds)
                    earlier = {k: earlier[k] for k in WINDOW_KEYS} | {"holdout_end": str(part.index[-1].date())}
                    earlier["targets"] = targets(earlier)
                    row["earlier_windows"].append(earlier)
                    print(json.dumps(earlier), flush=True)
                every = [row, *row["earlier_windows"]]
                row["windows_meeting_targets"] = f"{sum(all(r['targets'].values()) for r in every)}/{len(every)}"
            rows.append(row)
    if args.merge and Path(args.out).exists():
        earlier = json.loads(Path(args.out).read_text())
        kept = {r["name"]: {"when": earlier["when"], **r} for r in earlier["series"]}
        kept.update({r["name"]: r for r in rows})
        rows = [kept[name] for name in public_series() if name in kept]
    report = {
        "when": now,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "models": MODELS,
        "folds": args.folds,
        "series": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'series':<18} {'freq':<9} {'best':<15} {'MASE':>7} {'naive':>7} {'ARIMA':>7} {'file->model':>11}")
    for r in rows:
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(
            f"{r['name']:<18} {r['freq']:<9} {r['best_model'] or '-':<15} {f(r['best_mase']):>7} "
            f"{f(r['seasonal_naive_mase']):>7} {f(r['auto_arima_mase']):>7} {r['file_to_model_s']:>10.0f}s"
        )
        for model, m in sorted(r["models"].items(), key=lambda kv: (kv[1].get("mase") is None, kv[1].get("mase") or 0)):
            print(
                f"    {model:<15} holdout MASE {f(m.get('mase'))}  MAPE {f(m.get('mape'))}  {m.get('status')} {m.get('reason') or ''}"
            )
        for w in r.get("earlier_windows", []):
            print(
                f"  earlier holdout to {w['holdout_end']}: {w['best_model'] or '-':<15} {f(w['best_mase']):>7} "
                f"{f(w['seasonal_naive_mase']):>7} {f(w['auto_arima_mase']):>7}"
            )
        if "windows_meeting_targets" in r:
            print(f"  holdout windows meeting both targets: {r['windows_meeting_targets']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
