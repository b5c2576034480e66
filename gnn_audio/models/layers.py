"""Small generic building blocks of the models (no graph logic here)."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["DropPath", "conv_bn"]


class DropPath(torch.nn.Module):
    """Stochastic depth: drops the whole residual branch of a sample with probability ``p``
    in training (scaling the kept ones by ``1 / (1 - p)``); the identity in eval."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.size(0),) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 1,
            stride: int = 1) -> torch.nn.Sequential:
    """``Conv2d (+bias) -> BatchNorm2d``, the ``fc`` / downsample unit of Vision GNN."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                        padding=kernel_size // 2),
        torch.nn.BatchNorm2d(out_channels))
