"""Numeric precision of a training or evaluation step: fp32, bf16 autocast, or fp16 autocast
with a gradient scaler (fp16's range is too small for unscaled gradients)."""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

__all__ = ["PRECISIONS", "check_precision", "autocast", "grad_scaler"]

#: ``fp32`` (no autocast), ``bf16`` (autocast to bfloat16), ``fp16`` (autocast to float16 with a
#: :class:`torch.amp.GradScaler`)
PRECISIONS = ("fp32", "bf16", "fp16")


def check_precision(precision: str, device: torch.device) -> None:
    """Raise ``ValueError`` for an unknown precision or one the device cannot run."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision == "fp16" and torch.device(device).type == "cpu":
        raise ValueError("fp16 autocast needs a GPU; use bf16 on the CPU")


def autocast(precision: str, device: torch.device) -> ContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    check_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(torch.device(device).type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for fp16 only (a disabled scaler passes steps through)."""
    check_precision(precision, device)
    return torch.amp.GradScaler(torch.device(device).type, enabled=precision == "fp16")
