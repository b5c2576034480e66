"""Generated log-mel batches with learnable multi-label structure, for tests, benchmarks and
smoke runs of the models (no audio decoding: features directly)."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

__all__ = ["synthetic_logmel_batch"]


def synthetic_logmel_batch(batch_size: int, num_classes: int, frames: int = 1024,
                           mel: int = 128, generator: torch.Generator = None,
                           labels_per_clip: float = 2.0) -> Tuple[Tensor, Tensor]:
    """``(x [B, frames, mel], y [B, num_classes])``: normalised-log-mel-like noise where every
    present label adds energy in its own mel band during a random half of the clip."""
    g = generator
    y = (torch.rand(batch_size, num_classes, generator=g) < labels_per_clip / num_classes)
    y[torch.arange(batch_size), torch.randint(0, num_classes, (batch_size,), generator=g)] = True
    x = 0.5 * torch.randn(batch_size, frames, mel, generator=g)
    band = (torch.arange(num_classes) * mel) // num_classes
    for b, c in y.nonzero().tolist():
        start = int(torch.randint(0, max(1, frames // 2), (1,), generator=g))
        x[b, start:start + frames // 2, band[c]:band[c] + max(1, mel // num_classes)] += 2.0
    return x, y.float()
