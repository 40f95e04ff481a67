"""The image task on tiny data: idx reader, data fallback, the CNN contract, the experiment, MLflow logging."""

import gzip
import logging
import pickle
import struct

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.config import load_settings
from pipelines.deep import vision
from pipelines.deep.vision import CNNClassifier, ImageDataError, load_images, read_idx

pytest.importorskip("torch")


def _write_idx(path, arr: np.ndarray, gz: bool = False):
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def test_read_idx_roundtrip_and_corrupt(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a-idx3-ubyte", arr)
    _write_idx(tmp_path / "b-idx3-ubyte.gz", arr, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "b-idx3-ubyte.gz"), arr)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ImageDataError, match="not an idx file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes((tmp_path / "a-idx3-ubyte").read_bytes()[:-3])
    with pytest.raises(ImageDataError, match="data bytes"):
        read_idx(tmp_path / "short")


def _fake_fashion(root, n_train=200, n_test=20):
    rng = np.random.default_rng(0)
    root.mkdir()
    _write_idx(root / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)), gz=True)
    _write_idx(root / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10, gz=True)
    _write_idx(root / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    _write_idx(root / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)


def test_fashion_when_present_else_digits_and_the_log_says_which(tmp_path, caplog):
    _fake_fashion(tmp_path / "fm")
    with caplog.at_level(logging.INFO, logger="pipelines.deep.vision"):
        data = load_images("auto", root=tmp_path / "fm")
    assert data.name == "fashion_mnist" and data.shape == (28, 28) and len(data.y_test) == 20
    assert data.X_train.max() <= 1.0 and len(data.y_train) == 180 and data.class_names[9] == "Ankle boot"
    assert "Fashion-MNIST" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipelines.deep.vision"):
        digits = load_images("auto", root=tmp_path / "absent")
    assert digits.name == "digits" and digits.shape == (8, 8)
    assert "scikit-learn digits" in caplog.text
    assert len(digits.y_train) + len(digits.y_valid) + len(digits.y_test) == 1797
    with pytest.raises(ImageDataError, match="not found"):
        load_images("fashion_mnist", root=tmp_path / "absent")


_FASHION_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def _fashion_installed() -> bool:
    root = vision.fashion_dir()
    return all(any((root / f"{stem}{ext}").exists() for ext in ("", ".gz")) for stem in _FASHION_FILES)


@pytest.mark.skipif(
    not _fashion_installed(),
    reason=f"Fashion-MNIST idx files are not under {vision.fashion_dir()} (`make datasets` installs dataset-fashion-mnist)",
)
def test_the_installed_fashion_mnist_files():
    data = load_images("fashion_mnist")
    assert data.name == "fashion_mnist" and data.shape == (28, 28) and len(data.class_names) == 10
    assert len(data.y_train) + len(data.y_valid) == 60_000 and len(data.y_test) == 10_000
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert sorted(np.unique(data.y_train)) == list(range(10)) and len(data.y_valid) == 6_000
    assert data.X_train.dtype == np.float32 and data.X_test.min() >= 0 and data.X_test.max() <= 1
    assert load_images("auto").name == "fashion_mnist"


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", max_train_rows=400)


def test_cnn_contract_and_pickle(digits):
    model = CNNClassifier(max_epochs=3, patience=2)
    assert model.fit(digits.X_train, digits.y_train, digits.X_valid, digits.y_valid) is model
    proba = model.predict_proba(digits.X_test)
    assert proba.shape == (len(digits.y_test), 10)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert model.n_epochs_ == len(model.history_["valid_loss"]) <= 3 and not model.diverged_
    assert all(isinstance(v, np.ndarray) for v in model.state_.values())
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(digits.X_test[:5]), proba[:5], rtol=1e-5)
    with pytest.raises(ImageDataError, match="trained on"):
        model.predict(np.zeros((2, 9, 9)))
    with pytest.raises(ImageDataError, match="one label per image"):
        CNNClassifier().fit(digits.X_train[:5], digits.y_train[:4])


