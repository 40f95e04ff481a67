"""DAG integrity: every file in dags/ parses through Airflow's DagBag, cheaply and without side effects.

Each check is a function ``check_*(path) -> list[str]`` of problems, so the same function runs on
every real DAG file (parametrized over ``dags/*.py``, new DAGs are included automatically) and on
small bad DAG files written to a tmp dir, which prove that each check can fail.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))  # _*.py: shared helpers
HELPERS = sorted(DAGS_DIR.glob("_*.py"))  # imported by the DAG files (the DAGs folder is on sys.path)

PARSE_BUDGET_S = 2.0
MIN_RETRIES = 2
# Top level of a DAG file: the standard library, the Task SDK and providers only, and the folder's own
# helpers (dags/_*.py), which follow the same rule.
ALLOWED_TOP_LEVEL = ("airflow.sdk", "airflow.providers")
# Calls that make a start_date move with the clock.
DYNAMIC_DATE_CALLS = {"now", "utcnow", "today", "days_ago", "yesterday", "fromtimestamp", "utcfromtimestamp"}


# --------------------------------------------------------------------------- environment


def _isolated_env(airflow_home: Path, sql_alchemy_conn: str) -> dict[str, str]:
    """The current environment without connections/variables, with Airflow pointed at a throwaway home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),  # as `make up`: Airflow puts it on sys.path
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), str(DAGS_DIR), env.get("PYTHONPATH", "")) if p),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    """AIRFLOW_HOME (and the metadata DB) in a tmp dir for the session, so tests never touch .state/airflow."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = _isolated_env(home, f"sqlite:///{home / 'airflow.db'}")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
            mp.delenv(key)
        for key in ("AIRFLOW_HOME", "AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
            mp.setenv(key, env[key])
        mp.syspath_prepend(str(DAGS_DIR))  # the DAG processor's sys.path holds the DAGs folder (helpers)
        yield home


@pytest.fixture(scope="session")
def dagbag_cache(airflow_home):
    return {}


def load_dagbag(path: Path, cache: dict | None = None):
    """Parse one file with Airflow's own DagBag (safe_mode off: no file is skipped by the heuristic)."""
    key = str(path)
    if cache is not None and key in cache:
        return cache[key]
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3 location (airflow.models.dagbag is deprecated)

    bag = DagBag(dag_folder=path, safe_mode=False)
    if cache is not None:
        cache[key] = bag
    return bag


# --------------------------------------------------------------------------- checks


def check_imports_cleanly(path: Path, cache: dict | None = None) -> list[str]:
    bag = load_dagbag(path, cache)
    return [f"{path.name}: import error in {file}:\n{err}" for file, err in bag.import_errors.items()]


def check_one_dag_named_after_file(path: Path, cache: dict | None = None) -> list[str]:
    bag = load_dagbag(path, cache)
    if bag.import_errors:
        return [f"{path.name}: does not import, see the import test"]
    if bag.dag_ids != [path.stem]:
        return [f"{path.name}: must define exactly one DAG with dag_id={path.stem!r}, found {sorted(bag.dag_ids)}"]
    return []


def _dag_calls(tree: ast.AST) -> list[ast.Call]:
    """``dag(...)`` / ``DAG(...)`` calls: the ``@dag`` decorator or the ``with DAG(...)`` form."""
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in ("dag", "DAG"):
                calls.append(node)
    return calls


def _dynamic_calls(expr: ast.AST, assignments: dict[str, ast.AST], seen: frozenset = frozenset()) -> list[str]:
    """Names of clock-reading calls in an expression, following module-level names it refers to."""
    found = []
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in DYNAMIC_DATE_CALLS:
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Name) and node.id in assignments and node.id not in seen:
            found += _dynamic_calls(assignments[node.id], assignments, seen | {node.id})
    return found


