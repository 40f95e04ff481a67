"""The scale-out mode's pieces that need no running stack: broker config, worker environment, duplicate count."""

from __future__ import annotations

import stat

import pytest

from pipelines.cli import celery_stack
from pipelines.cli.scaleout import duplicate_versions


def test_broker_password_only_in_an_owner_only_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_REDIS_SERVER", "/usr/bin/redis-server")
    broker = celery_stack.Broker.create(tmp_path / "redis", 6399)
    conf = tmp_path / "redis" / "redis.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert f"requirepass {broker.password}" in conf.read_text()
    assert "bind 127.0.0.1" in conf.read_text()
    assert broker.password not in " ".join(broker.service().command)  # not on a command line `ps` shows
    assert broker.password not in repr(broker)


def test_missing_redis_server_names_the_package(monkeypatch):
    monkeypatch.delenv("MLP_REDIS_SERVER", raising=False)
    monkeypatch.setattr(celery_stack.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install redis-server"):
        celery_stack.redis_server()


def test_celery_env_adds_the_proven_settings_broker_and_backend():
    env = celery_stack.celery_env({"AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "X": "1"}, "redis://b", "postgresql://r")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor" and env["X"] == "1"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://b"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://r"


def test_a_worker_gets_folders_of_its_own_and_keeps_lake_and_mlflow(tmp_path):
    seed = tmp_path / "cache"
    (seed / "wheels").mkdir(parents=True)
    (seed / "wheels" / "data.whl").write_bytes(b"wheel")
    shared = {
        "AIRFLOW_HOME": "/central/airflow",
        "MLP_LAKE_ROOT": "s3://lake",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "AIRFLOW__API_AUTH__JWT_SECRET": "k",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "central" / "passwords.json"),
    }
    env = celery_stack.worker_env(shared, tmp_path / "worker-a", "worker-a.example", seed_cache=seed)
    own = ("AIRFLOW_HOME", "MLP_STATE_DIR", "MLP_CACHE_DIR", "AIRFLOW__LOGGING__BASE_LOG_FOLDER", "TMPDIR")
    for key in own:
        assert env[key].startswith(str(tmp_path / "worker-a")), key
    assert (tmp_path / "worker-a" / "cache" / "wheels" / "data.whl").read_bytes() == b"wheel"
    for key in ("MLP_LAKE_ROOT", "MLFLOW_TRACKING_URI", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert env[key] == shared[key]
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" not in env  # a worker needs no UI password
    assert env["PIPELINES_WORKER_HOSTNAME"] == "worker-a.example"


def test_worker_hostname_is_the_machine_it_stands_for(monkeypatch):
    monkeypatch.setenv("PIPELINES_WORKER_HOSTNAME", "worker-b.example")
    assert celery_stack.worker_hostname() == "worker-b.example"
    monkeypatch.delenv("PIPELINES_WORKER_HOSTNAME")
    assert celery_stack.worker_hostname() == celery_stack.socket.getfqdn()


def test_duplicate_versions_counts_extra_versions_of_one_airflow_run():
    def v(run):
        return {"tags": {"airflow_run_id": run} if run else {}}

    assert duplicate_versions([v("a"), v("b"), v(None)]) == 0
    assert duplicate_versions([v("a"), v("a"), v("a"), v("b")]) == 2
