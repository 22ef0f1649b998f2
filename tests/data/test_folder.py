"""Image folders (one subfolder per class) as datasets: any class names, any image size and mode,
read as `handnet predict` reads a photo; unreadable files named in one warning at the end."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from handnet.cli import main
from handnet.data import load_dataset, load_splits, model_labels
from handnet.data.folder import SkippedImages, class_folders
from handnet.data.photo import load_image, preprocess_digit, to_uint8
from handnet.data.registry import load_bundled_mnist
from handnet.data.split import Normalization
from handnet.errors import DatasetError
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier
from handnet.train.config import TrainConfig
from handnet.train.modelfile import load_model, save_model
from handnet.train.runs import train_run

SMALL: dict[str, Any] = {"batch_size": 16, "warmup_epochs": 0.0}  # a few dozen images

MODES = ("L", "RGB", "RGBA", "P", "I;16")  # grey, colour, transparent, palette, 16-bit


def picture(digit: np.ndarray, k: int, mode: str) -> Image.Image:
    """An MNIST digit enlarged k times, black ink on white paper, in an image mode."""
    paper = Image.fromarray(255 - digit).resize((28 * k, 28 * k), Image.Resampling.BICUBIC)
    if mode == "I;16":
        return Image.fromarray(np.asarray(paper, np.uint16) * 257)
    return paper.convert(mode)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fives and sevens from MNIST's training set, under class names that are not numbers."""
    s = load_bundled_mnist()
    root = tmp_path_factory.mktemp("data") / "digits"
    for name, digit in (("five", 5), ("seven", 7)):
        (root / name).mkdir(parents=True)
        for i, x in enumerate(s.X_train[s.y_train == digit][:42]):
            im = picture(x, 1 + i % 4, MODES[i % len(MODES)])
            if i % 7 == 0:
                im.convert("RGB").save(root / name / f"{i}.jpg")
            else:
                im.save(root / name / f"{i}.png")
    return root


def test_the_subfolders_are_the_classes_and_each_image_is_read_as_predict_reads_it(
    folder: Path,
) -> None:
    splits, classes = load_splits(str(folder))
    assert classes == ["five", "seven"]
    assert splits.X_train.shape == (72, 28, 28) and splits.X_test.shape == (12, 28, 28)
    assert splits.X_train.dtype == np.uint8
    assert np.bincount(splits.y_test).tolist() == [6, 6]  # a stratified seventh held out
    X, y = splits.every_image()
    expected = {
        to_uint8(preprocess_digit(load_image(p))).tobytes(): label
        for label, name in enumerate(classes)
        for p in (folder / name).iterdir()
    }
    assert {x.tobytes(): int(c) for x, c in zip(X, y)} == expected


def test_a_model_trained_on_a_folder_answers_with_its_class_names(
    folder: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(dataset=str(folder), hidden_sizes=(32,), epochs=8, val_size=8, **SMALL)
    clf = load_model(train_run(cfg, out=tmp_path, progress=False).model_path)
    assert clf.classes == ["five", "seven"]
    s = load_bundled_mnist()
    fives = s.X_test[s.y_test == 5][:10]
    assert clf.predict(fives).count("five") >= 8  # it learnt something, under those names


def test_unreadable_files_are_counted_then_named_at_the_end(tmp_path: Path) -> None:
    s = load_bundled_mnist()
    for c in ("1", "2"):
        (tmp_path / c).mkdir()
        for i, x in enumerate(s.X_train[s.y_train == int(c)][:4]):
            picture(x, 2, "L").save(tmp_path / c / f"{i}.png")
    (tmp_path / "1" / "notes.txt").write_text("not a picture")
    Image.new("L", (40, 40), 255).save(tmp_path / "2" / "blank.png")
    for i in range(5):
        (tmp_path / "2" / f"cut{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "2" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: not a file to read
    with pytest.warns(SkippedImages) as caught:
        splits, _ = load_splits(str(tmp_path))
    (w,) = caught
    assert str(w.message) == (
        f"{tmp_path}: 7 files left out: 1/notes.txt: cannot read image (not an image format "
        "Pillow reads); 2/blank.png: no ink found (the image is blank); "
        + "; ".join(
            f"2/cut{i}.png: cannot read image (not an image format Pillow reads)" for i in range(3)
        )
        + "; and 2 more"
    )
    assert len(splits.every_image()[1]) == 8  # every readable image is there


def test_class_folders_in_numeric_order_and_empty_folders_refused(tmp_path: Path) -> None:
    for name in ("10", "2", "b", "a", ".git"):
        (tmp_path / name).mkdir()
    assert [d.name for d in class_folders(tmp_path)] == ["2", "10", "a", "b"]
    with pytest.raises(DatasetError, match="no readable images in its class folders"):
        load_splits(str(tmp_path))


def test_a_folder_trains_with_a_validation_split(folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every file of this folder is readable
        data = load_dataset(str(folder), rng=np.random.default_rng(0), val_size=10)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (62, 10, 12)
    assert data.image_shape == (28, 28) and data.classes == ["five", "seven"]


def test_model_labels_match_a_folders_classes_by_name() -> None:
    y = np.array([0, 1, 1])
    digits = [str(d) for d in range(10)]
    np.testing.assert_array_equal(model_labels(y, ["3", "7"], digits), [3, 7, 7])
    np.testing.assert_array_equal(model_labels(y, ["0", "1"], ["a", "b"]), y)  # numbers: as is


def test_evaluate_reads_a_folder_of_some_classes_and_warns_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = load_bundled_mnist()
    for c in (3, 7):
        (tmp_path / "mine" / str(c)).mkdir(parents=True)
        for i, x in enumerate(s.X_test[s.y_test == c][:5]):
            picture(x, 3, "RGB").save(tmp_path / "mine" / str(c) / f"{i}.png")
    (tmp_path / "mine" / "7" / "x.png").write_bytes(b"")
    net = MLP(784, [16], 10, rng=np.random.default_rng(0))
    clf = Classifier(net, Normalization(0.13, 0.31), [str(c) for c in range(10)], (28, 28))
    model = save_model(clf, tmp_path / "m.safetensors")
    argv = ["evaluate", str(model), "--dataset", str(tmp_path / "mine"), "--split", "all"]
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["n"] == 10 and result["split"] == "all"
    confusion = np.array(result["confusion"])
    assert confusion.sum(axis=1).tolist() == [0, 0, 0, 5, 0, 0, 0, 5, 0, 0]  # by class name
    assert err == (
        f"handnet evaluate: warning: {tmp_path / 'mine'}: 1 file left out: 7/x.png: cannot read "
        "image (not an image format Pillow reads)\n"
    )
