"""The command line fitted to how people use it (issue 28): a run directory is a model, and
RUNS/latest the newest one; training says where its results went; probabilities keep the digits
that tell them apart; settings that quietly spoil a result get a warning; errors in the words of
the flags.

The commands run in this process (`handnet.cli.main`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import Ran
from conftest import quadrants as quadrant_images
from conftest import run_main as handnet
from PIL import Image

from handnet.cli.common import in_flag_words, percent
from handnet.data.registry import load_bundled_mnist
from handnet.train.checkpoint import CHECKPOINT_NAME
from handnet.train.config import TrainConfig

pytestmark = pytest.mark.usefixtures("unrendered_plots")  # files and output, not pixels

OLD, NEW = "model-20240101-000000-aaaaaa", "model-20240102-000000-bbbbbb"


@pytest.fixture(scope="module")
def runs(mnist_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUNS with two finished runs (NEW the newer), one unfinished newer still, and a stray file."""
    out = tmp_path_factory.mktemp("runs")
    for name in (OLD, NEW):
        (out / name).mkdir()
        shutil.copy(mnist_model, out / name / f"{name}.safetensors")
    unfinished = out / "model-20240103-000000-cccccc"
    unfinished.mkdir()
    (unfinished / CHECKPOINT_NAME).write_bytes(b"not read")
    (out / "notes.txt").write_text("a stray file\n")
    return out


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test-set 4, as a PNG."""
    s = load_bundled_mnist()
    path = tmp_path_factory.mktemp("digits") / "four.png"
    Image.fromarray(s.X_test[int(np.flatnonzero(s.y_test == 4)[0])]).save(path)
    return path


@pytest.fixture(scope="module")
def quadrants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small learnable .npz dataset of 28x28 images: the class is the bright quadrant."""
    (x_train, y_train), (x_test, y_test) = quadrant_images(400), quadrant_images(100, seed=1)
    path = tmp_path_factory.mktemp("data") / "quadrants.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def train_quietly(quadrants: Path, out: Path, *flags: str) -> Ran:
    """A quiet 2-epoch run on the quadrants (350 training images); later flags win."""
    args = ("--hidden-sizes", "8", "--epochs", "2", "--warmup-epochs", "0.5", "--val-size", "50")
    r = handnet("train", "--dataset", quadrants, *args, "--out", out, "--quiet", *flags)
    assert r.returncode == 0, r.stderr
    return r


def train(quadrants: Path, out: Path, *flags: str) -> tuple[str, Path]:
    """`train_quietly`'s stdout and run directory; nothing on stderr."""
    r = train_quietly(quadrants, out, *flags)
    assert r.stderr == ""
    (run_dir,) = out.iterdir()
    return r.stdout, run_dir


def model_of(run: Path) -> Path:
    return run / f"{run.name}.safetensors"


def test_info_takes_a_run_directory_and_runs_latest(runs: Path) -> None:
    r = handnet("info", runs / OLD)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["model", str(model_of(runs / OLD))]
    # latest: the newest *finished* run, not the unfinished one named later
    r = handnet("info", runs / "latest")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["model", str(model_of(runs / NEW))]


def test_predict_and_evaluate_take_a_run_directory(runs: Path, four: Path) -> None:
    r = handnet("predict", runs / NEW, four, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["label"] == "4"
    r = handnet("evaluate", runs / "latest", runs / OLD, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == [str(model_of(runs / NEW)), str(model_of(runs / OLD))]


@pytest.mark.parametrize(
    "command",
    [["info"], ["evaluate"], ["predict", "x.png"], ["serve"], ["finetune"], ["plot"], ["report"]],
)
def test_every_model_argument_takes_a_directory(runs: Path, command: list[str]) -> None:
    """Each command resolves its model through the run layout: an unfinished run (a checkpoint,
    no model yet) gets the same one-line answer everywhere, before any data is loaded."""
    unfinished = runs / "model-20240103-000000-cccccc"
    r = handnet(command[0], unfinished, *command[1:])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"handnet {command[0]}: error: {unfinished}: an unfinished run, no model yet "
        f"(resume it: handnet train --resume {unfinished})"
    ]


def test_latest_without_a_finished_run_is_one_line(tmp_path: Path) -> None:
    r = handnet("info", tmp_path / "latest")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"handnet info: error: {tmp_path / 'latest'}: no finished run in {tmp_path} "
        "(model-*/ with its model file)"
    ]


def test_a_directory_named_latest_is_itself(runs: Path, tmp_path: Path) -> None:
    shutil.copytree(runs / OLD, tmp_path / "latest")
    r = handnet("info", tmp_path / "latest")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == [
        "model",
        str(tmp_path / "latest" / f"{OLD}.safetensors"),
    ]


