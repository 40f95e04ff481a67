"""Data contracts: the rules a silver row must keep, read from include/config/contracts/<name>.yaml.

``apply_contract`` types and validates a bronze table (all strings) column by column with
Arrow compute. Work on dictionary-encoded columns happens once per distinct value, not once
per row, which is what keeps silver close to the speed of plain Parquet I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from pipelines.config import user_dir
from pipelines.constants import CONTRACTS_DIR
from pipelines.errors import DataError
from pipelines.features.rowids import identity as _identity
from pipelines.features.rowids import is_text as _is_text

TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
}
_INT_RE = r"^[+-]?[0-9]{1,18}$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_MONTH_RE = r"^[0-9]{4}-[0-9]{2}$"  # YYYY-MM: a date on the first of the month
_ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
SERIES_RULES = {
    "freq": ("hourly", "daily", "weekly", "monthly", "quarterly", "yearly"),
    "aggregate": ("sum", "count", "mean"),
    "missing": ("interpolate", "zero", "refuse"),
}
_FLOAT_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_TRUE, _FALSE = ["true", "t", "yes", "y", "1"], ["false", "f", "no", "n", "0"]


class ContractError(DataError, ValueError):
    """The batch as a whole does not fit the contract (e.g. a required column is missing)."""


@dataclass(frozen=True)
class ColumnRule:
    name: str
    type: str = "string"
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None
    map: dict = field(default_factory=dict)
    format: str | None = None  # date / timestamp written another way: a strptime format ("%d/%m/%Y")

    @property
    def arrow_type(self) -> pa.DataType:
        return TYPES[self.type]


@dataclass(frozen=True)
class Contract:
    name: str
    columns: tuple[ColumnRule, ...]
    na_values: tuple[str, ...] = ("",)
    key: tuple[str, ...] = ()
    label: str | None = None
    positive: str | None = None  # None: the label is the column's numeric value (regression, forecasting)
    multiclass: bool = False  # gold.label.multiclass: every value of the label is a class (no positive)
    drop: tuple[str, ...] = ()
    unlabelled: bool = False  # gold without a label (ratings, dimension tables): features and split only
    time: str | None = None  # a time series: gold is ordered by this column and split in time order
    series: dict = field(default_factory=dict)  # a series' rules: freq, season, aggregate, missing, max_gap, covariates

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[str]:
        skip = {self.label, self.time, *self.drop}
        return [c for c in self.column_names if c not in skip]


def snake_case(name: str) -> str:
    """'Educational-Num ' -> 'educational_num'."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()


def camel_snake_case(name: str) -> str:
    """'movieId' -> 'movie_id', 'HTTPStatus' -> 'http_status': snake_case with camelCase words split too."""
    return snake_case(re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip()))


def load_contract(name: str, directory: Path | None = None) -> Contract:
    """``<name>.yaml`` from ``directory``, else from the user overlay (include/user/contracts), else bundled."""
    dirs = [directory] if directory else [user_dir() / "contracts", CONTRACTS_DIR]
    path = next((d / f"{name}.yaml" for d in dirs if (d / f"{name}.yaml").exists()), None)
    if path is None:
        known = sorted({p.stem for d in dirs for p in d.glob("*.yaml")})
        raise ContractError(
            f"no contract named {name!r} in {', '.join(map(str, dirs))}; known contracts: {known}. "
            f"Draft one with `python -m pipelines dataset add {name} --source FILE`"
        )
    return parse_contract(yaml.safe_load(path.read_text()), where=str(path))


