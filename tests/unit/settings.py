"""Settings for unit tests: a throwaway lake, state folder and MLflow store under a test's tmp_path."""

from pathlib import Path

from pipelines.config import Settings, load_settings


def tmp_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings over ``tmp_path`` (lake, state, SQLite MLflow store); ``env`` adds ``MLP_*`` overrides."""
    return load_settings(
        {
            "MLP_LAKE_ROOT": str(tmp_path / "lake"),
            "MLP_STATE_DIR": str(tmp_path / "state"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
            **env,
        }
    )
