"""Draft a data contract and a dataset entry from a profile: the decisions a person would make.

What the draft decides, and why (docs/contracts.md has the reference):

- types and nullability as the sample shows them; text with few values (at most
  ``LOW_CARDINALITY``) gets its ``allowed`` set, the label always does;
- ranges: only ``min: 0`` for a column never negative in the sample. The largest value seen
  is not a limit (tomorrow's biggest order is bigger), so no ``max`` is written; the observed
  range stays in a comment for whoever wants to tighten it. A rating scale is the exception:
  a rating off the scale is an error, so it gets both bounds (the top rounded up to 5, 10 or
  100, since a sample may hold no top rating);
- ids (unique ints/strings: a counter, an id-like name, or text without spaces), columns
  named like an id with many values (references such as a group id), constant and empty
  columns, near-unique free text and dates are kept in silver but left out of the features
  (``gold.drop``);
- the key: an id column when there is one (a repeated id is a duplicate); otherwise none
  (``key: []``), so identical rows are all kept, as two customers may well share every value.
  ``duplicates="quarantine"`` asks for exact repeats to be quarantined (``key: all``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from pipelines.config import DATASET_KINDS
from pipelines.datasets.profile import NA_VALUES, ColumnProfile, TableProfile
from pipelines.errors import DataError
from pipelines.features.contracts import Contract, apply_contract
from pipelines.features.rowids import row_ids
from pipelines.features.silver import top_reasons

LOW_CARDINALITY = 20  # text with at most this many distinct values gets an `allowed` set
MAX_CLASSES = 50  # a classification label with more distinct values is refused
ID_MIN_ROWS = 20  # below this many rows, uniqueness alone says nothing: only an id-like name makes an id
LABEL_NAMES = ("label", "target", "class", "y", "churn", "outcome", "response")
POSITIVE_WORDS = ("yes", "y", "true", "t", "1", "positive", "pos", "good")
RATING_SCALES = (1, 5, 10, 100)  # the top of a rating scale: the smallest of these at or above the largest rating seen
SERIES_VALUE_NAMES = ("value", "y", "target", "sales", "demand", "amount", "quantity")
RATING_NAMES = {
    "user": ("user", "user_id", "userid", "uid", "customer_id", "customerid", "reviewer_id", "reviewerid"),
    "item": ("item", "item_id", "itemid", "iid", "movie_id", "movieid", "product_id", "productid", "book_id"),
    "rating": ("rating", "ratings", "score", "stars", "rating_value", "overall"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "rated_at", "unix_time", "unixreviewtime"),
}
_ID_NAME = re.compile(r"(?i:^id$|^id[_\W]|[_\W]id$)|[a-z0-9](ID|Id)$")  # id, ID_x, x_id, xId, xID; not "paid"
DUPLICATES = ("keep", "quarantine")


class DraftError(DataError, ValueError):
    """The options do not fit the file (a label that is no column, a positive class never seen, ...)."""


@dataclass
class Draft:
    """A contract (as its YAML mapping), the dataset entry, and what was decided, column by column."""

    contract: dict
    entry: dict
    comments: dict[str, str] = field(default_factory=dict)  # contract column -> YAML comment
    rules: dict[str, str] = field(default_factory=dict)  # contract column -> what the printed table says
    key_comment: str = ""
    notes: list[str] = field(default_factory=list)  # what was inferred and how to change it


def draft_contract(
    profile: TableProfile,
    name: str,
    source: str,
    kind: str = "classification",
    label: str | None = None,
    positive: str | None = None,
    time: str | None = None,
    roles: dict[str, str] | None = None,
    duplicates: str = "keep",
    text: str | None = None,
    image_options: dict | None = None,
) -> Draft:
    """The contract draft for a profiled file (``roles``: ratings role -> column, overriding the names found)."""
    if kind not in DATASET_KINDS:
        raise DraftError(f"--kind must be one of {list(DATASET_KINDS)}, got {kind!r}")
    if duplicates not in DUPLICATES:
        raise DraftError(f"--duplicates must be one of {list(DUPLICATES)}, got {duplicates!r}")
    misplaced = {
        "--positive": kind not in ("classification", "text") and positive is not None,
        "--time": kind != "series" and time,
        "--text": kind != "text" and text,
    }
    misplaced.update({f"--{r}": kind != "ratings" for r in roles or {}})
    if any(misplaced.values()):
        flags = ", ".join(flag for flag, bad in misplaced.items() if bad)
        raise DraftError(f"{flags} do(es) not apply to --kind {kind}; see `dataset add --help`")
    if not profile.columns:
        raise DraftError(f"{source} has no column a contract can hold")
    draft = Draft(contract={}, entry={"source": source, "contract": name, "kind": kind})
    drops: dict[str, str] = {}
    gold: dict = {}
    if kind == "classification":
        target = _label_column(profile, label)
        if positive is None and len(target.counts or {}) > 2:  # every value a class (gold.label.multiclass)
            gold["label"] = {"column": target.name, "multiclass": True}
            special = {target.name: "label, multi-class"}
            draft.notes.append(
                f"label {target.source!r} has {len(target.counts)} classes ({', '.join(map(repr, target.counts))}): "
                "a multi-class model; --positive VALUE trains that class against the rest instead"
            )
            if target.nulls:
                draft.notes.append(f"{target.nulls} sampled row(s) have no label: silver quarantines them")
        else:
            gold["label"] = {"column": target.name, "positive": _positive(target, positive, draft)}
            special = {target.name: f"label, positive class {gold['label']['positive']!r}"}
        _drops(profile, {target.name}, drops)
    elif kind == "series":
        when = _time_column(profile, time)
        value = _value_column(profile, label, when)
        # A series has no covariates unless declared; its frequency is inferred from the times (or gold.freq).
        gold = {"label": {"column": value.name}, "time": when.name, "covariates": [], "missing": "interpolate"}
        _drops(profile, {when.name, value.name}, drops)
        special = {when.name: "time: gold is ordered and split by it", value.name: "value to forecast"}
        draft.notes.append(f"time column {when.source!r}, value {value.source!r}; change with --time / --label")
        draft.notes.append("frequency inferred from the times (declare gold.freq to fix it); no covariates")
        if not when.unique:
            gold["aggregate"] = "sum"
            draft.notes.append(
                f"rows repeat a {when.source!r} timestamp: {value.source!r} is summed per period "
                "(gold.aggregate: sum; count or mean are the other choices)"
            )
    elif kind in ("text", "images"):
        from pipelines.datasets.draft_deep import deep_roles

        gold, special = deep_roles(profile, kind, label, positive, text, image_options or {}, draft, drops)
    else:
        mapping = _rating_roles(profile, roles or {})
        gold = {"unlabelled": True}
        draft.entry["columns"] = {role: col.name for role, col in mapping.items()}
        special = {col.name: role for role, col in mapping.items()}
        found = ", ".join(f"{role}={col.source}" for role, col in mapping.items())
        draft.notes.append(f"ratings columns: {found}; change with --user/--item/--rating/--timestamp")
    columns = {}
    for col in profile.columns:
        role = special.get(col.name, "")
        rule, comment, said = _rule(col, role, drops.get(col.name))
        columns[col.name] = rule
        draft.comments[col.name] = comment
        draft.rules[col.name] = said
    if kind == "text":  # an empty text is missing: silver quarantines it
        columns[draft.entry["columns"]["text"]].pop("nullable", None)
    if kind == "images" and "unreadable" in columns:  # any reason there quarantines the row, keeping the reason
        columns["unreadable"] = {"type": "string", "nullable": True, "allowed": []}
    key = _key(profile, kind, gold, drops, duplicates, draft)
    gold["drop"] = [c.name for c in profile.columns if c.name in drops]
    draft.contract = {"name": name, "na_values": list(NA_VALUES), "key": key, "columns": columns, "gold": gold}
    draft.entry["description"] = (
        f"{source.rsplit('/', 1)[-1]}: {kind}, {len(profile.columns)} columns (drafted by `dataset add`)"
    )
    _table_notes(profile, draft)
    return draft


def _find(profile: TableProfile, column: str, flag: str) -> ColumnProfile:
    found = profile.column(column)
    if found is None:
        names = ", ".join(c.source for c in profile.columns)
        raise DraftError(f"{flag} {column!r} is not a column of the file; its columns: {names}")
    return found


def _label_column(profile: TableProfile, label: str | None) -> ColumnProfile:
    if label:
        target = _find(profile, label, "--label")
    else:
        named = [c for c in profile.columns if c.name in LABEL_NAMES]
        target = named[0] if named else profile.columns[-1]
    if target.distinct < 2:
        raise DraftError(
            f"label column {target.source!r} holds {target.distinct} distinct value(s) in the sample: a classifier "
            "needs two classes or more; pass --label COLUMN"
        )
    if target.distinct > MAX_CLASSES:
        numeric = " (numbers: a regression target, which training does not take)" if target.type != "string" else ""
        raise DraftError(
            f"label column {target.source!r} holds {target.distinct} distinct values{numeric}; a classification "
            f"label has at most {MAX_CLASSES} classes. Pass --label COLUMN, or --kind series for a time series"
        )
    return target


def _positive(target: ColumnProfile, positive: str | None, draft: Draft) -> str:
    counts = target.counts or {}
    values = ", ".join(repr(v) for v in counts)
    if positive is not None:
        if positive not in counts:
            raise DraftError(f"--positive {positive!r} is not a value of label {target.source!r}; its values: {values}")
        chosen, why = positive, "as given"
    else:
        named = [v for v in counts if v.strip().lower() in POSITIVE_WORDS]
        if len(counts) == 2 and len(named) == 1:
            chosen, why = named[0], "its name says positive"
        elif len(counts) == 2:  # the rarer class is usually the one worth finding (churners, defaults, frauds)
            chosen = min(sorted(counts, reverse=True), key=lambda v: counts[v])
            why = f"the rarer class ({counts[chosen]} of {target.non_null} rows)"
        else:  # one class against the rest: the commonest gives the most balanced task
            chosen = max(sorted(counts, reverse=True), key=lambda v: counts[v])
            why = f"the commonest class ({counts[chosen]} of {target.non_null} rows)"
    change = "pass --positive VALUE or edit gold.label.positive"
    draft.notes.append(f"label {target.source!r} ({values}): positive class {chosen!r}, {why}; {change}")
    if len(counts) > 2:
        draft.notes.append(f"label {target.source!r} has {len(counts)} classes: {chosen!r} is trained against the rest")
    if target.nulls:
        draft.notes.append(f"{target.nulls} sampled row(s) have no label: silver quarantines them")
    return chosen


def _time_column(profile: TableProfile, time: str | None) -> ColumnProfile:
    if time:
        when = _find(profile, time, "--time")
        if when.type != "date":
            raise DraftError(
                f"--time {time!r} holds {when.type} values, not dates; a time column's values must be YYYY-MM-DD "
                "or YYYY-MM"
            )
        return when
    dates = [c for c in profile.columns if c.type == "date"]
    if not dates:
        raise DraftError(
            "no date column (YYYY-MM-DD or YYYY-MM values) in the file; pass --time COLUMN with such dates"
        )
    return dates[0]


def _value_column(profile: TableProfile, label: str | None, when: ColumnProfile) -> ColumnProfile:
    if label:
        value = _find(profile, label, "--label")
        if value.type not in ("int", "float"):
            raise DraftError(f"--label {label!r} holds {value.type} values; a series value must be numeric")
        return value
    numeric = [c for c in profile.columns if c.type in ("int", "float") and c.name != when.name]
    if not numeric:
        raise DraftError("no numeric column to forecast in the file; pass --label COLUMN")
    named = [c for c in numeric if c.name in SERIES_VALUE_NAMES]
    return named[0] if named else numeric[-1]


def _rating_roles(profile: TableProfile, roles: dict[str, str]) -> dict[str, ColumnProfile]:
    mapping = {}
    for role, names in RATING_NAMES.items():
        if roles.get(role):
            mapping[role] = _find(profile, roles[role], f"--{role}")
            continue
        found = [c for c in profile.columns if c.name in names and c not in mapping.values()]
        if found:
            mapping[role] = found[0]
    missing = [r for r in ("user", "item", "rating") if r not in mapping]
    if missing:
        names = ", ".join(c.source for c in profile.columns)
        flags = " ".join(f"--{r} COLUMN" for r in missing)
        raise DraftError(f"no {'/'.join(missing)} column found among {names}; name it with {flags}")
    if mapping["rating"].type not in ("int", "float"):
        raise DraftError(
            f"rating column {mapping['rating'].source!r} holds {mapping['rating'].type} values, not numbers"
        )
    return mapping


def is_id(col: ColumnProfile) -> bool:
    """Unique ints or strings that look like an id: a counter, an id-like name, or text without spaces."""
    if col.type not in ("int", "string") or not col.unique:
        return False
    if _ID_NAME.search(col.source):
        return True
    if col.rows < ID_MIN_ROWS:
        return False
    if col.type == "int":
        return col.max - col.min + 1 == col.rows  # a row counter
    return not col.has_space


def _drops(profile: TableProfile, keep: set[str], drops: dict[str, str]) -> None:
    """Columns kept in silver but not used as features, with why."""
    for col in profile.columns:
        if col.name in keep:
            continue
        if col.distinct == 0:
            drops[col.name] = "empty in the sample"
        elif is_id(col):
            drops[col.name] = "id"
        elif col.distinct == 1 and not col.nulls:
            drops[col.name] = "constant in the sample"
        elif col.type in ("int", "string") and _ID_NAME.search(col.source) and col.distinct > LOW_CARDINALITY:
            drops[col.name] = "named like an id (a reference, not a measurement)"
        elif col.type == "string" and col.distinct > LOW_CARDINALITY and col.distinct > 0.5 * col.non_null:
            drops[col.name] = "free text (mostly distinct values)"
        elif col.type == "date":
            drops[col.name] = "a date (training does not use dates as features)"


def _rule(col: ColumnProfile, role: str, drop: str | None) -> tuple[dict, str, str]:
    """The column's rule, its YAML comment, and what the printed table says."""
    rule: dict = {"type": col.type}
    label = role.startswith("label")
    if col.nulls and not label:
        rule["nullable"] = True
    said, comment = [], []
    if col.type in ("int", "float", "date") and col.min is not None and not label:
        observed = f"observed {_fmt(col.min)} .. {_fmt(col.max)}"
        if role == "rating":  # a rating off the scale is an error; the sample may not reach the top of the scale
            top = next((t for t in RATING_SCALES if t >= col.max), col.max)
            rule["min"], rule["max"] = (0 if col.min >= 0 else col.min), top
            said.append(f"scale {_fmt(rule['min'])}..{_fmt(top)}")
        elif col.type != "date" and col.min >= 0:
            rule["min"] = 0
            said.append("min 0")
        comment.append(observed)
    if label:
        rule["type"] = "string"  # the classes as text: gold compares them with `positive`
        rule["allowed"] = list(col.counts or {})
        said.append(f"{len(rule['allowed'])} classes")
    elif col.type == "string" and 2 <= col.distinct <= LOW_CARDINALITY and col.non_null >= 2 * col.distinct:
        rule["allowed"] = list(col.counts or {})
        said.append(f"allowed: {len(rule['allowed'])} values")
    elif col.type == "bool":
        said.append("/".join(col.counts or {}))
    if col.not_numbers:
        comment.append(f"numbers but for {list(col.not_numbers)}: add those to na_values if they mean missing")
    if role:
        said.insert(0, role)
    if drop:
        said.append(f"not a feature: {drop}")
        comment.append(f"not a feature: {drop}")
    return rule, "; ".join(comment), ", ".join(said)


