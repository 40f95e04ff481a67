"""A throwaway PostgreSQL cluster from the distribution's packages, on 127.0.0.1 only.

Used by the integration mode (``make test-integration``) as Airflow's metadata database and
MLflow's backend store. ``initdb`` and ``postgres`` refuse to run as root: as root, they run as
the ``postgres`` system user (created by Debian's package), in a data folder that user owns.
Password authentication (scram-sha-256) even on loopback; no Unix socket.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.cli.stack import Service, write_private

SUPERUSER = "mlp"
DATABASES = ("airflow", "mlflow")
DEFAULT_OS_USER = "postgres"  # who runs the server when we are root


class PostgresError(RuntimeError):
    """PostgreSQL is missing or would not start."""


def bindir() -> Path:
    """Folder with initdb and postgres: ``MLP_PG_BINDIR``, else the newest /usr/lib/postgresql/<v>/bin, else PATH."""
    if env := os.environ.get("MLP_PG_BINDIR"):
        return Path(env)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name), reverse=True
    )
    if candidates:
        return candidates[0].parent
    if found := shutil.which("postgres"):
        return Path(found).parent
    raise PostgresError(
        "PostgreSQL server binaries not found: install the distribution's package "
        "(apt-get install postgresql, done by `make test-integration`) or set MLP_PG_BINDIR"
    )


@dataclass(frozen=True)
class Cluster:
    root: Path  # owned by the server's OS user: data/ and the log live here
    port: int
    password: str = field(repr=False)
    os_user: str | None  # None: run as the current user
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}:{self.password}@{self.host}:{self.port}/{database}"

    def service(self) -> Service:
        command = [
            str(bindir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"port={self.port}",
            "-c",
            "unix_socket_directories=",  # TCP on loopback only
            "-c",
            "max_connections=200",  # scheduler, dag-processor, triggerer, API server, task processes, MLflow
        ]
        return Service(
            "postgres",
            command,
            health_url=f"postgresql://{self.host}:{self.port}",
            url=f"postgresql://{self.host}:{self.port}",
            user=self.os_user,
            cwd=str(self.root),
            probe=self.accepts_connections,
            stop_signal=signal.SIGINT,  # "fast" shutdown: roll back open sessions and exit
        )

    def accepts_connections(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def create_databases(self, names=DATABASES) -> None:
        import psycopg2

        con = psycopg2.connect(self.url("postgres"), connect_timeout=5)
        try:
            con.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with con.cursor() as cur:
                for name in names:
                    cur.execute("select 1 from pg_database where datname = %s", (name,))
                    if cur.fetchone() is None:
                        cur.execute(f'create database "{name}"')
        finally:
            con.close()


def init_cluster(port: int, parent: Path | None = None) -> Cluster:
    """A new, empty cluster in a fresh folder (under ``parent`` or the system temp dir), not yet started."""
    os_user = DEFAULT_OS_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="mlp-postgres-", dir=parent))
    if os_user:
        try:
            entry = pwd.getpwnam(os_user)
        except KeyError as exc:
            raise PostgresError(
                f"running as root needs the '{os_user}' system user to run PostgreSQL: install the postgresql package"
            ) from exc
        os.chown(root, entry.pw_uid, entry.pw_gid)
    password = secrets.token_urlsafe(24)
    pwfile = root / "pwfile"
    write_private(pwfile, password + "\n")
    if os_user:
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    command = [
        str(bindir() / "initdb"),
        "-D",
        str(root / "data"),
        "-U",
        SUPERUSER,
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",  # a throwaway cluster: skip the fsyncs
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=120, **run_as(os_user))
    pwfile.unlink()
    if result.returncode != 0:
        raise PostgresError(f"initdb failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return Cluster(root=root, port=port, password=password, os_user=os_user)


def run_as(os_user: str | None) -> dict:
    """Keyword arguments of ``subprocess.Popen`` that run a command as ``os_user`` (and only its groups)."""
    if not os_user:
        return {}
    entry = pwd.getpwnam(os_user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def remove_cluster(cluster: Cluster) -> None:
    shutil.rmtree(cluster.root, ignore_errors=True)