def parse_contract(spec: dict, where: str = "contract") -> Contract:
    """Build a Contract from its YAML mapping, naming the key that is wrong."""
    columns = []
    for col, rule in (spec.get("columns") or {}).items():
        rule = dict(rule or {})
        unknown = set(rule) - {"type", "nullable", "min", "max", "allowed", "map", "format"}
        if unknown:
            raise ContractError(f"{where}: column {col!r} has unknown rule(s) {sorted(unknown)}")
        if rule.get("type", "string") not in TYPES:
            raise ContractError(f"{where}: column {col!r} has type {rule['type']!r}; use one of {sorted(TYPES)}")
        if "allowed" in rule:
            rule["allowed"] = tuple(str(v) for v in rule["allowed"])
        rule["map"] = {str(k): str(v) for k, v in (rule.get("map") or {}).items()}
        columns.append(ColumnRule(name=snake_case(col), **rule))
    if not columns:
        raise ContractError(f"{where}: a contract needs at least one column under 'columns'")
    names = [c.name for c in columns]
    key = spec.get("key", "all")
    key = tuple(names) if key in (None, "all") else tuple(snake_case(k) for k in key)
    gold = spec.get("gold") or {}
    label = gold.get("label") or {}
    contract = Contract(
        name=spec.get("name", where),
        columns=tuple(columns),
        na_values=tuple(str(v) for v in spec.get("na_values", [""])),
        key=key,
        label=snake_case(label["column"]) if label.get("column") else None,
        positive=str(label["positive"]) if "positive" in label else None,
        multiclass=bool(label.get("multiclass", False)),
        drop=tuple(snake_case(c) for c in gold.get("drop", [])),
        unlabelled=bool(gold.get("unlabelled", False)),
        time=snake_case(gold["time"]) if gold.get("time") else None,
        series=_series_rules(gold, where),
    )
    if contract.unlabelled and contract.label:
        raise ContractError(f"{where}: gold.unlabelled is true but gold.label is set; keep one of them")
    refs = [*contract.key, *[c for c in (contract.label, contract.time) if c], *contract.drop]
    for ref in refs:
        if ref not in names:
            raise ContractError(f"{where}: {ref!r} is used as key/label/time/drop but is not a contract column")
    kinds = {c.name: c.type for c in columns}
    if contract.time and kinds[contract.time] not in ("date", "timestamp"):
        raise ContractError(
            f"{where}: gold.time column {contract.time!r} must have type date or timestamp, not {kinds[contract.time]}"
        )
    if contract.series and not contract.time:
        raise ContractError(f"{where}: gold.{sorted(contract.series)[0]} needs gold.time (the series' time column)")
    unknown_cov = [c for c in contract.series.get("covariates", []) if c not in names]
    if unknown_cov:
        raise ContractError(f"{where}: gold.covariates {unknown_cov} are not contract columns")
    if contract.multiclass and contract.positive is not None:
        raise ContractError(
            f"{where}: label {contract.label!r} has both `positive` and `multiclass: true`; keep one of them"
        )
    if (
        contract.label
        and contract.positive is None
        and not contract.multiclass
        and kinds[contract.label]
        not in (
            "int",
            "float",
        )
    ):
        raise ContractError(
            f"{where}: label {contract.label!r} has no `positive` class, so it must be numeric (int or float), "
            f"not {kinds[contract.label]}; add `positive: <value>` for a binary label or `multiclass: true`"
        )
    return contract


def _series_rules(gold: dict, where: str) -> dict:
    """gold.freq / season / aggregate / missing / max_gap / covariates, checked (docs/contracts.md)."""
    out = {}
    for key, allowed in SERIES_RULES.items():
        if gold.get(key) is not None:
            if str(gold[key]) not in allowed:
                raise ContractError(f"{where}: gold.{key} is {gold[key]!r}; use one of {list(allowed)}")
            out[key] = str(gold[key])
    for key in ("season", "max_gap"):
        if gold.get(key) is not None:
            if (
                not isinstance(gold[key], int)
                or isinstance(gold[key], bool)
                or gold[key] < (1 if key == "season" else 0)
            ):
                raise ContractError(f"{where}: gold.{key} must be a whole number >= 1, got {gold[key]!r}")
            out[key] = int(gold[key])
    if gold.get("covariates") is not None:
        if not isinstance(gold["covariates"], list):
            raise ContractError(f"{where}: gold.covariates must be a list of columns (or [] for none)")
        out["covariates"] = [snake_case(c) for c in gold["covariates"]]
    return out


@dataclass
class ContractResult:
    """Typed columns for every row, and per row the first rule it broke (null when none)."""

    typed: pa.Table
    reason: pa.ChunkedArray
    extra_columns: list[str]

    @property
    def ok(self) -> np.ndarray:
        return self.reason.is_null().to_numpy(zero_copy_only=False)


