"""A study's results: the leaderboard, and the best model copied out and evaluated on test once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from handnet.data import load_splits
from handnet.io import atomic_write_bytes, atomic_write_text, load_model
from handnet.train import evaluate_logits


def state_counts(study: optuna.Study) -> dict[str, int]:
    c = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return dict(sorted(c.items()))


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best validation accuracy first (ties: the earlier trial)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: (-(t.value or 0.0), t.number))


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def leaderboard(study: optuna.Study, top: int = 10) -> str:
    """The ``top`` completed trials as a fixed-width table, with the state counts above it."""
    counts = state_counts(study)
    total = sum(counts.values())
    lines = [
        f"study {study.study_name}: {total} trials ("
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + ")"
    ]
    rows = ranked(study)[:top]
    if not rows:
        return lines[0] + "\nno completed trial yet"
    names = list(rows[0].params)
    head = ["rank", "trial", "val_acc", *names, "seconds", "model"]
    table = [
        [
            str(i + 1),
            str(t.number),
            f"{t.value:.2%}",
            *(_fmt(t.params.get(n, "")) for n in names),
            f"{t.user_attrs.get('seconds', float('nan')):.1f}",
            str(t.user_attrs.get("model", "")),
        ]
        for i, t in enumerate(rows)
    ]
    widths = [max(len(r[j]) for r in [head, *table]) for j in range(len(head))]
    for r in [head, *table]:
        lines.append(
            "  ".join(
                c.rjust(w) if j < len(head) - 1 else c for j, (c, w) in enumerate(zip(r, widths))
            )
        )
    return "\n".join(lines)


def finalize_best(
    study: optuna.Study,
    study_dir: Path,
    *,
    data_dir: Path | None = None,
    mirror: str | None = None,
) -> dict[str, Any] | None:
    """Copy the best trial's model to ``best.safetensors`` and evaluate it on the test set.

    The test set is touched once per best model: the result is stored in the study (user attr
    ``best_test``) and in ``best.json``, and reused until a better trial appears.
    """
    best = ranked(study)[:1]
    if not best:
        return None
    t = best[0]
    target = study_dir / "best.safetensors"
    done = study.user_attrs.get("best_test")
    if done and done.get("trial") == t.number:
        if not target.exists() and Path(done["model"]).exists():
            atomic_write_bytes(target, Path(done["model"]).read_bytes())
        return dict(done)
    src = Path(t.user_attrs["model"])
    if not src.exists():  # trained on another machine of a distributed study
        return {"trial": t.number, "model": str(src), "missing": f"{src} is not on this machine"}
    study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, src.read_bytes())
    clf = load_model(target)
    splits, _ = load_splits(str(clf.meta.get("dataset", "mnist")), data_dir, mirror)
    test = evaluate_logits(clf.net.predict_logits(clf.prepare(splits.X_test)), splits.y_test)
    record = {
        "trial": t.number,
        "model": str(src),
        "best": str(target),
        "params": t.params,
        "val_accuracy": t.value,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "test_per_class_accuracy": test.per_class_accuracy,
    }
    study.set_user_attr("best_test", record)
    atomic_write_text(study_dir / "best.json", json.dumps(record, indent=2) + "\n")
    return record


def best_line(record: dict[str, Any] | None) -> str:
    if record is None:
        return "best: none (no completed trial)"
    if "missing" in record:
        return f"best: trial {record['trial']} ({record['missing']}; run --summary there)"
    return (
        f"best: trial {record['trial']}  val {record['val_accuracy']:.2%}  "
        f"test {record['test_accuracy']:.2%} (evaluated once)  -> {record['best']}"
    )