def check_dag_attributes(path: Path, cache: dict | None = None) -> list[str]:
    """tags, doc_md, a static start_date, explicit max_active_runs, retries >= 2 with a delay in default_args."""
    bag = load_dagbag(path, cache)
    if bag.import_errors or not bag.dags:
        return [f"{path.name}: no DAG to check (see the import / one-DAG tests)"]
    problems = []
    for dag in bag.dags.values():
        where = f"{path.name} ({dag.dag_id})"
        if not dag.tags:
            problems.append(f"{where}: set tags=[...] so the DAG can be found in the UI")
        if not (isinstance(dag.doc_md, str) and dag.doc_md.strip()):
            problems.append(f"{where}: set doc_md (e.g. doc_md=__doc__) so the UI explains the DAG")
        if dag.start_date is None:
            problems.append(f"{where}: set a static start_date, e.g. datetime(2026, 1, 1)")
        args = dag.default_args or {}
        retries = args.get("retries")
        if not isinstance(retries, int) or retries < MIN_RETRIES:
            problems.append(f"{where}: default_args['retries'] must be >= {MIN_RETRIES}, got {retries!r}")
        delay = args.get("retry_delay")
        if not isinstance(delay, timedelta) or delay <= timedelta(0):
            problems.append(f"{where}: default_args['retry_delay'] must be a positive timedelta, got {delay!r}")

    tree = ast.parse(path.read_text(), filename=str(path))
    assignments = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    calls = _dag_calls(tree)
    if not calls:
        problems.append(f"{path.name}: no dag(...) / DAG(...) call found; declare the DAG with keyword arguments")
    for call in calls:
        keywords = {kw.arg: kw.value for kw in call.keywords if kw.arg}
        if "max_active_runs" not in keywords:
            problems.append(f"{path.name}:{call.lineno}: set max_active_runs explicitly (on purpose, not the default)")
    # start_date may be given to the DAG or through default_args; wherever it is, it must not read the clock.
    for node in ast.walk(tree):
        exprs = []
        if isinstance(node, ast.keyword) and node.arg == "start_date":
            exprs.append(node.value)
        elif isinstance(node, ast.Dict):
            exprs += [
                v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "start_date"
            ]
        for expr in exprs:
            for call in _dynamic_calls(expr, assignments):
                problems.append(
                    f"{path.name}:{expr.lineno}: start_date must be static, not {call}; use a fixed date like datetime(2026, 1, 1)"
                )
    return problems


def check_task_retries(path: Path, cache: dict | None = None) -> list[str]:
    """Every task, decorated and mapped ones included, retries at least MIN_RETRIES times with a delay."""
    bag = load_dagbag(path, cache)
    problems = []
    for dag in bag.dags.values():
        if not dag.tasks:
            problems.append(f"{path.name} ({dag.dag_id}): has no tasks")
        for task in dag.tasks:
            where = f"{path.name} ({dag.dag_id}.{task.task_id}, {type(task).__name__})"
            if not isinstance(task.retries, int) or task.retries < MIN_RETRIES:
                problems.append(f"{where}: retries must be >= {MIN_RETRIES}, got {task.retries!r}")
            delay = task.retry_delay
            if not isinstance(delay, timedelta) or delay <= timedelta(0):
                problems.append(f"{where}: retry_delay must be a positive timedelta, got {delay!r}")
    return problems


def _allowed_module(module: str, folder: Path | None = None) -> bool:
    root = module.split(".")[0]
    if root == "airflow":
        return any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED_TOP_LEVEL)
    if folder is not None and root.startswith("_") and (folder / f"{root}.py").exists():
        return True  # a helper of the DAGs folder: checked by the same rule (test_helpers_import_lightly)
    return root in sys.stdlib_module_names  # includes __future__


