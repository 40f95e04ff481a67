"""Reliability of ingest: bad landing files next to a good one through the real bronze -> silver -> gold.

Each case is one batch on a fresh lake: a good file (500 real UCI Adult rows as CSV) and one other
file, run through ``bronze.ingest_file`` (with the adult contract), ``bronze.commit_bronze``,
``silver.build_silver`` and ``gold.build_gold`` (no Airflow). ``max_quarantine_fraction`` is 1.0
here: the threshold is a policy of its own (tests/unit/features/test_silver.py), this measures
whether each bad file is caught. A bad file counts as unquarantined when the batch raised, when
the good file's rows did not all reach gold, when the bad file was neither refused whole (with a
reason naming it) nor had any row quarantined, or when its rows do not add up: gold + quarantined
!= the rows it holds (counted with the csv module, or Parquet's row count, where they can be).

Cases: the named ones of issue 19 (UTF-16 and Latin-1 text, no header line, empty, binary, a cut
gzip, a wrong header, Parquet of the wrong shape, ...) and a few hundred generated from a fixed
seed: random bytes, Adult CSV in other encodings, with mutated lines (extra or missing fields,
quotes, NULs, garbage), cut short, gzipped and cut, and Parquet files with random schemas. Good
variants (byte-order marks, CRLF or CR line ends, gzip, Parquet, another column order and spelling,
a 2 MB value) must go through whole.

Figures: ``bad_files_tried``, ``bad_files_unquarantined`` (target 0), ``bad_files_refused_whole``,
``bad_files_with_rows_quarantined``, ``ingest_rows_lost`` (target 0: rows of the countable bad
files neither in gold nor quarantined), ``ingest_uncountable_files``, ``good_variants_tried``,
``good_variants_blocked`` (target 0), ``ingest_seconds``. ``measure()`` returns them
(``bench/reliability.py --parts ingest`` writes them to bench/results/reliability.json); run alone
it prints a table:

    .venv/bin/python bench/reliability_ingest.py [--generated 300]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASET, DS, SEED, GOOD_ROWS = "adult", "2026-01-01", 19, 500
FOLDER = f"landing/{DATASET}/ds={DS}"
GOOD_FILE = f"{FOLDER}/good.csv"
csv.field_size_limit(sys.maxsize)


def _records(data: bytes) -> int | None:
    """Data records of a UTF-8 CSV by the csv module (header excluded); None when it is not UTF-8 text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return max(len([r for r in csv.reader(io.StringIO(text, newline="")) if r]) - 1, 0)


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


