"""Checks of the production-like stack: docker-compose.yaml, Dockerfile and .env.example.

The static checks always run (PyYAML, no Docker needed). The compose-client checks run
`<client> config -q` when `docker compose` or `docker-compose` is installed and skip otherwise.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

AIRFLOW_IMAGE = "apache/airflow:3.3.2-python3.11"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
EXPECTED_SERVICES = {"postgres", "redis", "mlflow", *AIRFLOW_SERVICES}
LOCAL_IP = "127.0.0.1"

# Environment keys whose values are credentials.
_SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|ACCESS_KEY|(^|_)AUTH$", re.IGNORECASE)
# A compose interpolation; `$${...}` is an escaped `$` (a variable of the container's shell).
_INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?[^}]*\}")
# A value that is only an interpolation with no default: `${VAR}`, `${VAR:?msg}`, `${VAR?msg}`.
_REQUIRED_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
# The password in `scheme://user:password@host`.
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://(?:\$\{[^}]*\}|[^/\s:@$])*:(?P<pw>\$\{[^}]*\}|[^@/\s]*)@", re.I)
# A command-line flag carrying a credential, and its value.
_SECRET_FLAG = re.compile(r"--?[\w-]*(?:pass(?:word)?|secret|token)[\w-]*(?:=|\s+)\"?(?P<value>[^\s\"]+)", re.I)


# --- helpers -----------------------------------------------------------------------------


@functools.cache
def _compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _env(service: str) -> dict[str, str]:
    env = _services()[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _command_text(service: str) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = _services()[service].get(key)
        if isinstance(value, list):
            parts.append(" ".join(str(v) for v in value))
        elif value is not None:
            parts.append(str(value))
    return " ".join(parts)


def _strings(node: Any):
    """Every string in a parsed YAML tree (keys and values), and each list's items joined by a
    space, so that `["--requirepass", "x"]` is seen as one command line."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        yield " ".join(str(item) for item in node if isinstance(item, (str, int, float)))
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _env_example(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    values = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"{path.name}: line is not KEY=VALUE: {raw!r}"
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def _example_secrets() -> set[str]:
    """The variables of .env.example that hold secrets (passwords, keys; not user names or key ids)."""
    return {key for key in _env_example() if re.search(r"PASSWORD|SECRET|FERNET", key)}


def _generated_env() -> dict[str, str]:
    """.env.example with a fresh value for each secret, as a user's .env would hold."""
    example = _env_example()
    fernet = base64.urlsafe_b64encode(os.urandom(32)).decode()
    for key in _example_secrets():
        example[key] = fernet if key == "AIRFLOW_FERNET_KEY" else secrets.token_urlsafe(24)
    return example


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def _stages() -> list[tuple[str, str | None, list[tuple[str, str]]]]:
    """(base image, stage name, instructions) per build stage, in order."""
    stages: list[tuple[str, str | None, list[tuple[str, str]]]] = []
    for word, args in _dockerfile_instructions():
        if word == "FROM":
            tokens = [t for t in args.split() if not t.startswith("--")]
            name = tokens[2] if len(tokens) >= 3 and tokens[1].upper() == "AS" else None
            stages.append((tokens[0], name, []))
        else:
            assert stages, f"Dockerfile: {word} before the first FROM"
            stages[-1][2].append((word, args))
    return stages


def _airflow_stage() -> list[tuple[str, str]]:
    return _stages()[-1][2]


def _volume_pairs(service: str) -> list[tuple[str, str]]:
    pairs = []
    for volume in _services()[service].get("volumes") or []:
        if isinstance(volume, dict):
            pairs.append((str(volume.get("source")), str(volume.get("target"))))
        else:
            source, target = str(volume).split(":")[:2]
            pairs.append((source, target))
    return pairs


# --- services ------------------------------------------------------------------------------


def test_declares_the_expected_services():
    missing = EXPECTED_SERVICES - set(_services())
    assert not missing, f"docker-compose.yaml lacks services: {sorted(missing)}"
    assert "x-airflow-common" in _compose(), "the shared Airflow config anchor x-airflow-common is gone"


def test_airflow_services_use_celery_with_postgres_and_redis():
    for name in AIRFLOW_SERVICES:
        env = _env(name)
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name
        assert env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "").startswith("postgresql"), name
        assert "@postgres:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env.get("AIRFLOW__CELERY__RESULT_BACKEND", "").startswith("db+postgresql://"), name
        assert "@postgres:" in env["AIRFLOW__CELERY__RESULT_BACKEND"], name
        assert env.get("AIRFLOW__CELERY__BROKER_URL", "").startswith("redis://"), name
        assert "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"], name
        assert env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == "http://airflow-apiserver:8080/execution/", name
        assert env.get("AIRFLOW__CORE__LOAD_EXAMPLES") == "false", name
        assert env.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION") == "true", name
        assert env.get("MLFLOW_TRACKING_URI") == "http://mlflow:5000", name
        assert env.get("MLP_LAKE_ROOT") == "s3://lake", name
        assert env.get("AWS_ENDPOINT_URL") == "http://minio:9000", name
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert _REQUIRED_ONLY.match(env.get(key, "")), f"{name}: {key} must come from the env"


