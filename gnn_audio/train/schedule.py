"""The learning-rate schedule of the PSLA / AST / ATGNN recipes, per optimiser step: a linear
warm-up over the first ``warmup_steps`` steps, then step decay by epoch (the ATGNN FSD50K
recipe: halved every 5 epochs after epoch 10)."""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["lr_factor", "make_scheduler"]


def lr_factor(step: int, steps_per_epoch: int, *, warmup_steps: int = 0,
              decay_start: Optional[int] = None, decay_every: int = 5,
              decay: float = 0.5) -> float:
    """The multiple of the base rate used by optimiser step ``step`` (0-based).

    * warm-up (PSLA): step ``s < warmup_steps`` uses ``(s + 1) / warmup_steps``;
    * decay: the epoch of the step, ``e = step // steps_per_epoch`` (0-based), uses
      ``decay ** ((e - decay_start) // decay_every + 1)`` once ``e >= decay_start``: with
      ``decay_start=10, decay_every=5`` epochs 1-10 (1-based) train at the base rate, 11-15 at
      half of it, 16-20 at a quarter, ... (PSLA's ``MultiStepLR(range(10, ., 5), 0.5)``
      stepped after each epoch).
    """
    factor = 1.0
    if step < warmup_steps:
        factor = (step + 1) / warmup_steps
    if decay_start is not None:
        epoch = step // max(1, steps_per_epoch)
        if epoch >= decay_start:
            factor *= decay ** ((epoch - decay_start) // decay_every + 1)
    return factor


class _Factor:
    """A picklable ``step -> factor`` for :class:`~torch.optim.lr_scheduler.LambdaLR`."""

    def __init__(self, steps_per_epoch: int, **settings) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.settings = settings

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.steps_per_epoch, **self.settings)


def make_scheduler(optimizer: torch.optim.Optimizer, steps_per_epoch: int, recipe
                   ) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step :class:`~torch.optim.lr_scheduler.LambdaLR` following ``recipe``
    (:class:`~gnn_audio.train.recipe.Recipe`'s ``optim.warmup_steps``, ``optim.lr_decay_*``)."""
    optim = recipe.optim
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _Factor(
        steps_per_epoch, warmup_steps=optim.warmup_steps, decay_start=optim.lr_decay_start,
        decay_every=optim.lr_decay_every, decay=optim.lr_decay))
