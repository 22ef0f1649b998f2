"""What a run shows: its plots, the HTML report, and image previews."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handnet.data import Dataset
    from handnet.train.classifier import Classifier


def publish(clf: Classifier, data: Dataset, run_dir: Path) -> list[Path]:
    """Draw a finished run's plots and write them with ``report.html`` into ``run_dir``.

    This is the ``publish`` step that `handnet.train_run` and ``handnet train`` give to the run.
    matplotlib is imported only here, when the plots are drawn.

    Parameters
    ----------
    clf : Classifier
        The trained classifier; its metadata holds the config, the history and the metrics.
    data : Dataset
        The run's data; the plots are drawn on its test split (``X_test``, ``y_test``), and
        its ``name`` says where that split came from.
    run_dir : Path
        The run directory the PNGs and ``report.html`` are written into.

    Returns
    -------
    list of Path
        The files written: one ``<name>.png`` per plot, then ``report.html``.
    """
    from handnet.report.html import RunView, publish_run  # matplotlib loads only when drawing

    return publish_run(RunView(clf, data.X_test, data.y_test, data.name), run_dir)
