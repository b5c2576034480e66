"""Dynamic kNN graphs over spectrogram feature maps (the Grapher graphs of Pyramid ViG)."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn_audio.graph.batch import feature_map_to_nodes
from gnn_audio.graph.config import KnnConfig
from gnn_audio.graph.knn import knn_index
from gnn_audio.graph.neighbor_index import NeighborIndex
from gnn_audio.graph.position import node_key_embeddings, position_scale, position_term

__all__ = ["GridKnnGraph", "grid_knn_graph", "pooled_keys"]


def pooled_keys(x: Tensor, r: int, partial_cells: bool = True) -> Tensor:
    """``r x r`` average-pooled cells of ``[B, C, H, W]``, ``x`` itself for ``r = 1``.

    ``partial_cells=True`` keeps a partial border cell (averaging what it covers); ``False``
    drops it, as the reference code's ``avg_pool2d(x, r, r)``."""
    if r == 1:
        return x
    return F.avg_pool2d(x, r, r, ceil_mode=partial_cells, count_include_pad=False)


@lru_cache(maxsize=32)
def _cached_term(mode: str, height: int, width: int, dim: int, r: int,
                 design_size: Optional[Tuple[int, int]], device: torch.device,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    return position_term(mode, height, width, dim, r, design_size, device, dtype)


@lru_cache(maxsize=32)
@lru_cache(maxsize=32)
def _cached_embeddings(height: int, width: int, dim: int, r: int,
                       device: torch.device) -> Tuple[Tensor, Tensor]:
    pos_q, pos_k = node_key_embeddings(height, width, dim, r, device)
    return pos_q.float(), pos_k.float()


class GridKnnGraph(torch.nn.Module):
    r"""The Pyramid ViG graph of a feature map ``[B, C, H, W]``.

    Every node (cell) of a sample connects to its ``k`` (dilated) nearest key nodes of the
    same sample by Euclidean distance of L2-normalised features; keys are the nodes
    themselves (``reduce_ratio = 1``, self included) or ``r x r`` average-pooled cells.
    ``relative_pos`` adds Pyramid ViG's relative-position term (see
    :mod:`gnn_audio.graph.position`). The stochastic dilation follows ``self.training``.

    All samples of a feature map have the same grid, so the graph is a fixed-shape
    :class:`~gnn_audio.graph.NeighborIndex`; with the dense backend the whole build is
    traceable by ``torch.compile(fullgraph=True)`` and never synchronises with the host.

    Args:
        config (KnnConfig): The kNN settings (``k``, ``dilation``, ``reduce_ratio``,
            ``relative_pos``, ``stochastic``, ``epsilon``, ``backend``).
        grid (tuple, optional): ``(H, W)`` of the feature maps the module expects (a model's
            design size). With ``channels`` and a relative-position mode, the term is computed
            once here (a non-persistent buffer: it moves with the module and is not saved).
            Other sizes work; their term is computed (and cached) on the fly. The
            ``"reference"`` table is defined relative to this design size.
        channels (int, optional): Feature size ``C`` of the maps (the embedding size).
    """

    def __init__(self, config: Union[KnnConfig, dict, None] = None,
                 grid: Optional[Tuple[int, int]] = None, channels: Optional[int] = None
                 ) -> None:
        super().__init__()
        self.config = KnnConfig.coerce(config)
        self.grid = None if grid is None else (int(grid[0]), int(grid[1]))
        self.channels = channels
        self.pos_term: Optional[Tensor]
        if self.config.relative_pos is not None and self.grid is not None \
                and channels is not None and self.config.backend == "dense":
            self.register_buffer("pos_term", self._term(*self.grid, channels,
                                                        torch.device("cpu")), persistent=False)
        else:
            self.pos_term = None

    def _term(self, height: int, width: int, channels: int, device: torch.device,
              dtype: torch.dtype = torch.float32) -> Tensor:
        return _cached_term(self.config.relative_pos, height, width, channels,
                            self.config.reduce_ratio, self.grid, device, dtype)

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None
                ) -> Tuple[Tensor, Tensor, NeighborIndex]:
        """Returns ``(x_nodes [B*H*W, C], x_keys [B*M, C], graph)``: node and (unnormalised)
        key features and the keys -> nodes :class:`~gnn_audio.graph.NeighborIndex`;
        ``x_keys is x_nodes`` when ``reduce_ratio = 1``."""
        cfg = self.config
        b, c, h, w = x.shape
        nodes = feature_map_to_nodes(x)
        # partial border cells kept: on grids that r divides (the reference code's only
        # case) ceil and floor pooling are the same cells
        key_map = pooled_keys(x, cfg.reduce_ratio)
        keys = nodes if cfg.reduce_ratio == 1 else feature_map_to_nodes(key_map)
        m = key_map.size(2) * key_map.size(3)
        pos_bias, pos = None, None
        if cfg.relative_pos is not None and cfg.backend == "dense":
            # float64 features get the sin-cos term computed in float64, not the float32
            # buffer cast up (its rounding, ~1e-8, would decide near-tied neighbours)
            exact = x.dtype == torch.float64 and cfg.relative_pos == "sincos"
            if self.pos_term is not None and (h, w) == self.grid and c == self.channels \
                    and not exact:
                pos_bias = self.pos_term
            else:
                pos_bias = self._term(h, w, c, x.device,
                                      torch.float64 if exact else torch.float32)
        elif cfg.relative_pos is not None:  # torch-cluster: embeddings appended to features
            pos_q, pos_k = _cached_embeddings(h, w, c, cfg.reduce_ratio, x.device)
            pos = (pos_k, pos_q, position_scale(c))
        graph = knn_index(keys.view(b, m, c), nodes.view(b, h * w, c), cfg.k,
                          dilation=cfg.dilation, normalize=cfg.normalize, pos_bias=pos_bias,
                          pos=pos, stochastic=cfg.stochastic, epsilon=cfg.epsilon,
                          training=self.training, backend=cfg.backend, generator=generator)
        return nodes, keys, graph

    def extra_repr(self) -> str:
        cfg = self.config
        return (f"k={cfg.k}, dilation={cfg.dilation}, reduce_ratio={cfg.reduce_ratio}, "
                f"relative_pos={cfg.relative_pos}, stochastic={cfg.stochastic}, "
                f"backend={cfg.backend}")


def grid_knn_graph(x: Tensor, config: Union[KnnConfig, dict, int, None] = None, *,
                   training: bool = False, generator: Optional[torch.Generator] = None,
                   **settings) -> Tuple[Tensor, Tensor, NeighborIndex]:
    r"""Functional form of :class:`GridKnnGraph`: ``grid_knn_graph(fmap, 9, reduce_ratio=4,
    relative_pos=True)``; ``config`` is a :class:`KnnConfig`, a dict of its fields or ``k``,
    ``settings`` are further :class:`KnnConfig` fields."""
    cfg = KnnConfig.coerce(config)
    if settings:
        cfg = cfg.replace(**settings)
    module = GridKnnGraph(cfg)
    module.train(training)
    return module(x, generator)