def _key(profile: TableProfile, kind: str, gold: dict, drops: dict, duplicates: str, draft: Draft) -> list | str:
    ids = [c for c in profile.columns if drops.get(c.name) == "id"]
    if ids:
        draft.key_comment = f"{ids[0].name} is unique in the sample: a repeated {ids[0].name} is a duplicate"
        return [ids[0].name]
    if kind == "series":
        if profile.column(gold["time"]).unique:
            draft.key_comment = "one row per date: a repeated date is a duplicate"
            return [gold["time"]]
        draft.notes.append(
            f"dates of {gold['time']!r} repeat in the sample, so rows add up per period (gold.aggregate); if the "
            f"repeats are re-sends of one row instead, set `key: [{gold['time']}]` and drop gold.aggregate"
        )
    if kind == "ratings":
        cols = draft.entry["columns"]
        key = [cols[r] for r in ("user", "item", "timestamp") if r in cols]
        if not profile.repeats(key):
            draft.key_comment = f"{' + '.join(key)} unique in the sample: a repeat is a duplicate"
            return key
    if duplicates == "quarantine":
        draft.key_comment = "exact repeats of a row are quarantined as duplicates (--duplicates quarantine)"
        return "all"
    draft.key_comment = "no key: identical rows are all kept (--duplicates quarantine to quarantine repeats)"
    return []