def test_the_help_of_a_model_argument_names_runs_latest() -> None:
    for command in ("info", "predict", "evaluate", "serve", "finetune", "plot", "report"):
        text = " ".join(handnet(command, "--help").stdout.split())  # unwrapped
        assert "or a run directory; RUNS/latest is the newest finished run" in text, command


def test_train_says_where_its_results_went(quadrants: Path, tmp_path: Path) -> None:
    out, run_dir = train(quadrants, tmp_path / "text")
    report, model = run_dir / "report.html", model_of(run_dir)
    assert out.splitlines()[1:] == [
        f"run:    {run_dir}  (8 plots, history.csv, metrics.json, config.toml)",
        f"report: {report}",
        f"model:  {model}",
    ]
    assert report.is_file() and model.is_file() and len(list(run_dir.glob("*.png"))) == 8
    out, run_dir = train(quadrants, tmp_path / "json", "--json")
    paths = {k: v for k, v in json.loads(out).items() if k in ("run_dir", "report", "model")}
    assert paths == {
        "run_dir": str(run_dir),
        "report": str(run_dir / "report.html"),
        "model": str(model_of(run_dir)),
    }


@pytest.mark.parametrize(
    ("p", "shown"),
    [
        (0.99977, "99.98%"),
        (1.8e-4, "0.018%"),
        (0.0042, "0.42%"),
        (0.453, "45.3%"),
        (0.00999, "1.0%"),  # not "1%": .2g would round 0.999 up to a bare 1
        (0.995, "99.50%"),
        (0.9896, "99.0%"),
        (1e-6, "<0.01%"),
        (0.0, "<0.01%"),
        (0.999951, ">99.99%"),
        (1.0, ">99.99%"),  # float32 softmax reaches 1.0; the answer is not certain
    ],
)
def test_a_probability_keeps_the_digits_that_tell_it_apart(p: float, shown: str) -> None:
    assert percent(p) == shown


def test_predict_top_shows_the_runners_up_apart_and_in_order(runs: Path, four: Path) -> None:
    r = handnet("predict", runs / NEW, four, "--top", "5")
    (got,) = json.loads(handnet("predict", runs / NEW, four, "--top", "5", "--json").stdout)
    top = [(t["label"], t["probability"]) for t in got["top"]]
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    shown = ", ".join(f"{c} {percent(p)}" for c, p in top)
    assert r.stdout == f"{four}: 4  ({shown})\n"
    assert "0.0%" not in r.stdout and "100.0%" not in r.stdout


def test_info_prints_the_settings_in_effect_as_a_table(runs: Path) -> None:
    lines = handnet("info", runs / NEW).stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("config "))
    table = [lines[start]] + [line for line in lines[start + 1 :] if line.startswith(" " * 13)]
    rows = dict(line[13:].split(None, 1) for line in table)
    assert rows["hidden_sizes"] == "128" and rows["deskew"] == "no" and rows["dropout"] == "0.0"
    assert "aug_elastic_sigma" not in rows and "finetune_ridge" not in rows
    assert (
        len({line.index(value, 13) for line, value in zip(table, rows.values())}) == 1
    )  # a column
    assert max(map(len, lines[start:])) < 60


@pytest.mark.parametrize(
    ("flags", "warning"),
    [
        (
            ["--batch-size", "1000"],
            "--batch-size 1000: more than the 350 training images, so every epoch is one step "
            "over all of them (2 in all)",
        ),
        (
            ["--epochs", "1", "--warmup-epochs", "1"],
            "--warmup-epochs 1.0: the warmup lasts the whole run (1 epoch), so the learning rate "
            "only rises and never decays; give a shorter --warmup-epochs",
        ),
        (
            ["--warmup-epochs", "2"],
            "--warmup-epochs 2.0: the warmup lasts the whole run (2 epochs), so the learning rate "
            "only rises and never decays; give a shorter --warmup-epochs",
        ),
        (
            ["--finetune", "--val-size", "0"],
            "--finetune: with --val-size 0 no validation images check the refit output layer, "
            "so it is kept whether it helps or not",
        ),
    ],
)
def test_a_setting_that_spoils_the_run_is_one_warning_line(
    quadrants: Path, tmp_path: Path, flags: list[str], warning: str
) -> None:
    """Even with --quiet; the run goes on (these settings are allowed, only rarely meant)."""
    r = train_quietly(quadrants, tmp_path, *flags)
    assert r.stderr.splitlines() == [f"handnet train: warning: {warning}"]
    assert r.stdout.startswith("test accuracy")


