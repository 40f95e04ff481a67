"""Serving loads models from the registry only: a path or a URI in place of a model name is refused."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.constants import REPO_ROOT
from pipelines.serving.model import ModelNotFound, load, registered_name
from pipelines.serving.store import ModelStore

REFUSED = [
    "runs:/0123456789abcdef/model",
    "models:/adult_classifier/1",
    "/tmp/model.pkl",
    "./model",
    "file:///tmp/model",
    "s3://bucket/model",
    "mlflow-artifacts:/1/abc/artifacts/model",
    "C:\\models\\model",
    "",
]


@pytest.mark.parametrize("name", REFUSED)
def test_paths_and_uris_are_refused_before_anything_is_loaded(name, tmp_path, monkeypatch):
    loaded = []
    monkeypatch.setattr("mlflow.sklearn.load_model", lambda uri, *a, **k: loaded.append(uri))
    with pytest.raises(ModelNotFound, match="registered models only"):
        load(f"sqlite:///{tmp_path}/m.db", name, "champion")
    with pytest.raises(ModelNotFound, match="registered models only"):
        ModelStore(f"sqlite:///{tmp_path}/m.db", name, ("champion",))
    assert loaded == []
    assert not (tmp_path / "m.db").exists()  # refused before even opening the tracking store


def test_a_registered_name_is_accepted():
    assert registered_name("adult_classifier") == "adult_classifier"


def test_serve_with_a_file_path_exits_naming_the_setting(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MLP_SERVING__MODEL", str(tmp_path / "model.pkl"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "registered models only" in err and "MLP_SERVING__MODEL" in err


def test_serving_code_loads_models_only_by_models_uri():
    """Every load_model call in pipelines/serving takes an f-string starting with models:/."""
    calls = []
    for path in Path(REPO_ROOT, "pipelines", "serving").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "load_model":
                calls.append((path.name, node))
    assert calls, "no load_model call found: update this test"
    for name, call in calls:
        arg = call.args[0]
        if isinstance(arg, ast.Name):  # a local variable: find what was assigned to it in the same file
            source = Path(REPO_ROOT, "pipelines", "serving", name).read_text()
            assert f'{arg.id} = f"models:/' in source, f"{name}: load_model({arg.id}) is not a models:/ URI"
        else:
            assert isinstance(arg, ast.JoinedStr) and arg.values[0].value.startswith("models:/"), name
