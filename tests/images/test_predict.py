"""Prediction on image files with a real model trained on MNIST: the API and `handnet predict`
(run in this process)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main as handnet_cli
from PIL import Image, ImageDraw

import handnet
from handnet.data import Dataset
from handnet.data.geometry import Geometry
from handnet.data.registry import load_bundled_mnist
from handnet.images.predict import strongest_units
from handnet.train.committee import committee_proba
from handnet.train.modelfile import load_model


def photo_of(digit: np.ndarray, k: int, at: tuple[int, int], page: tuple[int, int]) -> Image.Image:
    """An MNIST digit enlarged k times (bicubic), black ink on white paper, placed off-centre."""
    big = Image.fromarray(255 - digit).resize((28 * k, 28 * k), Image.Resampling.BICUBIC)
    sheet = Image.new("RGB", page, (255, 255, 255))
    sheet.paste(big.convert("RGB"), at)
    return sheet


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    s = load_bundled_mnist()
    first = [int(np.flatnonzero(s.y_test == c)[0]) for c in range(10)]  # one of each class
    return s.X_test[first], s.y_test[first]


def test_enlarged_off_centre_black_on_white_png_is_predicted_like_the_original(
    mnist_model: Path, digits: tuple, tmp_path: Path
) -> None:
    clf = load_model(mnist_model)
    X, _ = digits
    rng = np.random.default_rng(0)
    paths = []
    for i, x in enumerate(X):
        k = int(rng.integers(4, 12))
        page = (28 * k * 3, 28 * k * 2)
        at = (int(rng.integers(0, page[0] - 28 * k)), int(rng.integers(0, page[1] - 28 * k)))
        paths.append(tmp_path / f"digit{i}.png")
        photo_of(x, k, at, page).save(paths[-1])
    original = clf.predict(X)
    from_files = [p.label for p in handnet.predict_images(clf, paths)]
    assert from_files == original


def test_most_of_the_mnist_test_set_survives_the_round_trip(
    mnist_model: Path, mnist: Dataset
) -> None:
    """Over 100 test digits, the enlarged and moved copy gets the original's label >= 97% of the time."""
    clf = load_model(mnist_model)
    s = load_bundled_mnist()
    X = s.X_test[:100]
    rng = np.random.default_rng(1)
    pages = []
    for x in X:
        k = int(rng.integers(2, 8))
        page = (28 * k * 2, 28 * k * 2)
        at = (int(rng.integers(0, 28 * k)), int(rng.integers(0, 28 * k)))
        pages.append(np.asarray(photo_of(x, k, at, page).convert("L")))
    agree = np.mean(
        [p.label for p in handnet.predict_images(clf, pages)] == np.array(clf.predict(X))
    )
    assert agree >= 0.97, agree


def test_prediction_carries_probabilities_and_the_input(mnist_model: Path, digits: tuple) -> None:
    clf = load_model(mnist_model)
    (pred,) = handnet.predict_images(clf, [digits[0][3]])
    assert pred.input.shape == (28, 28) and pred.input.dtype == np.uint8
    assert np.isclose(pred.probabilities.sum(), 1, atol=1e-5)
    top = pred.top(3)
    assert top[0][0] == pred.label and top[0][1] >= top[1][1] >= top[2][1]
    d = pred.to_dict(2)
    assert (
        d["label"] == pred.label
        and len(d["top"]) == 2
        and set(d["probabilities"]) == set(clf.classes)
    )
    np.testing.assert_array_equal(pred.seen, pred.input)  # a model without shape normalization


def test_prediction_shows_the_input_as_a_shape_normalizing_model_saw_it(
    mnist_model: Path, digits: tuple
) -> None:
    clf = dataclasses.replace(load_model(mnist_model), geometry=Geometry(deskew=True, width=14))
    (pred,) = handnet.predict_images(clf, [digits[0][3]])
    np.testing.assert_array_equal(pred.seen, clf.geometry.apply(pred.input[None], (28, 28))[0])
    assert not np.array_equal(pred.seen, pred.input)
    np.testing.assert_allclose(pred.probabilities, clf.predict_proba(pred.input[None])[0])
    units = strongest_units(clf, pred.seen, k=clf.net.hidden_sizes[0])  # explained as seen
    c = clf.classes.index(pred.label)
    logit = clf.net.predict_logits(clf.prepare(pred.input[None]))[0, c]
    b2 = clf.net.dense_layers()[1].params["b"][c]
    assert np.isclose(sum(u.score for u in units) + b2, logit, rtol=1e-4, atol=1e-4)


def test_strongest_units_explain_the_winning_logit(mnist_model: Path, digits: tuple) -> None:
    """With one hidden layer, sum_j h_j W2[j, c] + b2[c] is exactly the logit of class c."""
    clf = load_model(mnist_model)
    (pred,) = handnet.predict_images(clf, [digits[0][7]])
    units = strongest_units(clf, pred.seen, k=clf.net.hidden_sizes[0])
    c = clf.classes.index(pred.label)
    logit = clf.net.predict_logits(clf.prepare(pred.input[None]))[0, c]
    b2 = clf.net.dense_layers()[1].params["b"][c]
    assert np.isclose(sum(u.score for u in units) + b2, logit, rtol=1e-4, atol=1e-4)
    scores = [u.score for u in units]
    assert scores == sorted(scores, reverse=True)
    assert units[0].weights.shape == (28, 28)


