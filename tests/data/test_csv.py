"""CSV datasets in Kaggle's Digit Recognizer layout, and `handnet predict --csv` writing its
submission format: every problem is one line naming the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handnet.cli import main
from handnet.data import load_dataset, load_splits
from handnet.data.csvfile import read_csv, submission_csv
from handnet.data.split import Normalization
from handnet.errors import DatasetError
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier
from handnet.train.config import TrainConfig
from handnet.train.modelfile import load_model, save_model
from handnet.train.runs import train_run

SMALL: dict[str, Any] = {"batch_size": 16, "warmup_epochs": 0.0}  # a few dozen images

RNG = np.random.default_rng(0)
IMGS = RNG.integers(0, 256, (70, 28, 28), dtype=np.uint8)
LABELS = np.arange(70) % 10
HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))


def rows(images: np.ndarray, labels: np.ndarray | None) -> list[str]:
    flat = images.reshape(len(images), -1)
    if labels is None:
        return [",".join(map(str, r)) for r in flat]
    return [f"{y}," + ",".join(map(str, r)) for y, r in zip(labels, flat)]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    return write(tmp_path / "train.csv", [HEADER, *rows(IMGS, LABELS)])


def test_kaggle_train_csv_is_a_dataset_with_a_test_split_held_out_the_same_way_each_time(
    train_csv: Path,
) -> None:
    splits, classes = load_splits(str(train_csv))
    assert classes == [str(c) for c in range(10)]
    assert splits.X_train.shape == (60, 28, 28) and splits.X_test.shape == (10, 28, 28)
    assert splits.X_train.dtype == np.uint8
    # every image is in one split, with its label, as written
    seen = np.concatenate([splits.X_train, splits.X_test])
    labels = np.concatenate([splits.y_train, splits.y_test])
    order = np.argsort([np.flatnonzero((IMGS == x).all(axis=(1, 2)))[0] for x in seen])
    np.testing.assert_array_equal(seen[order], IMGS)
    np.testing.assert_array_equal(labels[order], LABELS)
    assert sorted(splits.y_test.tolist()) == list(range(10))  # stratified: one of each class
    again, _ = load_splits(str(train_csv))
    np.testing.assert_array_equal(again.X_test, splits.X_test)  # evaluate finds the same ones
    data = load_dataset(str(train_csv), rng=np.random.default_rng(1), val_size=10)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (50, 10, 10)
    assert data.image_shape == (28, 28)


def test_the_default_recipe_trains_on_a_csv_file(train_csv: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(dataset=str(train_csv), hidden_sizes=(8,), epochs=1, val_size=10, **SMALL)
    result = train_run(cfg, out=tmp_path / "runs", progress=False)
    clf = load_model(result.model_path)
    assert clf.image_shape == (28, 28) and clf.meta["dataset"] == str(train_csv)
    assert clf.meta["metrics"]["test_size"] == 10


def test_without_a_header_the_column_count_says_where_the_label_is(tmp_path: Path) -> None:
    labelled = read_csv(write(tmp_path / "a.csv", rows(IMGS[:3], LABELS[:3])))
    np.testing.assert_array_equal(labelled.y, LABELS[:3])
    np.testing.assert_array_equal(labelled.X, IMGS[:3].reshape(3, -1))
    pixels = read_csv(write(tmp_path / "b.csv", rows(IMGS[:3], None)))
    assert pixels.y is None and pixels.X.shape == (3, 784)


def test_blank_lines_are_skipped_and_fractional_pixels_kept(tmp_path: Path) -> None:
    lines = rows(IMGS[:2], LABELS[:2])
    d = read_csv(write(tmp_path / "f.csv", [HEADER, lines[0], "", lines[1], ""]))
    np.testing.assert_array_equal(d.X, IMGS[:2].reshape(2, -1))
    frac = read_csv(write(tmp_path / "g.csv", [HEADER, "3," + ",".join(["0.5"] * 784)]))
    assert frac.X.dtype == np.float32 and frac.X.max() == 0.5


def good(i: int) -> str:
    return rows(IMGS[i : i + 1], LABELS[i : i + 1])[0]


def short(line: str) -> str:
    """The line without its last value."""
    return line.rsplit(",", 1)[0]


def cell(line: str, col: int, value: str) -> str:
    cells = line.split(",")
    cells[col] = value
    return ",".join(cells)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([HEADER, good(0), cell(good(1), 6, "256")], r"line 3, column 7 \(pixel5\): 256 is outside 0-255"),
        ([HEADER, cell(good(0), 784, "-1")], r"line 2, column 785 \(pixel783\): -1 is outside 0-255"),
        ([HEADER, good(0), "", cell(good(1), 2, "nan")], r"line 4, column 3 \(pixel1\): nan is outside"),
        ([HEADER, good(0), short(good(1))], r"line 3: 784 values, but the header has 785 \(a ragged row\)"),
        ([HEADER, good(0), cell(good(1), 9, "x")], r"line 3, column 10: 'x' is not a number"),
        ([HEADER, cell(good(0), 0, "2.5")], r"line 2: label 2.5 is not a class number"),
        ([HEADER, cell(good(0), 0, "-3")], r"line 2: label -3 is not a class number"),
        ([HEADER.rsplit(",", 1)[0], good(0).rsplit(",", 1)[0]], r"line 1: 783 pixel columns; expected a square number"),
        ([HEADER[len("label,") :], *rows(IMGS[:2], None)], r"line 1: no label column"),
        (rows(IMGS[:2], None), r"line 1: no label column"),
        ([",".join(["1"] * 700)], r"line 1: 700 columns; expected a square number such as 784 \(28 x 28\) pixels, with or without a label first"),
        ([",".join([*HEADER.split(",")[1:], "label"])], r"line 1: the label is column 785; handnet reads it from the first column"),
        ([HEADER], r"no rows of data"),
        ([""], r"empty file"),
    ],
    ids=[
        "pixel-too-large",
        "pixel-negative",
        "pixel-nan",
        "ragged-row",
        "not-a-number",
        "label-fraction",
        "label-negative",
        "wrong-column-count",
        "no-label-column",
        "no-label-column-no-header",
        "wrong-count-no-header",
        "label-last",
        "header-only",
        "empty",
    ],
)  # fmt: skip
def test_each_problem_is_one_line_naming_the_file_and_line(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = write(tmp_path / "bad.csv", lines)
    with pytest.raises(DatasetError, match=message) as e:
        load_splits(str(path))
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_a_file_too_small_to_hold_out_a_test_split(tmp_path: Path) -> None:
    path = write(tmp_path / "three.csv", [HEADER, *rows(IMGS[:3], LABELS[:3])])
    with pytest.raises(DatasetError, match="3 images are too few to hold out a test split"):
        load_splits(str(path))


def test_submission_format() -> None:
    assert submission_csv(["7", "2", "1"]) == "ImageId,Label\n1,7\n2,2\n3,1\n"


# --- handnet predict --csv -----------------------------------------------------------------------


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, Classifier]:
    net = MLP(784, [16], 10, rng=np.random.default_rng(0))
    clf = Classifier(net, Normalization(0.13, 0.31), [str(c) for c in range(10)], (28, 28))
    return save_model(clf, tmp_path / "m.safetensors"), clf


def test_predict_csv_writes_kaggles_submission(
    tmp_path: Path, model: tuple[Path, Classifier], capsys: pytest.CaptureFixture[str]
) -> None:
    path, clf = model
    test = write(tmp_path / "test.csv", [HEADER[len("label,") :], *rows(IMGS, None)])
    out = tmp_path / "submission.csv"
    assert main(["predict", str(path), "--csv", str(test), "--out", str(out)]) == 0
    expected = ["ImageId,Label"] + [f"{i},{c}" for i, c in enumerate(clf.predict(IMGS), 1)]
    assert out.read_text().splitlines() == expected
    assert capsys.readouterr().out == f"{out}: 70 predictions (ImageId,Label) for {test}\n"
    # labelled rows (train.csv) are read too, their labels left aside; no --out: stdout
    labelled = write(tmp_path / "train.csv", [HEADER, *rows(IMGS, LABELS)])
    assert main(["predict", str(path), "--csv", str(labelled)]) == 0
    assert capsys.readouterr().out.splitlines() == expected


@pytest.mark.parametrize(
    ("lines", "flags", "message"),
    [
        ([HEADER, good(0), cell(good(1), 6, "300")], [], "line 3, column 7 (pixel5): 300 is outside 0-255"),
        ([HEADER, good(0), short(good(1))], [], "line 3: 784 values, but the header has 785"),
        ([",".join(f"p{i}" for i in range(783)), "1," * 782 + "1"], [], "line 1: 783 pixel columns, the model expects 784"),
        ([HEADER, good(0)], ["--json"], "--json: not with --csv"),
        ([HEADER, good(0)], ["img.png"], "--csv: give image files or a CSV file, not both"),
    ],
    ids=["pixel", "ragged", "columns", "json", "images-too"],
)  # fmt: skip
def test_predict_csv_problems_are_one_line_and_leave_the_old_file(
    tmp_path: Path,
    model: tuple[Path, Classifier],
    capsys: pytest.CaptureFixture[str],
    lines: list[str],
    flags: list[str],
    message: str,
) -> None:
    path, _ = model
    test = write(tmp_path / "test.csv", lines)
    out = tmp_path / "submission.csv"
    out.write_text("the previous submission\n")
    code = main(["predict", str(path), *flags, "--csv", str(test), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
    assert out.read_text() == "the previous submission\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.safetensors",
        "submission.csv",
        "test.csv",
    ]