def _module_level_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """Imports that run when the module runs: not inside functions, not under ``if TYPE_CHECKING:``."""
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "." * node.level + (node.module or "")))
            elif node.module == "airflow":
                found.extend((node.lineno, f"airflow.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, node.module or ""))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def check_top_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.name}:{lineno}: top-level import of {module!r}; DAG files import only the standard library, "
        f"airflow.sdk and airflow.providers at top level: import it inside the task body"
        for lineno, module in _module_level_imports(tree)
        if module.startswith(".") or not _allowed_module(module, path.parent)
    ]


def _run_isolated(script: str, path: Path, tmp_dir: Path, sql_alchemy_conn: str | None = None) -> dict:
    """Run ``script`` in a fresh interpreter with an isolated Airflow env; it writes a JSON result to argv[2]."""
    home = tmp_dir / "airflow_home"
    home.mkdir(parents=True, exist_ok=True)
    out = tmp_dir / "result.json"
    out.unlink(missing_ok=True)
    env = _isolated_env(home, sql_alchemy_conn or f"sqlite:///{home / 'airflow.db'}")
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path), str(out)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0 or not out.exists():
        raise AssertionError(
            f"checker subprocess failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(out.read_text())


PARSE_TIME_SCRIPT = textwrap.dedent(
    """
    import json, runpy, sys, time, traceback
    import airflow.sdk  # the framework is already loaded in a DAG processor; only the file's own cost counts
    path, out = sys.argv[1], sys.argv[2]
    error = None
    start = time.perf_counter()
    try:
        runpy.run_path(path, run_name="__dag_parse__")
    except BaseException:
        error = traceback.format_exc()
    elapsed = time.perf_counter() - start
    with open(out, "w") as f:
        json.dump({"elapsed": elapsed, "error": error}, f)
    """
)


def check_parse_time(path: Path, tmp_dir: Path, budget: float = PARSE_BUDGET_S) -> list[str]:
    result = _run_isolated(PARSE_TIME_SCRIPT, path, tmp_dir)
    problems = []
    if result["error"]:
        problems.append(f"{path.name}: failed to import:\n{result['error']}")
    if result["elapsed"] >= budget:
        problems.append(
            f"{path.name}: module took {result['elapsed']:.2f}s to run (budget {budget:.2f}s); "
            "move heavy imports and work into the task bodies"
        )
    return problems


NO_DB_SCRIPT = textwrap.dedent(
    """
    import json, runpy, socket, sqlite3, sys, traceback
    import airflow.sdk
    import sqlalchemy, sqlalchemy.engine
    import pipelines.config
    path, out = sys.argv[1], sys.argv[2]
    calls = []

    def forbid(what):
        def refuse(*args, **kwargs):
            calls.append(what)
            raise RuntimeError(f"{what} called while parsing a DAG file")
        return refuse

    sqlalchemy.create_engine = sqlalchemy.engine.create_engine = forbid("sqlalchemy.create_engine")
    sqlalchemy.engine.Engine.connect = forbid("sqlalchemy Engine.connect")
    sqlalchemy.engine.Engine.raw_connection = forbid("sqlalchemy Engine.raw_connection")
    sqlite3.connect = forbid("sqlite3.connect")
    socket.socket.connect = forbid("socket.connect")
    socket.socket.connect_ex = forbid("socket.connect_ex")
    socket.getaddrinfo = forbid("socket.getaddrinfo")
    airflow.sdk.BaseHook.get_connection = classmethod(forbid("BaseHook.get_connection"))
    airflow.sdk.Connection.get = classmethod(forbid("Connection.get"))
    airflow.sdk.Variable.get = classmethod(forbid("Variable.get"))
    pipelines.config.load_settings = forbid("pipelines.config.load_settings")

    error = None
    try:
        runpy.run_path(path, run_name="__dag_parse__")
    except BaseException:
        error = traceback.format_exc()
    with open(out, "w") as f:
        json.dump({"error": error, "calls": calls}, f)
    """
)


def check_no_db_or_connection_access(path: Path, tmp_dir: Path) -> list[str]:
    """Import the file with the DB unreachable and DB, connection, socket and settings access refused."""
    not_a_dir = tmp_dir / "not-a-dir"
    not_a_dir.parent.mkdir(parents=True, exist_ok=True)
    not_a_dir.write_text("a file, so no database can be created below it\n")
    result = _run_isolated(NO_DB_SCRIPT, path, tmp_dir, sql_alchemy_conn=f"sqlite:///{not_a_dir / 'airflow.db'}")
    problems = [
        f"{path.name}: {call} at parse time; read settings, connections and variables inside tasks"
        for call in dict.fromkeys(result["calls"])
    ]
    if result["error"]:
        problems.append(f"{path.name}: failed to import without a database or network:\n{result['error']}")
    return problems


# --------------------------------------------------------------------------- the real DAG files

dag_file = pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])


def test_dags_folder_has_dag_files():
    assert DAG_FILES, f"no DAG files found in {DAGS_DIR}"


@dag_file
def test_imports_through_dagbag(path, dagbag_cache):
    assert check_imports_cleanly(path, dagbag_cache) == []


@dag_file
def test_one_dag_per_file_named_after_it(path, dagbag_cache):
    assert check_one_dag_named_after_file(path, dagbag_cache) == []


@dag_file
def test_dag_attributes(path, dagbag_cache):
    assert check_dag_attributes(path, dagbag_cache) == []


@dag_file
def test_every_task_retries(path, dagbag_cache):
    assert check_task_retries(path, dagbag_cache) == []


@dag_file
def test_no_heavy_top_level_imports(path):
    assert check_top_level_imports(path) == []


@pytest.mark.parametrize("path", HELPERS, ids=[p.stem for p in HELPERS])
def test_helpers_import_lightly(path):
    assert check_top_level_imports(path) == []


def test_a_heavy_import_in_a_helper_is_caught(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "_helper.py").write_text("import pandas\n")
    dag = write_dag(tmp_path, header="from _helper import thing\nfrom _absent import other")
    assert check_top_level_imports(folder / "_helper.py") != []
    problems = check_top_level_imports(dag)  # the helper is allowed, a module that is not there is not
    assert len(problems) == 1 and "_absent" in problems[0], problems


