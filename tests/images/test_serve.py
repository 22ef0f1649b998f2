"""The JSON API of `handnet serve`, through an in-process HTTP client (httpx via TestClient)."""

from __future__ import annotations

import base64
import io
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from handnet.data.registry import load_bundled_mnist
from handnet.errors import ConfigError
from handnet.images.serve import create_app
from handnet.images.synthetic import write_number
from handnet.train.modelfile import load_model

# Starlette 1.x suggests httpx2 for its TestClient; httpx is what we depend on and still works.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="module")
def digits(mnist_model: Path) -> dict[int, np.ndarray]:
    """One MNIST test digit of each class that the model reads right, sure of it."""
    clf, s = load_model(mnist_model), load_bundled_mnist()
    X, y = s.X_test[:300], s.y_test[:300]
    proba = clf.predict_proba(X)
    sure = (proba.argmax(axis=1) == y) & (proba.max(axis=1) > 0.99)
    return {c: X[sure & (y == c)][0] for c in range(10)}


@pytest.fixture(scope="module")
def client(mnist_model: Path) -> TestClient:
    return TestClient(create_app(load_model(mnist_model), max_bytes=200_000))


def png(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def drawn_one() -> bytes:
    im = Image.new("RGB", (280, 280), "white")  # what the page's canvas sends
    ImageDraw.Draw(im).line([(150, 40), (140, 240)], fill=(17, 17, 17), width=20)
    return png(im)


def drawn_number(digits: dict[int, np.ndarray], number: str, seed: int = 0) -> bytes:
    """``number`` written with MNIST digits side by side, 100 px tall with a third of a digit's
    height between neighbours, in dark ink on a white page: what the page's wide pad sends."""
    glyphs = np.stack([digits[int(c)] for c in number])
    ink, _ = write_number(glyphs, 100, np.random.default_rng(seed), gaps=(0.3, 0.3), drops=(0, 0))
    page = np.pad(255 - np.round(ink * 238), 60, constant_values=255).astype(np.uint8)
    return png(Image.fromarray(page).convert("RGB"))


def one_dot() -> bytes:
    im = Image.new("RGB", (50, 50), "white")
    im.putpixel((25, 25), (0, 0, 0))
    return png(im)


def test_predict_json_with_data_url(client: TestClient) -> None:
    data = "data:image/png;base64," + base64.b64encode(drawn_one()).decode()
    r = client.post("/api/predict", json={"image": data, "top": 2, "explain": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "1" and body["top"][0]["label"] == "1" and len(body["top"]) == 2
    assert abs(sum(body["probabilities"]) - 1) < 1e-5 and body["classes"] == [
        str(i) for i in range(10)
    ]
    seen = np.array(body["input"])
    assert seen.shape == (28, 28) and 0 <= seen.min() and seen.max() == 255
    assert len(body["hidden"]) == 8 and len(body["hidden"][0]["weights"]) == 784
    assert max(abs(w) for w in body["hidden"][0]["weights"]) == 127


@pytest.mark.parametrize("number", ["17", "305"])
def test_a_number_gets_each_digit_left_to_right_and_no_single_digit_fields(
    client: TestClient, digits: dict[int, np.ndarray], number: str
) -> None:
    image = base64.b64encode(drawn_number(digits, number)).decode()
    r = client.post("/api/predict", json={"image": image, "top": 2, "explain": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["number"] == number and len(body["digits"]) == len(number)
    for key in ("label", "probability", "top", "probabilities", "input", "hidden"):
        assert body[key] is None, key  # they describe a single digit
    assert body["classes"] == [str(i) for i in range(10)]
    boxes = [d["box"] for d in body["digits"]]
    for left, top, right, bottom in boxes:
        assert 0 <= left < right and 0 <= top < bottom
    for before, after in zip(boxes, boxes[1:]):
        assert before[2] <= after[0]  # left to right, not overlapping
    for d, c in zip(body["digits"], number):
        assert d["label"] == c and d["top"][0] == {"label": c, "probability": d["probability"]}
        assert len(d["top"]) == 2 and abs(sum(d["probabilities"]) - 1) < 1e-5
        seen = np.array(d["input"])
        assert seen.shape == (28, 28) and seen.min() >= 0 and seen.max() == 255
    raw = client.post("/api/predict/image?top=2", content=drawn_number(digits, number)).json()
    assert raw["number"] == number and raw["digits"] == body["digits"]


def test_a_single_digit_keeps_its_fields_and_gets_a_number_of_one(client: TestClient) -> None:
    body = client.post("/api/predict/image", content=drawn_one()).json()
    assert body["number"] == "1" and body["label"] == "1"
    (digit,) = body["digits"]
    assert digit["label"] == "1" and digit["probability"] == body["probability"]
    assert digit["top"] == body["top"] and digit["input"] == body["input"]
    assert digit["probabilities"] == body["probabilities"]
    left, top, right, bottom = digit["box"]
    assert 125 <= left < 140 < 150 < right <= 165 and 25 <= top < 50 and 230 < bottom <= 255


def test_predict_plain_base64_and_raw_body_agree(client: TestClient) -> None:
    raw = drawn_one()
    a = client.post("/api/predict", json={"image": base64.b64encode(raw).decode()}).json()
    r = client.post("/api/predict/image?top=4", content=raw, headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and a["hidden"] is None
    assert r.json()["probabilities"] == a["probabilities"] and len(r.json()["top"]) == 4


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"image": "%%%not base64"}, 400, "not valid base64"),
        ({"image": "data:image/png,abc"}, 400, "must be base64"),
        ({"image": base64.b64encode(b"GIF89a nonsense").decode()}, 400, "cannot read image"),
        ({"image": base64.b64encode(png(Image.new("L", (50, 50), 255))).decode()}, 422, "no ink"),
        ({"image": base64.b64encode(one_dot()).decode()}, 422, "only a dot, not a digit"),
        ({"image": ""}, 422, "at least 1 character"),
        ({"picture": "x"}, 422, "Field required"),
        ({"image": "aGk=", "top": 0}, 422, "greater than or equal to 1"),
        ([1, 2, 3], 422, "valid dictionary"),
    ],
)
def test_bad_payloads_get_a_4xx_with_a_message(
    client: TestClient, payload: object, status: int, message: str
) -> None:
    r = client.post("/api/predict", json=payload)
    assert r.status_code == status
    assert message in str(r.json()["detail"])


def test_a_dot_or_a_tap_is_no_digit(client: TestClient) -> None:
    """One black pixel, or one tap with the page's pen, would be blown up into a disc (an "8")."""
    tap = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(tap).ellipse((128, 128, 152, 152), fill=(17, 17, 17))
    for image in (one_dot(), png(tap)):
        r = client.post("/api/predict/image", content=image, headers={"Content-Type": "image/png"})
        assert r.status_code == 422
        assert r.json()["detail"] == "image: the ink is only a dot, not a digit"


def test_invalid_json_and_empty_bodies(client: TestClient) -> None:
    r = client.post("/api/predict", content=b"{oops", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "JSON" in str(r.json()["detail"])
    r = client.post("/api/predict/image", content=b"")
    assert r.status_code == 400 and r.json()["detail"] == "image: empty"
    r = client.post("/api/predict/image?top=500", content=drawn_one())
    assert r.status_code == 422


def test_request_size_is_limited(client: TestClient) -> None:
    big = b"\0" * 250_000
    r = client.post("/api/predict/image", content=big)
    assert r.status_code == 413 and "limit 200000 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit counts streamed bytes
        for _ in range(10):
            yield b"\0" * 30_000

    r = client.post("/api/predict/image", content=chunks())
    assert r.status_code == 413
    assert client.post("/api/predict/image", content=drawn_one()).status_code == 200  # still up


def test_a_huge_canvas_in_a_small_png_is_refused(client: TestClient) -> None:
    bomb = png(Image.new("1", (8000, 8000), 1))  # 64 megapixels in a few kB
    r = client.post("/api/predict/image", content=bomb)
    assert r.status_code == 400 and "too large" in r.json()["detail"]


def test_page_static_files_model_info_and_openapi(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="pad"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    info = client.get("/api/model").json()
    assert info["side"] == 28 and info["parameters"] == 784 * 128 + 128 + 128 * 10 + 10
    assert info["shape_normalization"] == ""  # the model neither deskews nor normalizes widths
    schema = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/predict/image", "/api/model"} <= set(schema["paths"])
    post = schema["paths"]["/api/predict"]["post"]
    assert {"200", "400", "413", "422"} <= set(post["responses"])
    assert "image/png" in schema["paths"]["/api/predict/image"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_test_time_augmented_answers_are_repeatable(client: TestClient, mnist_model: Path) -> None:
    tta = TestClient(create_app(load_model(mnist_model), tta_views=8))
    assert tta.get("/api/model").json()["tta_views"] == 8
    assert client.get("/api/model").json()["tta_views"] == 0
    body = {"image": base64.b64encode(drawn_one()).decode()}
    a, b = (tta.post("/api/predict", json=body).json() for _ in range(2))
    plain = client.post("/api/predict", json=body).json()
    assert a == b and a["label"] == "1" and a["probabilities"] != plain["probabilities"]
    assert a["input"] == plain["input"]  # the copies are averaged, the input shown is the same
    seeded = TestClient(create_app(load_model(mnist_model), tta_views=8, tta_seed=3))
    assert seeded.post("/api/predict", json=body).json()["probabilities"] != a["probabilities"]
    unaugmented = load_model(mnist_model)
    unaugmented.meta["config"]["aug_shift"] = 0.0
    with pytest.raises(ConfigError, match="trained without augmentation"):
        create_app(unaugmented, tta_views=8)


def test_serve_on_a_taken_port_is_a_one_line_error(mnist_model: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        r = run_main("serve", mnist_model, "--port", port)
    assert r.returncode == 2
    assert (
        r.stderr
        == f"handnet serve: error: cannot listen on 127.0.0.1:{port} (Address already in use)\n"
    )
