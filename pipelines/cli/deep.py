"""`python -m pipelines sentiment|image --dataset NAME`: the sentiment / image DAG's steps in this process.

The MLflow runs are tagged ``airflow_run_id = cli__<hash of dataset, date and params>``: the same
command again reuses its runs and model version (as a retried task does), other params on the same
date make new runs instead of clashing with the logged param values.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

from pipelines.config import Settings


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for verb, what in (("sentiment", "text classifiers"), ("image", "CNN and GMM clustering")):
        p = sub.add_parser(verb, help=f"run the {verb} DAG's steps ({what}) in this process")
        p.add_argument(
            "--dataset", help=f"dataset name (a `dataset add --kind {'text' if verb == 'sentiment' else 'images'}` one)"
        )
        p.add_argument("--ds", default="", help="use gold up to this date, YYYY-MM-DD (default: the latest gold)")
        p.add_argument("--params", default="{}", help='JSON of DAG Params, e.g. \'{"epochs": 2, "max_rows": 5000}\'')


def main(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.deep import steps
    from pipelines.errors import DataError
    from pipelines.lake import Lake
    from pipelines.steps import resolve_ds

    try:
        params = {**json.loads(args.params), **({"dataset": args.dataset} if args.dataset else {})}
        reference = args.command == "image" and params.get("dataset", "auto") in ("", "auto", "fashion_mnist", "digits")
        if not reference:
            dataset = params.get("dataset") or settings.deep.sentiment_dataset
            hint = f"run `python -m pipelines ingest {dataset}` first"
            params["ds"] = resolve_ds(Lake(settings.lake_root), dataset, args.ds or params.get("ds"), hint=hint)
        key = json.dumps([args.command, params], sort_keys=True, default=str)
        run_id = f"cli__{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        if args.command == "sentiment":
            out = steps.sentiment(params, run_id)
        else:
            out = {"cnn": steps.image(params, run_id), "gmm": steps.cluster(params, run_id)}
    except (DataError, json.JSONDecodeError) as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, default=str))
    return 0
