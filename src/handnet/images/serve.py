"""``handnet serve``: a draw-a-digit page and a JSON prediction API, on FastAPI and uvicorn.

Routes: ``/`` the page (static files shipped in the package, plain JS), ``POST /api/predict``
(JSON with a base64 image), ``POST /api/predict/image`` (the raw image bytes as the body),
``GET /api/model`` (what the model is), ``/docs`` and ``/openapi.json`` (FastAPI's schema).
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

from handnet.images.predict import Prediction, predict_images, strongest_units
from handnet.images.preprocess import ImageError, NoInkError
from handnet.train.tta import check_augmented

STATIC = Path(__file__).parent / "static"
IMAGE_TYPES = ["image/png", "image/jpeg", "image/bmp", "application/octet-stream"]


class PredictRequest(BaseModel):
    image: str = Field(
        description="The image as base64, or as a data URL (data:image/png;base64,...). "
        "PNG, JPEG, BMP, GIF, TIFF or WebP, any size; dark ink on light paper or light ink on "
        "dark.",
        min_length=1,
        examples=["data:image/png;base64,iVBORw0KGgo..."],
    )
    top: int = Field(3, ge=1, le=100, description="how many classes to list in `top`")
    explain: bool = Field(
        False, description="also return the strongest hidden units (`hidden`), for the page"
    )


class ClassProbability(BaseModel):
    label: str
    probability: float


class Unit(BaseModel):
    unit: int = Field(description="index of the unit in the first hidden layer")
    activation: float = Field(description="its activation h_j for this input")
    score: float = Field(description="h_j * W2[j, c]: its push towards the predicted class c")
    weights: list[int] = Field(
        description="its incoming weights as a row-major side x side image, scaled to [-127, 127]"
    )


class PredictResponse(BaseModel):
    label: str = Field(description="the predicted class")
    probability: float = Field(description="the predicted class's probability")
    top: list[ClassProbability]
    classes: list[str]
    probabilities: list[float] = Field(description="one per class, in `classes` order")
    input: list[list[int]] = Field(
        description="the preprocessed input as the network saw it (deskewed or width-normalized "
        "if the model was trained that way): side x side, 0-255, white ink on black"
    )
    hidden: list[Unit] | None = Field(None, description="with explain=true: the strongest units")


class ModelInfo(BaseModel):
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
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "not a readable image, or bad base64"},
    413: {"model": Problem, "description": "the request body is larger than the limit"},
    422: {"model": Problem, "description": "the image holds no ink, or the JSON is invalid"},
}


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413. It checks Content-Length up
    front, then reads the body itself (a chunked upload has no Content-Length), counting as it
    goes, and replays it to the app: bodies here are small, and the app never sees an oversized one."""

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
    """ASGI middleware: one line on stderr per request once it is answered (the client, the
    method and path, the status, the milliseconds), as ``handnet serve`` shows them; ``count``
    says how many were answered."""

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
    """Plain base64 or a data URL -> bytes; HTTPException 400 with the reason otherwise."""
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
    With ``tta_views`` > 0 every answer is test-time augmented (`handnet.train.tta`), each request with
    a Generator seeded by ``tta_seed``: the same image always gets the same answer. ``name``
    (the model file) heads the error for a model with no augmentation to draw from."""
    if tta_views:
        check_augmented([clf], [name])  # refused before serving anything
    app = FastAPI(
        title="handnet",
        summary="Draw a digit, or POST an image, and get the network's probabilities.",
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
            with lock:
                rng = np.random.default_rng(tta_seed)
                (pred,) = predict_images(clf, [data], ["image"], tta_views, rng)
                units = strongest_units(clf, pred.seen) if explain else None
        except NoInkError as e:
            raise HTTPException(422, str(e)) from None
        except (ImageError, HandnetError) as e:
            raise HTTPException(400, str(e)) from None
        return _response(pred, top, units)

    @app.get("/api/model", response_model=ModelInfo, summary="What the served model is")
    def model_info() -> ModelInfo:
        return info

    @app.post(
        "/api/predict",
        response_model=PredictResponse,
        responses=ERRORS,
        summary="Classify a base64 image",
    )
    def predict(req: PredictRequest) -> PredictResponse:
        """POST `{"image": "<base64 or data URL>"}`; the image is preprocessed like MNIST (ink
        found, cropped, fitted to 20x20, centred by mass in 28x28) and classified."""
        return answer(decode_base64(req.image), req.top, req.explain)

    @app.post(
        "/api/predict/image",
        response_model=PredictResponse,
        responses=ERRORS,
        summary="Classify an image sent as the raw request body",
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
        """`curl --data-binary @digit.png -H 'Content-Type: image/png' .../api/predict/image`"""
        if not 1 <= top <= 100:
            raise HTTPException(422, "top: must be in [1, 100]")
        data = await request.body()
        return answer(data, top, False)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return BodyLimit(app, max_bytes)


def _response(pred: Prediction, top: int, units: list[Any] | None) -> PredictResponse:
    hidden = None
    if units is not None:
        hidden = []
        for u in units:
            scale = 127 / max(float(np.abs(u.weights).max()), 1e-12)
            w = np.round(u.weights * scale).astype(int).ravel().tolist()
            hidden.append(Unit(unit=u.unit, activation=u.activation, score=u.score, weights=w))
    return PredictResponse(
        label=pred.label,
        probability=float(pred.probabilities.max()),
        top=[ClassProbability(label=c, probability=p) for c, p in pred.top(top)],
        classes=pred.classes,
        probabilities=[float(p) for p in pred.probabilities],
        input=pred.seen.tolist(),
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
    """Load ``model`` (a file, a run directory or RUNS/latest), bind ``host:port`` (a one-line
    error if it is taken) and run the app with uvicorn, a line per request on stderr, until
    SIGINT or SIGTERM; then say so in one line and return that signal's number."""
    import socket

    import uvicorn

    from handnet.images.predict import input_field
    from handnet.train.interrupt import StopSignals
    from handnet.train.modelfile import load_model
    from handnet.train.runs import run_model

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
