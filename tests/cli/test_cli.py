"""The command line as a user runs it: exit codes, one-line errors, the files it writes. The
commands run in this process (`handnet.cli.main`); a real process only where the process itself is
the point (the interpreter's exit code, a closed pipe)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import quadrants, write_idx_dir
from conftest import run_main as handnet

from handnet.cli import main
from handnet.report.run_plots import PLOTS

HANDNET = [sys.executable, "-m", "handnet.cli"]
pytestmark = pytest.mark.usefixtures("unrendered_plots")  # files and output, not pixels


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small, learnable IDX dataset: the class is which quadrant of the image is bright."""
    return write_idx_dir(
        tmp_path_factory.mktemp("quadrants"), quadrants(600), quadrants(200, seed=1)
    )


@pytest.fixture(scope="module")
def trained(idx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs")
    r = handnet(
        "train",
        "--dataset",
        str(idx_dir),
        "--hidden-sizes",
        "16",
        "--epochs",
        "3",
        "--val-size",
        "100",
        "--out",
        str(out),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    return Path(metrics["model"]), metrics


def test_train_writes_a_run_directory(trained: tuple[Path, dict]) -> None:
    model, metrics = trained
    run_dir = model.parent
    assert model.name == run_dir.name + ".safetensors" and run_dir.name.startswith("model-")
    plots = [f"{name}.png" for name in PLOTS]
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["config.toml", "history.csv", "metrics.json", model.name, "report.html", *plots]
    )
    assert metrics["test_accuracy"] > 0.9 and metrics["epochs"] == 3
    assert (run_dir / "history.csv").read_text().splitlines()[
        0
    ] == "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds"
    assert len((run_dir / "history.csv").read_text().splitlines()) == 4


def test_config_file_is_reusable_and_flags_win(trained: tuple[Path, dict], tmp_path: Path) -> None:
    model, _ = trained
    cfg = model.parent / "config.toml"
    r = handnet(
        *("train", "--config", str(cfg), "--epochs", "1", "--split-seed", "4"),
        *("--out", str(tmp_path), "--json"),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["epochs"] == 1
    assert "split_seed = 4" in (Path(out["model"]).parent / "config.toml").read_text()
    assert "split_seed" not in cfg.read_text()  # unset: the run's own seed splits
    r = handnet("train", "--split-seed", "-2", "--out", str(tmp_path))
    assert r.returncode == 2 and "error: --split-seed -2: must be at least 0" in r.stderr


def test_evaluate_and_info(trained: tuple[Path, dict], idx_dir: Path) -> None:
    model, metrics = trained
    r = handnet("evaluate", str(model), "--dataset", str(idx_dir), "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert len(ev["confusion"]) == 4 and sum(map(sum, ev["confusion"])) == 200
    r = handnet("evaluate", str(model), "--dataset", str(idx_dir))
    assert "per-class accuracy" in r.stdout and "confusion matrix" in r.stdout
    r = handnet("info", str(model))
    assert r.returncode == 0 and "Dense(784, 16)" in r.stdout and "test" in r.stdout
    assert json.loads(handnet("info", str(model), "--json").stdout)["format_version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--lr", "-1"], "error: --lr -1.0: must be a positive number"),
        (["train", "--dropout", "1"], "error: --dropout 1.0: must be in [0, 1)"),
        (["train", "--batch-size", "0"], "error: --batch-size 0: must be at least 1"),
        (
            ["train", "--hidden-sizes", "0"],
            "error: --hidden-sizes 0: every size must be at least 1",
        ),
        (["train", "--activation", "sigmoid"], "error: --activation sigmoid: must be one of"),
        (["train", "--epochs", "0"], "error: --epochs 0: must be at least 1"),
        (["train", "--epochs", "many"], "error: --epochs: expected a whole number"),
        (["train", "--dataset", "nowhere.npz"], "nowhere.npz is neither a file nor a dataset"),
        (["train", "--config", "missing.toml"], "missing.toml: file not found"),
        (["evaluate", "missing.safetensors"], "missing.safetensors: file not found"),
        (["info", "pyproject.toml"], "not a safetensors file"),
        (["plot", "missing"], "missing: file not found"),
        (["report", "."], ".: a directory with no .safetensors model"),
        (["report", "pyproject.toml"], "not a safetensors file"),
        (["frobnicate"], "invalid choice"),
        (["train", "--hidden-sizes", ","], "--hidden-sizes: needs at least one hidden layer"),
        (["augment-preview", "--n", "100000", "--out", "p.png"], "--n 100000: must be in"),
        (["augment-preview", "--out", "p.jpg"], "p.jpg: the preview is a PNG"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    r = handnet(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()


def test_the_interpreter_exits_with_the_commands_code(tmp_path: Path) -> None:
    """`python -m handnet.cli` hands main's code to the shell: 0, or 2 and one line on stderr."""
    ok = subprocess.run([*HANDNET, "--version"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("handnet ")
    r = subprocess.run(
        [*HANDNET, "train", "--lr", "-1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--lr -1.0" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_config_values_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.toml").write_text('lr = "fast"\nwidth = 3\n')
    assert main(["train", "--config", str(tmp_path / "r.toml"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "r.toml" in err and "unknown setting" in err
    (tmp_path / "b.toml").write_text("lr = [")
    assert main(["train", "--config", str(tmp_path / "b.toml")]) == 2
    assert "invalid TOML" in capsys.readouterr().err
    (tmp_path / "u.toml").write_bytes(b"\xff\xfe x")  # a binary file: not even text
    assert main(["train", "--config", str(tmp_path / "u.toml")]) == 2
    assert "u.toml: not UTF-8 text" in capsys.readouterr().err


def test_evaluate_rejects_labels_beyond_the_model(
    trained: tuple[Path, dict], tmp_path: Path
) -> None:
    model, _ = trained
    imgs = np.zeros((3, 28, 28), np.uint8)
    np.savez(
        tmp_path / "d.npz",
        x_train=imgs,
        y_train=np.array([0, 1, 9]),
        x_test=imgs,
        y_test=np.array([0, 1, 9]),
    )
    r = handnet("evaluate", str(model), "--dataset", str(tmp_path / "d.npz"))
    assert r.returncode == 2 and "labels go up to 9" in r.stderr


def test_plot_and_report_from_the_model_file_alone(
    trained: tuple[Path, dict],
    idx_dir: Path,
    tmp_path: Path,
) -> None:
    model, metrics = trained
    alone = tmp_path / "alone" / model.name
    alone.parent.mkdir()
    alone.write_bytes(model.read_bytes())
    r = handnet("plot", str(alone))  # the test split comes from the path stored in the model
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in alone.parent.glob("*.png")) == sorted(f"{k}.png" for k in PLOTS)
    assert r.stdout.split() == [str(alone.parent / f"{k}.png") for k in PLOTS]
    r = handnet("report", str(model.parent), "--dataset", str(idx_dir), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "report.html").read_text()
    assert r.stdout.strip() == str(tmp_path / "report.html")
    assert page.count("data:image/png;base64,") == len(PLOTS)
    assert f"{metrics['test_accuracy']:.2%}" in page


def test_augmented_training_with_finetune_reports_it(idx_dir: Path, tmp_path: Path) -> None:
    r = handnet(
        *("train", "--dataset", str(idx_dir), "--hidden-sizes", "16", "--epochs", "2"),
        *("--val-size", "100", "--aug-shift", "1", "--aug-elastic-alpha", "8", "--finetune"),
        *("--out", str(tmp_path), "--json"),
    )
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    ft = m["finetune"]
    assert ft["method"] == "cholesky" and ft["kept"] == (ft["val_after"] >= ft["val_before"])
    cfg = (Path(m["model"]).parent / "config.toml").read_text()
    assert "aug_shift = 1.0" in cfg and "finetune = true" in cfg


def test_finetune_command_writes_a_new_model(trained: tuple[Path, dict], idx_dir: Path) -> None:
    model, metrics = trained
    out = model.with_name("tuned.safetensors")
    r = handnet("finetune", str(model), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["val_before"] == pytest.approx(metrics["val_accuracy"])
    assert out.exists() and res["model"] == str(out)
    ev = json.loads(handnet("evaluate", str(out), "--dataset", str(idx_dir), "--json").stdout)
    assert ev["accuracy"] == pytest.approx(res["test_accuracy"])


def test_evaluate_several_models_as_a_committee(
    trained: tuple[Path, dict], idx_dir: Path, tmp_path: Path
) -> None:
    model, _ = trained
    r = handnet(
        *("train", "--dataset", str(idx_dir), "--hidden-sizes", "16", "--epochs", "3"),
        *("--val-size", "100", "--seed", "1", "--out", str(tmp_path), "--json"),
    )
    other = Path(json.loads(r.stdout)["model"])
    r = handnet("evaluate", str(model), str(other), "--dataset", str(idx_dir), "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["model"] == [str(model), str(other)] and sum(map(sum, ev["confusion"])) == 200
    alone = [
        json.loads(handnet("evaluate", str(m), "--dataset", str(idx_dir), "--json").stdout)
        for m in (model, other)
    ]
    assert ev["member_accuracy"] == [a["accuracy"] for a in alone]
    assert alone[0]["member_accuracy"] == [alone[0]["accuracy"]]
    text = handnet("evaluate", str(model), str(other), "--dataset", str(idx_dir)).stdout
    lo, hi = sorted(a["accuracy"] for a in alone)
    assert text.startswith("committee of 2")
    assert f"members {lo:.2%} to {hi:.2%}, mean {(lo + hi) / 2:.2%}" in text


def test_evaluate_with_test_time_augmentation(
    trained: tuple[Path, dict], idx_dir: Path, tmp_path: Path
) -> None:
    model, metrics = trained
    args = ("evaluate", str(model), "--dataset", str(idx_dir), "--json")
    r = handnet(*args, "--tta", "4")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["tta"] == {"views": 4, "seed": 0} and sum(map(sum, ev["confusion"])) == 200
    assert ev["accuracy"] > 0.9 and ev["loss"] != pytest.approx(metrics["test_loss"])
    assert json.loads(handnet(*args, "--tta", "4").stdout) == ev  # same seed, same answer
    assert json.loads(handnet(*args).stdout)["tta"] is None
    text = handnet("evaluate", str(model), str(model), "--dataset", str(idx_dir), "--tta", "2")
    assert "each with 2 augmented copies (--tta-seed 0)" in text.stdout.splitlines()[0]
    r = handnet(
        *("train", "--dataset", str(idx_dir), "--hidden-sizes", "8", "--epochs", "1"),
        *("--aug-shift", "0", "--val-size", "0", "--out", str(tmp_path), "--json"),
    )
    unaugmented = json.loads(r.stdout)["model"]
    r = handnet("evaluate", str(model), unaugmented, "--dataset", str(idx_dir), "--tta", "4")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{unaugmented}: --tta: the model was trained without augmentation" in r.stderr
    r = handnet("serve", unaugmented, "--port", "0", "--tta", "4")  # refused before listening
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{unaugmented}: --tta: the model was trained without augmentation" in r.stderr


def test_evaluate_on_the_validation_images_the_models_held_out(
    trained: tuple[Path, dict], idx_dir: Path, tmp_path: Path
) -> None:
    model, metrics = trained
    r = handnet("evaluate", str(model), "--split", "validation", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert (ev["split"], ev["n"], ev["dataset"]) == ("validation", 100, str(idx_dir))
    assert ev["accuracy"] == pytest.approx(metrics["val_accuracy"])  # the very images it held out
    assert ev["loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)
    assert (
        "on " + str(idx_dir) + " validation (100 images)"
        in handnet("evaluate", str(model), "--split", "validation").stdout.splitlines()[0]
    )

    def train(*flags: str) -> str:
        r = handnet(
            *("train", "--dataset", str(idx_dir), "--hidden-sizes", "8", "--epochs", "1"),
            *(*flags, "--out", str(tmp_path), "--json"),
        )
        assert r.returncode == 0, r.stderr
        return str(json.loads(r.stdout)["model"])

    shared = train("--val-size", "100", "--seed", "5", "--split-seed", "0")  # model's split
    r = handnet("evaluate", str(model), shared, "--split", "validation", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == 100 and json.loads(r.stdout)["model"][1] == shared
    for other, message in [
        (train("--val-size", "100", "--seed", "5"), "held out other validation images than"),
        (train("--val-size", "0"), "trained with val_size 0, so it held out no validation"),
    ]:
        r = handnet("evaluate", str(model), other, "--split", "validation")
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert f"{other}: {message}" in r.stderr
    r = handnet("evaluate", str(model), "--split", "validation", "--dataset", str(idx_dir))
    assert r.returncode == 2 and "--dataset: not with --split validation" in r.stderr


def test_a_model_looks_for_its_data_where_its_run_found_it(
    idx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(idx_dir, tmp_path / "data" / "fashion-mnist")  # as if unpacked there
    monkeypatch.setenv("HANDNET_CACHE", str(tmp_path / "empty-cache"))
    r = handnet(
        *("train", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "data")),
        *("--hidden-sizes", "8", "--epochs", "1", "--val-size", "100", "--out", str(tmp_path)),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    # No --data-dir (nor network) here: the model file says where the data was.
    ev = handnet("evaluate", run["model"], "--json")
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["accuracy"] == pytest.approx(run["test_accuracy"])
    assert handnet("plot", run["model"], "--out", str(tmp_path / "p")).returncode == 0


def test_plot_refuses_a_file_in_the_way_of_out(trained: tuple[Path, dict], tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("keep")
    r = handnet("plot", str(trained[0]), "--out", str(tmp_path / "taken"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "taken: is a file, not a directory" in r.stderr
    assert (tmp_path / "taken").read_text() == "keep"


def test_a_batch_larger_than_the_training_set_is_the_whole_set(
    idx_dir: Path, tmp_path: Path
) -> None:
    r = handnet(
        *("train", "--dataset", str(idx_dir), "--hidden-sizes", "8", "--epochs", "2"),
        *("--val-size", "100", "--batch-size", "1000000000", "--out", str(tmp_path), "--json"),
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["steps"] == 2  # one step per epoch, over all 500 images


def test_a_run_without_validation_shows_none_and_valid_json(idx_dir: Path, tmp_path: Path) -> None:
    r = handnet(
        *("train", "--dataset", str(idx_dir), "--hidden-sizes", "8", "--epochs", "1"),
        *("--val-size", "0", "--out", str(tmp_path), "--json"),
    )
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["model"]
    assert "validation none (trained with --val-size 0)" in handnet("info", model).stdout

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    meta = json.loads(handnet("info", model, "--json").stdout, parse_constant=refuse)
    assert meta["history"][0]["val_loss"] is None


def test_out_of_memory_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import handnet.cli.models

    def too_big(args: object) -> int:
        raise MemoryError("Unable to allocate 29.2 GiB for an array with shape (10000000, 784)")

    monkeypatch.setattr(handnet.cli.models, "cmd_info", too_big)
    assert main(["info", "m.safetensors"]) == 2
    assert capsys.readouterr().err == (
        "handnet info: error: out of memory (Unable to allocate 29.2 GiB for an array with "
        "shape (10000000, 784))\n"
    )


def test_finetune_that_keeps_nothing_writes_nothing(
    trained: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    import handnet.nn.finetune

    refit = handnet.nn.finetune.finetune_output
    monkeypatch.setattr(
        handnet.nn.finetune,
        "finetune_output",
        lambda *a, **k: dataclasses.replace(refit(*a, **k), kept=False),
    )
    model, _ = trained
    before = sorted(model.parent.iterdir())
    assert main(["finetune", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] is None
    assert sorted(model.parent.iterdir()) == before


def test_augment_preview_draws_a_png(tmp_path: Path) -> None:
    out = tmp_path / "preview.png"
    r = handnet("augment-preview", "--n", "16", "--aug-rotate", "10", "--out", str(out))
    assert r.returncode == 0, r.stderr
    raw = out.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    # 8 columns of 28 + 2 px; 2 blocks of (1 original + 2 augmented) rows; zoomed 3x
    assert (width, height) == (3 * (8 * 30 + 2), 3 * (6 * 30 + 2))
    assert handnet("augment-preview", "--out", str(out), "--aug-scale", "2").returncode == 2
    r = handnet("augment-preview", "--n", "4", "--width-normalize", "12", "--out", str(out))
    assert r.returncode == 0 and "4 digits (width 12 px)" in r.stdout, r.stderr
    # neither a recipe nor --aug-* flags: Simard's elastic distortions, not train's 1 px shifts
    assert "shift=0.0" in r.stdout and "elastic_alpha=34.0" in r.stdout, r.stdout
    r = handnet("augment-preview", "--out", str(out), "--aug-shift", "0")
    assert r.returncode == 2, r.stderr
    assert "error: --aug-shift 0.0: every augmentation is off" in r.stderr, r.stderr


def test_shape_flags_reach_the_model_and_mix_in_committees(
    trained: tuple[Path, dict], idx_dir: Path, tmp_path: Path
) -> None:
    plain, _ = trained
    r = handnet(
        *("train", "--dataset", str(idx_dir), "--hidden-sizes", "16", "--epochs", "2"),
        *("--val-size", "100", "--deskew", "--width-normalize", "16"),
        *("--out", str(tmp_path / "a"), "--json"),
    )
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    model = Path(m["model"])
    cfg = model.parent / "config.toml"
    assert "deskew = true" in cfg.read_text() and "width_normalize = 16" in cfg.read_text()
    assert "deskewed, width 16 px, normalization" in handnet("info", str(model)).stdout
    ev = json.loads(handnet("evaluate", str(model), "--dataset", str(idx_dir), "--json").stdout)
    assert ev["accuracy"] == pytest.approx(m["test_accuracy"])  # test images normalized again
    r = handnet("evaluate", str(model), str(plain), "--dataset", str(idx_dir), "--json")
    assert r.returncode == 0, r.stderr  # each member prepares its own inputs
    r = handnet(
        *("train", "--config", str(cfg), "--no-deskew", "--width-normalize", "0"),
        *("--epochs", "1", "--out", str(tmp_path / "b"), "--json"),
    )
    assert r.returncode == 0, r.stderr
    back = Path(json.loads(r.stdout)["model"]).parent / "config.toml"
    assert "deskew = false" in back.read_text() and "width_normalize = 0" in back.read_text()
    r = handnet("train", "--width-normalize", "40", "--epochs", "1", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--width-normalize 40" in r.stderr


def test_a_reader_that_leaves_early_gets_no_traceback(trained: tuple[Path, dict]) -> None:
    model, _ = trained
    p = subprocess.Popen(
        [*HANDNET, "info", str(model)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # like `handnet info M | head -0`
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141 and err == ""