def _table_notes(profile: TableProfile, draft: Draft) -> None:
    if profile.truncated:
        draft.notes.append(
            f"profiled the first {profile.rows:,} rows only: a value unseen there may break a rule later"
        )
    if profile.duplicate_rows:
        kept = "kept (no key)" if draft.contract["key"] == [] else "quarantined as duplicates"
        draft.notes.append(f"{profile.duplicate_rows} sampled row(s) repeat an earlier row exactly: {kept}")
    if profile.malformed_lines:
        draft.notes.append(f"{profile.malformed_lines} malformed CSV line(s) in the sample: bronze quarantines them")
    for skipped in profile.skipped:
        draft.notes.append(f"left out of the contract: {skipped}")
    for col in profile.columns:
        if col.source != col.name:
            draft.notes.append("column names are matched in snake_case (e.g. " + f"{col.source!r} -> {col.name!r})")
            break


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def check_draft(contract: Contract, table: pa.Table) -> dict:
    """What silver would do with the sample under the contract: rows that break a rule, repeats of a key."""
    result = apply_contract(contract, table)
    ok = result.ok
    duplicates = 0
    if contract.key:
        ids = row_ids(result.typed, list(contract.key))[ok]
        duplicates = int(pd.Series(ids).duplicated().sum())
    return {
        "rows": table.num_rows,
        "broken": int((~ok).sum()),
        "duplicates": duplicates,
        "reasons": top_reasons(result.reason.drop_null().combine_chunks(), k=5),
        "passed": int(ok.sum()) - duplicates,
    }
