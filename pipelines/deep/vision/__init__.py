"""Image classification: a small CNN on the reference data (Fashion-MNIST or scikit-learn's digits) or a
user's images, and the poly-vs-ReLU experiment (reference data only).

``data`` (idx files, digits, gold pixel tables), ``models`` (the CNN), ``pyfunc`` (the registered
model: image arrays, file bytes or pixel rows in), ``plots``, ``run`` (the CNN step),
``experiment`` (poly vs ReLU). The names below stay importable from ``pipelines.deep.vision``
(models registered before the split unpickle through them).
"""

from pipelines.deep.vision.data import (
    FASHION_CLASSES,
    FASHION_DIR,
    ImageData,
    ImageDataError,
    fashion_dir,
    load_gold_images,
    load_images,
    pixel_columns,
    read_idx,
    to_images,
)
from pipelines.deep.vision.experiment import (
    ABLATION_ARMS,
    ARMS,
    poly_vs_relu,
    run_poly_experiment,
    summarise_experiment,
)
from pipelines.deep.vision.models import CNNClassifier, build_cnn
from pipelines.deep.vision.plots import poly_figure, samples_figure
from pipelines.deep.vision.pyfunc import POLICY, decode_image
from pipelines.deep.vision.run import evaluate, image_data, model_params, train_image

__all__ = [
    "ABLATION_ARMS",
    "ARMS",
    "FASHION_CLASSES",
    "FASHION_DIR",
    "POLICY",
    "CNNClassifier",
    "ImageData",
    "ImageDataError",
    "build_cnn",
    "decode_image",
    "evaluate",
    "fashion_dir",
    "image_data",
    "load_gold_images",
    "load_images",
    "model_params",
    "pixel_columns",
    "poly_figure",
    "poly_vs_relu",
    "read_idx",
    "run_poly_experiment",
    "samples_figure",
    "summarise_experiment",
    "to_images",
    "train_image",
]
