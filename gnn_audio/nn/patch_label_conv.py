from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.inits import reset
from torch_geometric.typing import Adj, OptPairTensor, PairTensor

from gnn_audio.graph.knn import BACKENDS, knn
from gnn_audio.nn._segment import csr_by_target, relative_extreme
from gnn_audio.nn._update import concat_pair, make_update_nn

__all__ = ["PatchLabelConv"]


class PatchLabelConv(MessagePassing):
    r"""The Patch-Label GNN (PLG) layer from the `"ATGNN: Audio Tagging Graph Neural Network"
    <https://arxiv.org/abs/2311.01526>`_ paper (eq. 4-5): label nodes read from their
    :math:`k` nearest patch nodes of the same sample,

    .. math::
        \mathbf{l}^{\prime}_i = \mathbf{l}_i + h_{\mathbf{\Theta}} \left( \left[
        \mathbf{l}_i \, \Vert \, \max_{j \in \mathcal{N}_k(i)} \left( \mathbf{l}_i -
        \mathbf{x}_j \right) \right] \right)

    where :math:`\mathcal{N}_k(i)` are the :math:`k` patch nodes of label :math:`i`'s sample
    nearest to it in Euclidean distance of L2-normalised features (note the sign: label minus
    patch). Like :class:`~torch_geometric.nn.conv.DynamicEdgeConv`, the bipartite
    patch -> label kNN graph is built inside :meth:`forward`, with
    :func:`gnn_audio.graph.knn` (dense or torch-cluster backend).

    Args:
        channels (int): Feature size of patch and label nodes.
        k (int): Patch neighbours per label node. (default: :obj:`9`)
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
        knn_backend (str, optional): ``"auto"``, ``"dense"`` or ``"cluster"``.
            (default: :obj:`"auto"`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** ``x = (x_patch, x_label)`` of shapes :math:`(|\mathcal{V}_p|, F)` and
          :math:`(|\mathcal{V}_l|, F)`, optional ``batch = (batch_patch, batch_label)``
        - **output:** label features :math:`(|\mathcal{V}_l|, F)`
    """

    SUPPORTS_FUSED_EDGE_INDEX = True

    def __init__(self, channels: int, k: int = 9, nn: Optional[torch.nn.Module] = None,
                 groups: int = 1, norm: Union[str, Callable, None] = None,
                 act: Union[str, Callable, None] = None, bias: bool = True,
                 concat: str = "cat", residual: bool = True, knn_backend: str = "auto",
                 **kwargs) -> None:
        kwargs.setdefault("aggr", "max")
        super().__init__(**kwargs)
        if concat not in ("cat", "interleave"):
            raise ValueError(f"concat must be 'cat' or 'interleave' (got {concat!r})")
        if knn_backend not in BACKENDS:
            raise ValueError(f"knn_backend must be one of {BACKENDS} (got {knn_backend!r})")
        self.channels = channels
        self.k = k
        self.concat = concat
        self.residual = residual
        self.knn_backend = knn_backend
        self._h_repr = (f"nn={nn.__class__.__name__}" if nn is not None else
                        f"groups={groups}, norm={norm}, act={act}")
        self.nn = nn if nn is not None else make_update_nn(
            2 * channels, channels, groups=groups, norm=norm, act=act, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        reset(self.nn)

    def build_graph(self, x: PairTensor,
                    batch: Optional[Tuple[Optional[Tensor], Optional[Tensor]]] = None) -> Adj:
        """The bipartite kNN graph patch -> label (sources: patches, targets: labels)."""
        b_patch, b_label = (None, None) if batch is None else batch
        return knn(x[0], x[1], self.k, b_patch, b_label, normalize=True,
                   backend=self.knn_backend)

    def forward(self, x: PairTensor,
                batch: Optional[Tuple[Optional[Tensor], Optional[Tensor]]] = None,
                edge_index: Optional[Adj] = None) -> Tensor:
        """``edge_index`` (patch -> label) skips the kNN search, e.g. to reuse a graph."""
        if isinstance(x, Tensor):
            raise ValueError("PatchLabelConv expects x = (x_patch, x_label)")
        x_patch, x_label = x
        if edge_index is None:
            edge_index = self.build_graph((x_patch, x_label), batch)
        # propagate: max_j (l_i - x_j) per label node
        m = self.propagate(edge_index, x=(x_patch, x_label),
                           size=(x_patch.size(0), x_label.size(0)))
        out = self.nn(concat_pair(x_label, m, self.concat))
        return x_label + out if self.residual else out

    def message(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        return x_i - x_j

    def message_and_aggregate(self, edge_index: Adj, x: OptPairTensor) -> Tensor:
        x_patch, x_label = x
        ptr, src = csr_by_target(edge_index, x_label.size(0))
        return relative_extreme(x_patch, x_label, ptr, src, dst_minus_src=True)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, k={self.k}, {self._h_repr}, "
                f"concat={self.concat}, residual={self.residual})")