def test_airflow_services_use_exactly_the_celery_settings_the_celery_mode_proves():
    """Executor, queue, acks, prefetch, visibility timeout, heartbeat timeout: those of `make test-celery`."""
    from pipelines.cli.celery_stack import CELERY_SETTINGS, QUEUES

    for name in AIRFLOW_SERVICES:
        env = _env(name)
        assert {key: env.get(key) for key in CELERY_SETTINGS} == CELERY_SETTINGS, name
        others = {k for k in env if k.startswith(("AIRFLOW__CELERY", "AIRFLOW__OPERATORS__"))} - set(CELERY_SETTINGS)
        # Besides the proven ones: only where the broker and results are, and how many tasks a worker runs.
        assert others <= {
            "AIRFLOW__CELERY__BROKER_URL",
            "AIRFLOW__CELERY__RESULT_BACKEND",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY",
        }, (name, others)
    assert CELERY_SETTINGS["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == QUEUES  # what the workers listen on


def test_airflow_services_share_the_same_secrets():
    """The API server signs tokens that workers and the scheduler must verify."""
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        values = {name: _env(name).get(key) for name in AIRFLOW_SERVICES}
        assert all(values.values()), f"{key} missing in {values}"
        assert len(set(values.values())) == 1, f"{key} differs between services: {values}"


def test_airflow_services_run_their_component():
    expected = {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
        "airflow-init": "airflow db migrate",
    }
    for name, command in expected.items():
        assert command in _command_text(name), f"{name} does not run {command!r}"


def test_airflow_services_wait_for_init_and_infrastructure():
    init_deps = _services()["airflow-init"].get("depends_on") or {}
    for dep in ("postgres", "redis"):
        assert init_deps.get(dep, {}).get("condition") == "service_healthy", f"airflow-init/{dep}"
    for name in AIRFLOW_SERVICES[1:]:
        deps = _services()[name].get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        condition = deps.get("airflow-init", {}).get("condition")
        assert condition == "service_completed_successfully", f"{name} does not wait for airflow-init"
        for dep in ("postgres", "redis"):
            assert deps.get(dep, {}).get("condition") == "service_healthy", f"{name}/{dep}"


def test_infrastructure_services_have_healthchecks_and_storage():
    services = _services()
    assert str(services["postgres"]["image"]).startswith("postgres:16")
    for name in ("postgres", "redis", "mlflow", "airflow-apiserver", "airflow-worker"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert any(target == "/var/lib/postgresql/data" for _, target in _volume_pairs("postgres"))
    assert _env("postgres").get("POSTGRES_HOST_AUTH_METHOD") != "trust"


def test_dag_folder_and_code_are_mounted_like_the_embedded_mode():
    for name in AIRFLOW_SERVICES:
        pairs = set(_volume_pairs(name))
        for folder in ("dags", "plugins", "include", "pipelines"):
            assert (f"./{folder}", f"/opt/airflow/{folder}") in pairs, f"{name}: ./{folder} not mounted"


def test_mlflow_server_uses_postgres_and_s3_artifacts():
    command = _command_text("mlflow")
    assert "mlflow server" in command
    assert re.search(r"--backend-store-uri\s+postgresql\+psycopg2://.+?@postgres:5432/mlflow\b", command)
    assert re.search(r"--artifacts-destination\s+s3://mlflow/?(\s|$)", command)
    assert "--serve-artifacts" in command
    assert re.search(r"--host\s+0\.0\.0\.0\b", command)
    assert re.search(r"--port\s+5000\b", command)
    env = _env("mlflow")
    assert env.get("MLFLOW_S3_ENDPOINT_URL") == "http://minio:9000"
    # Airflow calls http://mlflow:5000; MLflow >= 3.5 rejects Host headers it was not told about.
    assert "mlflow:5000" in env.get("MLFLOW_SERVER_ALLOWED_HOSTS", "").split(",")
    # The buckets the stack relies on are created before MLflow and the workers start.
    init = _command_text("minio-init")
    assert "local/mlflow" in init and "local/lake" in init
    for name in ("mlflow", "airflow-worker"):
        deps = _services()[name]["depends_on"]
        assert deps["minio-init"]["condition"] == "service_completed_successfully", name


# --- exposure and secrets ------------------------------------------------------------------


def test_published_ports_bind_to_localhost_only():
    published = []
    for name, service in _services().items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
                assert host_ip == LOCAL_IP, f"{name}: port {port} binds to {host_ip or 'all interfaces'}"
                published.append((name, str(port.get("published"))))
            else:
                parts = str(port).split(":")
                assert len(parts) == 3 and parts[0] == LOCAL_IP, (
                    f"{name}: port {port!r} must be written {LOCAL_IP}:HOST:CONTAINER"
                )
                published.append((name, parts[1]))
    assert ("airflow-apiserver", "8080") in published
    assert ("mlflow", "5000") in published


def test_no_service_hard_codes_a_credential():
    problems = []
    for name in _services():
        for key, value in _env(name).items():
            if _SECRET_KEY.search(key) and not _REQUIRED_ONLY.match(value):
                problems.append(f"{name}: {key}={value!r} is not taken from the environment")
    urls = 0
    for text in _strings(_compose()):
        for match in _URL_PASSWORD.finditer(text):
            urls += 1
            if not _REQUIRED_ONLY.match(match.group("pw")):
                problems.append(f"URL with a literal password: {match.group(0)!r}")
        for match in _SECRET_FLAG.finditer(text):
            if not match.group("value").startswith("$"):
                problems.append(f"command flag with a literal secret: {match.group(0)!r}")
    assert not problems, "\n".join(problems)
    # Airflow's database and result backend, the Celery broker and MLflow's store at least.
    assert urls >= 4, f"only {urls} URLs with credentials found: is the URL check still seeing them?"


def test_env_example_defines_every_required_variable():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    referenced = {m.group("name") for m in _INTERPOLATION.finditer(text)}
    required = {m.group("name") for m in _INTERPOLATION.finditer(text) if m.group("op") in (None, "?", ":?")}
    example = _env_example()
    assert not required - set(example), f".env.example lacks {sorted(required - set(example))}"
    assert not set(example) - referenced, f".env.example has unused {sorted(set(example) - referenced)}"


def test_env_example_publishes_no_secret_and_compose_requires_each():
    """Every secret of .env.example is empty, and compose refuses an empty one (``${VAR:?...}``: unset or empty),
    so the stack cannot start on a value published in the repository."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    secrets_ = _example_secrets()
    assert {"POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "S3_SECRET_ACCESS_KEY"} <= secrets_
    example = _env_example()
    assert {k: example[k] for k in secrets_} == dict.fromkeys(secrets_, ""), ".env.example holds secret values"
    for match in _INTERPOLATION.finditer(text):
        if match.group("name") in secrets_:
            assert match.group("op") == ":?", f"{match.group(0)} accepts an empty value: write ${{VAR:?set VAR ...}}"


def test_env_example_recipe_generates_every_secret(tmp_path):
    """The commands in .env.example's header fill every secret of a copy with a fresh, URL-safe value."""
    recipe = [
        line.removeprefix("#").strip()
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.startswith("#   ")
    ]
    script = "\n".join(line for line in recipe if line != "cp .env.example .env")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    subprocess.run(["bash", "-euc", script], cwd=tmp_path, check=True, timeout=120)
    filled = _env_example(tmp_path / ".env")
    for key in _example_secrets():
        assert re.fullmatch(r"[A-Za-z0-9._~=-]{24,}", filled[key]), f"{key}={filled[key]!r}"
    assert len(base64.urlsafe_b64decode(filled["AIRFLOW_FERNET_KEY"].encode())) == 32
    assert len({filled[k] for k in _example_secrets()}) == len(_example_secrets()), "two secrets are the same"


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_builds_on_the_official_airflow_image():
    stages = _stages()
    base, name, _ = stages[-1]
    assert base == AIRFLOW_IMAGE, f"the default (last) stage must be FROM {AIRFLOW_IMAGE}, not {base}"
    targets = {
        str(service["build"].get("target"))
        for service in _services().values()
        if isinstance(service.get("build"), dict) and service["build"].get("target")
    }
    stage_names = {stage_name for _, stage_name, _ in stages}
    assert targets <= stage_names, f"compose build targets {targets} not in Dockerfile {stage_names}"
    assert _services()["airflow-apiserver"]["build"]["target"] == name


def test_dockerfile_installs_requirements_with_cpu_torch_and_pinned_airflow():
    runs = [args for word, args in _airflow_stage() if word == "RUN"]
    req = next((i for i, r in enumerate(runs) if re.search(r"-r\s+\S*requirements\.txt", r)), None)
    assert req is not None, "the Airflow stage does not pip install -r requirements.txt"
    assert "apache-airflow==${AIRFLOW_VERSION}" in runs[req], "Airflow is not held at its version"
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for w, a in _airflow_stage() if w == "ARG" and "=" in a}
    assert args.get("AIRFLOW_VERSION") == "3.3.2"
    torch = next((i for i, r in enumerate(runs) if "torch" in r and "--index-url" in r), None)
    assert torch is not None and torch < req, "torch is not installed from the CPU index first"
    torch_index = args.get("TORCH_INDEX_URL", "") + runs[torch]
    assert "https://download.pytorch.org/whl/cpu" in torch_index
    assert "apache-airflow==3.3.2" in (ROOT / "requirements.txt").read_text(encoding="utf-8")


def test_dockerfile_ships_the_code_on_pythonpath_as_airflow_user():
    stage = _airflow_stage()
    copies = [args for word, args in stage if word == "COPY"]
    for folder in ("pipelines", "include", "dags", "plugins"):
        assert any(re.search(rf"(^|\s){folder}/?\s+/opt/airflow/{folder}/?$", c) for c in copies), (
            f"{folder}/ is not copied to /opt/airflow/{folder}"
        )
    envs = " ".join(args for word, args in stage if word == "ENV")
    assert re.search(r"PYTHONPATH[= ]\"?[^\s\"]*/opt/airflow(:|\"|\s|$)", envs), "PYTHONPATH lacks /opt/airflow"
    users = [args for word, args in stage if word == "USER"]
    assert users and users[-1] == "airflow", "the image must end as the airflow user"


# --- compose client ------------------------------------------------------------------------


@functools.cache
def _compose_client() -> tuple[str, ...] | None:
    docker = shutil.which("docker")
    if docker:
        try:
            probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20, check=False)
            if probe.returncode == 0:
                return (docker, "compose")
        except (OSError, subprocess.TimeoutExpired):
            pass
    legacy = shutil.which("docker-compose")
    return (legacy,) if legacy else None