def match_columns(contract: Contract, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """The file column behind each contract column, and the file's other (extra) columns, snake_cased.

    Names match after snake_case ('Educational-Num' is educational_num); a contract column no name
    matches that way is matched with camelCase split as well ('movieId' is movie_id). Names starting
    with '_' are platform metadata. A ContractError names the columns missing, or those matched twice.
    """
    found: dict[str, list[str]] = {}
    for name in names:
        if not name.startswith("_"):
            found.setdefault(snake_case(name), []).append(name)
    for name in names:
        camel = camel_snake_case(name)
        plain = snake_case(name)
        if (
            not name.startswith("_")
            and plain not in contract.column_names
            and camel in contract.column_names
            and camel not in found
        ):
            found[plain].remove(name)
            found.setdefault(camel, []).append(name)
    found = {k: v for k, v in found.items() if v}
    missing = [c for c in contract.column_names if c not in found]
    if missing:
        raise ContractError(
            f"column(s) {missing} of contract {contract.name!r} missing; found {sorted(found)}. "
            "Fix the file's column names (a CSV file's header line) or the contract."
        )
    twice = {c: found[c] for c in contract.column_names if len(found[c]) > 1}
    if twice:
        raise ContractError(
            f"column(s) {twice} all mean the same column of contract {contract.name!r}; keep one of each"
        )
    return {c: found[c][0] for c in contract.column_names}, sorted(set(found) - set(contract.column_names))


def apply_contract(contract: Contract, table: pa.Table) -> ContractResult:
    """Type and check every contract column of one bronze part (text from CSV, or Parquet's own types)."""
    renamed, extra = match_columns(contract, table.column_names)
    typed, reason = {}, pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    na = pa.array(contract.na_values, pa.string())
    for rule in contract.columns:
        cache: dict = {}
        chunks = [_check_chunk(rule, chunk, na, cache) for chunk in table.column(renamed[rule.name]).chunks]
        typed[rule.name] = pa.chunked_array([t for t, _ in chunks], type=_out_type(rule))
        col_reason = pa.chunked_array([r for _, r in chunks], type=pa.string())
        if col_reason.null_count < len(col_reason):  # most columns break no rule: skip the merge
            reason = pc.coalesce(reason, col_reason)
    return ContractResult(typed=pa.table(typed), reason=reason, extra_columns=extra)


def _out_type(rule: ColumnRule) -> pa.DataType:
    return pa.dictionary(pa.int32(), pa.string()) if rule.type == "string" else rule.arrow_type


def _check_chunk(rule: ColumnRule, arr: pa.Array, na: pa.Array, cache: dict) -> tuple[pa.Array, pa.Array]:
    """Check each distinct value once (dictionary-encoded text), or the typed values directly."""
    if not pa.types.is_dictionary(arr.type) and _is_text(arr.type):
        arr = pc.dictionary_encode(arr.cast(pa.string()))  # pandas 3 writes Parquet text as large_string
    if pa.types.is_dictionary(arr.type):
        key = _identity(arr.dictionary)
        if key not in cache:
            typed_values, value_reason = _check_values(rule, arr.dictionary, na)
            filled = pc.fill_null(typed_values, "") if rule.type == "string" else None
            cache[key] = typed_values, value_reason, filled
        typed_values, value_reason, filled = cache[key]
        indices = arr.indices
        reason = (
            value_reason.take(indices)
            if value_reason.null_count < len(value_reason)
            else pa.nulls(len(arr), pa.string())
        )
        if rule.type == "string":
            # Stay dictionary-encoded; nulls live in the indices, never in the dictionary.
            if typed_values.null_count:
                indices = pc.if_else(pc.is_null(typed_values).take(indices), pa.scalar(None, indices.type), indices)
            typed = pa.DictionaryArray.from_arrays(indices, filled)
        else:
            typed = typed_values.take(indices)
    else:
        typed, reason = _check_values(rule, arr, na)
        if rule.type == "string":
            typed = pc.dictionary_encode(typed)
    if not rule.nullable and typed.null_count:
        missing = pc.and_kleene(pc.is_null(typed), pc.is_null(reason))
        reason = pc.if_else(missing, pa.scalar(f"{rule.name}: missing value"), reason)
    return typed, reason


def _check_values(rule: ColumnRule, values: pa.Array, na: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Typed values and, per value, the first rule it breaks (null when none)."""
    typed = None
    if (
        not _is_text(values.type)
        and rule.type in ("int", "float")
        and (pa.types.is_integer(values.type) or pa.types.is_floating(values.type))
    ):
        try:  # a typed source (Parquet) needs no parsing; a lossy cast falls back to the text rules
            typed = pc.cast(values, rule.arrow_type)
        except pa.ArrowInvalid:
            typed = None
    elif rule.type == "date" and (pa.types.is_date(values.type) or pa.types.is_timestamp(values.type)):
        typed = pc.cast(
            pc.floor_temporal(values, unit="day") if pa.types.is_timestamp(values.type) else values, pa.date32()
        )
    elif rule.type == "timestamp" and (pa.types.is_date(values.type) or pa.types.is_timestamp(values.type)):
        typed = pc.cast(
            values if pa.types.is_timestamp(values.type) else pc.cast(values, pa.timestamp("s")), pa.timestamp("s")
        )
    if typed is not None:
        v = None  # text of the values, only made when a message needs it
    else:
        v = values if _is_text(values.type) else pc.cast(values, pa.string())
        v = pc.utf8_trim_whitespace(v)
        v = pc.if_else(pc.is_in(v, value_set=na), pa.scalar(None, pa.string()), v)
        if rule.map:
            keys = pa.array(list(rule.map), pa.string())
            pos = pc.index_in(v, value_set=keys)
            v = pc.coalesce(pa.array(list(rule.map.values()), pa.string()).take(pos), v)
    reason = pa.nulls(len(values), pa.string())

    def flag(bad, text: str):
        nonlocal reason, v
        bad = pc.fill_null(bad, False)
        if not pc.any(bad).as_py():
            return
        if v is None:
            v = pc.cast(values, pa.string())
        msg = pc.binary_join_element_wise(f"{rule.name}: {text} ('", v, "')", "")
        reason = pc.if_else(pc.and_(bad, pc.is_null(reason)), msg, reason)

    if typed is not None:
        pass
    elif rule.type in ("int", "float"):
        ok = pc.match_substring_regex(v, _INT_RE if rule.type == "int" else _FLOAT_RE)
        flag(pc.invert(ok), "not an integer" if rule.type == "int" else "not a number")
        typed = pc.cast(pc.if_else(pc.fill_null(ok, False), v, pa.scalar(None, pa.string())), rule.arrow_type)
    elif rule.type in ("date", "timestamp") and rule.format:
        parsed = pc.strptime(v, format=rule.format, unit="s", error_is_null=True)
        ok = pc.fill_null(pc.is_valid(parsed), False)
        flag(pc.invert(ok), f"not a {rule.type} ({rule.format})")
        typed = pc.cast(parsed, rule.arrow_type) if rule.type == "date" else parsed
    elif rule.type == "date":
        month = pc.fill_null(pc.match_substring_regex(v, _MONTH_RE), False)
        v = pc.if_else(month, pc.binary_join_element_wise(v, "-01", ""), v)  # YYYY-MM: the first of the month
        ok = pc.fill_null(pc.match_substring_regex(v, _DATE_RE), False)
        parsed = pc.strptime(
            pc.if_else(ok, v, pa.scalar(None, pa.string())), format="%Y-%m-%d", unit="s", error_is_null=True
        )
        # strptime rolls impossible days over (2023-02-30 -> 2023-03-02): a date must print back as it was written.
        ok = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), v), False)
        flag(pc.invert(ok), "not a date (YYYY-MM-DD)")
        typed = pc.cast(pc.if_else(ok, parsed, pa.scalar(None, parsed.type)), pa.date32())
    elif rule.type == "timestamp":
        typed = pa.nulls(len(v), pa.timestamp("s"))
        for fmt in _ISO_FORMATS:  # ISO date-times, with or without seconds, "T" or a space; a date is its midnight
            typed = pc.coalesce(typed, pc.strptime(v, format=fmt, unit="s", error_is_null=True))
        flag(pc.and_(pc.is_valid(v), pc.is_null(typed)), "not an ISO date-time (YYYY-MM-DD HH:MM[:SS])")
    elif rule.type == "bool":
        lower = pc.utf8_lower(v)
        is_true, is_false = pc.is_in(lower, pa.array(_TRUE)), pc.is_in(lower, pa.array(_FALSE))
        flag(pc.invert(pc.or_(is_true, is_false)), "not a boolean")
        typed = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    else:
        typed = v
    if rule.min is not None:
        flag(pc.less(typed, pa.scalar(rule.min).cast(typed.type)), f"below minimum {rule.min}")
    if rule.max is not None:
        flag(pc.greater(typed, pa.scalar(rule.max).cast(typed.type)), f"above maximum {rule.max}")
    if rule.allowed is not None:
        allowed = pa.array(rule.allowed, pa.string()).cast(typed.type)
        flag(pc.invert(pc.is_in(typed, value_set=allowed)), "not an allowed value")
    if reason.null_count < len(reason):  # a value that broke a rule is not carried into the typed column
        typed = pc.if_else(pc.is_null(reason), typed, pa.scalar(None, typed.type))
    return typed, reason
