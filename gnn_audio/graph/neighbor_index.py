"""A kNN graph in which every target node has the same number of source nodes."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric import EdgeIndex

__all__ = ["NeighborIndex"]


class NeighborIndex(NamedTuple):
    r"""A regular-degree graph: ``index[i]`` holds the ``k`` source nodes of target ``i``.

    This is what the kNN builders return for equally sized samples (every spectrogram of a
    batch has the same grid): a fixed-shape ``[num_dst, k]`` tensor whose shape is known from
    the input shapes, so building and aggregating it needs no host synchronisation and
    ``torch.compile(..., fullgraph=True)`` captures it. Edge ``index[i, t] -> i`` for all
    ``i, t``; sources are global row indices into the source node features (sample ``b``'s
    sources occupy rows ``b * M ... (b + 1) * M - 1``).

    :class:`~gnn_audio.nn.MaxRelativeConv` and :class:`~gnn_audio.nn.PatchLabelConv` take it
    wherever they take an ``edge_index`` and aggregate it in their fused
    ``message_and_aggregate``; :meth:`to_edge_index` gives the same graph as a PyG
    :class:`~torch_geometric.EdgeIndex` for any other PyG layer.

    Attributes:
        index (Tensor): ``[num_dst, k]`` source node of every (target, slot), ``int64``.
        num_src (int): Number of source nodes.
    """

    index: Tensor
    num_src: int

    @property
    def num_dst(self) -> int:
        return self.index.size(0)

    @property
    def k(self) -> int:
        return self.index.size(1)

    def to_edge_index(self) -> EdgeIndex:
        """``[2, num_dst * k]`` (sources in row 0, targets in row 1), sorted by target."""
        n, k = self.index.shape
        dst = torch.arange(n, device=self.index.device).repeat_interleave(k)
        return EdgeIndex(torch.stack([self.index.reshape(-1), dst]),
                         sparse_size=(self.num_src, n), sort_order="col")
