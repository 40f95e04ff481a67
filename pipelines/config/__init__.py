"""Typed settings from include/config/*.yaml with environment overrides.

Settings are loaded when a task runs (``load_settings()``), never when a DAG file is parsed.
Environment overrides use the prefix ``MLP_`` and ``__`` between nested keys:
``MLP_LAKE_ROOT=s3://lake``, ``MLP_DATASETS__ADULT__SOURCE=/data/adult.csv``.
``MLFLOW_TRACKING_URI`` wins over ``mlflow.tracking_uri``. ``MLP_CONFIG`` names one more YAML
file merged on top of the defaults.

The user overlay (``include/user/``, or the folder ``MLP_USER_DIR`` names) holds what
``python -m pipelines dataset add`` drafted: its ``datasets.yaml`` is merged over the bundled
``include/config/datasets.yaml``, and its ``contracts/<name>.yaml`` win over the bundled contracts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from pipelines.config.errors import SettingsError
from pipelines.config.operations import (  # noqa: F401 - `from pipelines.config import ...` keeps working
    LOG_DURABILITY,
    ABSettings,
    DemoMonitoringSettings,
    DemoSettings,
    MonitoringSettings,
    ServingSettings,
)
from pipelines.constants import CONFIG_DIR, INCLUDE_DIR, REPO_ROOT

ENV_PREFIX = "MLP_"
USER_DIR_ENV = "MLP_USER_DIR"
DATASET_KINDS = ("classification", "ratings", "series", "text", "images")
TEXT_ROLES = ("text", "label")  # kind text: columns.text and columns.label
RATING_ROLES = ("user", "item", "rating", "timestamp")


@dataclass(frozen=True)
class MlflowSettings:
    tracking_uri: str
    host: str = "127.0.0.1"
    port: int = 5000
    experiments: Mapping[str, str] = field(default_factory=dict)
    ui_url: str = ""  # where people open the MLflow UI (links from Airflow tasks); empty: server_url

    @property
    def server_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def browser_url(self) -> str:
        return self.ui_url or self.server_url

    def experiment(self, key: str) -> str:
        return self.experiments.get(key, key)


@dataclass(frozen=True)
class AirflowSettings:
    host: str = "127.0.0.1"
    port: int = 8080

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class SplitSettings:
    train: float = 0.7
    valid: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-9 or min(self.train, self.valid, self.test) < 0:
            raise SettingsError(
                f"features.split fractions must be >= 0 and sum to 1, got {self.train}/{self.valid}/{self.test}"
            )


@dataclass(frozen=True)
class FeatureSettings:
    dataset: str = "adult"
    max_quarantine_fraction: float = 0.2
    split: SplitSettings = field(default_factory=SplitSettings)


@dataclass(frozen=True)
class RatingColumns:
    """Column names of the ratings dataset (the items and users tables use the same id names)."""

    user: str = "user_id"
    item: str = "movie_id"
    rating: str = "rating"
    timestamp: str = "timestamp"


@dataclass(frozen=True)
class RecommendationSettings:
    ratings: str = "movielens_ratings"  # dataset with one row per rating
    items: str = "movielens_items"  # optional item table ("" for none): titles and items nobody rated yet
    users: str = "movielens_users"  # optional user table ("" for none): users with no ratings get popular items
    columns: RatingColumns = field(default_factory=RatingColumns)
    item_title: str = "movie_title"  # column of the item table shown next to recommendations ("" for none)
    test_fraction: float = 0.25  # ranking protocol: share of each user's ratings held out
    k: int = 10  # cut-off of precision/recall/NDCG/MAP@k
    liked_min_rating: float = 4.0  # the secondary "liked" metrics count held-out ratings >= this as relevant
    registered_model: str = "recommender"
    promotion_min_ndcg: float = 0.1  # gate: the champion alias needs at least this NDCG@k

    def __post_init__(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise SettingsError(f"recommendation.test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.k < 1:
            raise SettingsError(f"recommendation.k must be at least 1, got {self.k}")


@dataclass(frozen=True)
class WheelSpec:
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    source: str
    contract: str | None = None
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # keyword arguments of a `sim:` source
    kind: str = ""  # classification, ratings or series ("": not said; `dataset add` always says)
    columns: Mapping[str, str] = field(default_factory=dict)  # ratings: role (user/item/rating/timestamp) -> column


@dataclass(frozen=True)
class ForecastingSettings:
    """Defaults of the forecasting DAG (its form overrides the run-time ones) and the choices it has no form for."""

    dataset: str = "sales"
    registered_model: str = "{dataset}_forecaster"
    horizon: int = 28
    seq_len: int = 30
    backtest_folds: int = 4
    backtest_step: int = 0  # days between backtest origins; 0: the horizon
    tuning_calls: int = 12
    max_epochs: int = 60
    patience: int = 6
    models: tuple = ("seasonal_naive", "sarimax", "lightgbm", "lstm", "lstm_transformer")
    known_covariates: Mapping[str, Any] = field(default_factory=dict)  # dataset -> covariates planned ahead
    missing_dates: str = "fill"  # fill (interpolate short gaps), zero or refuse; a contract's gold.missing wins
    max_fill_gap_days: int = 3
    seasons: Mapping[str, Any] = field(default_factory=lambda: {"daily": 7, "weekly": 52, "monthly": 13})
    sarimax_max_train_days: int = 730
    gate_max_mase: float = 1.0  # the best model is registered only with a daily MASE below this
    ensemble_top_k: int = 3  # the leaderboard's `ensemble`: mean of the k best by backtest (0: none)

    def __post_init__(self) -> None:
        if self.missing_dates not in ("fill", "interpolate", "zero", "refuse"):
            raise SettingsError(
                f"forecasting.missing_dates must be fill (interpolate), zero or refuse, got {self.missing_dates!r}"
            )


@dataclass(frozen=True)
class TrainingSettings:
    """Choices of the training DAG its form leaves empty (pipelines/training)."""

    # Rules a model must pass to be selected (the form's `gate`, when empty). Default: its CV ROC-AUC beats
    # the baseline's in the same folds by more than 0.002 and by more than twice the lift's standard error
    # (pipelines/training/baseline.py). The seed's absolute rules are the option
    # {"cv_roc_auc": "> 0.85", "latency_p99_ms": "< 100"}.
    gate: Mapping[str, Any] = field(default_factory=lambda: {"cv_roc_auc_lift": "> 0.002", "cv_roc_auc_lift_z": "> 2"})
    # After the gate, a model more than this many standard errors of the best one's CV mean behind the best
    # CV ROC-AUC is dropped before the Pareto front (pipelines/training/pareto.py); None: no such rule.
    near_best_se: float | None = 1.0


@dataclass(frozen=True)
class DeepSettings:
    """The deep-learning DAGs (pipelines/deep): polynomial experiment, image CNN, sentiment, GMM."""

    poly_coefficients: tuple = (0.0, 18.0, -6.0, -2.0)  # f(x), ascending powers: -2x^3 - 6x^2 + 18x
    poly_clamp: float = 3.0  # the activation f'(x) reads clamp(x, -poly_clamp, poly_clamp)
    poly_adam_c: float = 10.0  # PolyAdam scale = low + (high - low) / (1 + |f'(mean p)| / c)
    poly_adam_bounds: tuple = (0.1, 1.0)
    seeds: int = 5  # seeds per arm of the poly-vs-ReLU experiment
    image_dataset: str = "auto"  # auto: Fashion-MNIST when its idx files exist, else scikit-learn digits
    image_epochs: int = 12
    image_patience: int = 4
    image_optimizer: str = "adamw"  # the registered CNN's optimiser: adam or adamw (the experiment sets its own)
    image_lr: float = 3e-3  # the peak under the onecycle schedule
    image_weight_decay: float = 1e-4
    image_schedule: str = "onecycle"  # onecycle (warm-up, then cosine annealing over image_epochs) or constant
    image_batch_size: int = 128
    image_augment: bool = False  # mirror half of each batch (Fashion-MNIST only: digits are not mirror-symmetric)
    image_threads: int = 1  # torch threads per CNN fit
    image_time_budget_s: float = 0.0  # wall-clock budget of a fit: no epoch starts that would end past it (0: none)
    image_model: str = "image_classifier"
    sentiment_dataset: str = "reviews"
    sentiment_min_positive_rating: int = 4  # positive review: rating 4 or 5
    sentiment_epochs: int = 4
    sentiment_model: str = "sentiment_classifier"
    gmm_max_components: int = 8
    gmm_covariance: str = "full"  # full, tied, diag or spherical

    def __post_init__(self) -> None:
        for name, choices in (
            ("gmm_covariance", ("full", "tied", "diag", "spherical")),
            ("image_schedule", ("constant", "onecycle")),
            ("image_optimizer", ("adam", "adamw")),
            ("image_dataset", ("auto", "fashion_mnist", "digits")),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise SettingsError(f"deep.{name} must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}")


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    lake_root: str
    cache_dir: Path
    seed: int
    mlflow: MlflowSettings
    airflow: AirflowSettings
    features: FeatureSettings
    demo: DemoSettings
    wheels: Mapping[str, WheelSpec]
    datasets: Mapping[str, DatasetSpec]
    recommendation: RecommendationSettings = field(default_factory=RecommendationSettings)
    forecasting: ForecastingSettings = field(default_factory=ForecastingSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    deep: DeepSettings = field(default_factory=DeepSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)

    def dataset(self, name: str) -> DatasetSpec:
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(sorted(self.datasets))
            raise SettingsError(
                f"unknown dataset {name!r}; known datasets: {known}. Add yours with "
                f"`python -m pipelines dataset add {name} --source FILE` (or an entry in include/config/datasets.yaml)"
            ) from None


def _deep_merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict:
    """Turn MLP_A__B=value into {"a": {"b": value}}; values are parsed as YAML scalars."""
    tree: dict = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ("MLP_CONFIG", USER_DIR_ENV):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return tree


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"settings file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {path} must hold a mapping at the top level")
    return data


def _build(cls: type, data: Any, where: str):
    """Build a frozen dataclass from a mapping, naming unknown keys and bad types."""
    if not isinstance(data, Mapping):
        raise SettingsError(f"{where} must be a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise SettingsError(f"unknown setting(s) {sorted(unknown)} in {where}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        ftype = known[name].type
        sub = _NESTED.get((cls.__name__, name))
        if sub is not None:
            kwargs[name] = _build(sub, value, f"{where}.{name}")
        elif ftype in ("int", int):
            kwargs[name] = _coerce(value, int, f"{where}.{name}")
        elif ftype in ("float", float):
            kwargs[name] = _coerce(value, float, f"{where}.{name}")
        elif ftype in ("str", str):
            kwargs[name] = str(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _coerce(value: Any, typ: type, where: str):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SettingsError(f"{where} must be a {typ.__name__}, got {value!r}")
    try:
        return typ(value)
    except ValueError:
        raise SettingsError(f"{where} must be a {typ.__name__}, got {value!r}") from None


_NESTED = {
    ("Settings", "mlflow"): MlflowSettings,
    ("Settings", "airflow"): AirflowSettings,
    ("Settings", "features"): FeatureSettings,
    ("Settings", "demo"): DemoSettings,
    ("DemoSettings", "monitoring"): DemoMonitoringSettings,
    ("Settings", "forecasting"): ForecastingSettings,
    ("Settings", "training"): TrainingSettings,
    ("Settings", "deep"): DeepSettings,
    ("FeatureSettings", "split"): SplitSettings,
    ("Settings", "recommendation"): RecommendationSettings,
    ("RecommendationSettings", "columns"): RatingColumns,
    ("Settings", "serving"): ServingSettings,
    ("ServingSettings", "ab"): ABSettings,
    ("Settings", "monitoring"): MonitoringSettings,
}


def _resolve_path(value: str | Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def _resolve_uri(value: str) -> str:
    """Paths become absolute file:// URIs; URIs with a scheme are kept as they are."""
    if "://" in value:
        return value
    return _resolve_path(value).as_uri()