def test_predict_images_names_the_bad_image(mnist_model: Path, tmp_path: Path) -> None:
    clf = load_model(mnist_model)
    blank = tmp_path / "blank.png"
    Image.new("L", (40, 40), 255).save(blank)
    with pytest.raises(handnet.ImageError, match=r"blank\.png: no ink"):
        handnet.predict_images(clf, [blank])


def test_no_images_give_no_answers(mnist_model: Path) -> None:
    clf = load_model(mnist_model)
    none = np.zeros((0, 28, 28), np.uint8)
    assert clf.predict_proba(none).shape == (0, 10) and clf.predict(none) == []
    assert committee_proba([clf, clf], none, views=2, rng=np.random.default_rng(0)).shape == (0, 10)
    assert handnet.predict_images(clf, []) == []


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("photos")
    out = {}
    im = Image.new("RGB", (800, 600), (246, 244, 238))  # a pen "7" on a page, off-centre
    ImageDraw.Draw(im).line([(150, 100), (260, 100), (190, 300)], fill=(30, 30, 40), width=4)
    out["seven"] = d / "seven.png"
    im.save(out["seven"])
    im = Image.new("RGB", (500, 300), "white")
    ImageDraw.Draw(im).ellipse((60, 40, 160, 240), outline="black", width=14)
    out["zero"] = d / "zero.jpg"
    im.save(out["zero"])
    out["blank"] = d / "blank.png"
    Image.new("L", (64, 64), 255).save(out["blank"])
    out["broken"] = d / "broken.bmp"
    out["broken"].write_bytes(b"BM this is not a bitmap")
    return out


def test_cli_predicts_each_file_and_reports_failures(mnist_model: Path, files: dict) -> None:
    r = handnet_cli(
        "predict",
        str(mnist_model),
        str(files["seven"]),
        str(files["blank"]),
        str(files["zero"]),
        str(files["broken"]),
        str(files["blank"].with_name("gone.png")),
    )
    assert r.returncode == 1  # a file could not be read
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{files['seven']}: 7  (7 ")
    assert lines[1] == f"{files['blank']}: no digit found"  # an answer, not an error
    assert lines[2].startswith(f"{files['zero']}: 0  (0 ")
    assert len(lines) == 3
    errors = r.stderr.splitlines()
    assert len(errors) == 2 and "Traceback" not in r.stderr
    assert "broken.bmp: cannot read image" in errors[0]
    assert "gone.png: cannot open" in errors[1]


def test_cli_json_and_top(mnist_model: Path, files: dict) -> None:
    r = handnet_cli(
        "predict",
        str(mnist_model),
        str(files["seven"]),
        str(files["blank"]),
        "--json",
        "--top",
        "5",
    )
    assert r.returncode == 3  # every file read, one page without a digit
    ok, blank = json.loads(r.stdout)
    assert ok["file"] == str(files["seven"]) and ok["label"] == "7" and len(ok["top"]) == 5
    assert ok["number"] == "7" and [d["label"] for d in ok["digits"]] == ["7"]
    assert abs(sum(ok["probabilities"].values()) - 1) < 1e-5
    assert blank == {"file": str(files["blank"]), "number": None, "digits": []}
    r = handnet_cli("predict", str(mnist_model), str(files["seven"]))
    assert r.returncode == 0 and r.stderr == ""


def test_cli_test_time_augmentation(mnist_model: Path, files: dict) -> None:
    """mnist_model was trained with 1-pixel shifts (the default), so --tta draws shifted copies."""
    seven = str(files["seven"])
    plain = json.loads(handnet_cli("predict", str(mnist_model), seven, "--json").stdout)[0]
    r = handnet_cli("predict", str(mnist_model), seven, "--tta", "8", "--json")
    assert r.returncode == 0, r.stderr
    (tta,) = json.loads(r.stdout)
    assert tta["label"] == "7" and tta["probabilities"] != plain["probabilities"]
    zero = str(files["zero"])
    again = json.loads(
        handnet_cli("predict", str(mnist_model), zero, seven, "--tta", "8", "--json").stdout
    )
    assert again[1] == tta  # repeatable, whatever files come before it
    other = handnet_cli(
        "predict", str(mnist_model), seven, "--tta", "8", "--tta-seed", "5", "--json"
    )
    assert json.loads(other.stdout)[0]["probabilities"] != tta["probabilities"]
    r = handnet_cli("predict", str(mnist_model), seven, "--tta", "-1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--tta -1" in r.stderr


def test_cli_bad_model_or_flag_is_a_usage_error(
    mnist_model: Path, files: dict, tmp_path: Path
) -> None:
    r = handnet_cli("predict", str(tmp_path / "nope.safetensors"), str(files["seven"]))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nope.safetensors" in r.stderr
    r = handnet_cli("predict", str(mnist_model), str(files["seven"]), "--top", "11")
    assert r.returncode == 2 and "--top 11" in r.stderr


def test_models_without_hidden_layers_or_square_inputs(digits: tuple) -> None:
    from handnet.data.split import Normalization
    from handnet.nn.model import MLP
    from handnet.train.classifier import Classifier

    rng = np.random.default_rng(0)
    classes = [str(i) for i in range(10)]
    linear = Classifier(MLP(784, [], 10, rng=rng), Normalization(0.1, 0.3), classes, (28, 28))
    (pred,) = handnet.predict_images(linear, [digits[0][0]])
    assert strongest_units(linear, pred.seen) == []  # nothing hidden to show
    flat = Classifier(MLP(20, [8], 10, rng=rng), Normalization(0.0, 1.0), classes, (20,))
    with pytest.raises(handnet.HandnetError, match=r"not square images"):
        handnet.predict_images(flat, [digits[0][0]])