@dag_file
def test_parse_time(path, tmp_path):
    assert check_parse_time(path, tmp_path) == []


@dag_file
def test_no_db_or_connection_access_at_parse_time(path, tmp_path):
    assert check_no_db_or_connection_access(path, tmp_path) == []


# --------------------------------------------------------------------------- the checks can fail

GOOD_DAG = '''\
"""A small DAG that passes every check."""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="{stem}",
    schedule=None,
    start_date={start_date},
    max_active_runs=1,
    tags=["test"],
    doc_md=__doc__,
    default_args={{"retries": {retries}, "retry_delay": timedelta(seconds=5)}},
)
def {stem}():
    @task
    def items() -> list[int]:
        return [1, 2]

    @task{mapped_args}
    def work(x: int) -> int:
        return x

    work.expand(x=items())


{stem}()
'''


def write_dag(
    tmp_path: Path,
    stem: str = "good",
    *,
    header: str = "",
    start_date: str = "datetime(2026, 1, 1)",
    retries: int = 2,
    mapped_args: str = "",
    replace: tuple[str, str] | None = None,
) -> Path:
    text = GOOD_DAG.format(stem=stem, start_date=start_date, retries=retries, mapped_args=mapped_args)
    if header:
        text = text.replace("from airflow.sdk import dag, task\n", f"from airflow.sdk import dag, task\n{header}\n")
    if replace:
        assert replace[0] in text, replace[0]
        text = text.replace(*replace)
    folder = tmp_path / "dags"
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(text)
    return path


def test_good_tmp_dag_passes_every_check(tmp_path, airflow_home):
    path = write_dag(tmp_path)
    assert check_imports_cleanly(path) == []
    assert check_one_dag_named_after_file(path) == []
    assert check_dag_attributes(path) == []
    assert check_task_retries(path) == []
    assert check_top_level_imports(path) == []


def test_import_error_is_caught(tmp_path, airflow_home):
    path = write_dag(tmp_path, header="import module_that_does_not_exist_xyz")
    problems = check_imports_cleanly(path)
    assert len(problems) == 1 and "module_that_does_not_exist_xyz" in problems[0]


def test_error_while_building_dag_is_caught(tmp_path, airflow_home):
    path = write_dag(tmp_path, replace=("work.expand(x=items())", "work.expand(x=items())\n    1 / 0"))
    problems = check_imports_cleanly(path)
    assert problems and "ZeroDivisionError" in problems[0]


def test_dag_id_must_match_file_stem(tmp_path, airflow_home):
    path = write_dag(tmp_path, replace=('dag_id="good"', 'dag_id="other"'))
    problems = check_one_dag_named_after_file(path)
    assert problems and "dag_id='good'" in problems[0] and "other" in problems[0]


def test_two_dags_in_one_file_are_caught(tmp_path, airflow_home):
    extra = '\n\n@dag(dag_id="extra", schedule=None, start_date=datetime(2026, 1, 1))\ndef extra():\n    @task\n    def noop():\n        pass\n\n    noop()\n\n\nextra()\n'
    path = write_dag(tmp_path, replace=("\n\ngood()\n", "\n\ngood()\n" + extra))
    problems = check_one_dag_named_after_file(path)
    assert problems and "extra" in problems[0]


def test_file_without_dag_is_caught(tmp_path, airflow_home):
    path = write_dag(tmp_path, replace=("\n\ngood()\n", "\n"))
    problems = check_one_dag_named_after_file(path)
    assert problems and "found []" in problems[0]


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (('    tags=["test"],\n', ""), "set tags"),
        (("    doc_md=__doc__,\n", ""), "set doc_md"),
        (("    max_active_runs=1,\n", ""), "max_active_runs explicitly"),
        (('"retry_delay": timedelta(seconds=5)', '"retry_delay": timedelta(0)'), "retry_delay"),
        (('{"retries": 2, "retry_delay": timedelta(seconds=5)}', '{"retries": 2}'), "retry_delay"),
    ],
    ids=["no-tags", "no-doc_md", "no-max_active_runs", "zero-retry_delay", "no-retry_delay"],
)
def test_missing_dag_attributes_are_caught(tmp_path, airflow_home, replace, expected):
    path = write_dag(tmp_path, replace=replace)
    problems = check_dag_attributes(path)
    assert any(expected in p for p in problems), problems


