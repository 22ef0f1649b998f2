#!/usr/bin/env bash
# The GPU check (issue 26), in one run on a machine with a CUDA GPU, CuPy and PyTorch:
#   1. the tests of handnet.nn and fit on every array library, CuPy included;
#   2. seconds per epoch at 784-800-10 and 784-2500-2000-1500-1000-500-10, batch 128 and 1024,
#      for handnet on CuPy and on PyTorch's CUDA tensors, beside PyTorch itself (bench/gpu.py);
#   2b. the same six-layer net with ciresan.toml's distortions made on the GPU (--aug distort);
#   3. configs/ciresan.toml on the GPU for CIRESAN_EPOCHS epochs (default 60), its numbers kept.
# Results go to $OUT (default /tmp/gpu-check). Run from the repository root:
#   OUT=/tmp/gpu-check bash bench/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONPATH="${SITE:+$SITE:}$PWD/src" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/machine.txt"
python3 -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)" | tee -a "$OUT/machine.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider -p no:randomly -rs \
  tests/nn/test_array_api.py tests/train/test_device.py tests/data/test_augment_device.py 2>&1 | tail -12 | tee "$OUT/tests.txt"
timeout 240 python3 bench/gpu.py --json "$OUT/epochs.json" 2>&1 | tee "$OUT/epochs.md"
timeout 90 python3 bench/gpu.py --aug distort --shapes 784-2500-2000-1500-1000-500-10 \
  --batches 128 --systems handnet-cupy,handnet-torch-cuda --epochs 2 \
  --json "$OUT/epochs-distort.json" 2>&1 | tee "$OUT/epochs-distort.md"
timeout "${CIRESAN_SECONDS:-300}" python3 -m handnet.cli train --config configs/ciresan.toml \
  --device cuda --epochs "${CIRESAN_EPOCHS:-60}" --split-seed 900 --out /tmp/gpu-runs --json \
  > "$OUT/ciresan.json" 2> "$OUT/ciresan.log"
echo "ciresan exit $?" | tee -a "$OUT/machine.txt"
tail -c 4000 "$OUT/ciresan.log" > "$OUT/ciresan.tail" && rm -f "$OUT/ciresan.log"
cp /tmp/gpu-runs/*/history.csv "$OUT/" 2>/dev/null
exit 0
