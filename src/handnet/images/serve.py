"""``handnet serve``: a draw-a-digit-or-a-number page and a JSON prediction API, on FastAPI
and uvicorn.

Routes: ``/`` the page (static files shipped in the package, plain JS), ``POST /api/predict``
(JSON with a base64 image), ``POST /api/predict/image`` (the raw image bytes as the body),
``GET /api/model`` (what the model is), ``/docs`` and ``/openapi.json`` (FastAPI's schema).

An image may hold one digit or a number: its digits are found and read left to right as
`handnet predict` reads a photo (`handnet.images.numbers.read_number`). An answer
(`PredictResponse`) gives the ``number`` and, per digit, its label, probabilities, box and
28x28 input (``digits``); when the image holds exactly one digit it also has the single-digit
fields that came before numbers (``label``, ``probability``, ``top``, ``probabilities``,
``input``, and ``hidden`` with ``explain``), null when it holds several. An image with no digit
(blank, or only a dot) gets a 422.

Every request body is capped at ``max_bytes``; bad input gets a 400, 413 or 422 with a message.
``serve`` logs one line per request on stderr, and one when SIGINT or SIGTERM stops it.
"""

from __future__ import annotations

import base64
import binascii
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.errors import HandnetError, install_extra
from handnet.train.classifier import Classifier

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise HandnetError(
        f"handnet serve needs the 'serve' extra ({e.name} is missing): {install_extra('serve')}"
    ) from None

from handnet.images.numbers import NumberReading, read_number
from handnet.images.predict import HiddenUnit, gray_image, likeliest, strongest_units
from handnet.images.preprocess import ImageError, NoInkError, preprocess_digit
from handnet.train.tta import check_augmented

STATIC = Path(__file__).parent / "static"
IMAGE_TYPES = ["image/png", "image/jpeg", "image/bmp", "application/octet-stream"]


class PredictRequest(BaseModel):
    """The body of ``POST /api/predict``: an image of a digit or a number, as base64."""

    image: str = Field(
        description="The image as base64, or as a data URL (data:image/png;base64,...). "
        "PNG, JPEG, BMP, GIF, TIFF or WebP, any size; dark ink on light paper or light ink on "
        "dark; one digit or several side by side (a number).",
        min_length=1,
        examples=["data:image/png;base64,iVBORw0KGgo..."],
    )
    top: int = Field(
        3, ge=1, le=100, description="how many classes to list in `top`, and in each digit's"
    )
    explain: bool = Field(
        False,
        description="also return the strongest hidden units (`hidden`), for the page; given "
        "for an image of a single digit only",
    )


class ClassProbability(BaseModel):
    """A class and its probability."""

    label: str
    probability: float


class Unit(BaseModel):
    """A first-layer hidden unit that pushed hard towards the answer (`strongest_units`)."""

    unit: int = Field(description="index of the unit in the first hidden layer")
    activation: float = Field(description="its activation h_j for this input")
    score: float = Field(description="h_j * W2[j, c]: its push towards the predicted class c")
    weights: list[int] = Field(
        description="its incoming weights as a row-major side x side image, scaled to [-127, 127]"
    )


SEEN = (
    "the digit's preprocessed input as the network saw it (cropped, fitted to 20x20 and "
    "centred by mass in the field as MNIST's digits were; then deskewed or width-normalized "
    "if the model was trained that way): side x side rows, 0-255, white ink on black"
)
ONE_DIGIT = "; null when the image holds several digits (see `digits`)"


class DigitAnswer(BaseModel):
    """One digit found in the image: what the network read, where it is, what it saw."""

    label: str = Field(description="the predicted class of this digit")
    probability: float = Field(description="its probability: the network's confidence")
    top: list[ClassProbability] = Field(description="the `top` likeliest classes, likeliest first")
    probabilities: list[float] = Field(description="one per class, in `classes` order")
    box: list[int] = Field(
        description="where the digit's ink is in the image: [left, top, right, bottom] in the "
        "image's pixels, right and bottom exclusive",
        min_length=4,
        max_length=4,
    )
    input: list[list[int]] = Field(description=SEEN)


