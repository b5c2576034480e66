from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.inits import reset
from torch_geometric.typing import Adj, OptPairTensor, PairTensor, Size

from gnn_audio.graph.neighbor_index import NeighborIndex
from gnn_audio.nn.relative_max import max_relative
from gnn_audio.nn.update import check_concat, concat_pair, make_update_nn

__all__ = ["MaxRelativeConv"]


class MaxRelativeConv(MessagePassing):
    r"""The max-relative graph convolution from the `"DeepGCNs: Can GCNs Go as Deep as CNNs?"
    <https://arxiv.org/abs/1904.03751>`_ paper, as used by `Vision GNN
    <https://arxiv.org/abs/2206.00272>`_ and `ATGNN <https://arxiv.org/abs/2311.01526>`_
    (eq. 1-2):

    .. math::
        \mathbf{x}^{\prime}_i = h_{\mathbf{\Theta}} \left( \left[ \mathbf{x}_i \, \Vert \,
        \max_{j \in \mathcal{N}(i)} \left( \mathbf{x}_j - \mathbf{x}_i \right) \right] \right)

    where the max is taken channel-wise and is :math:`\mathbf{0}` for a node without
    neighbours. By default :math:`h_{\mathbf{\Theta}}` is a linear map
    :math:`2F_{in} \to F_{out}`; Pyramid ViG uses ``groups=4, norm="batch", act="gelu"``.

    With a bipartite input ``(x_src, x_dst)`` the messages are
    :math:`\mathbf{x}^{src}_j - \mathbf{x}^{dst}_i` and the output lives on the target nodes
    (Pyramid ViG's pooled key nodes are the sources).

    ``edge_index`` may be a :class:`~gnn_audio.graph.NeighborIndex` (the fixed-shape
    ``[num_dst, k]`` kNN graph that :mod:`gnn_audio.graph`'s builders return for equally
    sized samples): :meth:`message_and_aggregate` then reduces it with one gather-max whose
    backward scatters one value per output element, with no host synchronisation, so that
    ``torch.compile(fullgraph=True)`` captures the layer. An
    :class:`torch_geometric.EdgeIndex` sorted by target or a sparse adjacency is aggregated
    fused on its CSR form; a plain ``[2, E]`` ``edge_index`` goes through
    :meth:`message` and PyG's max aggregation. The aggregation is always the max.

    Args:
        in_channels (int): Size of each input sample :math:`F_{in}`.
        out_channels (int): Size of each output sample :math:`F_{out}`.
        nn (torch.nn.Module, optional): Replaces the default :math:`h_{\mathbf{\Theta}}`: any
            module mapping ``[*, 2 * in_channels]`` to ``[*, out_channels]``, as in PyG's
            :class:`~torch_geometric.nn.conv.EdgeConv`. (default: :obj:`None`)
        groups (int, optional): Channel groups of the default linear map. (default: :obj:`1`)
        norm (str or Callable, optional): Normalisation after the linear map (``"batch"``,
            ``"layer"`` or a class taking the channel count). (default: :obj:`None`)
        act (str or Callable, optional): Activation after the normalisation, e.g.
            ``"gelu"``. (default: :obj:`None`)
        bias (bool, optional): Bias of the default linear map. (default: :obj:`True`)
        concat (str, optional): Order of the concatenation fed to :math:`h`: ``"cat"`` for
            :math:`[\mathbf{x}_i \Vert \mathbf{m}_i]` or ``"interleave"`` for
            :math:`[x_{i,0}, m_{i,0}, x_{i,1}, m_{i,1}, \dots]`, the layout of Vision GNN's
            ``MRConv2d`` (load its weights without permuting them). With ``groups > 1`` the
            two orders are different models. (default: :obj:`"cat"`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing` (``aggr`` must be ``"max"``).

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V}_s|, F_{in}), (|\mathcal{V}_t|, F_{in}))` if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)`, a transposed sparse adjacency or a
          :class:`~gnn_audio.graph.NeighborIndex` :math:`(|\mathcal{V}_t|, k)`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})` or
          :math:`(|\mathcal{V}_t|, F_{out})` if bipartite
    """

    SUPPORTS_FUSED_EDGE_INDEX = True
    #: the relative term is ``x_j - x_i`` (``False``) or ``x_i - x_j`` (``True``)
    DST_MINUS_SRC = False

    def __init__(self, in_channels: int, out_channels: int, nn: Optional[torch.nn.Module] = None,
                 groups: int = 1, norm: Union[str, Callable, None] = None,
                 act: Union[str, Callable, None] = None, bias: bool = True,
                 concat: str = "cat", **kwargs) -> None:
        aggr = kwargs.setdefault("aggr", "max")
        if aggr != "max":
            raise ValueError(f"{self.__class__.__name__} is defined by its max aggregation "
                             f"(got aggr={aggr!r})")
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.concat = check_concat(concat)
        self._h_repr = (f"nn={nn.__class__.__name__}" if nn is not None else
                        f"groups={groups}, norm={norm}, act={act}")
        self.nn = nn if nn is not None else make_update_nn(
            2 * in_channels, out_channels, groups=groups, norm=norm, act=act, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        reset(self.nn)

    def forward(self, x: Union[Tensor, PairTensor],
                edge_index: Union[Adj, NeighborIndex], size: Size = None) -> Tensor:
        if isinstance(x, Tensor):
            x = (x, x)
        m = self.aggregate_relative(x, edge_index, size)
        return self.nn(concat_pair(x[1], m, self.concat))

    def aggregate_relative(self, x: PairTensor, edge_index: Union[Adj, NeighborIndex],
                           size: Size = None) -> Tensor:
        """The max of the relative messages per target node."""
        if isinstance(edge_index, NeighborIndex):
            if not self.explain:  # what propagate's fused path would run, minus its checks
                return self.message_and_aggregate(edge_index, x)
            edge_index = edge_index.to_edge_index()  # explainers need per-edge messages
            size = (x[0].size(0), x[1].size(0))
        return self.propagate(edge_index, x=x, size=size)

    def message(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        return x_i - x_j if self.DST_MINUS_SRC else x_j - x_i

    def message_and_aggregate(self, edge_index: Union[Adj, NeighborIndex],
                              x: OptPairTensor) -> Tensor:
        x_src, x_dst = x
        return max_relative(x_src, x_dst, edge_index, self.DST_MINUS_SRC)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"{self._h_repr}, concat={self.concat})")
