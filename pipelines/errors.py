"""Error kinds shared across the platform."""


class DataError(Exception):
    """Bad input data or configuration: retrying the same task cannot help, so it fails at once."""
