"""The error kinds of the prediction service, and how a message names a URI or a cause safely."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from pipelines.errors import DataError


class ModelNotFound(DataError):
    """The registered model or alias does not exist."""


class ModelUnavailable(DataError):
    """The version an alias names cannot be loaded: its files are missing, damaged or out of reach."""


class RegistryUnreachable(DataError):
    """The MLflow registry did not answer (server down, wrong URI, broken database)."""


class UnscorableRows(DataError, ValueError):
    """Valid rows the model cannot score: its pipeline raised on them, or gave no finite probability."""

    def __init__(self, problems: dict[int, str]):
        self.problems = problems  # row index -> what went wrong
        super().__init__("; ".join(f"row {i}: {msg}" for i, msg in problems.items()))


def safe_uri(uri: str) -> str:
    """``uri`` with the password of its user info masked, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _cause(exc: BaseException) -> str:
    """One line naming an error: its type and the OS's reason (a failed connection) or the message's first line."""
    text = str(exc)
    reason = re.search(r"\[Errno -?\d+\][^\"')]*", text)
    line = reason.group(0).rstrip(" :") if reason else (text.strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {line[:300]}"