def test_cnn_training_options(digits):
    model = CNNClassifier(
        optimizer="adamw", weight_decay=1e-4, schedule="onecycle", augment=True, threads=2, max_epochs=3, patience=3
    ).fit(digits.X_train, digits.y_train, digits.X_valid, digits.y_valid)
    assert model.n_epochs_ == 3 and len(model.epoch_seconds_) == 3 and not model.stopped_by_budget_
    budget = CNNClassifier(max_epochs=5, time_budget_s=1e-9).fit(digits.X_train[:100], digits.y_train[:100])
    assert budget.stopped_by_budget_ and budget.n_epochs_ == 1
    with pytest.raises(ImageDataError, match="schedule"):
        CNNClassifier(schedule="cosine", max_epochs=1).fit(digits.X_train[:100], digits.y_train[:100])


def test_cnn_learns_digits(digits):
    model = CNNClassifier(max_epochs=15, patience=3).fit(digits.X_train, digits.y_train, digits.X_valid, digits.y_valid)
    assert (model.predict(digits.X_test) == digits.y_test).mean() > 0.7


def test_poly_arm_trains_and_experiment_table(digits):
    table = vision.poly_vs_relu(digits, seeds=2, max_epochs=2, patience=1)
    assert list(table["arm"]) == ["relu_adam"] * 2 + ["poly_polyadam"] * 2
    assert table["test_accuracy"].between(0, 1).all()
    summary = vision.summarise_experiment(table)
    assert summary["poly_polyadam"]["runs"] == 2 and 0 <= summary["poly_polyadam"]["diverged"] <= 2


def test_train_image_logs_and_registers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLP_FASHION_MNIST_DIR", str(tmp_path / "absent"))
    settings = load_settings(
        {
            "MLP_STATE_DIR": str(tmp_path / "state"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
            "MLP_DEEP__GMM_MAX_COMPONENTS": "3",
        }
    )
    out = vision.train_image({"epochs": 2, "max_rows": 300}, settings)
    assert out["dataset"] == "digits" and out["alias"] == "champion"
    client = MlflowClient(settings.mlflow.tracking_uri)
    retry = vision.train_image({"epochs": 2, "max_rows": 300}, settings)  # the same run again, as a retry
    assert retry["run_id"] == out["run_id"] and retry["version"] == out["version"] == "1"
    assert len(client.search_model_versions("name = 'image_classifier'")) == 1
    assert client.get_registered_model("image_classifier").aliases == {"champion": 1}
    arts = {a.path for a in client.list_artifacts(out["run_id"], "plots")}
    assert {"plots/confusion_matrix.png", "plots/samples.png", "plots/loss_curves.png"} <= arts
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(out["model_uri"])
    digits = load_images("digits")
    frame = pd.DataFrame(digits.X_test[:4].reshape(4, -1), columns=vision.pixel_columns((8, 8))).astype("float64")
    pred = model.predict(frame)
    assert list(pred.columns) == ["label", "label_id", "confidence"] and pred["confidence"].between(0, 1).all()

    exp = vision.run_poly_experiment({"epochs": 1, "seeds": 1, "max_rows": 200}, settings)
    assert exp["relu_adam"]["runs"] == 1 and exp["poly_polyadam"]["runs"] == 1
    arts = {a.path for a in client.list_artifacts(exp["run_id"], "plots")}
    assert {"plots/loss_curves.png", "plots/poly_f_and_derivative.png"} <= arts
    children = client.search_runs(
        [client.get_experiment_by_name("deep").experiment_id], f"tags.mlflow.parentRunId = '{exp['run_id']}'"
    )
    assert len(children) == 2

    from pipelines.deep import gmm

    out = gmm.run_gmm({"max_rows": 300}, settings)
    assert out["n_components"] >= 1 and out["dataset"] == "digits"
    assert "plots/gmm_density.png" in {a.path for a in client.list_artifacts(out["run_id"], "plots")}
