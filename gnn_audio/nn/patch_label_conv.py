from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.typing import Adj, PairTensor

from gnn_audio.graph.config import KnnConfig
from gnn_audio.graph.knn import knn, knn_index
from gnn_audio.graph.neighbor_index import NeighborIndex
from gnn_audio.nn.max_relative_conv import MaxRelativeConv
from gnn_audio.nn.update import concat_pair

__all__ = ["PatchLabelConv"]

BatchPair = Tuple[Optional[Tensor], Optional[Tensor]]


class PatchLabelConv(MaxRelativeConv):
    r"""The Patch-Label GNN (PLG) layer from the `"ATGNN: Audio Tagging Graph Neural Network"
    <https://arxiv.org/abs/2311.01526>`_ paper (eq. 4-5): label nodes read from their
    :math:`k` nearest patch nodes of the same sample,

    .. math::
        \mathbf{l}^{\prime}_i = \mathbf{l}_i + h_{\mathbf{\Theta}} \left( \left[
        \mathbf{l}_i \, \Vert \, \max_{j \in \mathcal{N}_k(i)} \left( \mathbf{l}_i -
        \mathbf{x}_j \right) \right] \right)

    where :math:`\mathcal{N}_k(i)` are the :math:`k` patch nodes of label :math:`i`'s sample
    nearest to it in Euclidean distance of L2-normalised features (note the sign: label minus
    patch; otherwise the layer is :class:`~gnn_audio.nn.MaxRelativeConv` on the bipartite
    patch -> label graph). Like :class:`~torch_geometric.nn.conv.DynamicEdgeConv`, the graph
    is built inside :meth:`forward` with :mod:`gnn_audio.graph`'s kNN search:

    * equally sized samples (``batch_size`` given, or one sample): a fixed-shape
      :class:`~gnn_audio.graph.NeighborIndex`, no host synchronisation, traceable by
      ``torch.compile(fullgraph=True)`` with the dense backend;
    * samples of any sizes (``batch`` vectors given): the general
      :func:`~gnn_audio.graph.knn` path.

    Args:
        channels (int): Feature size of patch and label nodes.
        knn (KnnConfig or int, optional): The kNN settings of the patch -> label graph, or
            just its ``k`` (``reduce_ratio`` and ``relative_pos`` do not apply).
            (default: :obj:`9`)
        nn (torch.nn.Module, optional): Replaces :math:`h_{\mathbf{\Theta}}` (maps
            ``[*, 2 * channels]`` to ``[*, channels]``). (default: :obj:`None`)
        groups (int, optional): Channel groups of the default linear map. (default: :obj:`1`)
        norm (str or Callable, optional): Normalisation after it. (default: :obj:`None`)
        act (str or Callable, optional): Activation after that. (default: :obj:`None`)
        bias (bool, optional): Bias of the default linear map. (default: :obj:`True`)
        concat (str, optional): ``"cat"`` or ``"interleave"`` (see
            :class:`~gnn_audio.nn.MaxRelativeConv`). (default: :obj:`"cat"`)
        residual (bool, optional): Add :math:`\mathbf{l}_i` (eq. 5). Set to :obj:`False` to
            apply e.g. DropPath to the update before adding it yourself. (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** ``x = (x_patch, x_label)`` of shapes :math:`(|\mathcal{V}_p|, F)` and
          :math:`(|\mathcal{V}_l|, F)`; optional ``batch = (batch_patch, batch_label)`` or
          ``batch_size`` (samples of ``|V_p| / B`` patches and ``|V_l| / B`` labels each)
        - **output:** label features :math:`(|\mathcal{V}_l|, F)`
    """

    DST_MINUS_SRC = True

    def __init__(self, channels: int, knn: Union[KnnConfig, int, dict] = 9,
                 nn: Optional[torch.nn.Module] = None, groups: int = 1,
                 norm: Union[str, Callable, None] = None, act: Union[str, Callable, None] = None,
                 bias: bool = True, concat: str = "cat", residual: bool = True,
                 **kwargs) -> None:
        self.knn_config = KnnConfig.coerce(knn)
        if self.knn_config.relative_pos is not None or self.knn_config.reduce_ratio != 1:
            raise ValueError("PatchLabelConv's graph has no grid: relative_pos and "
                             "reduce_ratio do not apply")
        self.channels = channels
        self.residual = residual
        super().__init__(channels, channels, nn=nn, groups=groups, norm=norm, act=act,
                         bias=bias, concat=concat, **kwargs)

    @property
    def k(self) -> int:
        return self.knn_config.k

    def build_graph(self, x: PairTensor, batch: Optional[BatchPair] = None,
                    batch_size: Optional[int] = None) -> Union[NeighborIndex, Adj]:
        """The bipartite kNN graph patch -> label (sources: patches, targets: labels)."""
        cfg = self.knn_config
        x_patch, x_label = x
        if batch is None:  # equally sized samples: fixed shapes
            b = 1 if batch_size is None else int(batch_size)
            if x_patch.size(0) % b or x_label.size(0) % b:
                raise ValueError(f"{x_patch.size(0)} patch and {x_label.size(0)} label nodes "
                                 f"do not split into {b} equal samples")
            return knn_index(x_patch.view(b, -1, x_patch.size(-1)),
                             x_label.view(b, -1, x_label.size(-1)), cfg.k,
                             dilation=cfg.dilation, normalize=cfg.normalize,
                             stochastic=cfg.stochastic, epsilon=cfg.epsilon,
                             training=self.training, backend=cfg.backend)
        b_patch, b_label = batch
        return knn(x_patch, x_label, cfg, b_patch, b_label, training=self.training)

    def forward(self, x: PairTensor, batch: Optional[BatchPair] = None,
                edge_index: Optional[Union[Adj, NeighborIndex]] = None,
                batch_size: Optional[int] = None) -> Tensor:
        """``edge_index`` (patch -> label) skips the kNN search, e.g. to reuse a graph."""
        if isinstance(x, Tensor):
            raise ValueError("PatchLabelConv expects x = (x_patch, x_label)")
        x_patch, x_label = x
        if edge_index is None:
            edge_index = self.build_graph((x_patch, x_label), batch, batch_size)
        # max_j (l_i - x_j) per label node
        m = self.aggregate_relative((x_patch, x_label), edge_index,
                                    (x_patch.size(0), x_label.size(0)))
        out = self.nn(concat_pair(x_label, m, self.concat))
        return x_label + out if self.residual else out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, k={self.k}, {self._h_repr}, "
                f"concat={self.concat}, residual={self.residual})")
