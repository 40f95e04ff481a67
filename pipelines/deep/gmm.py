"""Gaussian-mixture clustering: the number of components chosen by BIC, log-likelihood anomaly scores.

``GMMClusterer`` fits scikit-learn's ``GaussianMixture`` for 1..``max_components`` components
(covariance type ``full``, ``tied``, ``diag`` or ``spherical``, from ``deep.gmm_covariance``) on
standardised features and keeps the one with the lowest BIC. ``predict`` gives cluster ids,
``anomaly_scores`` the negative log-likelihood of each row under the mixture (higher = more
unusual), and ``threshold_`` the ``anomaly_quantile`` of the training scores, above which
``is_anomaly`` flags a row. ``anomaly_scores(model, X)`` is a plain function so monitoring can
score production batches with the same definition. ``density_figure`` draws the log-density
contours and the clusters of 2-D data.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from pipelines.errors import DataError
from pipelines.estimators import hyperparameters

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class GMMError(DataError, ValueError):
    """Data or settings the mixture cannot be fitted with."""


def _matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or len(X) == 0:
        raise GMMError(f"expected a non-empty 2-D array (rows x features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise GMMError(f"{int((~np.isfinite(X)).any(axis=1).sum())} row(s) hold NaN or inf; impute or drop them first")
    return X


@hyperparameters
class GMMClusterer(ClusterMixin, BaseEstimator):
    """Learned: ``model_`` (the chosen GaussianMixture), ``n_components_``, ``bic_`` ({k: BIC}),
    ``mean_``/``scale_`` (standardisation), ``threshold_`` (anomaly score cut-off)."""

    max_components: int = 8
    covariance_type: str = "full"
    anomaly_quantile: float = 0.99
    standardize: bool = True
    seed: int = 42

    def fit(self, X, y=None):
        from sklearn.mixture import GaussianMixture

        if self.covariance_type not in COVARIANCE_TYPES:
            raise GMMError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}")
        if int(self.max_components) < 1:
            raise GMMError(f"max_components must be at least 1, got {self.max_components}")
        if not 0 < self.anomaly_quantile < 1:
            raise GMMError(f"anomaly_quantile must be in (0, 1), got {self.anomaly_quantile}")
        X = _matrix(X)
        self.mean_ = X.mean(0) if self.standardize else np.zeros(X.shape[1])
        std = X.std(0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(std > 0, std, 1.0)
        Z = (X - self.mean_) / self.scale_
        self.bic_, models = {}, {}
        for k in range(1, min(int(self.max_components), len(X)) + 1):
            gm = GaussianMixture(k, covariance_type=self.covariance_type, random_state=self.seed, n_init=2)
            gm.fit(Z)
            self.bic_[k], models[k] = float(gm.bic(Z)), gm
        self.n_components_ = min(self.bic_, key=self.bic_.get)
        self.model_ = models[self.n_components_]
        self.n_features_in_ = X.shape[1]
        self.threshold_ = float(np.quantile(anomaly_scores(self, X), self.anomaly_quantile))
        return self

    def _z(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = _matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise GMMError(f"X has {X.shape[1]} features, the mixture was fitted on {self.n_features_in_}")
        return (X - self.mean_) / self.scale_

    def predict(self, X) -> np.ndarray:
        return self.model_.predict(self._z(X))

    def predict_proba(self, X) -> np.ndarray:
        return self.model_.predict_proba(self._z(X))

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood per row (of the standardised features)."""
        return self.model_.score_samples(self._z(X))

    def is_anomaly(self, X) -> np.ndarray:
        return anomaly_scores(self, X) > self.threshold_


def anomaly_scores(model, X) -> np.ndarray:
    """Negative log-likelihood per row under a fitted mixture (GMMClusterer or GaussianMixture); higher = rarer."""
    return -np.asarray(model.score_samples(X), dtype=float)


def density_figure(model: GMMClusterer, X, feature_names: tuple[str, str] = ("x1", "x2"), grid: int = 150):
    """Log-density contours of a mixture fitted on 2-D data, with the rows coloured by cluster."""
    from matplotlib.figure import Figure

    X = _matrix(X)
    if X.shape[1] != 2:
        raise GMMError(f"the density plot needs 2-D data, got {X.shape[1]} features")
    pad = 0.1 * (X.max(0) - X.min(0) + 1e-9)
    lo, hi = X.min(0) - pad, X.max(0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    ll = model.score_samples(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    cs = ax.contourf(gx, gy, np.maximum(ll, np.quantile(ll, 0.05)), levels=20, cmap="viridis", alpha=0.6)
    fig.colorbar(cs, ax=ax, label="log-likelihood")
    ax.scatter(X[:, 0], X[:, 1], c=model.predict(X), s=6, cmap="tab10", edgecolors="none")
    flagged = model.is_anomaly(X)
    ax.scatter(X[flagged, 0], X[flagged, 1], s=30, facecolors="none", edgecolors="red", label="anomaly")
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.set_title(f"GMM: {model.n_components_} components ({model.covariance_type}) by BIC")
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def run_gmm(params: dict | None = None, settings=None, tags: dict | None = None, ds: str | None = None) -> dict:
    """Cluster the images (reference or the user's) projected on its 2 first principal components; BIC table, density plot to MLflow."""
    import mlflow
    from sklearn.decomposition import PCA

    from pipelines.config import load_settings
    from pipelines.deep.vision.run import image_data
    from pipelines.tracking import get_or_start_run

    settings = settings or load_settings()
    params, cfg = dict(params or {}), settings.deep
    data = image_data(params, settings, params.get("ds") or ds)  # the reference data or a user's images
    X = PCA(2, random_state=settings.seed).fit_transform(data.X_train.reshape(len(data.X_train), -1))
    model = GMMClusterer(cfg.gmm_max_components, cfg.gmm_covariance, seed=settings.seed).fit(X)
    flagged = int(model.is_anomaly(X).sum())
    with get_or_start_run(settings, "deep", f"gmm ({data.name} pca-2)", {"kind": "gmm", **(tags or {})}) as run:
        mlflow.set_tags({"image_dataset": data.name})
        mlflow.log_params({"covariance_type": cfg.gmm_covariance, "max_components": cfg.gmm_max_components})
        mlflow.log_metrics({"n_components": model.n_components_, "anomalies": flagged, "rows": len(X)})
        for k, bic in model.bic_.items():
            mlflow.log_metric("bic", bic, step=k)
        mlflow.log_dict({str(k): v for k, v in model.bic_.items()}, "gmm/bic.json")
        mlflow.log_figure(density_figure(model, X, ("pc1", "pc2")), "plots/gmm_density.png")
        run_id = run.info.run_id
    return {"run_id": run_id, "dataset": data.name, "n_components": model.n_components_, "anomalies": flagged}
