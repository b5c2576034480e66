"""A node-wise (1x1) linear map with grouped weights, as Vision GNN's ``BasicConv`` uses."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

__all__ = ["GroupedLinear"]


class GroupedLinear(torch.nn.Module):
    r"""Applies :math:`\mathbf{y} = [\mathbf{W}_1 \mathbf{x}^{(1)} \Vert \cdots \Vert
    \mathbf{W}_g \mathbf{x}^{(g)}] + \mathbf{b}` to node features, where the input channels are
    split into ``groups`` equal blocks :math:`\mathbf{x}^{(1)}, \dots, \mathbf{x}^{(g)}`.

    It is the node-feature equivalent of ``Conv2d(in, out, 1, groups=g)`` and stores its weight
    in the same layout (``[out_channels, in_channels // groups]``), so 1x1 convolution weights
    load with a reshape. With ``groups=1`` it is :class:`torch.nn.Linear`.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        groups (int, optional): Number of channel groups. (default: :obj:`1`)
        bias (bool, optional): Learn an additive bias. (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(*, F_{in})`
        - **output:** :math:`(*, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        if groups < 1:
            raise ValueError(f"groups must be at least 1 (got {groups})")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be divisible by groups ({groups})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.weight = Parameter(torch.empty(out_channels, in_channels // groups))
        self.bias = Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the default initialisation of torch.nn.Linear / Conv2d (fan_in = in_channels // groups)
        torch.nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight.size(1))
            torch.nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.size(-1) != self.in_channels:
            raise ValueError(f"{self.__class__.__name__} expects {self.in_channels} input "
                             f"channels in the last dimension (got shape {tuple(x.shape)})")
        if self.groups == 1:
            return F.linear(x, self.weight, self.bias)
        # A grouped 1x1 convolution over a channels-last view of the nodes: one fused kernel
        # (measured faster than einsum/bmm on CPU) and counted correctly by flop counters.
        shape = x.shape
        w = self.weight.view(self.out_channels, -1, 1, 1)
        if x.numel() == 0:  # no nodes: conv2d rejects an empty image, not an empty batch
            out = F.conv2d(x.reshape(-1, self.in_channels, 1, 1), w, self.bias, groups=self.groups)
            return out.reshape(*shape[:-1], self.out_channels)
        x2 = x.reshape(1, -1, 1, self.in_channels).permute(0, 3, 1, 2)
        out = F.conv2d(x2, w, self.bias, groups=self.groups)
        return out.permute(0, 2, 3, 1).reshape(*shape[:-1], self.out_channels)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"groups={self.groups}, bias={self.bias is not None})")
