"""Secure defaults: loopback binding, Airflow authentication on, secrets generated per checkout."""

from __future__ import annotations

from pipelines.cli import stack
from pipelines.config import load_settings
from pipelines.constants import REPO_ROOT


def test_every_service_binds_to_loopback_by_default():
    settings = load_settings({})
    assert settings.airflow.host == settings.mlflow.host == settings.serving.host == "127.0.0.1"


def test_airflow_authentication_stays_on(tmp_path):
    env = stack.airflow_env(load_settings({"MLP_STATE_DIR": str(tmp_path)}), base={})
    assert env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False").lower() == "false"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    # The token-signing secrets are random per checkout, kept out of git, readable by the owner only.
    home = stack.airflow_home(load_settings({"MLP_STATE_DIR": str(tmp_path)}))
    for name, var in (
        (".jwt_secret", "AIRFLOW__API_AUTH__JWT_SECRET"),
        (".api_secret_key", "AIRFLOW__API__SECRET_KEY"),
    ):
        assert env[var] == (home / name).read_text().strip() and len(env[var]) >= 32
        assert (home / name).stat().st_mode & 0o077 == 0
    other = stack.airflow_env(load_settings({"MLP_STATE_DIR": str(tmp_path / "other")}), base={})
    assert other["AIRFLOW__API_AUTH__JWT_SECRET"] != env["AIRFLOW__API_AUTH__JWT_SECRET"]


def test_no_file_turns_anonymous_admin_on():
    for path in [*REPO_ROOT.glob("**/*.cfg"), *REPO_ROOT.glob("*.yaml"), *REPO_ROOT.glob("include/**/*.yaml")]:
        if ".venv" in path.parts or ".state" in path.parts:
            continue
        text = path.read_text().lower()
        assert "all_admins = true" not in text and "all_admins: true" not in text and "all_admins=true" not in text
