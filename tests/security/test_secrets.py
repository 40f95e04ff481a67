"""No credentials in the repository: secrets come from the environment or Airflow connections."""

from __future__ import annotations

import subprocess

import pytest

from pipelines.constants import REPO_ROOT
from tests.security.secrets_scan import ALLOWED, line_hash, scan, scan_text, tracked_files

# Built from pieces so that this file itself holds no secret-looking literal.
PLANTED = {
    "private key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow...\n",
    "AWS access key id": "aws_key_id = AKIA" + "Q3EGRIQ5XJ7ZKNTW\n",
    "GitHub token": "token: ghp_" + "a" * 36 + "\n",
    "credentials in a URL": "SQL_ALCHEMY_CONN=postgresql://airflow:" + "s3cr3tpw" + "@db:5432/airflow\n",
    "secret literal": 'DB_PASSWORD = "' + "hunter2hunter2" + '"\n',
}


def test_no_credentials_in_tracked_files():
    findings = scan(REPO_ROOT)
    assert findings == [], "committed credentials (move them to the environment):\n" + "\n".join(map(str, findings))


def test_the_allow_list_only_names_lines_that_exist():
    for path, digest in ALLOWED:
        lines = (REPO_ROOT / path).read_text().splitlines()
        assert digest in {line_hash(line) for line in lines}, (
            f"stale allow-list entry for {path}: {ALLOWED[path, digest]}"
        )


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_the_scan_finds_a_planted_secret(rule):
    findings = scan_text("planted.txt", "harmless line\n" + PLANTED[rule])
    assert [(f.line, f.rule) for f in findings] == [(2, rule)]


def test_the_scan_fails_on_a_secret_planted_in_a_tracked_file(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "settings.py").write_text('API_TOKEN = "' + "x9f" * 8 + '"\n')
    (tmp_path / "ok.py").write_text('API_TOKEN = os.environ["API_TOKEN"]\npassword = "${DB_PASSWORD}"\n')
    subprocess.run(["git", "-C", str(tmp_path), "add", "settings.py", "ok.py"], check=True)
    assert tracked_files(tmp_path) == ["ok.py", "settings.py"]
    assert [(f.path, f.line) for f in scan(tmp_path)] == [("settings.py", 1)]


@pytest.mark.parametrize(
    "line",
    [
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}",
        "password = os.environ['DB_PASSWORD']",
        "REDIS_PASSWORD=change-me-redis",
        "AIRFLOW__CORE__SQL_ALCHEMY_CONN=postgresql://${USER}:${PASSWORD}@db/airflow",
        "token = _persistent_secret(home / '.jwt_secret')",
    ],
)
def test_references_and_placeholders_are_not_secrets(line):
    assert scan_text("ok.txt", line) == []
