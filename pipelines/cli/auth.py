"""The embedded stack's secrets: Airflow's signing keys and the SimpleAuthManager's admin password.

Each is generated once per checkout into an owner-only file under ``AIRFLOW_HOME`` and never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from pipelines.config import Settings

ADMIN_USER = "admin"
# The SimpleAuthManager's users -> passwords (JSON), under AIRFLOW_HOME; owner-only, never printed.
AUTH_FILE = "simple_auth_manager_passwords.json"


def airflow_home(settings: Settings) -> Path:
    return settings.state_dir / "airflow"


def write_private(path: Path, text: str, replace: bool = False) -> bool:
    """Write ``text`` to ``path`` readable by its owner only; False when it exists and ``replace`` is off.

    The file is created with mode 0600 (``mkstemp``), never wider for a moment, under a temporary
    name, then linked (or, with ``replace``, renamed) into place: nobody reads half a secret, and
    of two processes creating the same secret the first one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def secret_files(settings: Settings) -> dict[str, Path]:
    """Airflow settings whose values are secrets generated once per checkout, and their owner-only files."""
    home = airflow_home(settings)
    return {"AIRFLOW__API_AUTH__JWT_SECRET": home / ".jwt_secret", "AIRFLOW__API__SECRET_KEY": home / ".api_secret_key"}


def persistent_secret(path: Path) -> str:
    """A secret generated once per checkout, so every Airflow process signs and checks the same tokens."""
    write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def admin_passwords_file(settings: Settings) -> Path:
    """The SimpleAuthManager's passwords file, holding the admin's password (made here, 0600, if missing).

    Made before any Airflow command runs: Airflow would otherwise generate the password itself and
    print it to stdout, that is into the API server's log. A file an older checkout left readable
    to others is made owner-only.
    """
    path = airflow_home(settings) / AUTH_FILE
    try:
        passwords = json.loads(path.read_text() or "{}")
    except (FileNotFoundError, ValueError):
        passwords = {}
    if not isinstance(passwords, dict):
        passwords = {}
    if ADMIN_USER in passwords:
        path.chmod(0o600)  # a file an older checkout left readable to others
    else:
        passwords[ADMIN_USER] = secrets.token_urlsafe(16)
        write_private(path, json.dumps(passwords) + "\n", replace=path.exists())
    return path


def password_hint(settings: Settings) -> str:
    """Where the admin's password is (it is never printed: terminal output ends up in logs)."""
    return f'password: the "{ADMIN_USER}" entry of {airflow_home(settings) / AUTH_FILE} (readable by you only)'


def admin_password(settings: Settings) -> str | None:
    path = airflow_home(settings) / AUTH_FILE
    try:
        return json.loads(path.read_text()).get(ADMIN_USER)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
