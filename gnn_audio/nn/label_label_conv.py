from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric import EdgeIndex
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import segment, spmm

__all__ = ["LabelLabelConv"]

ADJACENCY_MODES = (None, "softmax", "tanh")


class LabelLabelConv(MessagePassing):
    r"""The Label-Label GNN (LLG) layer from the `"ATGNN: Audio Tagging Graph Neural Network"
    <https://arxiv.org/abs/2311.01526>`_ paper (eq. 6): message passing over the complete
    graph of the :math:`S` label nodes of each sample with a learned adjacency,

    .. math::
        \hat{\mathbf{L}} = \mathbf{A} \mathbf{L}^{\prime} + \mathbf{L}^{\prime},
        \qquad \hat{\mathbf{l}}_i = \mathbf{l}^{\prime}_i + \sum_{j=1}^{S} A_{ij}\,
        \mathbf{l}^{\prime}_j,

    where :math:`\mathbf{A} \in \mathbb{R}^{S \times S}` is a parameter with random
    initialisation :math:`\mathcal{U}(\pm 1/\sqrt{S})` shared by all samples (edge
    :math:`j \to i` carries weight :math:`A_{ij}`, ``aggr="add"``).

    The paper's unconstrained :math:`\mathbf{A}` can grow without bound, and stacked LLG
    blocks multiply :math:`(\mathbf{A} + \mathbf{I})`: the authors' full model diverged to NaN
    under fp16 mixed precision. ``adjacency`` bounds it:

    * :obj:`None` (default, the paper): :math:`\mathbf{A}` as learned;
    * ``"softmax"``: row-softmax, every row a convex combination, so
      :math:`\lVert \hat{\mathbf{l}}_i \rVert \le \lVert \mathbf{l}^{\prime}_i \rVert +
      \max_j \lVert \mathbf{l}^{\prime}_j \rVert`;
    * ``"tanh"``: :math:`\tanh(\mathbf{A}) / S`, entries in :math:`(-1/S, 1/S)`, rows of
      absolute sum at most 1.

    Without ``edge_index``, the complete graphs of the samples are aggregated by one batched
    matrix product (:meth:`aggregate_complete`: what the fused message passing over the
    complete graph computes, with no graph built, so ``torch.compile(fullgraph=True)``
    captures it); explainers get the explicit complete graph (:meth:`complete_graph`). Any
    other graph given as ``edge_index`` goes through PyG's regular message passing with
    weights :math:`A_{ij}`.

    Args:
        num_labels (int): Number of label nodes :math:`S` per sample.
        adjacency (str, optional): :obj:`None`, ``"softmax"`` or ``"tanh"``.
            (default: :obj:`None`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** label features :math:`(B \cdot S, F)` ordered sample by sample, label by
          label; optional ``batch`` :math:`(B \cdot S)`
        - **output:** :math:`(B \cdot S, F)`
    """

    SUPPORTS_FUSED_EDGE_INDEX = True

    def __init__(self, num_labels: int, adjacency: Optional[str] = None, **kwargs) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if adjacency not in ADJACENCY_MODES:
            raise ValueError(f"adjacency must be one of {ADJACENCY_MODES} (got {adjacency!r})")
        self.num_labels = num_labels
        self.adjacency = adjacency
        self.weight = Parameter(torch.empty(num_labels, num_labels))
        self._graph_cache: dict = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        bound = 1.0 / math.sqrt(self.num_labels)
        torch.nn.init.uniform_(self.weight, -bound, bound)

    def adjacency_matrix(self) -> Tensor:
        """The effective :math:`\\mathbf{A}` (``[S, S]``, row ``i`` = weights into label ``i``)."""
        if self.adjacency == "softmax":
            return torch.softmax(self.weight, dim=1)  # autocast keeps softmax in float32
        if self.adjacency == "tanh":
            return torch.tanh(self.weight) / self.num_labels
        return self.weight

    def aggregate_complete(self, x: Tensor, adj: Tensor) -> Tensor:
        r""":math:`\sum_j A_{ij} \mathbf{l}^{\prime}_j` over the complete graph of every sample
        (``x`` is ``[B * S, F]``): one batched matrix product."""
        s = self.num_labels
        return torch.matmul(adj.to(x.dtype), x.view(-1, s, x.size(-1))).view_as(x)

    @torch.compiler.disable  # builds an EdgeIndex, which torch.compile cannot trace
    def complete_graph(self, num_samples: int, device: torch.device) -> EdgeIndex:
        """The complete label graph (self-loops included) of ``num_samples`` samples, sorted by
        target: edge ``b*S + j -> b*S + i`` for all ``i, j``."""
        key = (num_samples, device)
        graph = self._graph_cache.get(key)
        if graph is None:
            s = self.num_labels
            local = torch.arange(s, device=device)
            base = torch.arange(num_samples, device=device).repeat_interleave(s * s) * s
            src = local.repeat(s * num_samples) + base
            dst = local.repeat_interleave(s).repeat(num_samples) + base
            graph = EdgeIndex(torch.stack([src, dst]), sparse_size=(s * num_samples,) * 2,
                              sort_order="col")
            graph.get_indptr()  # fill the CSR cache outside of any torch.compile trace
            self._graph_cache = {key: graph}  # keep one: batch size rarely changes
        return graph

    def forward(self, x: Tensor, batch: OptTensor = None, edge_index: Optional[Adj] = None,
                edge_weight: OptTensor = None) -> Tensor:
        """With ``edge_index`` given, runs on that graph instead; its weights default to
        :math:`A_{ij}` looked up by label position (node index modulo :math:`S`)."""
        s = self.num_labels
        if x.size(0) % s:
            raise ValueError(f"expected B * {s} label nodes (got {x.size(0)})")
        if batch is not None and batch.numel() != x.size(0):
            raise ValueError("batch must have one entry per label node")
        adj = self.adjacency_matrix()
        if edge_index is None and not self.explain:
            return self.aggregate_complete(x, adj) + x
        if edge_index is None:  # explainers need per-edge messages and weights
            edge_index = self.complete_graph(x.size(0) // s, x.device)
            needs_weights = True
        else:  # a sparse adjacency carries its weights as values
            needs_weights = (edge_weight is None and isinstance(edge_index, Tensor)
                             and edge_index.layout == torch.strided)
        if needs_weights:
            edge_weight = adj[edge_index[1] % s, edge_index[0] % s]
        out = self.propagate(edge_index, x=x, edge_weight=edge_weight, adj=adj)
        return out + x

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, edge_index: Adj, x: Tensor, edge_weight: OptTensor,
                              adj: Tensor) -> Tensor:
        if any(edge_index is g for g in self._graph_cache.values()):
            return self.aggregate_complete(x, adj)  # the cached complete graphs
        if isinstance(edge_index, EdgeIndex):
            (ptr, src), perm = edge_index.get_csc()
            w = edge_weight if perm is None else edge_weight[perm]
            msg = w.view(-1, 1) * x.index_select(0, src.as_subclass(Tensor))
            return segment(msg, ptr.as_subclass(Tensor), reduce="sum")
        return spmm(edge_index, x, reduce="sum")  # sparse adjacency: its values are weights

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.num_labels}, "
                f"adjacency={self.adjacency})")