def test_the_library_warns_too(quadrants: Path, tmp_path: Path) -> None:
    from handnet.train.runs import SettingWarning, train_run

    cfg = TrainConfig(dataset=str(quadrants), hidden_sizes=(4,), epochs=1, val_size=50)
    with pytest.warns(SettingWarning, match=r"^warmup_epochs=1: the warmup lasts the whole run"):
        train_run(cfg, out=tmp_path, progress=False)


def digit_folder(root: Path, names: dict[str, int]) -> Path:
    """An image folder: for each class name, five MNIST test digits of the given class."""
    s = load_bundled_mnist()
    for name, digit in names.items():
        (root / name).mkdir(parents=True)
        for i, x in enumerate(s.X_test[s.y_test == digit][:5]):
            Image.fromarray(255 - x).save(root / name / f"{i}.png")
    return root


def test_evaluate_on_a_dataset_of_other_classes_warns(runs: Path, tmp_path: Path) -> None:
    other = digit_folder(tmp_path / "clothes", {"Trouser": 1, "Bag": 8})
    r = handnet("evaluate", runs / NEW, "--dataset", other, "--split", "all")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"handnet evaluate: warning: --dataset {other}: the model was trained on mnist, whose "
        "classes (0, 1, ..., 9) are not these (Bag, Trouser); the accuracy compares labels that "
        "mean different things"
    ]
    digits = digit_folder(tmp_path / "digits", {"1": 1, "8": 8})  # the model's own classes
    r = handnet("evaluate", runs / NEW, "--dataset", digits, "--split", "all")
    assert r.returncode == 0 and r.stderr == ""


@pytest.mark.parametrize(
    ("message", "given", "said"),
    [
        ("flags: epochs=-3: must be >= 1", {"epochs": -3}, "--epochs -3: must be at least 1"),
        ("flags: min_lr=0.5: must be in [0, lr]", {"min_lr": 0.5}, "--min-lr 0.5: must be in [0, --lr]"),
        ("flags: nesterov=True: needs momentum > 0", {"nesterov": True}, "--nesterov: needs --momentum above 0"),
        ("flags: hidden_sizes=(): needs at least one hidden layer", {"hidden_sizes": ()}, "--hidden-sizes: needs at least one hidden layer"),
        ("flags: hidden_sizes=(8, -1): every size must be >= 1", {"hidden_sizes": (8, -1)}, "--hidden-sizes 8,-1: every size must be at least 1"),
        # a recipe's setting keeps the recipe's name and key; only the words get plainer
        ("r.toml: epochs=-3: must be >= 1", {"lr": 0.1}, "r.toml: epochs=-3: must be at least 1"),
        # a default the library warns about: the flag, with the value the library saw
        ("warmup_epochs=1: lasts all 1 epochs", {}, "--warmup-epochs 1: lasts all 1 epochs"),
        ("flags: every augmentation is off", {}, "flags: every augmentation is off"),  # no setting
        ("x.npz: no such file", {}, "x.npz: no such file"),
        ("seed_bank=3: no such thing", {}, "seed_bank=3: no such thing"),  # not a setting's name
    ],
)  # fmt: skip
def test_a_settings_message_in_the_words_of_its_flag(message: str, given: dict, said: str) -> None:
    assert in_flag_words(message, given) == said


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["train", "--dataset", "mnits"], "--dataset: mnits is neither a file nor a dataset name; did you mean mnist?"),
        (["train", "--dataset", "Fashion"], "--dataset: Fashion is neither a file nor a dataset name; did you mean fashion-mnist?"),
        (["evaluate", "m", "--dataset", "kmnst"], "--dataset: kmnst is neither a file nor a dataset name; did you mean kmnist?"),
        (["plot", "m", "--dataset", "nowhere.npz"], "--dataset: nowhere.npz is neither a file nor a dataset name; the names are fashion-mnist, kmnist, mnist"),
        (["train", "--epochs", "-3"], "--epochs -3: must be at least 1"),
        (["train", "--lr", "fast"], "--lr: invalid float value: 'fast'"),  # argparse's, without "argument"
        (["predict", "four.png", "model.safetensors"], "four.png is an image; the model comes first: handnet predict MODEL IMAGE..."),
        (["predict", "four.JPG"], "four.JPG is an image; the model comes first: handnet predict MODEL IMAGE..."),
    ],
)  # fmt: skip
def test_messages_a_person_reads(
    args: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = handnet(*args)
    assert r.returncode == 2
    (line,) = r.stderr.splitlines()
    assert line.removesuffix(" (see --help)") == f"handnet {args[0]}: error: {said}"
