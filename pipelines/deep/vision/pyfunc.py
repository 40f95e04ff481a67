"""The registered image model: an image array, image file bytes, or rows of pixels in; label and confidence out.

Input (``model.predict``): a numpy array of images ((n, h, w), (n, h, w, c) or (n, c, h, w); 0..1, or
0..255 when its maximum is above 1), a DataFrame with an ``image`` column of PNG/JPEG file bytes
(decoded, converted to grey or colour and resized to the training size), or a DataFrame of pixel
columns ``px_0..`` (row-major, channels last, scaled to [0, 1]) as the reference models took.
The signature declares the output only (an input schema would refuse arrays); the input example is pixel rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.deep.vision.data import ImageDataError, pixel_columns, to_images
from pipelines.registry import Policy

POLICY = Policy("test_accuracy")  # champion when there is none or its test accuracy beats the champion's
IMAGE = "image"


def decode_image(data: bytes, shape, channels: int) -> np.ndarray:
    """PNG/JPEG bytes to a float32 (h, w) or (h, w, 3) array in [0, 1], resized to ``shape`` (height, width)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (int(shape[1]), int(shape[0])):
                img = img.resize((int(shape[1]), int(shape[0])), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.float32) / np.float32(255)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageDataError(f"cannot read image bytes: {exc}") from None


def as_images(model_input, shape, channels: int) -> np.ndarray:
    """The model's input (module docstring) as float32 images in [0, 1]."""
    if isinstance(model_input, np.ndarray) and model_input.ndim >= 3:
        X = model_input.astype(np.float32)
        return X / np.float32(255) if X.size and X.max() > 1 else X
    frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
    if IMAGE in frame.columns and frame[IMAGE].notna().all():
        return np.stack([decode_image(v, shape, channels) for v in frame[IMAGE]])
    cols = pixel_columns(shape, channels)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ImageDataError(
            f"input lacks pixel column(s) {missing[:5]}...; give {cols[0]}..{cols[-1]}, an {IMAGE!r} column of "
            "PNG/JPEG bytes, or an array of images"
        )
    return to_images(frame[cols].to_numpy(np.float32), shape, channels)


def image_model_class():
    import mlflow

    class ImageModel(mlflow.pyfunc.PythonModel):
        """Images in (module docstring); ``label``, ``label_id`` and ``confidence`` out."""

        def __init__(self, model, class_names: list[str]):
            self.model = model
            self.class_names = list(class_names)

        def predict(self, context, model_input, params=None) -> pd.DataFrame:
            channels = getattr(self.model, "channels_", 1)
            proba = self.model.predict_proba(as_images(model_input, self.model.image_shape_, channels))
            k = proba.argmax(1)
            return pd.DataFrame(
                {
                    "label": [self.class_names[self.model.classes_[i]] for i in k],
                    "label_id": self.model.classes_[k].astype(np.int64),
                    "confidence": proba.max(1).astype(np.float64),
                }
            )

    return ImageModel


def log_image_model(model, class_names: list[str], example_images: np.ndarray) -> str:
    """Log the pyfunc on the active run (its signature: outputs only, module docstring); its model URI."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    channels = getattr(model, "channels_", 1)
    cols = pixel_columns(model.image_shape_, channels)
    X = np.asarray(example_images[:3], dtype=np.float64)
    flat = X.transpose(0, 2, 3, 1) if X.ndim == 4 else X  # channels last
    example = pd.DataFrame(flat.reshape(len(X), -1), columns=cols)
    python_model = image_model_class()(model, class_names)
    outputs = Schema([ColSpec("string", "label"), ColSpec("long", "label_id"), ColSpec("double", "confidence")])
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        signature=ModelSignature(None, outputs),  # no input schema: arrays, bytes and pixel rows all pass
        input_example=example,
        pip_requirements=requirements(),
    ).model_uri


def requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "numpy", "pandas", "pillow", "scikit-learn", "torch")]
