"""Learning-rate schedules: pure functions of the step, called by the training loop every step."""

from __future__ import annotations

import math


def warmup_cosine(
    step: int, *, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0
) -> float:
    """Linear warmup to ``base_lr``, then the seed's cosine decay to ``min_lr`` at ``total_steps``.

    warmup (step < W):   lr = base_lr * (step + 1) / W
    cosine (W <= step):  lr = min_lr + (base_lr - min_lr) * 1/2 * (1 + cos(pi * (step - W) / (T - W)))

    With min_lr = 0 the cosine branch is exactly the seed report's formula. Past T it stays at min_lr.
    Steps run from 0 to T - 1: the first warmup step already takes base_lr / W, the peak is used at
    steps W - 1 and W, and the last step taken is a hair above min_lr (min_lr itself is step T).
    With W = T (warmup as long as the run) there is no decay: every step after warmup is past T.

    Parameters
    ----------
    step : int
        The step about to be taken, from 0.
    base_lr : float
        The peak learning rate, reached at the end of warmup.
    warmup_steps : int
        W, the length of the linear warmup, in steps.
    total_steps : int
        T, the step at which the cosine reaches ``min_lr``.
    min_lr : float, default=0.0
        The floor of the decay.

    Returns
    -------
    float
        The learning rate for ``step``.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    ratio = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    assert 0.0 <= ratio <= 1.0
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * ratio))
