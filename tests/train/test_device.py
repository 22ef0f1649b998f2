"""Training on another array library: the same fit, the same model file, predicted on the CPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from backends import backend_params
from conftest import tiny_dataset

from handnet import Dataset, Rngs, TrainConfig, TrainState, fit, load_model
from handnet.errors import ConfigError
from handnet.train.config import load_config_file
from handnet.train.device import converter
from handnet.train.runs import train_run

CFG = TrainConfig(hidden_sizes=(16,), epochs=3, batch_size=16, dropout=0.2, nesterov=True)
ROOT = Path(__file__).parents[2]


def trained(cfg: TrainConfig) -> tuple[TrainState, list[dict[str, float]]]:
    state = TrainState.fresh(cfg, 20, 3, Rngs.for_config(cfg))
    return state, fit(state, tiny_dataset(), cfg, progress=False)


@pytest.mark.parametrize("device", backend_params())
def test_fit_on_each_library_agrees_with_numpy(device: str) -> None:
    ref_state, ref = trained(dataclasses.replace(CFG, aug_shift=0.0))
    state, history = trained(dataclasses.replace(CFG, aug_shift=0.0, device=device))
    for k, p in state.model.parameters().items():
        assert isinstance(p, np.ndarray) and p.dtype == np.float32  # back on the host
        np.testing.assert_allclose(p, ref_state.model.parameters()[k], rtol=0, atol=1e-5)
    for r, r0 in zip(history, ref):
        assert r["train_loss"] == pytest.approx(r0["train_loss"], rel=1e-5)
        assert r["val_acc"] == r0["val_acc"]


def test_a_model_trained_on_another_library_is_the_same_file(tmp_path: Path) -> None:
    data = tiny_dataset()
    cfg = dataclasses.replace(CFG, aug_shift=0.0, device="torch")
    pytest.importorskip("torch")
    res = train_run(cfg, out=tmp_path, data=data, progress=False)
    clf = load_model(res.model_path)  # NumPy weights, predicted on the CPU
    assert clf.meta["config"]["device"] == "torch"
    ref = train_run(dataclasses.replace(cfg, device="cpu"), out=tmp_path, data=data, progress=False)
    theirs = load_model(ref.model_path).net.predict_logits(data.X_test)
    np.testing.assert_allclose(clf.net.predict_logits(data.X_test), theirs, rtol=0, atol=1e-5)


def test_unknown_device_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"device='tpu'.*must be one of cpu, cuda"):
        TrainConfig(device="tpu")


def test_a_missing_library_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def no_cupy(name: str, package: str | None = None) -> object:
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_cupy)
    with pytest.raises(ConfigError, match=r"--device cupy needs cupy: pip install"):
        converter("cupy")


def test_ciresan_recipe_takes_a_few_steps_on_the_cpu(mnist: Dataset) -> None:
    """configs/ciresan.toml (the six-layer GPU recipe) on 256 images: its network, distortions
    and schedule run, and the loss goes down."""
    cfg = TrainConfig.from_dict(load_config_file(ROOT / "configs" / "ciresan.toml"))
    assert cfg.hidden_sizes == (2500, 2000, 1500, 1000, 500) and cfg.aug_elastic_alpha > 0
    cfg = dataclasses.replace(cfg, epochs=2, warmup_epochs=1.0, aug_thread=False)
    n = 256
    small = dataclasses.replace(
        mnist,
        X_train=mnist.X_train[:n],
        y_train=mnist.y_train[:n],
        X_val=mnist.X_val[:64],
        y_val=mnist.y_val[:64],
    )
    from handnet.train.runs import prepare_augmentation

    rngs = Rngs.for_config(cfg)
    small, batches = prepare_augmentation(cfg, small, rngs)
    assert batches is not None  # distorted anew for every batch
    state = TrainState.fresh(cfg, 784, 10, rngs)
    history = fit(state, small, cfg, progress=False, batch_source=batches)
    assert len(history) == 2 and history[1]["train_loss"] < history[0]["train_loss"]
    assert converter(cfg.device) is None  # the recipe names no device: --device cuda picks the GPU
