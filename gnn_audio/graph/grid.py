"""Dynamic kNN graphs over spectrogram feature maps (the Grapher graphs of Pyramid ViG)."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric import EdgeIndex

from gnn_audio.graph.batch import feature_map_to_nodes, grid_batch_vector
from gnn_audio.graph.knn import BACKENDS, knn, pos_distance_bias, resolve_backend
from gnn_audio.graph.position import grid_sincos_embedding, position_scale

__all__ = ["GridKnnGraph", "grid_knn_graph", "pooled_keys", "grid_position_terms"]


def pooled_keys(x: Tensor, r: int) -> Tensor:
    """``r x r`` average-pooled cells of ``[B, C, H, W]`` (a border cell averages what it
    covers), ``x`` itself for ``r = 1``."""
    return x if r == 1 else F.avg_pool2d(x, r, r, ceil_mode=True, count_include_pad=False)


@lru_cache(maxsize=32)
def grid_position_terms(height: int, width: int, r: int, dim: int, device: torch.device,
                        dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """Cached ``(pos_nodes [H*W, D], pos_keys [M, D], bias [H*W, M])`` of one grid:
    sin-cos embeddings of the nodes and of the pooled key cells, and the dense-backend term
    they add to squared distances (scale ``1/sqrt(D)``)."""
    pos_q = grid_sincos_embedding(height, width, dim, 1, device)
    pos_k = pos_q if r == 1 else grid_sincos_embedding(height, width, dim, r, device)
    bias = pos_distance_bias(pos_k, pos_q, position_scale(dim))
    return pos_q.to(dtype), pos_k.to(dtype), bias.to(dtype)


def grid_knn_graph(x: Tensor, k: int = 9, *, dilation: int = 1, reduce_ratio: int = 1,
                   relative_pos: bool = False, stochastic: bool = False, epsilon: float = 0.0,
                   training: bool = False, backend: str = "auto",
                   generator: Optional[torch.Generator] = None
                   ) -> Tuple[Tensor, Tensor, EdgeIndex]:
    r"""The Pyramid ViG graph of a feature map ``[B, C, H, W]``.

    Every node (cell) of a sample connects to its ``k`` (dilated) nearest key nodes of the
    same sample by Euclidean distance of L2-normalised features; keys are the nodes
    themselves (``reduce_ratio = 1``, self included) or ``r x r`` average-pooled cells.
    ``relative_pos`` adds Pyramid ViG's relative-position term (exact formulation, see
    :mod:`gnn_audio.graph.position`).

    Returns:
        ``(x_nodes [B*H*W, C], x_keys [B*M, C], edge_index)``: node and (unnormalised) key
        features and an :class:`~torch_geometric.EdgeIndex` from keys to nodes, sorted by
        node; ``x_keys is x_nodes`` when ``reduce_ratio = 1``.
    """
    b, c, h, w = x.shape
    nodes = feature_map_to_nodes(x)
    key_map = pooled_keys(x, reduce_ratio)
    keys = nodes if reduce_ratio == 1 else feature_map_to_nodes(key_map)
    m = key_map.size(2) * key_map.size(3)
    batch_n = grid_batch_vector(b, h * w, x.device) if b > 1 else None
    batch_k = (batch_n if reduce_ratio == 1 else grid_batch_vector(b, m, x.device)) if b > 1 \
        else None
    pos_kwargs = {}
    if relative_pos:
        pos_q, pos_k, bias = grid_position_terms(h, w, reduce_ratio, c, x.device, x.dtype)
        if resolve_backend(backend, x.device, k * dilation) == "cluster":
            # torch-cluster needs the embeddings appended to every node's features
            pos_kwargs = dict(pos_x=pos_k.repeat(b, 1), pos_y=pos_q.repeat(b, 1),
                              pos_scale=position_scale(c))
        else:  # the dense backend adds the cached [N, M] term; no per-node copies
            pos_kwargs = dict(pos_bias=bias)
    edge_index = knn(keys, nodes, k, batch_k, batch_n, dilation=dilation, normalize=True,
                     stochastic=stochastic, epsilon=epsilon, training=training,
                     backend=backend, generator=generator, num_samples=b, **pos_kwargs)
    return nodes, keys, edge_index


class GridKnnGraph(torch.nn.Module):
    r"""Module form of :func:`grid_knn_graph` that follows ``self.training`` for the
    stochastic dilation.

    Args:
        k (int): Neighbours per node. (default: :obj:`9`)
        dilation (int): Dilation rate. (default: :obj:`1`)
        reduce_ratio (int): Key pooling ratio ``r``. (default: :obj:`1`)
        relative_pos (bool): Add the relative-position term. (default: :obj:`False`)
        stochastic (bool): Stochastic dilation in training. (default: :obj:`False`)
        epsilon (float): Its probability. (default: :obj:`0.2`)
        backend (str): ``"auto"``, ``"dense"`` or ``"cluster"``. (default: :obj:`"auto"`)
    """

    def __init__(self, k: int = 9, dilation: int = 1, reduce_ratio: int = 1,
                 relative_pos: bool = False, stochastic: bool = False, epsilon: float = 0.2,
                 backend: str = "auto") -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"knn backend must be one of {BACKENDS} (got {backend!r})")
        self.k, self.dilation, self.reduce_ratio = k, dilation, reduce_ratio
        self.relative_pos, self.stochastic, self.epsilon = relative_pos, stochastic, epsilon
        self.backend = backend

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, EdgeIndex]:
        return grid_knn_graph(x, self.k, dilation=self.dilation, reduce_ratio=self.reduce_ratio,
                              relative_pos=self.relative_pos, stochastic=self.stochastic,
                              epsilon=self.epsilon, training=self.training, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"k={self.k}, dilation={self.dilation}, reduce_ratio={self.reduce_ratio}, "
                f"relative_pos={self.relative_pos}, stochastic={self.stochastic}, "
                f"backend={self.backend}")