def _run_config(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    client = _compose_client()
    if client is None:
        pytest.skip("no compose client (`docker compose` or `docker-compose`) installed")
    return subprocess.run(
        [*client, "-f", str(cwd / "docker-compose.yaml"), "config", "-q"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _env_without_example_keys() -> dict[str, str]:
    example = _env_example()
    return {k: v for k, v in os.environ.items() if k not in example}


def test_compose_client_validates_the_file_with_generated_secrets():
    env = {**_env_without_example_keys(), **_generated_env()}
    result = _run_config(env, ROOT)
    assert result.returncode == 0, f"compose config failed:\n{result.stdout}\n{result.stderr}"


def test_compose_client_refuses_env_example_as_it_is(tmp_path):
    """`cp .env.example .env` alone does not start the stack: compose names an empty secret."""
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yaml")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    result = _run_config(_env_without_example_keys(), tmp_path)  # compose reads tmp_path/.env
    assert result.returncode != 0, "compose accepted .env.example's empty secrets"
    named = re.findall(r"set (\w+) \(generate it", result.stdout + result.stderr)
    assert named and set(named) <= _example_secrets(), result.stdout + result.stderr


@pytest.mark.parametrize("secret", ["POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "S3_SECRET_ACCESS_KEY"])
@pytest.mark.parametrize("value", [None, ""])
def test_compose_client_refuses_a_missing_or_empty_secret(tmp_path, secret, value):
    """Without one secret (unset, or set empty) the stack must not start with an empty or default one."""
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yaml")
    env = {**_env_without_example_keys(), **_generated_env()}
    if value is None:
        del env[secret]
    else:
        env[secret] = value
    result = _run_config(env, tmp_path)
    assert result.returncode != 0, f"compose accepted the file with {secret} {'unset' if value is None else 'empty'}"
    assert f"set {secret} (generate it" in result.stdout + result.stderr