def test_low_default_retries_are_caught(tmp_path, airflow_home):
    path = write_dag(tmp_path, retries=0)
    assert any("default_args['retries'] must be >= 2" in p for p in check_dag_attributes(path))
    problems = check_task_retries(path)
    assert {p.split("(")[1].split(",")[0] for p in problems} == {"good.items", "good.work"}


def test_mapped_task_overriding_retries_is_caught(tmp_path, airflow_home):
    path = write_dag(tmp_path, mapped_args="(retries=1)")
    assert check_dag_attributes(path) == []  # the DAG's defaults are fine ...
    problems = check_task_retries(path)  # ... but the mapped task lowers them
    assert len(problems) == 1 and "good.work" in problems[0] and "MappedOperator" in problems[0], problems


@pytest.mark.parametrize(
    "start_date",
    ["datetime.now()", "datetime.now() - timedelta(days=1)", "START"],
    ids=["now", "now-minus-delta", "module-level-name"],
)
def test_dynamic_start_date_is_caught(tmp_path, airflow_home, start_date):
    path = write_dag(tmp_path, start_date=start_date, header="START = datetime.today()")
    problems = check_dag_attributes(path)
    assert any("start_date must be static" in p for p in problems), problems


@pytest.mark.parametrize(
    "header",
    [
        "import pandas as pd",
        "import numpy",
        "from sklearn.linear_model import LogisticRegression",
        "import mlflow",
        "from pipelines import features",
        "from pipelines.config import load_settings",
        "from airflow.models import Variable",
        "from airflow import settings",
        "try:\n    import torch\nexcept ImportError:\n    torch = None",
        "class Helper:\n    import xgboost",
    ],
    ids=[
        "pandas",
        "numpy",
        "sklearn",
        "mlflow",
        "pipelines",
        "pipelines.config",
        "airflow.models",
        "from-airflow-import",
        "inside-try",
        "inside-class",
    ],
)
def test_heavy_top_level_import_is_caught(tmp_path, header):
    path = write_dag(tmp_path, header=header)
    problems = check_top_level_imports(path)
    assert len(problems) == 1 and "top-level import" in problems[0], problems


def test_imports_inside_tasks_and_type_checking_are_allowed(tmp_path):
    path = write_dag(
        tmp_path,
        header="import json\nfrom typing import TYPE_CHECKING\nfrom airflow.providers.standard.operators.empty import EmptyOperator\n"
        "if TYPE_CHECKING:\n    import pandas",
        replace=("        return [1, 2]", "        import pandas  # noqa: F401\n        return [1, 2]"),
    )
    assert check_top_level_imports(path) == []


def test_slow_parse_is_caught(tmp_path):
    path = write_dag(tmp_path, header="import time\ntime.sleep(0.5)")
    problems = check_parse_time(path, tmp_path, budget=0.25)
    assert len(problems) == 1 and "budget 0.25s" in problems[0], problems


def test_db_connection_and_network_access_is_caught(tmp_path):
    header = textwrap.dedent(
        """
        import socket
        import sqlite3
        from airflow.sdk import BaseHook, Connection, Variable

        for probe in (
            lambda: Variable.get("threshold"),
            lambda: BaseHook.get_connection("warehouse"),
            lambda: Connection.get("warehouse"),
            lambda: sqlite3.connect("/tmp/x.db"),
            lambda: socket.create_connection(("db.example.invalid", 5432), timeout=0.1),
            lambda: socket.socket().connect(("127.0.0.1", 5432)),
        ):
            try:
                probe()
            except Exception:
                pass  # a DAG file that swallows the error is still caught
        """
    )
    path = write_dag(tmp_path, header=header)
    problems = " ".join(check_no_db_or_connection_access(path, tmp_path))
    for what in (
        "Variable.get",
        "BaseHook.get_connection",
        "Connection.get",
        "sqlite3.connect",
        "socket.getaddrinfo",
        "socket.connect",
    ):
        assert what in problems, (what, problems)


def test_sqlalchemy_engine_at_parse_time_is_caught(tmp_path):
    path = write_dag(tmp_path, header='import sqlalchemy\nsqlalchemy.create_engine("sqlite://").connect()')
    problems = check_no_db_or_connection_access(path, tmp_path)
    assert any("sqlalchemy.create_engine" in p for p in problems), problems
    assert any("failed to import" in p for p in problems), problems


def test_settings_loaded_at_parse_time_is_caught(tmp_path):
    path = write_dag(tmp_path, header="from pipelines.config import load_settings\nSETTINGS = load_settings()")
    problems = check_no_db_or_connection_access(path, tmp_path)
    assert any("pipelines.config.load_settings" in p for p in problems), problems
