r"""k-nearest-neighbour graphs with two interchangeable backends.

* ``"cluster"`` calls :func:`torch_cluster.knn` directly (CPU KD-tree, CUDA brute force).
  torch_geometric 2.8's own ``knn_graph`` needs pyg-lib and ignores torch-cluster.
* ``"dense"`` computes batched squared distances (``baddbmm``) and ``topk`` per sample, the
  Pyramid ViG way, in memory-bounded chunks; samples of different sizes are padded.

Both return the same neighbour sets (ties aside) as an :class:`torch_geometric.EdgeIndex`
``[2, E]`` with sources (``x``/keys) in row 0 and targets (``y``/queries) in row 1, sorted by
target: every target's neighbours are contiguous and ordered by distance. No builder ever
connects nodes of different samples.

Variants (keyword arguments of :func:`knn` / :func:`knn_graph`):

* ``normalize``: L2-normalise features first (Pyramid ViG, ATGNN).
* ``dilation=d``: the k neighbours are every d-th of the ``k*d`` nearest.
* ``stochastic`` with ``epsilon``: with probability epsilon a random k of the ``k*d`` nearest
  (one draw per call, as Vision GNN), only when ``training``.
* ``pos_x`` / ``pos_y``: position embeddings appended (scaled) to the features, the exact
  form of Pyramid ViG's relative-position term (see :mod:`gnn_audio.graph.position`).

A target with fewer than ``k*d`` candidates in its sample keeps the candidates it has, still
taking every d-th.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric import EdgeIndex

__all__ = ["knn", "knn_graph", "resolve_backend", "pos_distance_bias", "BACKENDS",
           "CUDA_CLUSTER_MAX_K"]

BACKENDS = ("auto", "dense", "cluster")
#: torch-cluster's CUDA kernel refuses more than this many neighbours per query.
CUDA_CLUSTER_MAX_K = 100
#: upper bound on the distance block one dense step materialises, in bytes: cache-sized
#: blocks on CPU (measured fastest), large blocks (few kernel launches) on GPUs.
DENSE_CHUNK_BYTES = {"cpu": 16 * 2 ** 20, "cuda": 1024 * 2 ** 20}


def resolve_backend(backend: str, device: torch.device, kd: int = 0) -> str:
    """``"auto"`` -> ``"dense"``. On CPU ``benchmarks/bench_layers.py`` measured it 15x
    (stage 1) and 41x (stage 3) faster than torch-cluster's KD-tree, which degrades on
    80-640-d features. On CUDA it is the Pyramid ViG method (one batched GEMM + topk per
    chunk) and has no ``k * dilation <= 100`` limit; run the benchmark on a GPU to compare.
    Asking for ``"cluster"`` on CUDA with ``kd > 100`` raises."""
    if backend not in BACKENDS:
        raise ValueError(f"knn backend must be one of {BACKENDS} (got {backend!r})")
    if backend == "auto":
        return "dense"
    if backend == "cluster" and device.type == "cuda" and kd > CUDA_CLUSTER_MAX_K:
        raise ValueError(f"torch-cluster's CUDA knn allows at most {CUDA_CLUSTER_MAX_K} "
                         f"neighbours per query (asked for k*dilation={kd}); "
                         f"use knn_backend='dense'")
    return backend


# -- candidate search: returns [num_y, kd] source indices sorted by distance, -1 padded ---------

def _sample_slices(batch: Optional[Tensor], n: int, num_samples: int) -> Tensor:
    """``ptr`` of a sorted batch vector with ``num_samples`` samples."""
    if batch is None:
        return torch.tensor([0, n])
    counts = torch.bincount(batch.cpu(), minlength=num_samples)
    return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])


def _dense_candidates(x: Tensor, y: Tensor, kd: int, ptr_x: Tensor, ptr_y: Tensor,
                      bias: Optional[Tensor]) -> Tensor:
    num_samples = ptr_x.numel() - 1
    nx, ny = ptr_x.diff(), ptr_y.diff()
    out = torch.full((y.size(0), kd), -1, dtype=torch.long, device=y.device)
    uniform = bool((nx == nx[0]).all() and (ny == ny[0]).all())
    if uniform:
        groups = [(0, num_samples)]
    else:  # one sample at a time; padding would waste memory on skewed sizes
        groups = [(b, b + 1) for b in range(num_samples)]
    for b0, b1 in groups:
        mx, my = int(nx[b0]), int(ny[b0])
        if mx == 0 or my == 0:
            continue
        xs = x[int(ptr_x[b0]):int(ptr_x[b1])].view(b1 - b0, mx, -1)
        ys = y[int(ptr_y[b0]):int(ptr_y[b1])].view(b1 - b0, my, -1)
        kk = min(kd, mx)
        # score_ij = |x_j|^2 - 2 y_i.x_j (+ bias_ij): |y_i|^2 is constant per target and left
        # out; |x_j|^2 rides along as an extra GEMM column so that the bias (or nothing) is
        # the only addend and no separate pass over the [targets, sources] block is needed.
        x_aug = torch.cat([-2.0 * xs, (xs * xs).sum(-1, keepdim=True)], dim=-1)
        y_aug = torch.cat([ys, ys.new_ones(ys.shape[:-1] + (1,))], dim=-1)
        budget = DENSE_CHUNK_BYTES.get(y.device.type, DENSE_CHUNK_BYTES["cuda"])
        step_b = max(1, budget // (4 * my * mx))
        step_q = my if step_b > 1 else max(1, budget // (4 * mx))
        for s0 in range(0, b1 - b0, step_b):
            s1 = min(b1 - b0, s0 + step_b)
            for q0 in range(0, my, step_q):
                q1 = min(my, q0 + step_q)
                lhs, rhs = y_aug[s0:s1, q0:q1], x_aug[s0:s1].transpose(1, 2)
                dist = (torch.bmm(lhs, rhs) if bias is None
                        else torch.baddbmm(bias[q0:q1].expand(s1 - s0, -1, -1), lhs, rhs))
                idx = dist.topk(kk, dim=-1, largest=False, sorted=True).indices
                idx = idx + ptr_x[b0 + s0:b0 + s1].to(idx.device).view(-1, 1, 1)
                rows = (torch.arange(s0, s1, device=y.device)[:, None] * my
                        + torch.arange(q0, q1, device=y.device)[None, :]).reshape(-1)
                out[int(ptr_y[b0]) + rows, :kk] = idx.reshape(-1, kk)
    return out


def _cluster_candidates(x: Tensor, y: Tensor, kd: int, batch_x: Optional[Tensor],
                        batch_y: Optional[Tensor]) -> Tensor:
    import torch_cluster

    row, col = torch_cluster.knn(x, y, kd, batch_x, batch_y,
                                 num_workers=max(1, torch.get_num_threads()))
    # Order each query's candidates by distance (the CPU KD-tree does not promise an order),
    # then lay them out as a -1 padded [num_y, kd] matrix.
    d = (x.index_select(0, col) - y.index_select(0, row)).pow(2).sum(-1)
    order = torch.argsort(d, stable=True)
    order = order[torch.argsort(row[order], stable=True)]
    row, col = row[order], col[order]
    ptr = torch.zeros(y.size(0) + 1, dtype=torch.long, device=y.device)
    ptr[1:] = torch.bincount(row, minlength=y.size(0)).cumsum(0)
    rank = torch.arange(row.numel(), device=y.device) - ptr[row]
    out = torch.full((y.size(0), kd), -1, dtype=torch.long, device=y.device)
    out[row, rank] = col
    return out


def _drop_self(cand: Tensor, kd: int) -> Tensor:
    """``[n, kd+1]`` candidates of a graph on itself -> ``[n, kd]`` without the node itself
    (or without the farthest candidate, for a full row where duplicates pushed it out)."""
    n = cand.size(0)
    is_self = cand == torch.arange(n, device=cand.device)[:, None]
    full_no_self = ~is_self.any(1) & (cand[:, -1] >= 0)
    is_self[:, -1] |= full_no_self
    order = torch.argsort(is_self.to(torch.int8), dim=1, stable=True)
    return cand.gather(1, order)[:, :kd]


def _select(cand: Tensor, k: int, dilation: int, random_subset: bool,
            generator: Optional[torch.Generator]) -> Tensor:
    kd = cand.size(1)
    if random_subset:
        cols = torch.randperm(kd, generator=generator)[:k].sort().values
        return cand[:, cols.to(cand.device)]
    return cand[:, ::dilation][:, :k]


def _to_edge_index(nbr: Tensor, num_x: int) -> EdgeIndex:
    n, k = nbr.shape
    dst = torch.arange(n, device=nbr.device).repeat_interleave(k)
    src = nbr.reshape(-1)
    if bool((src < 0).any()):
        keep = src >= 0
        src, dst = src[keep], dst[keep]
    edge_index = EdgeIndex(torch.stack([src, dst]), sparse_size=(num_x, n), sort_order="col")
    edge_index.get_indptr()  # fill the CSR cache now: torch.compile cannot trace filling it
    return edge_index


def pos_distance_bias(pos_x: Tensor, pos_y: Tensor, scale: float) -> Tensor:
    """``[n_y, n_x]``: ``scale^2 (|p_x|^2 - 2 p_y . p_x)``, the appended-embedding distance
    term up to the per-target constant ``scale^2 |p_y|^2``."""
    return scale ** 2 * ((pos_x * pos_x).sum(-1)[None, :] - 2 * pos_y @ pos_x.t())


def _append_pos(x: Tensor, pos: Optional[Tensor], scale: float) -> Tensor:
    return x if pos is None else torch.cat([x, (scale * pos).to(x.dtype)], dim=-1)


@torch.compiler.disable  # data-dependent search that builds an EdgeIndex: runs eagerly
def knn(x: Tensor, y: Tensor, k: int, batch_x: Optional[Tensor] = None,
        batch_y: Optional[Tensor] = None, *, dilation: int = 1, normalize: bool = False,
        pos_x: Optional[Tensor] = None, pos_y: Optional[Tensor] = None,
        pos_scale: float = 1.0, pos_bias: Optional[Tensor] = None, stochastic: bool = False,
        epsilon: float = 0.0, training: bool = False, backend: str = "auto",
        generator: Optional[torch.Generator] = None, loop: bool = True,
        num_samples: Optional[int] = None) -> EdgeIndex:
    r"""For every row of ``y`` (targets), its ``k`` (dilated) nearest rows of ``x`` (sources)
    within the same sample.

    Args:
        x (Tensor): Source (key) features ``[N_x, C]``.
        y (Tensor): Target (query) features ``[N_y, C]``.
        k (int): Neighbours per target.
        batch_x, batch_y (Tensor, optional): Sorted sample index of every row.
        dilation (int): Keep every ``dilation``-th of the ``k * dilation`` nearest.
        normalize (bool): L2-normalise ``x`` and ``y`` over channels first.
        pos_x, pos_y (Tensor, optional): Position embeddings appended, times ``pos_scale``, to
            the (normalised) features: adds ``pos_scale**2 * |p_i - q_j|^2`` to the distance.
        pos_bias (Tensor, optional): The same term precomputed for the dense backend as a
            ``[targets per sample, sources per sample]`` matrix (up to per-target constants),
            e.g. cached by :class:`~gnn_audio.graph.GridKnnGraph`; ignored by ``"cluster"``.
        stochastic, epsilon, training: With probability ``epsilon``, when ``stochastic`` and
            ``training``, a random ``k`` of the ``k * dilation`` nearest instead.
        backend (str): ``"auto"``, ``"dense"`` or ``"cluster"``.
        generator (torch.Generator, optional): For the stochastic draw.
        loop (bool): For graphs on themselves (``x is y``), whether a node may be its own
            neighbour. (default: :obj:`True`)
        num_samples (int, optional): Number of samples (default: from the batch vectors).

    Returns:
        :class:`torch_geometric.EdgeIndex` of size ``(N_x, N_y)``, sorted by target.
    """
    if k < 1 or dilation < 1:
        raise ValueError(f"k and dilation must be positive (got k={k}, dilation={dilation})")
    same = x is y and batch_x is batch_y and pos_x is pos_y
    kd = k * dilation
    backend = resolve_backend(backend, x.device, kd + (0 if loop or not same else 1))
    random_subset = bool(stochastic and training and dilation > 1
                         and float(torch.rand(1, generator=generator)) < epsilon)
    if normalize:
        x = F.normalize(x, p=2.0, dim=-1)
        y = x if same else F.normalize(y, p=2.0, dim=-1)
    if (batch_x is None) != (batch_y is None):
        raise ValueError("pass both batch_x and batch_y, or neither")
    if num_samples is None:
        num_samples = 1
        for b in (batch_x, batch_y):
            if b is not None and b.numel():
                num_samples = max(num_samples, int(b.max()) + 1)
    kq = kd if loop or not same else kd + 1
    if (pos_x is None) != (pos_y is None):
        raise ValueError("pass both pos_x and pos_y, or neither")
    if backend == "cluster" or pos_bias is None:
        x_aug = _append_pos(x, pos_x, pos_scale)
        x, y = x_aug, (x_aug if same else _append_pos(y, pos_y, pos_scale))
    if backend == "cluster":
        cand = _cluster_candidates(x, y, kq, batch_x, batch_y)
    else:
        ptr_x = _sample_slices(batch_x, x.size(0), num_samples)
        ptr_y = _sample_slices(batch_y, y.size(0), num_samples)
        if pos_bias is not None and bool((ptr_x.diff() != ptr_x[1] - ptr_x[0]).any()):
            raise ValueError("pos_bias needs samples of equal size")
        cand = _dense_candidates(x, y, kq, ptr_x, ptr_y, pos_bias)
    if kq != kd:
        cand = _drop_self(cand, kd)
    return _to_edge_index(_select(cand, k, dilation, random_subset, generator), x.size(0))


def knn_graph(x: Tensor, k: int, batch: Optional[Tensor] = None, *, loop: bool = False,
              **kwargs) -> EdgeIndex:
    r"""The (dilated) kNN graph of ``x`` on itself: edges ``j -> i`` for the ``k`` nearest
    ``j`` of every ``i`` in the same sample. ``loop=False`` (PyG's default) excludes ``i``
    itself; keyword arguments as in :func:`knn` (``pos`` sets both position embeddings)."""
    pos = kwargs.pop("pos", None)
    return knn(x, x, k, batch, batch, loop=loop, pos_x=pos, pos_y=pos, **kwargs)
