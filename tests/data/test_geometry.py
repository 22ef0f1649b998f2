"""Shape normalization: width normalization's geometry, the Geometry steps, and their life in
datasets, configs and model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.test_deskew import stroke
from handnet.data import load_dataset
from handnet.data.deskew import deskew
from handnet.data.geometry import INK, PLAIN, Geometry, ink_width, normalize_width
from handnet.data.split import to_unit
from handnet.errors import ConfigError
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier
from handnet.train.config import TrainConfig
from handnet.train.modelfile import load_model, read_metadata, save_model

COLS = np.arange(28)


def width_of(img: np.ndarray) -> float:
    """The distance between the outer half-intensity crossings of the column profile, walked
    column by column (the loop `ink_width` does without)."""
    p = np.concatenate([[0.0], img.max(axis=0) / 255, [0.0]])
    cols = [c for c in range(1, 29) if p[c] >= INK]
    a, b = cols[0], cols[-1]
    left = a - 1 + (INK - p[a - 1]) / (p[a] - p[a - 1])
    right = b + (p[b] - INK) / (p[b] - p[b + 1])
    return right - left


def centre_col(img: np.ndarray) -> float:
    return float(img.astype(np.float64).sum(axis=0) @ COLS / img.sum())


def ring(cols: tuple[int, int]) -> np.ndarray:
    """A 28x28 uint8 box outline spanning rows 6-21 and the given columns: a crude zero."""
    img = np.zeros((28, 28), np.uint8)
    img[6:22, cols[0] : cols[1] + 1] = 255
    img[8:20, cols[0] + 2 : cols[1] - 1] = 0
    return img


@pytest.mark.parametrize("width", [8, 14, 20])
def test_ink_is_scaled_to_the_width_about_its_centre_of_mass(width: int) -> None:
    imgs = np.stack([ring((9, 18)), stroke((4, 14), (23, 14)), ring((5, 22))])  # 10, 3, 18 px
    out = normalize_width(imgs, (28, 28), width)
    assert out.shape == (3, 28, 28) and out.dtype == np.uint8
    for before, after in zip(imgs, out, strict=True):
        assert width_of(after) == pytest.approx(width, abs=0.5)
        assert centre_col(after) == pytest.approx(centre_col(before), abs=0.5)
        # rows are untouched: the same rows hold ink
        np.testing.assert_array_equal(after.max(axis=1) > 0, before.max(axis=1) > 0)


def test_a_digit_already_that_wide_and_a_blank_are_unchanged() -> None:
    box = ring((9, 18))  # 10 columns of full ink: 10 pixels wide, edge to edge
    assert (
        ink_width(box[None].astype(np.float32) / np.float32(255))[0]
        == pytest.approx(width_of(box))
        == 10
    )
    blank = np.zeros((28, 28), np.uint8)
    out = normalize_width(np.stack([box, blank]), (28, 28), 10)
    np.testing.assert_array_equal(out[0], box)
    np.testing.assert_array_equal(out[1], blank)


def test_input_layouts_agree_and_batches_are_independent() -> None:
    imgs = np.stack([ring((9, 18)), stroke((4, 20), (23, 8)), ring((3, 25))])
    ref = normalize_width(imgs, (28, 28), 16)
    np.testing.assert_array_equal(normalize_width(imgs.reshape(3, 784), (28, 28), 16), ref)
    np.testing.assert_array_equal(normalize_width(imgs / np.float32(255), (28, 28), 16), ref)
    np.testing.assert_array_equal(normalize_width(imgs[1:2], (28, 28), 16)[0], ref[1])
    with pytest.raises(ConfigError, match="needs images of shape"):
        normalize_width(np.zeros((2, 20), np.uint8), (20,), 16)


def test_geometry_runs_its_steps_in_order() -> None:
    imgs = np.stack([stroke((4, 18), (23, 9)), ring((9, 18))])
    assert PLAIN.apply(imgs, (28, 28)) is imgs and not PLAIN and PLAIN.describe() == ""
    both = Geometry(deskew=True, width=14)
    expected = normalize_width(deskew(imgs, (28, 28)), (28, 28), 14)
    np.testing.assert_array_equal(both.apply(imgs, (28, 28)), expected)
    only_width = Geometry(width=14).apply(imgs, (28, 28))
    np.testing.assert_array_equal(only_width, normalize_width(imgs, (28, 28), 14))
    assert (
        both.describe() == "deskewed, width 14 px"
        and Geometry(width=12).describe() == "width 12 px"
    )


@pytest.mark.parametrize("width", [-1, 1, 29, True, 2.5, "14"])
def test_widths_must_be_whole_pixels_inside_the_field(width: object) -> None:
    with pytest.raises(ConfigError, match="width_normalize="):
        Geometry(width=width)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="width_normalize="):
        TrainConfig.from_dict({"width_normalize": width})


def test_config_switches_are_checked() -> None:
    cfg = TrainConfig(deskew=True, width_normalize=16)
    assert cfg.geometry == Geometry(True, 16) and TrainConfig().geometry == PLAIN
    with pytest.raises(ConfigError, match="deskew='yes': must be true or false"):
        TrainConfig.from_dict({"deskew": "yes"})


def slanted_strokes(path: Path) -> Path:
    """A small .npz dataset of 10 classes of slanted strokes: what deskewing and width
    normalization change, at a fraction of MNIST's cost."""
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        ends = rng.uniform((3, 5, 21, 5), (7, 23, 25, 23), (n, 4))
        X = np.stack([stroke((a, b), (c, d), width=2.0) for a, b, c, d in ends])
        return X, np.arange(n) % 10

    (X, y), (X_test, y_test) = draw(300), draw(50)
    np.savez(path, x_train=X, y_train=y, x_test=X_test, y_test=y_test)
    return path


def test_normalized_dataset_and_model_files(tmp_path: Path) -> None:
    geometry = Geometry(deskew=True, width=16)
    source = str(slanted_strokes(tmp_path / "strokes.npz"))
    plain = load_dataset(source, rng=np.random.default_rng(0), val_size=100)
    data = load_dataset(source, rng=np.random.default_rng(0), val_size=100, geometry=geometry)
    assert data.geometry == geometry and plain.geometry == PLAIN
    np.testing.assert_array_equal(data.y_train, plain.y_train)  # the same split
    assert not np.array_equal(data.X_test, plain.X_test)
    net = MLP(784, (8,), 10, rng=np.random.default_rng(0))
    clf = Classifier(net, data.norm, data.classes, (28, 28), {}, geometry=geometry)
    path = save_model(clf, tmp_path / "m.safetensors")
    back = load_model(path)
    assert back.geometry == geometry
    assert read_metadata(path)["format_version"] == 2  # handnet 0.3.0 (format 1 only) refuses it
    raw = np.stack([stroke((4, 18), (23, 9)), ring((9, 18))])
    expected = data.norm.apply(to_unit(geometry.apply(raw, (28, 28)), "x"))
    np.testing.assert_array_equal(back.prepare(raw), expected)  # inputs are normalized too
    np.testing.assert_array_equal(back.prepare(raw.reshape(2, -1)), expected)
