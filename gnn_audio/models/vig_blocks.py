"""Vision GNN blocks over spectrogram feature maps: the PGN (Patch GNN) of ATGNN.

Module and parameter names follow the Pyramid ViG checkpoints (``stem.convs.*``,
``fc1``/``graph_conv``/``fc2`` of a Grapher, ``fc1``/``fc2`` of an FFN, ``conv`` of a
Downsample) so that :func:`gnn_audio.models.vig_weights.load_vig_imagenet` maps ImageNet
weights with a few renames. Feature maps stay in ``torch.channels_last`` memory format, so
that turning them into graph nodes ``[B * H * W, C]`` and back is a view, not a copy.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from gnn_audio.graph import GridKnnGraph, KnnConfig, nodes_to_feature_map
from gnn_audio.nn import MaxRelativeConv

__all__ = ["DropPath", "conv_bn", "Stem", "Downsample", "FFN", "Grapher", "PGNBlock"]


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


def _act() -> torch.nn.Module:
    return torch.nn.GELU()


class Stem(torch.nn.Module):
    """Overlapping 3x3 convolutions from the 1-channel spectrogram to ``out_channels``.

    Pyramid (``num_down=2``, /4): conv s2 (1 -> C/2), conv s2 (C/2 -> C), conv s1 (C -> C),
    each followed by BatchNorm and GELU except the last. Isotropic (``num_down=4``, /16):
    channels C/8, C/4, C/2, C, then a stride-1 conv, as isotropic ViG.
    """

    def __init__(self, out_channels: int, in_channels: int = 1, num_down: int = 2) -> None:
        super().__init__()
        widths = [out_channels // 2 ** (num_down - 1 - i) for i in range(num_down)]
        layers: List[torch.nn.Module] = []
        prev = in_channels
        for w in widths:
            layers += [torch.nn.Conv2d(prev, w, 3, stride=2, padding=1),
                       torch.nn.BatchNorm2d(w), _act()]
            prev = w
        layers += [torch.nn.Conv2d(prev, out_channels, 3, stride=1, padding=1),
                   torch.nn.BatchNorm2d(out_channels)]
        self.convs = torch.nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.convs(x)


class Downsample(torch.nn.Module):
    """Stride-2 3x3 convolution + BatchNorm between pyramid stages."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = conv_bn(in_channels, out_channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class FFN(torch.nn.Module):
    """``x + DropPath(BN(W_2 GELU(BN(W_1 x))))`` with 1x1 convolutions C -> hidden -> C."""

    def __init__(self, channels: int, hidden: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.fc1 = conv_bn(channels, hidden)
        self.act = _act()
        self.fc2 = conv_bn(hidden, channels)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop_path(self.fc2(self.act(self.fc1(x))))


class Grapher(torch.nn.Module):
    r"""ATGNN eq. 3: :math:`\mathbf{y} = \mathbf{x} + \mathrm{DropPath}(W_{out}\,
    \mathrm{GraphConv}(W_{in}\mathbf{x}))`.

    ``fc1`` (1x1 conv + BN) -> dynamic kNN graph of the feature map
    (:class:`~gnn_audio.graph.GridKnnGraph` with ``knn``: k, dilation, pooled keys, relative
    position) -> :class:`~gnn_audio.nn.MaxRelativeConv` C -> 2C (grouped 1x1, groups 4, BN,
    GELU, channel-interleaved as Vision GNN) -> ``fc2`` (1x1 conv 2C -> C + BN) -> DropPath +
    residual. ``grid`` is the design ``(H, W)`` of the block's feature maps.
    """

    def __init__(self, channels: int, *, knn: Union[KnnConfig, dict, None] = None,
                 grid: Optional[Tuple[int, int]] = None, drop_path: float = 0.0) -> None:
        super().__init__()
        self.fc1 = conv_bn(channels, channels)
        self.graph = GridKnnGraph(knn, grid=grid, channels=channels)
        self.graph_conv = MaxRelativeConv(channels, 2 * channels, groups=4, norm="batch",
                                          act="gelu", concat="interleave")
        self.fc2 = conv_bn(2 * channels, channels)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        nodes, keys, edge_index = self.graph(h)
        out = self.graph_conv(nodes if keys is nodes else (keys, nodes), edge_index)
        out = nodes_to_feature_map(out, (h.size(2), h.size(3)))
        return x + self.drop_path(self.fc2(out))


class PGNBlock(torch.nn.Sequential):
    """One Patch GNN block: :class:`Grapher` then :class:`FFN` (hidden 4C); indices 0 and 1
    as in Vision GNN's ``Seq(Grapher, FFN)``."""

    def __init__(self, channels: int, *, knn: Union[KnnConfig, dict, None] = None,
                 grid: Optional[Tuple[int, int]] = None, drop_path: float = 0.0) -> None:
        super().__init__(Grapher(channels, knn=knn, grid=grid, drop_path=drop_path),
                         FFN(channels, 4 * channels, drop_path))
