"""Own text and image data (issue 23): `dataset add --kind text|images`, ingest, the sentiment / image verbs,
the registered pyfuncs on raw text / image bytes and arrays, and the refusals that name what is wrong."""

import io
import json

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.config import load_settings
from pipelines.datasets.images import ImageFolderError, folder_table
from pipelines.deep.text import pick_tokenizer, tokenize

DS = "2026-01-01"
WORDS = {
    "pos": ["отлично", "люблю", "прекрасно", "рад"],
    "neg": ["ужасно", "ненавижу", "сломано", "плохо"],
    "mid": ["нормально", "средне", "обычно", "сойдёт"],
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    for key, value in {
        "MLP_USER_DIR": tmp_path / "user",
        "MLP_LAKE_ROOT": tmp_path / "lake",
        "MLP_STATE_DIR": tmp_path / "state",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
    }.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _texts(path, classes=("pos", "neg", "mid"), n=150):
    rng = np.random.default_rng(0)
    rows = [
        {"opinion": " ".join(rng.choice(WORDS[c], 3)) + f" товар {i}", "verdict": c}
        for i, c in enumerate(classes[i % len(classes)] for i in range(n))
    ]
    rows.append({"opinion": "", "verdict": "pos"})  # an empty text: quarantined
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _images(folder, n=120, size=(10, 12), colour=False):
    from sklearn.datasets import load_digits

    d = load_digits()
    for i in range(n):
        img = Image.fromarray((d.images[i] * 16).clip(0, 255).astype(np.uint8)).resize(size[::-1])
        (folder / f"d{d.target[i] % 3}").mkdir(parents=True, exist_ok=True)
        (img.convert("RGB") if colour else img).save(folder / f"d{d.target[i] % 3}" / f"{i}.png")
    (folder / "d1" / "broken.png").write_bytes(b"not an image")
    return folder


def test_tokenizer_choice():
    assert pick_tokenizer(["Runs small", "배송이 빠르고 좋아요"]) == "ko_en"
    assert pick_tokenizer(["отлично товар", "très bien"]) == "plain"
    assert tokenize("Отлично, ÉTÉ!", "plain") == ["отлично", "été"]


def test_text_dataset_to_a_registered_multiclass_model(env, capsys):
    src = _texts(env / "opinions.csv")
    assert main(["dataset", "add", "opinions", "--source", str(src), "--kind", "text"]) == 0
    out = capsys.readouterr().out
    assert "text column 'opinion', label 'verdict' (3 classes)" in out
    assert main(["ingest", "opinions", "--ds", DS]) == 0
    assert "review: missing value" not in capsys.readouterr().out  # (its column is `opinion`)
    assert main(["sentiment", "--dataset", "opinions", "--params", '{"epochs": 1}']) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["classes"] == 3 and summary["tokenizer"] == "plain" and summary["test_accuracy"] > 0.9
    assert summary["registered_model"] == "opinions_sentiment" and summary["alias"] == "champion"
    mlflow.set_tracking_uri(load_settings().mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/opinions_sentiment@champion")
    pred = model.predict(pd.DataFrame({"text": ["ужасно плохо сломано", "люблю отлично"]}))
    assert list(pred["label"]) == ["neg", "pos"] and "p_positive" not in pred
    # the same command again is a retry (same run, same version); other params on the same date are a new run
    assert main(["sentiment", "--dataset", "opinions", "--params", '{"epochs": 1}']) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["run_id"], again["version"]) == (summary["run_id"], "1")
    assert main(["sentiment", "--dataset", "opinions", "--params", '{"models": ["tfidf_logreg"]}']) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["run_id"] != summary["run_id"] and other["version"] == "2"


def test_text_refusals(env, capsys):
    one = env / "one.csv"
    pd.DataFrame({"text": ["good thing", "fine thing", "nice thing"], "label": ["a"] * 3}).to_csv(one, index=False)
    assert main(["dataset", "add", "one", "--source", str(one), "--kind", "text"]) == 2
    assert "label column 'label' holds 1 distinct value" in capsys.readouterr().err
    empty = env / "empty.csv"
    pd.DataFrame({"text": ["", " ", ""], "label": ["a", "b", "a"]}).to_csv(empty, index=False)
    assert main(["dataset", "add", "empty", "--source", str(empty), "--kind", "text", "--text", "text"]) == 2
    assert "text column 'text' holds no text" in capsys.readouterr().err
    src = _texts(env / "t.csv")
    assert main(["dataset", "add", "t", "--source", str(src), "--kind", "text", "--text", "nope"]) == 2
    assert "--text 'nope' is not a column" in capsys.readouterr().err
    assert main(["sentiment", "--dataset", "t"]) == 2
    assert "no gold partitions for dataset 't'; run `python -m pipelines ingest t` first" in capsys.readouterr().err


def test_image_folder_to_a_registered_model_taking_bytes_and_arrays(env, capsys):
    folder = _images(env / "imgs", colour=True)
    args = [
        "dataset",
        "add",
        "shapes",
        "--source",
        str(folder),
        "--kind",
        "images",
        "--size",
        "8x8",
        "--colour",
        "colour",
    ]
    assert main(args) == 0
    assert "images 8x8, colour, label 'label' (3 classes); resized" in capsys.readouterr().out
    assert main(["ingest", "shapes", "--ds", DS]) == 0
    assert "quarantined 1" in capsys.readouterr().out
    settings = load_settings()
    q = pq.read_table(next((env / "lake" / "quarantine" / "silver" / "shapes").rglob("*.parquet"))).to_pandas()
    assert list(q["file"]) == ["d1/broken.png"] and "cannot decode broken.png" in q["unreadable"].iloc[0]
    assert main(["image", "--dataset", "shapes", "--params", '{"epochs": 2}']) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cnn"]["registered_model"] == "shapes_image" and out["cnn"]["alias"] == "champion"
    assert out["gmm"]["n_components"] >= 1
    assert main(["sentiment", "--dataset", "shapes"]) == 2
    assert "'shapes' is of kind 'images'" in capsys.readouterr().err
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/shapes_image@champion")
    img = np.asarray(Image.open(folder / "d0" / next(p.name for p in (folder / "d0").iterdir())).convert("RGB"))
    by_bytes = model.predict(pd.DataFrame({"image": [_png(img), _png(img)]}))
    small = np.asarray(Image.fromarray(img).resize((8, 8)))[None]
    by_array = model.predict(small)
    assert len(by_bytes) == 2 and by_bytes["label"].iloc[0] == by_array["label"].iloc[0]
    assert set(by_bytes["label"]) <= {"d0", "d1", "d2"} and by_bytes["confidence"].between(0, 1).all()


def test_image_refusals(env, capsys, tmp_path):
    folder = _images(env / "mixed", n=20)
    Image.new("L", (5, 7)).save(folder / "d0" / "odd.png")
    with pytest.raises(ImageFolderError, match="mixed sizes without a declared size: .* pass --size"):
        folder_table(folder)
    table, shape = folder_table(folder, (6, 6))
    assert shape == [6, 6, 1] and table["unreadable"].notna().sum() == 1
    assert main(["dataset", "add", "mixed", "--source", str(folder), "--kind", "images"]) == 2
    assert "mixed sizes" in capsys.readouterr().err
    pixels = env / "pixels.csv"
    table = pd.DataFrame(np.zeros((4, 16)), columns=[f"p{i}" for i in range(16)]).assign(label=["a", "b"] * 2)
    table.to_csv(pixels, index=False)
    assert main(["dataset", "add", "px", "--source", str(pixels), "--kind", "images"]) == 2
    assert "declare its image shape with --size" in capsys.readouterr().err
    assert main(["dataset", "add", "px", "--source", str(pixels), "--kind", "images", "--size", "4x5"]) == 2
    assert "need 20 numeric pixel columns" in capsys.readouterr().err
    assert main(["dataset", "add", "nope", "--source", str(pixels), "--size", "4x4"]) == 2
    assert "--size and --colour apply to --kind images only" in capsys.readouterr().err