class PredictResponse(BaseModel):
    """The answer for one image: the number read, each digit, and for a single digit the fields
    of the answers from before numbers were read."""

    number: str = Field(
        description='the digits\' labels read left to right, e.g. "2024"; one character for a '
        "single digit. An image with no digit gets a 422 instead of an answer"
    )
    digits: list[DigitAnswer] = Field(
        description="each digit found, left to right: one or more entries"
    )
    label: str | None = Field(description="the predicted class of the single digit" + ONE_DIGIT)
    probability: float | None = Field(
        description="the single digit's predicted class's probability" + ONE_DIGIT
    )
    top: list[ClassProbability] | None = Field(
        description="the single digit's `top` likeliest classes" + ONE_DIGIT
    )
    classes: list[str] = Field(description="the model's classes, the order of `probabilities`")
    probabilities: list[float] | None = Field(
        description="the single digit's probabilities, one per class, in `classes` order"
        + ONE_DIGIT
    )
    input: list[list[int]] | None = Field(
        description=SEEN.replace("digit's", "single digit's", 1) + ONE_DIGIT
    )
    hidden: list[Unit] | None = Field(
        None,
        description="with explain=true and a single digit: the strongest units for it; null "
        "otherwise",
    )


class ModelInfo(BaseModel):
    """What the served model is (``GET /api/model``)."""

    network: str
    classes: list[str]
    side: int
    dataset: str | None
    test_accuracy: float | None
    parameters: int
    shape_normalization: str = Field(
        description="what the model itself does to an input after preprocessing, as it was "
        'trained: e.g. "deskewed, width 16 px"; empty for nothing'
    )
    tta_views: int = Field(
        0,
        description="each answer averages the image and this many copies of it transformed as "
        "in training (handnet serve --tta); 0 for none",
    )


