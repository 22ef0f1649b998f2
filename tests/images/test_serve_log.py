"""`handnet serve` as a real process says what it does: one line per request, one on shutdown."""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from handnet.data.registry import load_bundled_mnist

pytestmark = pytest.mark.slow  # a server process, started and stopped twice


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def a_digit_png() -> str:
    s = load_bundled_mnist()
    buf = io.BytesIO()
    Image.fromarray(255 - s.X_test[int(np.flatnonzero(s.y_test == 3)[0])]).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_logs_each_request_and_its_shutdown(mnist_model: Path, signum: int) -> None:
    port = free_port()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "handnet.cli",
        "serve",
        str(mnist_model.parent),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # the first request that is answered is the one GET /api/model that succeeds
            try:
                if httpx.get(f"{url}/api/model", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        assert httpx.post(f"{url}/api/predict", json={"image": a_digit_png()}).status_code == 200
        assert httpx.get(f"{url}/nowhere").status_code == 404
    finally:
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    line = r"handnet serve: 127\.0\.0\.1 {} \d+ ms"
    expected = ["GET /api/model 200", "POST /api/predict 200", "GET /nowhere 404"]
    assert len(err.splitlines()) == 3, err
    for got, want in zip(err.splitlines(), expected):
        assert re.fullmatch(line.format(re.escape(want)), got), got
    first, last = out.splitlines()
    assert first.startswith(f"handnet serve: {mnist_model} at {url}/")  # the run's model file
    assert last == f"handnet serve: stopped by {signal.Signals(signum).name} after 3 requests"
