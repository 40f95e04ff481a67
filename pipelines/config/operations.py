"""Settings of the parts that run the platform around the models: the prediction API (``serving``),
monitoring and the demo. Loaded and checked with the rest by ``pipelines.config.load_settings``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.config.errors import SettingsError


@dataclass(frozen=True)
class DemoMonitoringSettings:
    """The demo's production traffic: held-out rows replayed through the serving API, monitored daily."""

    start: str = "2026-01-05"  # first replayed day (after the feature dates)
    days: int = 4  # replayed days, one monitoring DAG run each (0: skip this part of the demo)
    rows_per_day: int = 1000  # held-out (gold test split) rows sent per day
    drift_from: str = "2026-01-08"  # drift is injected into this day and the ones after it
    drift: Mapping[str, Any] = field(default_factory=dict)  # pipelines.serving.replay.inject_drift arguments
    retrain: Mapping[str, Any] = field(
        default_factory=dict
    )  # training Params of the retraining run monitoring triggers
    retrain_timeout_s: int = 1800  # give up waiting for the triggered training run after this long


@dataclass(frozen=True)
class DemoSettings:
    start: str = "2026-01-01"
    days: int = 4
    files_per_day: int = 4
    training: Mapping[str, Any] = field(default_factory=dict)  # Params for the demo's training run
    monitoring: DemoMonitoringSettings = field(default_factory=DemoMonitoringSettings)
    deep: bool = True  # also run reviews -> features -> sentiment, and image (small budgets below)
    sentiment: Mapping[str, Any] = field(default_factory=dict)  # Params for the demo's sentiment run
    image: Mapping[str, Any] = field(default_factory=dict)  # Params for the demo's image run
    forecasting: Mapping[str, Any] = field(default_factory=dict)  # Params for the demo's forecasting run (sales)
    recommendation: Mapping[str, Any] = field(default_factory=dict)  # Params for the demo's recommendation run


@dataclass(frozen=True)
class ABSettings:
    """A/B test of the challenger against the champion in the serving API ("" experiment: no test)."""

    experiment: str = ""  # name hashed with each unit id (changing it reshuffles the arms)
    challenger_fraction: float = 0.5  # share of units routed to the challenger

    def __post_init__(self) -> None:
        if not 0 <= self.challenger_fraction <= 1:
            raise SettingsError(f"serving.ab.challenger_fraction must be in [0, 1], got {self.challenger_fraction}")


LOG_DURABILITY = ("journal_fsync", "journal", "memory")  # serving.log_durability, strongest first


@dataclass(frozen=True)
class ServingSettings:
    """The real-time prediction API (pipelines.serving)."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "adult_classifier"  # registered model served by its champion alias
    reload_interval_s: float = 30.0  # how often the aliases are polled for a new version
    max_body_bytes: int = 1_048_576  # larger request bodies get a 413
    log_batch_rows: int = 500  # the prediction log writes a Parquet file once this many rows wait ...
    log_flush_interval_s: float = 5.0  # ... or this many seconds passed
    # journal_fsync: each request's rows are written and fsynced before the answer (survive kill -9 and power loss);
    # journal: written to the OS before the answer (survive kill -9, a crash of the process); memory: lost then
    log_durability: str = "journal"
    explain_permutations: int = 4  # permutation explainer cost per /explain row
    max_rows_per_request: int = 5000  # a longer list of rows gets a 413 (split the batch)
    body_timeout_s: float = 10.0  # a request body not fully arrived after this many seconds gets a 408
    keep_alive_timeout_s: int = 5  # uvicorn closes a keep-alive connection idle this long
    contract_policy: str = "flag"  # rows against the model's data contract: reject (422) | flag | off
    cors_origins: tuple = ()  # browser origins allowed to call the API ("*": any); none by default
    allowed_hosts: tuple = ()  # Host names accepted besides loopback and `host` ("*": any)
    ab: ABSettings = field(default_factory=ABSettings)

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.log_batch_rows < 1 or self.reload_interval_s <= 0:
            raise SettingsError("serving.max_body_bytes, log_batch_rows and reload_interval_s must be positive")
        if self.log_durability not in LOG_DURABILITY:
            raise SettingsError(
                f"serving.log_durability must be one of {list(LOG_DURABILITY)}, got {self.log_durability!r}"
            )
        if self.max_rows_per_request < 1 or self.body_timeout_s <= 0 or self.keep_alive_timeout_s < 1:
            raise SettingsError(
                "serving.max_rows_per_request, body_timeout_s and keep_alive_timeout_s must be positive"
            )
        if self.contract_policy == "False":  # YAML 1.1 reads an unquoted `off` as false
            object.__setattr__(self, "contract_policy", "off")
        if self.contract_policy not in ("reject", "flag", "off"):
            raise SettingsError(f"serving.contract_policy must be reject, flag or off, got {self.contract_policy!r}")
        for name in ("cors_origins", "allowed_hosts"):
            value = getattr(self, name)
            value = (value,) if isinstance(value, str) else tuple(value or ())
            if not all(isinstance(v, str) and v for v in value):
                raise SettingsError(f"serving.{name} must be a list of non-empty strings, got {value!r}")
            object.__setattr__(self, name, value)  # a YAML list (or one string) as a tuple: hashable, frozen


@dataclass(frozen=True)
class MonitoringSettings:
    """The monitoring DAG (pipelines.monitoring): degradation, drift and anomaly thresholds."""

    model: str = "adult_classifier"
    reference_dataset: str = "adult"  # gold dataset whose train split is the drift reference
    labels_dataset: str = "labels"  # lake table labels/<model>/ds=...: unit_id, label
    window: int = 10  # degradation: mean ROC-AUC of the latest `window` batches vs the `window` before
    max_auc_drop: float = 0.05  # alert when that mean drops by more than this fraction
    psi_bins: int = 10  # PSI: quantile bins of the reference (numeric), one bin per category
    psi_threshold: float = 0.2  # PSI above this is drift (0.1-0.2: moderate, > 0.2: significant)
    p_value: float = 0.01  # KS / chi-square drift when p < this
    anomaly_quantile: float = 0.99  # anomaly alert: rows above this quantile of the reference's score ...
    anomaly_max_share: float = 0.05  # ... exceed this share of a batch
    gmm_max_components: int = 6  # GaussianMixture components tried (chosen by BIC)
    notifier: str = "log"  # log | webhook
    webhook_url: str = ""
    retrain_on_alert: bool = True  # degradation or drift triggers the training DAG