# ---- the cases: (kind, name, bytes, rows it holds or None) -----------------------------------------------
def _named(frame, text: str) -> list[tuple[str, str, bytes, int | None]]:
    """The bad files issue 19 names, and the good variants that must go through."""
    n = len(frame)
    lines = text.splitlines()
    header, body = lines[0], lines[1:]
    accented = frame.astype({"native-country": object}).copy()
    accented.iloc[0, accented.columns.get_loc("native-country")] = "Côte-d'Ivoire"
    accented_csv = accented.to_csv(index=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    malformed = [line + ",extra" if i % 10 else line for i, line in enumerate(body)]  # 90 % of lines
    renamed = text.replace("age,", "years,", 1)
    unclosed = "\n".join([header, *body[:10], '"' + body[10], *body[11:]]).encode() + b"\n"
    bad = [
        ("utf16-no-bom.csv", text.encode("utf-16-le"), None),
        ("utf16-be-no-bom.csv", text.encode("utf-16-be"), None),
        ("latin1.csv", accented_csv.encode("latin-1"), n),
        ("cp1252.csv", accented_csv.replace("Côte", "C\u2019te").encode("cp1252"), n),
        ("no-header.csv", "\n".join(body).encode() + b"\n", n),
        ("empty.csv", b"", 0),
        ("blank-lines.csv", b"\n\n\r\n", 0),
        ("random-bytes.csv", random.Random(SEED).randbytes(4000), None),
        ("binary.csv", bytes(range(256)) * 16, None),
        ("cut.csv.gz", gzip.compress(text.encode())[:500], None),
        ("not-gzip.csv.gz", text.encode(), None),
        ("wrong-header.csv", renamed.encode(), n),
        ("missing-column.csv", frame.drop(columns=["income"]).to_csv(index=False).encode(), n),
        ("twice.csv", frame.assign(x=1).rename(columns={"x": "age"}).to_csv(index=False).encode(), n),
        ("reserved.csv", frame.assign(_row_number=1).to_csv(index=False).encode(), n),
        ("header-quote.csv", ('"' + text).encode(), None),
        ("header-nul.csv", ("\x00" + text).encode(), None),
        ("cut.parquet", _parquet(table)[:-100], None),
        ("missing-column.parquet", _parquet(table.drop_columns(["income"])), n),
        ("nested.parquet", _parquet(table.append_column("tags", pa.array([[1]] * n))), n),
        ("binary-column.parquet", _parquet(table.append_column("blob", pa.array([b"\xff"] * n))), n),
        ("90pct-malformed.csv", "\n".join([header, *malformed]).encode() + b"\n", n),
        ("unclosed-quote.csv", unclosed, _records(unclosed)),
        ("nul-in-values.csv", "\n".join([header, *[b.replace(",", ",\x00", 1) for b in body]]).encode(), n),
        ("cut-mid-line.csv", text.encode()[: len(text) // 2], _records(text.encode()[: len(text) // 2])),
    ]
    long = frame.astype({"native-country": object}).copy()
    long.iloc[0, long.columns.get_loc("native-country")] = "x" * 2_000_000
    crlf = text.replace("\n", "\r\n")
    good = [
        ("utf8-bom.csv", text.encode("utf-8-sig"), n),
        ("utf16-bom.csv", text.encode("utf-16"), n),
        ("utf32-bom.csv", text.encode("utf-32"), n),
        ("crlf.csv", crlf.encode(), n),
        ("cr.csv", text.replace("\n", "\r").encode(), n),
        ("gzip.csv.gz", gzip.compress(text.encode()), n),
        ("adult.parquet", _parquet(table), n),
        ("reordered.csv", frame[frame.columns[::-1]].to_csv(index=False).encode(), n),
        ("respelt.csv", text.replace("educational-num", "Educational Num", 1).encode(), n),
        ("long-value.csv", long.to_csv(index=False).encode(), n),
    ]
    return [("bad", *case) for case in bad] + [("good", *case) for case in good]


def _generated(frame, text: str, count: int, rng: random.Random) -> list[tuple[str, str, bytes, int | None]]:
    """``count`` bad files from a seed, a few of each kind."""
    lines = text.splitlines()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    kinds = ["bytes", "encoding", "mutated", "cut", "gzip-cut", "parquet"]
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if kind == "bytes":
            suffix = rng.choice([".csv", ".csv.gz", ".parquet"])
            data = rng.randbytes(rng.randint(0, 20_000))
            rows = _records(data) if suffix == ".csv" else None
        elif kind == "encoding":
            suffix, encoding = ".csv", rng.choice(["utf-16-le", "utf-16-be", "utf-32-le", "latin-1", "cp1252"])
            body = lines[1 : rng.randint(2, len(lines))]
            at = rng.randrange(len(body))
            body[at] = body[at].replace(",", ",Ré", 1)  # one accented value: not ASCII, so not UTF-8 either
            data = "\n".join([lines[0], *body]).encode(encoding)
            rows = len(body) if encoding in ("latin-1", "cp1252") else None
        elif kind == "mutated":
            suffix, (data, rows) = ".csv", _mutated(lines, rng)
        elif kind == "cut":  # the file ends inside a line, before its last field
            suffix, at = ".csv", rng.randint(1, len(lines) - 1)
            data = ("\n".join(lines[:at]) + "\n" + lines[at][: rng.randint(1, lines[at].rfind(","))]).encode()
            rows = _records(data)
        elif kind == "gzip-cut":
            suffix = ".csv.gz"
            packed = gzip.compress(text.encode())
            data, rows = packed[: rng.randint(0, len(packed) - 9)], None  # short of the gzip trailer
        else:
            suffix, (data, rows) = ".parquet", _random_parquet(table, rng)
        out.append(("bad", f"gen-{i:04d}-{kind}{suffix}", data, rows))
    return out


def _mutated(lines: list[str], rng: random.Random) -> tuple[bytes, int | None]:
    """Adult CSV with 1-5 mutated lines (extra or missing fields, a stray quote, garbage, a NUL before
    the age), the last mutation one that always breaks its line."""
    body = lines[1 : rng.randint(5, len(lines))]
    count = rng.randint(1, 5)
    for i in range(count):
        at = rng.randrange(len(body))
        kind = rng.choice(["extra", "missing", "garbage", "nul"] + (["quote"] if i < count - 1 else []))
        if kind == "extra":
            body[at] += ",extra"
        elif kind == "missing":
            body[at] = body[at].rsplit(",", 1)[0]
        elif kind == "quote":
            cut = rng.randrange(len(body[at]))
            body[at] = body[at][:cut] + '"' + body[at][cut:]
        elif kind == "garbage":
            body[at] = "".join(rng.choice("abc;|\t ") for _ in range(rng.randint(1, 40)))
        else:
            body[at] = "\x00" + body[at]  # the age is no number any more
    ending = rng.choice(["\n", "\r\n"])
    data = (ending.join([lines[0], *body]) + ending).encode()
    return data, _records(data)


def _random_parquet(table: pa.Table, rng: random.Random) -> tuple[bytes, int]:
    """Adult rows with columns dropped, renamed, nested or retyped; at least one dropped, renamed or nested."""
    n = rng.randint(0, 200)
    part = table.slice(0, n)
    columns = {}
    forced = rng.choice(part.column_names)
    for name in part.column_names:
        change = rng.choice(["keep"] * 6 + ["drop", "rename", "nest", "text", "bool"])
        if name == forced:
            change = rng.choice(["drop", "rename", "nest"])
        column = part.column(name)
        if change == "drop":
            continue
        if change == "rename":
            name = name + "_x"
        elif change == "nest":
            column = pa.array([[v] for v in column.to_pylist()])
        elif change == "text":
            column = column.cast(pa.string()) if not pa.types.is_string(column.type) else column
        elif change == "bool":
            column = pa.array([rng.random() < 0.5 for _ in range(n)])
        columns[name] = column
    return _parquet(pa.table(columns)), n


# ---- one batch ------------------------------------------------------------------------------------------
def _run(case: tuple, contract, good: bytes, scratch: str) -> dict:
    """The good file and one case through bronze, silver and gold on a fresh lake; what became of them."""
    from pipelines.config import SplitSettings
    from pipelines.features import bronze, publish
    from pipelines.features.gold import build_gold
    from pipelines.features.silver import build_silver
    from pipelines.lake import Lake

    kind, name, data, rows = case
    source = f"{FOLDER}/{name}"
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        lake = Lake(Path(tmp).as_uri())
        lake.write_bytes(GOOD_FILE, good)
        lake.write_bytes(source, data)
        try:
            parts = [bronze.ingest_file(lake, DATASET, DS, f, "bench", contract) for f in (GOOD_FILE, source)]
            bronze.commit_bronze(lake, DATASET, DS, parts)
            build_silver(lake, contract, DATASET, DS, 1.0)
            build_gold(lake, contract, DATASET, DS, SplitSettings(0.7, 0.15, 0.15), SEED)
            found = publish.rows_by_file(lake, DATASET, DS)
        except Exception as exc:  # noqa: BLE001 - what the bench looks for: any error blocks the batch
            return {"kind": kind, "name": name, "ok": False, "why": f"raised {type(exc).__name__}: {exc}"[:300]}
    got, good_got = found[source], found[GOOD_FILE]
    if good_got["gold"] != GOOD_ROWS:
        return {"kind": kind, "name": name, "ok": False, "why": f"the good file lost rows: {good_got}"}
    counted = rows is not None and got["quarantined"] is not None
    lost = rows - got["gold"] - got["quarantined"] if counted else None
    result = {"kind": kind, "name": name, **got, "rows": rows, "lost": lost}
    if kind == "good":
        result["ok"] = not got["refused"] and got["quarantined"] == 0 and got["gold"] == rows
    elif got["refused"] is not None and not got["refused"].startswith(f"{source}: "):
        result["ok"], result["why"] = False, "the reason does not name the file"
    elif not got["refused"] and not got["quarantined"]:
        result["ok"], result["why"] = False, "nothing of it was quarantined"
    else:
        result["ok"] = not lost
    return result


def measure(generated: int = 300) -> dict:
    """The named bad files, ``generated`` more from a seed and the good variants, each next to a good file."""
    from pipelines.config import load_settings
    from pipelines.datasets import load_dataset
    from pipelines.features.bronze import read_raw
    from pipelines.features.contracts import apply_contract, load_contract

    t0 = time.monotonic()
    settings = load_settings()
    contract = load_contract(settings.dataset(DATASET).contract or DATASET)
    adult = load_dataset(DATASET, settings).drop_duplicates()
    head = adult.iloc[: 2 * GOOD_ROWS]
    raw, _ = read_raw(head.to_csv(index=False).encode(), "good.csv")
    good = head[apply_contract(contract, raw).ok].iloc[:GOOD_ROWS].to_csv(index=False).encode()  # all clean rows
    frame = adult.iloc[2 * GOOD_ROWS : 2 * GOOD_ROWS + 200].reset_index(drop=True)  # none a duplicate of a good row
    text = frame.to_csv(index=False)
    cases = _named(frame, text) + _generated(frame, text, generated, random.Random(SEED))
    scratch = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # one lake per case: in memory when it can
    results = [_run(case, contract, good, scratch) for case in cases]
    bad = [r for r in results if r["kind"] == "bad"]
    good_variants = [r for r in results if r["kind"] == "good"]
    return {
        "bad_files_tried": len(bad),
        "bad_files_unquarantined": sum(not r["ok"] for r in bad),
        "bad_files_refused_whole": sum(bool(r.get("refused")) for r in bad),
        "bad_files_with_rows_quarantined": sum(not r.get("refused") and bool(r.get("quarantined")) for r in bad),
        "ingest_rows_lost": sum(abs(r.get("lost") or 0) for r in bad),
        "ingest_uncountable_files": sum(r["ok"] and r.get("lost") is None for r in bad),
        "good_variants_tried": len(good_variants),
        "good_variants_blocked": sum(not r["ok"] for r in good_variants),
        "ingest_seconds": round(time.monotonic() - t0, 1),
        "ingest_generated": dict(Counter(r["name"][9:].split(".")[0] for r in results if r["name"].startswith("gen-"))),
        "ingest_failures": [r for r in results if not r["ok"]],
        "ingest_named": [_brief(r) for r in results if not r["name"].startswith("gen-")],
    }


def _brief(r: dict) -> dict:
    """A case as the table shows it: counts, and the reason without the file name it starts with."""
    why = (r.get("refused") or r.get("why") or "").split(": ", 1)[-1]
    return {k: r.get(k) for k in ("name", "kind", "ok", "rows", "gold", "quarantined")} | {"reason": why}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generated", type=int, default=300, help="bad files generated from the seed")
    result = measure(parser.parse_args(argv).generated)
    print(f"\n{'file':<24} {'kind':<5} {'ok':<3} {'rows':>5} {'gold':>5} {'quar.':>5}  reason refused")
    for r in result["ingest_named"]:
        print(
            f"{r['name']:<24} {r['kind']:<5} {'yes' if r['ok'] else 'NO':<3} {r['rows']!s:>5} {r['gold']!s:>5} "
            f"{r['quarantined']!s:>5}  {r['reason'][:80]}"
        )
    print(f"\ngenerated: {result['ingest_generated']}")
    for r in result["ingest_failures"]:
        print(f"FAILED {r['name']}: {r.get('why') or r}")
    print()
    for key in (
        "bad_files_tried",
        "bad_files_unquarantined",
        "bad_files_refused_whole",
        "bad_files_with_rows_quarantined",
        "ingest_rows_lost",
        "ingest_uncountable_files",
        "good_variants_tried",
        "good_variants_blocked",
        "ingest_seconds",
    ):
        print(f"{key:<34} {result[key]:>8}")
    return 0 if result["bad_files_unquarantined"] == 0 and result["good_variants_blocked"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
