"""`python -m pipelines <command>`: the verbs behind the Makefile, usable on their own."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from pipelines.config import SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run every DAG end to end through Airflow on the embedded stack")
    demo.add_argument("--days", type=int, help="how many demo dates to run (default: demo.days)")
    sub.add_parser(
        "up", help="start Airflow (api-server, scheduler, dag-processor, triggerer) and the MLflow server on 127.0.0.1"
    )
    sub.add_parser("down", help="stop what `up` started")
    feat = sub.add_parser("features", help="run landing -> bronze -> silver -> gold for one date in this process")
    feat.add_argument("--ds", required=True, help="logical date, YYYY-MM-DD")
    feat.add_argument("--dataset", help="dataset name (default: features.dataset)")
    feat.add_argument("--no-simulate", action="store_true", help="ingest only files already in landing")
    fc = sub.add_parser("forecast", help="run the forecasting DAG's steps for one date in this process")
    fc.add_argument("--ds", required=True, help="use gold up to this date, YYYY-MM-DD")
    fc.add_argument("--dataset", help="dataset name (default: forecasting.dataset)")
    fc.add_argument("--params", default="{}", help='JSON of DAG Params, e.g. \'{"horizon": 14, "tuning_calls": 4}\'')
    tr = sub.add_parser("train", help="run the training DAG's steps for one date in this process")
    tr.add_argument("--dataset", required=True, help="dataset name (its gold must exist: run features/ingest first)")
    tr.add_argument("--ds", default="", help="use gold up to this date, YYYY-MM-DD (default: the latest gold)")
    tr.add_argument(
        "--params", default="{}", help='JSON of DAG Params, e.g. \'{"algorithms": ["logreg"], "cv_folds": 3}\''
    )
    srv = sub.add_parser("serve", help="run the prediction API (FastAPI on uvicorn) over the champion model")
    srv.add_argument("--host", help="bind address (default: serving.host, 127.0.0.1)")
    srv.add_argument("--port", type=int, help="port (default: serving.port)")
    sub.add_parser("env", help="print shell exports to use the airflow CLI against the embedded stack")
    from pipelines.cli import dataset, deep

    dataset.add_parsers(sub)
    deep.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"settings error: {exc}", file=sys.stderr)
        return 2
    if args.command == "demo":
        from pipelines.cli import demo

        return demo.main(settings, args.days)
    if args.command in ("up", "down"):
        from pipelines.cli import stack

        return getattr(stack, args.command)(settings)
    if args.command in ("dataset", "ingest"):
        from pipelines.cli import dataset

        return dataset.main(settings, args)
    if args.command == "features":
        from pipelines import features

        result = features.run(
            args.dataset or settings.features.dataset, args.ds, not args.no_simulate, settings=settings
        )
        print(json.dumps({k: {f: v[f] for f in ("uri", "rows", "content_hash")} for k, v in result.items()}, indent=2))
        return 0
    if args.command in ("sentiment", "image"):
        from pipelines.cli import deep

        return deep.main(settings, args)
    if args.command == "forecast":
        from pipelines.errors import DataError
        from pipelines.forecasting import run

        try:
            summary = run.run(
                args.dataset or settings.forecasting.dataset, args.ds, json.loads(args.params), settings=settings
            )
        except DataError as exc:
            print(f"forecast: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(summary, indent=2, default=str))
        return 0
    if args.command == "train":
        from pipelines.errors import DataError
        from pipelines.training import run as training

        try:
            summary = training.run(args.dataset, args.ds, json.loads(args.params), settings=settings)
        except (DataError, json.JSONDecodeError) as exc:
            print(f"train: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(summary, indent=2, default=str))
        if summary["outcome"] != "registered":  # not a silent success: exit 1 with the reason
            print(f"train: nothing registered: {summary['reason']}", file=sys.stderr)
            return 1
        return 0
    if args.command == "serve":
        from pipelines.errors import DataError
        from pipelines.serving.app import serve

        try:
            return serve(settings, args.host, args.port)
        except DataError as exc:  # no model, its files missing or damaged, the registry not answering
            print(f"serve: {exc}", file=sys.stderr)
            return 2
    if args.command == "env":
        from pipelines.cli import stack

        secret_files = stack.secret_files(settings)
        for key, value in stack.airflow_env(settings, base={}).items():
            if key in secret_files:  # the shell reads it from its owner-only file: never printed
                print(f'export {key}="$(cat {shlex.quote(str(secret_files[key]))})"')
            elif key in ("PATH", "PYTHONPATH"):  # prepend to what the shell already has
                print(f'export {key}="{value}${{{key}:+:${key}}}"')
            else:
                print(f"export {key}={shlex.quote(value)}")
        return 0
    return 2