class Problem(BaseModel):
    """An error's answer: what was wrong with the request."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "not a readable image, or bad base64"},
    413: {"model": Problem, "description": "the request body is larger than the limit"},
    422: {
        "model": Problem,
        "description": "the image holds no digit (blank, or only a dot), or the JSON is invalid",
    },
}


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413.

    It checks Content-Length up front, then reads the body itself (a chunked upload has no
    Content-Length), counting as it goes, and replays it to the app: bodies here are small, and
    the app never sees an oversized one.

    Parameters
    ----------
    app : ASGI application
        The application behind it.
    max_bytes : int
        The largest request body let through.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length" and (not v.isdigit() or int(v) > self.max_bytes):
                await self._too_large(scope, send)
                return
        chunks, seen = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Any, send: Any) -> None:
        resp = JSONResponse(
            {"detail": f"request body too large (limit {self.max_bytes} bytes)"}, status_code=413
        )
        await resp(scope, _no_receive, send)


async def _no_receive() -> Any:
    return {"type": "http.disconnect"}


class RequestLog:
    """ASGI middleware: one line on stderr per request once it is answered.

    The line gives the client, the method and path, the status and the milliseconds, as
    ``handnet serve`` shows them; ``count`` says how many were answered.

    Parameters
    ----------
    app : ASGI application
        The application behind it.
    """

    def __init__(self, app: Any) -> None:
        self.app, self.count = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status = time.perf_counter(), "-"

        async def sending(msg: Any) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = str(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.count += 1
            client = (scope.get("client") or ("?",))[0]
            ms = 1000 * (time.perf_counter() - t0)
            line = f"{client} {scope['method']} {scope['path']} {status} {ms:.0f} ms"
            print(f"handnet serve: {line}", file=sys.stderr, flush=True)


def decode_base64(text: str) -> bytes:
    """The bytes of an image sent as plain base64 or as a base64 data URL.

    Parameters
    ----------
    text : str
        ``"iVBORw0KGgo..."`` or ``"data:image/png;base64,iVBORw0KGgo..."``.

    Returns
    -------
    bytes
        The decoded bytes.

    Raises
    ------
    HTTPException
        400 with the reason: a data URL that is not base64, or text that is not valid base64.
    """
    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or not head.endswith(";base64"):
            raise HTTPException(400, "image: a data URL must be base64 (data:image/png;base64,...)")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image: not valid base64") from None


def create_app(
    clf: Classifier,
    *,
    max_bytes: int = 2_000_000,
    tta_views: int = 0,
    tta_seed: int = 0,
    name: str = "model",
) -> Any:
    """The ASGI application for one loaded model (what ``handnet serve`` runs; tests use it too).

    Each image is read as `handnet predict` reads a photo (`read_number`): every digit found, left
    to right, one at a time through the network (a lock: its layers reuse buffers). The answer
    (`PredictResponse`) has the ``number`` and the ``digits``, and the single-digit fields when
    there is exactly one; an image with no digit gets a 422 saying why (blank, only a dot, ...).

    Parameters
    ----------
    clf : Classifier
        The model, on square images (`handnet.images.predict.input_field`).
    max_bytes : int, default=2_000_000
        The largest request body accepted; a larger one gets a 413.
    tta_views : int, default=0
        With > 0, every digit's answer is test-time augmented (`handnet.train.tta`): averaged
        over it and this many copies distorted as in training. Each request draws them from a
        Generator seeded by ``tta_seed``: the same image always gets the same answer.
    tta_seed : int, default=0
        The seed of those Generators.
    name : str, default="model"
        What the error for a model with no augmentation to draw from calls it (its file).

    Returns
    -------
    ASGI application
        The FastAPI app behind `BodyLimit`.

    Raises
    ------
    ConfigError
        With ``tta_views`` > 0, for a model trained without augmentation.
    """
    if tta_views:
        check_augmented([clf], [name])  # refused before serving anything
    app = FastAPI(
        title="handnet",
        summary="Draw a digit or a number, or POST an image, and get the network's "
        "probabilities for each digit.",
        version=str(clf.meta.get("handnet_version", "unknown")),
    )
    lock = threading.Lock()  # the network reuses its buffers: one forward pass at a time
    side = math.isqrt(clf.net.n_in)
    metrics = clf.meta.get("metrics") or {}
    info = ModelInfo(
        network=repr(clf.net),
        classes=list(clf.classes),
        side=side,
        dataset=clf.meta.get("dataset"),
        test_accuracy=metrics.get("test_accuracy"),
        parameters=int(sum(p.size for p in clf.net.parameters().values())),
        shape_normalization=clf.geometry.describe(),
        tta_views=tta_views,
    )

    def answer(data: bytes, top: int, explain: bool) -> PredictResponse:
        if not data:
            raise HTTPException(400, "image: empty")
        try:
            gray = gray_image(data, "image")  # decoded once, outside the lock
            with lock:
                rng = np.random.default_rng(tta_seed)
                reading = read_number(clf, gray, "image", views=tta_views, rng=rng)
                if reading.digits:
                    # each input as the network saw it: deskewed or width-normalized if trained so
                    inputs = np.stack([d.input for d in reading.digits])
                    seen = np.asarray(clf.normalize_shape(inputs), dtype=np.uint8)
                    one = len(reading.digits) == 1
                    units = strongest_units(clf, seen[0]) if explain and one else None
            if not reading.digits:
                raise HTTPException(422, _why_no_digit(gray, side))
        except NoInkError as e:  # not expected (a page without a digit has no digits): a 422
            raise HTTPException(422, str(e)) from None
        except (ImageError, HandnetError) as e:
            raise HTTPException(400, str(e)) from None
        return _response(reading, seen, top, units)

    @app.get("/api/model", response_model=ModelInfo, summary="What the served model is")
    def model_info() -> ModelInfo:
        return info

    @app.post(
        "/api/predict",
        response_model=PredictResponse,
        responses=ERRORS,
        summary="Read the digit or the number in a base64 image",
    )
    def predict(req: PredictRequest) -> PredictResponse:
        """POST `{"image": "<base64 or data URL>"}` with one digit or a number. Each digit is
        found, left to right, preprocessed like MNIST (ink cropped, fitted to 20x20, centred by
        mass in 28x28) and classified: `number` and `digits` give them all. For a single digit
        the answer also has `label`, `probability`, `top`, `probabilities`, `input` (and
        `hidden` with `explain`), as before numbers were read; they are null for several."""
        return answer(decode_base64(req.image), req.top, req.explain)

    @app.post(
        "/api/predict/image",
        response_model=PredictResponse,
        responses=ERRORS,
        summary="Read the digit or the number in an image sent as the raw request body",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES
                },
            }
        },
    )
    async def predict_image(request: Request, top: int = 3) -> PredictResponse:
        """`curl --data-binary @digit.png -H 'Content-Type: image/png' .../api/predict/image`;
        the answer is that of `POST /api/predict` (without `hidden`)."""
        if not 1 <= top <= 100:
            raise HTTPException(422, "top: must be in [1, 100]")
        data = await request.body()
        return answer(data, top, False)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return BodyLimit(app, max_bytes)


def _why_no_digit(gray: npt.NDArray[np.float32], side: int) -> str:
    """What a 422 says of an image in which `read_number` found no digit: the reason that the
    one-digit preprocessing gives (blank, only a dot, only ruled lines), or that no mark was a
    digit (too faint, too small)."""
    try:
        preprocess_digit(gray, field=side, name="image")
    except NoInkError as e:
        return str(e)
    return "image: no digit found (no mark is dark and large enough to be one)"


def _response(
    reading: NumberReading,
    seen: npt.NDArray[np.uint8],
    top: int,
    units: list[HiddenUnit] | None,
) -> PredictResponse:
    """The answer for a `reading` of one or more digits, their inputs as the network saw them
    (``seen``, (n, side, side)) and, for a single digit with explain, its strongest units."""
    classes = reading.classes

    def best(p: npt.NDArray[np.float32]) -> list[ClassProbability]:
        return [ClassProbability(label=c, probability=q) for c, q in likeliest(p, classes, top)]

    digits = [
        DigitAnswer(
            label=d.label,
            probability=d.confidence,
            top=best(d.probabilities),
            probabilities=[float(p) for p in d.probabilities],
            box=[int(c) for c in d.box],
            input=x.tolist(),
        )
        for d, x in zip(reading.digits, seen)
    ]
    hidden = None
    if units is not None:
        hidden = []
        for u in units:
            scale = 127 / max(float(np.abs(u.weights).max()), 1e-12)
            w = np.round(u.weights * scale).astype(int).ravel().tolist()
            hidden.append(Unit(unit=u.unit, activation=u.activation, score=u.score, weights=w))
    if len(digits) > 1:  # a number: the single-digit fields are null
        return PredictResponse(
            number=reading.number or "",
            digits=digits,
            label=None,
            probability=None,
            top=None,
            classes=classes,
            probabilities=None,
            input=None,
            hidden=None,
        )
    (one,) = digits
    return PredictResponse(
        number=one.label,
        digits=digits,
        label=one.label,
        probability=one.probability,
        top=one.top,
        classes=classes,
        probabilities=one.probabilities,
        input=one.input,
        hidden=hidden,
    )


def serve(
    model: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_bytes: int = 2_000_000,
    tta_views: int = 0,
    tta_seed: int = 0,
) -> int:
    """Serve one model's page and API until SIGINT or SIGTERM.

    Loads ``model``, binds ``host:port`` (a one-line error if it is taken) and runs `create_app`
    with uvicorn, a line per request on stderr; when a signal stops it, says so in one line.

    Parameters
    ----------
    model : str or Path
        A model file, a run directory or RUNS/latest.
    host : str, default="127.0.0.1"
        The address to listen on (0.0.0.0: every interface).
    port : int, default=8000
        The port to listen on.
    max_bytes : int, default=2_000_000
        The largest request body accepted.
    tta_views : int, default=0
        Test-time augmentation: each digit's answer averaged over this many distorted copies.
    tta_seed : int, default=0
        The seed of each request's copies.

    Returns
    -------
    int
        The number of the signal that stopped it.

    Raises
    ------
    HandnetError
        When the model cannot be loaded or is not one of images, or ``host:port`` is taken.
    """
    import socket

    import uvicorn

    from handnet.images.predict import input_field
    from handnet.train.interrupt import StopSignals
    from handnet.train.modelfile import load_model
    from handnet.train.rundir import run_model

    model = run_model(model)
    clf = load_model(model)
    input_field(clf)  # refuse non-image models before starting
    app = create_app(
        clf, max_bytes=max_bytes, tta_views=tta_views, tta_seed=tta_seed, name=str(model)
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock: socket.socket | None = None
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        if sock is not None:
            sock.close()
        raise HandnetError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    log = RequestLog(app)
    # uvicorn stops gracefully on SIGINT or SIGTERM, then raises it again for the handler it
    # found installed: StopSignals's, which only notes it, so that we can say so in one line.
    with sock, StopSignals() as stop:  # the socket is closed however the server ends
        url = f"http://{host}:{sock.getsockname()[1]}/"
        print(f"handnet serve: {model} at {url}  (API docs at {url}docs)", flush=True)
        config = uvicorn.Config(log, log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])
    signum = stop.signum or signal.SIGINT
    answered = f"{log.count} request{'s' * (log.count != 1)}"
    print(f"handnet serve: stopped by {signal.Signals(signum).name} after {answered}", flush=True)
    return int(signum)
