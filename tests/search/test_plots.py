"""Study figures: one panel per parameter, log axes where the search was log, PNG files written."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from handnet.report.plots import png_bytes
from handnet.search.plots import (
    DPI,
    history_figure,
    importances_figure,
    params_figure,
    write_plots,
)

DISTS = {
    "lr": FloatDistribution(1e-3, 0.5, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "hidden_units": IntDistribution(32, 1024, log=True),
    "activation": CategoricalDistribution(["tanh", "relu"]),
}


def study_with_trials() -> optuna.Study:
    study = optuna.create_study(direction="maximize", study_name="p")
    for i in range(8):
        params = {
            "lr": 1e-3 * 2**i,
            "dropout": 0.05 * i,
            "hidden_units": 32 + 100 * i,
            "activation": ["tanh", "relu"][i % 2],
        }
        value = 0.9 + 0.01 * i
        study.add_trial(create_trial(params=params, distributions=DISTS, value=value,
                                     intermediate_values={1: value - 0.05, 2: value}))  # fmt: skip
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"lr": 0.3, "dropout": 0.1, "hidden_units": 40, "activation": "tanh"},
            distributions=DISTS,
            intermediate_values={1: 0.5},
        )
    )
    return study


def test_params_figure_has_a_panel_per_parameter_with_log_axes_where_the_search_was_log() -> None:
    fig = params_figure(study_with_trials())
    axes = {ax.get_xlabel(): ax for ax in fig.axes}
    assert set(axes) == {"lr (log)", "dropout", "hidden_units (log)", "activation"}
    assert axes["lr (log)"].get_xscale() == "log"
    assert axes["hidden_units (log)"].get_xscale() == "log"
    assert axes["dropout"].get_xscale() == "linear"
    assert [t.get_text() for t in axes["activation"].get_xticklabels()] == ["tanh", "relu"]
    # completed (8), pruned (1) and the best star (1) are all drawn in the lr panel
    sizes = [len(np.asarray(c.get_offsets())) for c in axes["lr (log)"].collections]
    assert sorted(sizes) == [1, 1, 8]


def test_history_draws_the_best_so_far_and_importances_rank_the_parameters() -> None:
    study = study_with_trials()
    best_so_far = np.asarray(history_figure(study).axes[0].lines[0].get_ydata())
    assert list(best_so_far) == sorted(best_so_far)  # never decreases
    assert best_so_far[-1] == 100 * max(t.value for t in study.trials if t.value is not None)
    bars = importances_figure(study).axes[0].patches
    assert len(bars) == len(DISTS)


def test_history_legend_says_that_failed_trials_have_no_point() -> None:
    study = study_with_trials()
    assert not [t for t in legend_texts(study) if "failed" in t]
    study.add_trial(
        create_trial(state=TrialState.FAIL, params={"lr": 0.3}, distributions={"lr": DISTS["lr"]})
    )
    assert "failed trials: 1 (no point)" in legend_texts(study)


def legend_texts(study: optuna.Study) -> list[str]:
    legend = history_figure(study).axes[0].get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def test_importances_of_a_too_small_study_say_why_instead_of_failing() -> None:
    study = optuna.create_study(direction="maximize")
    fig = importances_figure(study)
    assert "not available" in fig.axes[0].texts[0].get_text()


def test_a_study_without_finished_trials_draws_plots_that_say_so(tmp_path: Path) -> None:
    """handnet search --summary draws its plots whatever the study holds: none finished (a new
    study, or every trial failed) is a figure that says so, not a crash."""
    study = optuna.create_study(direction="maximize", study_name="empty")
    study.add_trial(
        create_trial(state=TrialState.FAIL, params={"lr": 0.3}, distributions={"lr": DISTS["lr"]})
    )
    fig = params_figure(study)
    assert fig.axes[0].texts[0].get_text() == "no completed or pruned trial yet"
    assert [p.name for p in write_plots(study, tmp_path)] == [
        "search-params.png",
        "search-history.png",
        "search-importances.png",
    ]


def test_write_plots_writes_each_figure_as_its_png(tmp_path: Path) -> None:
    study = study_with_trials()
    paths = write_plots(study, tmp_path / "out")
    expected = {
        "search-params.png": params_figure,
        "search-history.png": history_figure,
        "search-importances.png": importances_figure,
    }
    assert [p.name for p in paths] == list(expected)
    for p in paths:  # the file holds the figure its name says, drawn in full at the search's DPI
        pixels = decode(p.read_bytes())
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50, (
            f"{p.name} is blank"
        )
        again = decode(png_bytes(expected[p.name](study), dpi=DPI))
        np.testing.assert_array_equal(pixels, again, err_msg=p.name)


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))
