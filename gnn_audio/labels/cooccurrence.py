r"""The label co-occurrence graph of AT-GCN (Wang et al., 2021), eq. 5-7.

From a multi-hot training-label matrix :math:`Y \in \{0,1\}^{N \times S}`:

* :math:`X = Y^\top Y`: :math:`X_{ij}` clips with both labels, :math:`T_i = X_{ii}` clips with
  label :math:`i`; :math:`P_{ij} = X_{ij} / T_i = P(L_j \mid L_i)` (eq. 5, :math:`i \ne j`);
* eq. 6 (threshold): :math:`A_{ij} = P_{ij}` if :math:`P_{ij} \ge \tau` else 0;
* eq. 7 (re-weighting): :math:`A'_{ij} = p\, A_{ij} / \sum_{k \ne i} A_{ik}` for
  :math:`i \ne j`, :math:`A'_{ii} = 1 - p`.

A label whose row is empty (nothing above the threshold, or a label that never occurs) keeps
only its self-loop, with weight 1. Row :math:`i` holds the weights of the edges *into* label
:math:`i`: in message passing label :math:`i` receives :math:`\sum_j A'_{ij} h_j`.

``scheme`` selects the construction (the ablations of the paper's Table II):

=============  ======================================================  ===================
``scheme``     off-diagonal :math:`A'_{ij}`                             :math:`A'_{ii}`
=============  ======================================================  ===================
``"both"``     eq. 6 then eq. 7 (the paper's method)                    :math:`1-p`
``"none"``     :math:`P_{ij}` ("w/o scheme")                            1
``"eq6"``      :math:`P_{ij}\,[P_{ij} \ge \tau]`                        1
``"eq7"``      :math:`p\, P_{ij} / \sum_{k \ne i} P_{ik}`               :math:`1-p`
``"binary"``   :math:`p\, B_{ij} / \sum_{k \ne i} B_{ik}`,              :math:`1-p`
               :math:`B_{ij} = [P_{ij} \ge \tau]` (ML-GCN's binarised
               correlation matrix, refs. [15], [28] of the paper)
=============  ======================================================  ===================

(the self-loop of 1 in ``"none"``/``"eq6"`` is the :math:`\tilde A = A + I` of the GCN
propagation rule; every empty row gets weight 1 on the diagonal.)

Counting is a sparse product (``scipy.sparse``), so AudioSet's 2 M x 527 labels take seconds.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.data import Data

__all__ = ["SCHEMES", "label_cooccurrence_counts", "cooccurrence_adjacency",
           "adjacency_to_graph", "cooccurrence_graph"]

SCHEMES = ("both", "none", "eq6", "eq7", "binary")
TargetsLike = Union[Tensor, np.ndarray, sp.spmatrix, sp.sparray]


def _as_csr(targets: TargetsLike) -> sp.csr_matrix:
    """Any multi-hot ``[N, S]`` matrix as a 0/1 CSR matrix (nonzero = label present)."""
    if isinstance(targets, Tensor):
        if targets.layout != torch.strided:
            coo = targets.to_sparse_coo().coalesce()
            rows, cols = coo.indices().cpu().numpy()
            keep = coo.values().cpu().numpy() != 0
            rows, cols = rows[keep], cols[keep]
        else:
            rows, cols = targets.nonzero(as_tuple=True)
            rows, cols = rows.cpu().numpy(), cols.cpu().numpy()
        shape = tuple(targets.shape)
        data = np.ones(len(rows), dtype=np.int32)
        return sp.csr_matrix((data, (rows, cols)), shape=shape)
    if sp.issparse(targets):
        y = sp.csr_matrix(targets)
    else:
        y = sp.csr_matrix(np.asarray(targets) != 0)
    y.eliminate_zeros()
    y.data = np.ones_like(y.data, dtype=np.int32)
    return y


def label_cooccurrence_counts(targets: TargetsLike) -> np.ndarray:
    """``X = Y^T Y`` as a dense int64 ``[S, S]`` array (``X_ii``: clips with label i)."""
    y = _as_csr(targets)
    return (y.T @ y).toarray().astype(np.int64)


def _reweight(a: np.ndarray, p: float) -> np.ndarray:
    """eq. 7 on an off-diagonal matrix ``a`` (zero diagonal)."""
    row = a.sum(axis=1, keepdims=True)
    out = np.divide(p * a, row, out=np.zeros_like(a), where=row > 0)
    np.fill_diagonal(out, 1.0 - p)
    return out


def cooccurrence_adjacency(targets: TargetsLike, tau: float = 0.3, p: float = 0.2,
                           scheme: str = "both") -> Tensor:
    """The re-weighted label adjacency :math:`A'` (``[S, S]``, float32) of AT-GCN.

    Args:
        targets: multi-hot training labels ``[N, S]``: bool or 0/1, as a torch tensor (dense
            or sparse), a numpy array or a scipy sparse matrix.
        tau: threshold :math:`\\tau` of eq. 6 (paper: 0.3).
        p: neighbour weight :math:`p` of eq. 7 (paper: 0.2).
        scheme: ``"both"``, ``"none"``, ``"eq6"``, ``"eq7"`` or ``"binary"`` (see the module
            docstring).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES} (got {scheme!r})")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1] (got {p})")
    counts = label_cooccurrence_counts(targets).astype(np.float64)
    occurrences = np.diag(counts).copy()
    prob = np.divide(counts, occurrences[:, None], out=np.zeros_like(counts),
                     where=occurrences[:, None] > 0)
    np.fill_diagonal(prob, 0.0)
    if scheme == "none":
        adj = prob
    elif scheme == "eq6":
        adj = np.where(prob >= tau, prob, 0.0)
    elif scheme == "eq7":
        adj = _reweight(prob, p)
    elif scheme == "both":
        adj = _reweight(np.where(prob >= tau, prob, 0.0), p)
    else:  # binary
        adj = _reweight((prob >= tau).astype(np.float64) * (prob > 0), p)
    if scheme in ("none", "eq6"):
        np.fill_diagonal(adj, 1.0)
    empty = (adj.sum(axis=1) - np.diag(adj)) == 0  # no neighbour left: self-loop of weight 1
    adj[empty, empty] = 1.0
    return torch.from_numpy(adj.astype(np.float32))


def adjacency_to_graph(adjacency: Tensor, label_names: Optional[Sequence[str]] = None) -> Data:
    """A dense ``[S, S]`` adjacency (row = target) as a PyG :class:`Data` over the ``S`` label
    nodes: ``edge_index`` (sources in row 0), ``edge_weight`` = :math:`A'_{ij}` for edge
    ``j -> i`` (self-loops included), sorted by target."""
    dst, src = adjacency.nonzero(as_tuple=True)
    data = Data(edge_index=torch.stack([src, dst]), edge_weight=adjacency[dst, src],
                num_nodes=adjacency.size(0))
    if label_names is not None:
        data.label_names = list(label_names)
    return data


def cooccurrence_graph(targets: TargetsLike, tau: float = 0.3, p: float = 0.2,
                       scheme: str = "both",
                       label_names: Optional[Sequence[str]] = None) -> Data:
    """:func:`cooccurrence_adjacency` as a PyG :class:`Data` (see
    :func:`adjacency_to_graph`)."""
    return adjacency_to_graph(cooccurrence_adjacency(targets, tau, p, scheme), label_names)
