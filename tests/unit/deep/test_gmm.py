import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from pipelines.deep.gmm import GMMClusterer, GMMError, anomaly_scores, density_figure


def _blobs(n=150, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    return np.vstack([c + rng.normal(0, 0.7, (n, 2)) for c in centres])


def test_bic_picks_three_blobs_and_assignments():
    X = _blobs()
    model = GMMClusterer(max_components=6)
    assert model.fit(X) is model
    assert model.n_components_ == 3 and min(model.bic_, key=model.bic_.get) == 3 and len(model.bic_) == 6
    labels = model.predict(X)
    # each blob is one cluster
    assert all(len(set(labels[i * 150 : (i + 1) * 150])) == 1 for i in range(3))
    assert len(set(labels)) == 3
    np.testing.assert_allclose(model.predict_proba(X).sum(1), 1)


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_covariance_types(cov):
    model = GMMClusterer(max_components=4, covariance_type=cov).fit(_blobs(60))
    assert model.model_.covariance_type == cov and model.n_components_ >= 2


def test_anomaly_scores():
    X = _blobs()
    model = GMMClusterer(max_components=4).fit(X)
    s = anomaly_scores(model, np.array([[0.0, 0.0], [4.0, 4.0], [30.0, -30.0]]))
    assert s[0] < s[1] < s[2]
    assert model.is_anomaly(np.array([[30.0, -30.0]]))[0] and not model.is_anomaly(np.array([[0.0, 0.0]]))[0]
    assert 0.005 <= model.is_anomaly(X).mean() <= 0.02  # the 99th percentile of training scores
    gm = GaussianMixture(2, random_state=0).fit(X)  # works on a plain mixture too (monitoring)
    np.testing.assert_allclose(anomaly_scores(gm, X[:3]), -gm.score_samples(X[:3]))


def test_errors_and_plot():
    with pytest.raises(GMMError, match="covariance_type"):
        GMMClusterer(covariance_type="round").fit(_blobs(20))
    with pytest.raises(GMMError, match="NaN"):
        GMMClusterer().fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(GMMError, match="2-D array"):
        GMMClusterer().fit(np.zeros((0, 2)))
    model = GMMClusterer(max_components=3).fit(_blobs(40))
    with pytest.raises(GMMError, match="fitted on 2"):
        model.predict(np.zeros((3, 3)))
    fig = density_figure(model, _blobs(40), grid=30)
    assert fig.axes
    with pytest.raises(GMMError, match="2-D data"):
        density_figure(
            GMMClusterer(max_components=2).fit(np.random.default_rng(0).normal(size=(50, 3))), np.zeros((5, 3))
        )
