"""The rows of the prediction log: their metadata columns, and how a served row becomes plain JSON values
(or a dead-letter entry naming what is wrong with it).
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from pipelines.constants import QUARANTINE

PREDICTIONS = "predictions"
DEAD_LETTER = f"{QUARANTINE}/{PREDICTIONS}"  # rows that cannot be logged, with their reason
JOURNAL_DIR = "prediction_journal"  # under the state folder: one folder per model, then per process
# Metadata columns of a logged row (leading underscore: not a feature).
REQUEST_ID, TS, MODEL, VERSION, ALIAS, ARM, UNIT_ID, PROBABILITY = (
    "_request_id",
    "_ts",
    "_model",
    "_model_version",
    "_alias",
    "_arm",
    "_unit_id",
    "_probability",
)
META_COLUMNS = (REQUEST_ID, TS, MODEL, VERSION, ALIAS, ARM, UNIT_ID, PROBABILITY)
LOGGED_AT = "_logged_at"  # dead letter: when log() received the row
_INT64 = (-(2**63), 2**63 - 1)


class BadRow(ValueError):
    """A row the log cannot store as it is (the message names the column and what is wrong)."""


def clean_row(row: dict, cache: dict) -> dict:
    """The row with plain JSON values: numpy scalars unwrapped, NaN as null, ``_ts`` as an ISO UTC string."""
    if not isinstance(row, dict):
        raise BadRow(f"a row must be a dict of column: value, got {type(row).__name__}")
    if TS not in row:
        raise BadRow(f"the row has no {TS} timestamp")
    out = {}
    low, high = _INT64
    for key, value in row.items():
        if type(key) is not str:
            raise BadRow(f"column name {key!r} is not a string")
        kind = type(value)  # the common cases inline: this runs for every value of every request
        if key == TS:
            out[key] = _timestamp(value, cache)
        elif (
            kind is str
            or value is None
            or (kind is float and math.isfinite(value))
            or kind is bool
            or (kind is int and low <= value <= high)
        ):
            out[key] = value
        else:
            out[key] = _value(key, value)
    return out


def _value(key: str, value):
    """A plain JSON value (None, bool, int within int64, finite float, str), or BadRow naming the column."""
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is int:
        if not _INT64[0] <= value <= _INT64[1]:
            raise BadRow(f"column {key!r}: integer {value} is outside the 64-bit range")
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        if value != value:
            return None  # NaN: a missing value, read back as NaN
        raise BadRow(f"column {key!r}: {value} is not a finite number")
    if isinstance(value, np.generic):
        return _value(key, value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    for plain in (bool, int, float, str):  # subclasses (enums, ...)
        if isinstance(value, plain):
            return _value(key, plain(value))
    raise BadRow(
        f"column {key!r}: a {type(value).__name__} value cannot be logged (use a number, string, bool or null)"
    )


def _timestamp(value, cache: dict) -> str:
    if type(value) is datetime:  # the API's clock
        return (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    try:
        return cache[value]
    except (KeyError, TypeError):
        pass
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRow(f"{TS} {value!r} is not a timestamp: {exc}") from None
    if ts is pd.NaT:
        raise BadRow(f"{TS} is missing (NaT)")
    out = (ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)).isoformat()
    with contextlib.suppress(TypeError):
        cache[value] = out
    return out


def bad_text(row: dict) -> BadRow:
    """Which column holds text that is not valid UTF-8 (lone surrogates: JSON escapes like \\ud800)."""
    for key, value in row.items():
        for what, text in (("column name", key), (f"column {key!a}", value)):
            if isinstance(text, str):
                try:
                    text.encode()
                except UnicodeEncodeError as exc:
                    return BadRow(f"{what} {text!a} is not valid UTF-8 text ({exc.reason} at {exc.start})")
    return BadRow("the row has text that is not valid UTF-8")


def dead_entry(row, reason: BadRow, logged_at: str) -> list[str]:
    """A dead-letter entry: [reason, ds, raw text, logged at]; ds is the row's date when it has one."""
    try:
        ds = _timestamp(row[TS], {})[:10]
    except (BadRow, KeyError, TypeError):
        ds = logged_at[:10]
    return [safe_text(str(reason)), ds, raw_text(row), logged_at]


def raw_text(row) -> str:
    """The row as ASCII JSON text (lone surrogates escaped, big ints kept), else its repr."""
    try:
        return json.dumps(row, default=str)
    except (TypeError, ValueError):
        return ascii(row)


def safe_text(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode()
