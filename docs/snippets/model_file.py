"""Write a small model file the way `handnet train` does, then print its layout.

Run at build time by the model-file page: it trains a 784-16-10 network for one epoch on 2,000
images of the bundled MNIST (a second), saves it, and prints the safetensors header and the
handnet metadata as they are in the file. Prints Markdown.
"""

import dataclasses
import json
import re
import struct
import tempfile
from pathlib import Path

import numpy as np

from handnet.data import load_dataset
from handnet.train.config import TrainConfig
from handnet.train.runs import train_run

cfg = TrainConfig(hidden_sizes=(16,), epochs=1, warmup_epochs=0.5, val_size=1000, aug_shift=0.0)
data = load_dataset("mnist", rng=np.random.default_rng(0), val_size=cfg.val_size)
data = dataclasses.replace(data, X_train=data.X_train[:2000], y_train=data.y_train[:2000])
with tempfile.TemporaryDirectory() as runs:  # the build writes nothing into the checkout
    result = train_run(cfg, out=runs, data=data, progress=False)
    raw = Path(result.model_path).read_bytes()

(n,) = struct.unpack("<Q", raw[:8])  # the safetensors layout: a little-endian header length,
header = json.loads(raw[8 : 8 + n])  # then that many bytes of JSON, then the raw tensor data
meta = header.pop("__metadata__")
handnet_meta = json.loads(meta["handnet"])

print(
    f"The file is {len(raw):,} bytes: 8 bytes of header length ({n:,}), {n:,} bytes of JSON "
    f"header, then {len(raw) - 8 - n:,} bytes of float32 tensor data."
)
print()
print("| tensor | dtype | shape | bytes in the data section |")
print("| --- | --- | --- | --- |")
for name, t in header.items():
    start, end = t["data_offsets"]
    print(f"| `{name}` | {t['dtype']} | {t['shape']} | {start:,}-{end:,} |")
print()
print(
    f'`__metadata__` holds two strings: `format` = `"{meta["format"]}"`, and `handnet`, a JSON '
    "object with these keys (the run's history shortened to its first epoch here):"
)
print()
shown = dict(handnet_meta)
shown["history"] = shown["history"][:1]
text = json.dumps(shown, indent=2)
# Lists of numbers or strings on one line each, as a reader would write them.
text = re.sub(
    r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text
)
print("```json")
print(text)
print("```")
