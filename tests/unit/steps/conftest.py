import pytest

from tests.unit.settings import tmp_settings


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow writes nothing into the repository
    return tmp_settings(tmp_path)
