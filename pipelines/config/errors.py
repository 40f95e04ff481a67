"""The error a bad setting raises (a ``DataError``: retrying cannot fix it)."""

from __future__ import annotations

from pipelines.errors import DataError


class SettingsError(DataError, ValueError):
    """A setting is missing, unknown or has the wrong type."""