def _resolve_tracking_uri(value: str) -> str:
    prefix = "sqlite:///"
    if value.startswith(prefix) and not value[len(prefix) :].startswith("/"):
        return prefix + str(_resolve_path(value[len(prefix) :]))
    return value


def user_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user overlay folder: ``MLP_USER_DIR`` when set, else include/user."""
    environ = os.environ if environ is None else environ
    return _resolve_path(environ.get(USER_DIR_ENV) or INCLUDE_DIR / "user")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML defaults, the user overlay, an optional MLP_CONFIG file, then MLP_* environment overrides."""
    environ = os.environ if environ is None else environ
    data = _deep_merge(_read_yaml(CONFIG_DIR / "settings.yaml"), _read_yaml(CONFIG_DIR / "datasets.yaml"))
    user_datasets = user_dir(environ) / "datasets.yaml"
    if user_datasets.exists():
        data = _deep_merge(data, _read_yaml(user_datasets))
    if environ.get("MLP_CONFIG"):
        data = _deep_merge(data, _read_yaml(_resolve_path(environ["MLP_CONFIG"])))
    data = _deep_merge(data, _env_overrides(environ))
    if environ.get("MLFLOW_TRACKING_URI"):
        data = _deep_merge(data, {"mlflow": {"tracking_uri": environ["MLFLOW_TRACKING_URI"]}})

    wheels = {k: _build(WheelSpec, v, f"wheels.{k}") for k, v in (data.pop("wheels", None) or {}).items()}
    datasets = {k: _dataset(v, f"datasets.{k}") for k, v in (data.pop("datasets", None) or {}).items()}
    settings = _build(Settings, {**data, "wheels": wheels, "datasets": datasets}, "settings")
    return _replace_paths(settings)


def _dataset(data: Any, where: str) -> DatasetSpec:
    spec = _build(DatasetSpec, data, where)
    if spec.kind and spec.kind not in DATASET_KINDS:
        raise SettingsError(f"{where}.kind must be one of {list(DATASET_KINDS)}, got {spec.kind!r}")
    roles = TEXT_ROLES if spec.kind == "text" else RATING_ROLES
    if not isinstance(spec.columns, Mapping) or set(spec.columns) - set(roles):
        raise SettingsError(f"{where}.columns must map roles {list(roles)} to column names, got {spec.columns!r}")
    return spec


def _replace_paths(s: Settings) -> Settings:
    from dataclasses import replace

    return replace(
        s,
        state_dir=_resolve_path(s.state_dir),
        cache_dir=_resolve_path(s.cache_dir),
        lake_root=_resolve_uri(str(s.lake_root)),
        mlflow=replace(s.mlflow, tracking_uri=_resolve_tracking_uri(s.mlflow.tracking_uri)),
    )
