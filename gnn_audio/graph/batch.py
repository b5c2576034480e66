"""Feature maps ``[B, C, H, W]`` <-> batched PyG graphs of ``B * H * W`` nodes."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch

__all__ = ["feature_map_to_batch", "batch_to_feature_map", "feature_map_to_nodes",
           "nodes_to_feature_map", "grid_batch_vector"]


def feature_map_to_nodes(x: Tensor) -> Tensor:
    """``[B, C, H, W] -> [B * H * W, C]``, nodes in row-major order per sample.

    A view (no copy) when ``x`` is in ``torch.channels_last`` memory format; one copy
    otherwise."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b * h * w, c)


def nodes_to_feature_map(x: Tensor, grid: Tuple[int, int]) -> Tensor:
    """``[B * H * W, C] -> [B, C, H, W]`` as a ``channels_last`` view (no copy)."""
    h, w = grid
    c = x.size(-1)
    return x.view(-1, h, w, c).permute(0, 3, 1, 2)


def grid_batch_vector(batch_size: int, num_nodes: int, device=None) -> Tensor:
    return torch.arange(batch_size, device=device).repeat_interleave(num_nodes)


def feature_map_to_batch(x: Tensor) -> Batch:
    """A spectrogram feature map as a :class:`~torch_geometric.data.Batch` of ``B`` grid
    graphs.

    Node ``b * H * W + h * W + w`` is cell ``(h, w)`` of sample ``b``; the batch carries
    ``x [B*H*W, C]``, ``batch``, ``ptr``, ``pos [B*H*W, 2]`` (``(h, w)`` as float) and
    ``grid_size = (H, W)``; ``to_data_list()`` and ``get_example()`` work.
    Node features are a view of ``x`` when it is ``channels_last``.
    """
    b, c, h, w = x.shape
    n = h * w
    hh, ww = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device),
                            indexing="ij")
    pos = torch.stack([hh.reshape(-1), ww.reshape(-1)], dim=1).to(x.dtype).repeat(b, 1)
    ptr = torch.arange(0, (b + 1) * n, n, device=x.device)
    data = Batch(x=feature_map_to_nodes(x), pos=pos, batch=grid_batch_vector(b, n, x.device),
                 ptr=ptr)
    data.grid_size = (h, w)
    # what Batch.from_data_list would record, so that get_example / to_data_list work
    data._num_graphs = b
    data._slice_dict = {"x": ptr.cpu(), "pos": ptr.cpu()}
    data._inc_dict = {"x": torch.zeros(b, dtype=torch.long),
                      "pos": torch.zeros(b, dtype=torch.long)}
    return data


def batch_to_feature_map(data: Batch, x: Optional[Tensor] = None) -> Tensor:
    """Inverse of :func:`feature_map_to_batch`: ``[B, C, H, W]`` (a ``channels_last`` view of
    ``x`` or ``data.x``)."""
    return nodes_to_feature_map(data.x if x is None else x, tuple(data.grid_size))
