"""One optimisation step of a tagging model: forward under the chosen precision, binary
cross-entropy on logits, backward (through a gradient scaler for fp16), optional gradient
clipping, optimiser and scheduler step. The trainer and ``benchmarks/train_throughput.py`` run
this same object, so the benchmark measures the step that training takes."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn_audio.precision import autocast, grad_scaler

__all__ = ["TrainStep", "NonFiniteLoss"]


class NonFiniteLoss(FloatingPointError):
    """The loss of a step was NaN or infinite."""


class TrainStep:
    """``step(x, y) -> loss`` (a detached 0-d tensor on the model's device).

    Args:
        model: the model (possibly wrapped in DDP and / or compiled).
        optimizer: its optimiser.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (see :mod:`gnn_audio.precision`).
        device: where the model runs.
        clip_grad_norm: clip the global gradient norm to this value (``None``: no clipping).
        scheduler: stepped after every optimiser step (per-iteration schedules).
        check_finite: raise :class:`NonFiniteLoss` when the loss is NaN / inf, before the
            optimiser step, so the weights stay the last finite ones. It costs one host sync.
        reduce_loss: maps the local loss to the one every rank checks (under DDP: the mean
            over ranks, so that all ranks stop together when one rank's loss is not finite).

    :attr:`frozen` lists parameters left untouched by the step (their gradients are dropped
    before the optimiser step: a frozen backbone during the first fine-tuning epochs; under
    DDP their gradients are still computed and reduced, so the wrapped model need not change).
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *,
                 precision: str = "fp32", device: torch.device = torch.device("cpu"),
                 clip_grad_norm: Optional[float] = None,
                 scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
                 check_finite: bool = True,
                 reduce_loss: Optional[Callable[[Tensor], Tensor]] = None) -> None:
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0 or None (got {clip_grad_norm})")
        self.model = model
        self.optimizer = optimizer
        self.precision = precision
        self.device = torch.device(device)
        self.clip_grad_norm = clip_grad_norm
        self.scheduler = scheduler
        self.check_finite = check_finite
        self.reduce_loss = reduce_loss
        self.scaler = grad_scaler(precision, self.device)
        self.frozen: Sequence[torch.nn.Parameter] = ()

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """BCE-with-logits of ``model(x)`` against the (possibly mixed) targets ``y``."""
        with autocast(self.precision, self.device):
            logits = self.model(x)
        return F.binary_cross_entropy_with_logits(logits.float(), y.float())

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        self.model.train()
        # the previous step's gradients are freed before this forward's activations peak
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(x, y)
        if self.check_finite:
            checked = loss.detach() if self.reduce_loss is None else self.reduce_loss(
                loss.detach().clone())
            if not bool(torch.isfinite(checked)):
                raise NonFiniteLoss(f"loss is {float(checked)}")
        self.scaler.scale(loss).backward()
        for p in self.frozen:
            p.grad = None
        if self.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach()
