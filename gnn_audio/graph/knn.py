r"""k-nearest-neighbour graphs with two interchangeable backends.

* ``"cluster"`` calls :func:`torch_cluster.knn` directly (CPU KD-tree, CUDA brute force).
  torch_geometric 2.8's own ``knn_graph`` needs pyg-lib and ignores torch-cluster.
* ``"dense"`` computes batched squared distances (``baddbmm``) and ``topk`` per sample, the
  Pyramid ViG way, in memory-bounded chunks; samples of different sizes are padded.

Two entry points:

* :func:`knn_index` for equally sized samples given as ``[B, M, C]`` sources and ``[B, N, C]``
  targets (every spectrogram of a batch): a fixed-shape
  :class:`~gnn_audio.graph.NeighborIndex` ``[B * N, k]``, computed without any host
  synchronisation or data-dependent Python control flow, so ``torch.compile(fullgraph=True)``
  captures it (dense backend) and a GPU never waits for the host;
* :func:`knn` / :func:`knn_graph` for samples of any sizes (a PyG ``batch`` vector): an
  :class:`torch_geometric.EdgeIndex` ``[2, E]`` with sources (``x``/keys) in row 0 and targets
  (``y``/queries) in row 1, sorted by target, every target's neighbours contiguous and ordered
  by distance. This general path reads sizes from the batch vectors and runs eagerly.

Both backends return the same neighbour sets (ties aside). No builder ever connects nodes of
different samples. Distances are computed in float32 even under autocast: bfloat16's 8-bit
mantissa would make distances of normalised features tie and change the graph.

Variants (fields of the :class:`~gnn_audio.graph.KnnConfig` that :func:`knn` /
:func:`knn_graph` take, and their per-call arguments):

* ``normalize``: L2-normalise features first (Pyramid ViG, ATGNN).
* ``dilation=d``: the k neighbours are every d-th of the ``k*d`` nearest.
* ``stochastic`` with ``epsilon``: with probability epsilon a random k of the ``k*d`` nearest
  (one draw per call, as Vision GNN), only when ``training``.
* ``pos=(pos_x, pos_y, scale)``: position embeddings appended (scaled) to the features, the
  exact form of Pyramid ViG's relative-position term (see :mod:`gnn_audio.graph.position`);
  ``pos_bias``: the same term (or the reference code's table) as a precomputed
  ``[targets per sample, sources per sample]`` matrix added to the distances (dense only).

A target with fewer than ``k*d`` candidates in its sample keeps the candidates it has, still
taking every d-th.
"""
from __future__ import annotations

import contextlib
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric import EdgeIndex

from gnn_audio.graph.config import BACKENDS, KnnConfig
from gnn_audio.graph.neighbor_index import NeighborIndex

__all__ = ["knn", "knn_graph", "knn_index", "check_backend", "CUDA_CLUSTER_MAX_K"]

#: torch-cluster's CUDA kernel refuses more than this many neighbours per query.
CUDA_CLUSTER_MAX_K = 100
#: upper bound on the distance block one dense step materialises, in bytes: cache-sized
#: blocks on CPU (measured fastest), large blocks (few kernel launches) on GPUs.
DENSE_CHUNK_BYTES = {"cpu": 16 * 2 ** 20, "cuda": 1024 * 2 ** 20}


def check_backend(backend: str, device: torch.device, kd: int = 0) -> None:
    """Raises for an unknown backend, and for ``"cluster"`` on CUDA with more than 100
    candidates per query (torch-cluster's CUDA limit)."""
    if backend not in BACKENDS:
        raise ValueError(f"knn backend must be one of {BACKENDS} (got {backend!r})")
    if backend == "cluster" and device.type == "cuda" and kd > CUDA_CLUSTER_MAX_K:
        raise ValueError(f"torch-cluster's CUDA knn allows at most {CUDA_CLUSTER_MAX_K} "
                         f"neighbours per query (asked for k*dilation={kd}); "
                         f"use backend='dense'")


# -- candidate search ----------------------------------------------------------------------------

def _chunk_steps(batch: int, num_y: int, num_x: int, device: torch.device) -> Tuple[int, int]:
    """(samples, queries) per dense step so that one distance block stays within budget;
    from shapes only (no device values)."""
    budget = DENSE_CHUNK_BYTES.get(device.type, DENSE_CHUNK_BYTES["cuda"])
    step_b = max(1, budget // (4 * max(1, num_y * num_x)))
    step_q = num_y if step_b > 1 else max(1, budget // (4 * max(1, num_x)))
    return min(step_b, batch), min(step_q, num_y)


def _no_autocast(device: torch.device):
    """Autocast off for the distance computation (the meta device has no autocast: torch
    rejects ``torch.autocast("meta")``, and nothing is cast there anyway)."""
    if device.type == "meta":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)


def _block_size(m: int, kk: int) -> int:
    """Columns per block of :func:`smallest`'s two-step selection, 1 for a plain ``topk``.

    ATen's CPU ``topk`` runs a partial sort when ``64 * kk <= m`` (fast) and otherwise an
    ``nth_element`` per row, which costs about 2 us for a row of 512 on one core: the
    Pyramid ViG graphs' case (512 keys, 9 to 27 candidates). There a block of 4 or 8 columns
    with at least ``4 * kk`` blocks halves the time (measured, 8192 x 512 with kk = 9:
    16.4 -> 7.7 ms)."""
    if 64 * kk <= m:
        return 1
    for s in (8, 4):
        if m % s == 0 and m // s >= 4 * kk:
            return s
    return 1


def smallest(dist: Tensor, kk: int) -> Tensor:
    """Indices of the ``kk`` smallest entries of every row of ``dist [..., m]``, smallest
    first: ``dist.topk(kk, largest=False).indices``, the same values (ties may pick other
    columns of equal value, as ``topk`` itself may).

    On the CPU the ``m`` columns are cut into strided blocks (block ``b`` holds columns ``b,
    b + nb, b + 2 nb, ...``), the ``kk`` blocks with the smallest minima are kept and the
    result is chosen among their columns. That is exact: a column outside the kept blocks is
    no smaller than ``kk`` distinct kept block minima, so it cannot be needed."""
    m = dist.size(-1)
    s = _block_size(m, kk) if dist.device.type == "cpu" else 1
    if s == 1 or torch.compiler.is_compiling():
        return dist.topk(kk, dim=-1, largest=False, sorted=True).indices
    nb = m // s
    block_min = dist[..., :nb]
    for r in range(1, s):
        block_min = torch.minimum(block_min, dist[..., r * nb:(r + 1) * nb])
    blocks = block_min.topk(kk, dim=-1, largest=False, sorted=False).indices  # [..., kk]
    offsets = torch.arange(0, m, nb, device=dist.device).view(s, 1)
    cols = (blocks.unsqueeze(-2) + offsets).flatten(-2)  # [..., s * kk] candidate columns
    best = dist.gather(-1, cols).topk(kk, dim=-1, largest=False, sorted=True).indices
    return cols.gather(-1, best)


def _batched_candidates(xs: Tensor, ys: Tensor, kk: int, bias: Optional[Tensor]) -> Tensor:
    """``[B, N, kk]`` local indices of the ``kk`` nearest rows of ``xs [B, M, C]`` for every
    row of ``ys [B, N, C]``, ordered by distance (plus ``bias [N, M]``), in float32 (or
    float64 for float64 input)."""
    dtype = torch.promote_types(xs.dtype, torch.float32)
    with _no_autocast(xs.device):
        xs, ys = xs.to(dtype), ys.to(dtype)
        # score_ij = |x_j|^2 - 2 y_i.x_j (+ bias_ij): |y_i|^2 is constant per target and left
        # out; |x_j|^2 rides along as an extra GEMM column so that the bias (or nothing) is
        # the only addend and no separate pass over the [targets, sources] block is needed.
        x_aug = torch.cat([-2.0 * xs, (xs * xs).sum(-1, keepdim=True)], dim=-1).transpose(1, 2)
        y_aug = torch.cat([ys, ys.new_ones(ys.shape[:-1] + (1,))], dim=-1)
        bias = None if bias is None else bias.to(dtype)
        b, n, m = ys.size(0), ys.size(1), xs.size(1)
        step_b, step_q = _chunk_steps(b, n, m, ys.device)
        rows = []
        for s0 in range(0, b, step_b):
            cols = []
            for q0 in range(0, n, step_q):
                lhs, rhs = y_aug[s0:s0 + step_b, q0:q0 + step_q], x_aug[s0:s0 + step_b]
                dist = (torch.bmm(lhs, rhs) if bias is None else
                        torch.baddbmm(bias[q0:q0 + step_q].expand(lhs.size(0), -1, -1), lhs, rhs))
                cols.append(smallest(dist, kk))
            rows.append(cols[0] if len(cols) == 1 else torch.cat(cols, dim=1))
        return rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)


def _sample_slices(batch: Optional[Tensor], n: int, num_samples: int) -> Tensor:
    """``ptr`` of a sorted batch vector with ``num_samples`` samples (a host copy)."""
    if batch is None:
        return torch.tensor([0, n])
    counts = torch.bincount(batch.cpu(), minlength=num_samples)
    return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])


def _dense_candidates(x: Tensor, y: Tensor, kd: int, ptr_x: Tensor, ptr_y: Tensor,
                      bias: Optional[Tensor]) -> Tensor:
    """General path: ``[num_y, kd]`` global candidates, ``-1`` padded, for samples of any
    sizes (runs of equal sizes go through one batched search)."""
    num_samples = ptr_x.numel() - 1
    nx, ny = ptr_x.diff().tolist(), ptr_y.diff().tolist()
    out = torch.full((y.size(0), kd), -1, dtype=torch.long, device=y.device)
    uniform = len(set(nx)) <= 1 and len(set(ny)) <= 1
    groups = [(0, num_samples)] if uniform else [(b, b + 1) for b in range(num_samples)]
    for b0, b1 in groups:
        mx, my = nx[b0], ny[b0]
        if mx == 0 or my == 0:
            continue
        x0, y0 = int(ptr_x[b0]), int(ptr_y[b0])
        xs = x[x0:x0 + (b1 - b0) * mx].view(b1 - b0, mx, -1)
        ys = y[y0:y0 + (b1 - b0) * my].view(b1 - b0, my, -1)
        kk = min(kd, mx)
        idx = _batched_candidates(xs, ys, kk, bias)
        idx = idx + ptr_x[b0:b1].to(idx.device).view(-1, 1, 1)
        out[y0:y0 + (b1 - b0) * my, :kk] = idx.reshape(-1, kk)
    return out


@torch.compiler.disable  # torch-cluster's kernels are opaque to torch.compile
def _cluster_candidates(x: Tensor, y: Tensor, kd: int, batch_x: Optional[Tensor],
                        batch_y: Optional[Tensor]) -> Tensor:
    import torch_cluster

    with _no_autocast(x.device):
        dtype = torch.promote_types(x.dtype, torch.float32)
        x, y = x.to(dtype), y.to(dtype)
        row, col = torch_cluster.knn(x, y, kd, batch_x, batch_y,
                                     num_workers=max(1, torch.get_num_threads()))
        # Order each query's candidates by distance (the CPU KD-tree does not promise an
        # order), then lay them out as a -1 padded [num_y, kd] matrix.
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


def _selected_columns(num_cand: int, k: int, dilation: int, random: Optional[Tensor],
                      generator: Optional[torch.Generator], device: torch.device) -> Tensor:
    """Which of ``num_cand`` distance-ordered candidates to keep: every ``dilation``-th (at
    most ``k``), or, where the 0-dim bool ``random`` is true, as many drawn at random (one
    draw for the whole graph, as Vision GNN). Fixed size; no host synchronisation."""
    dilated = torch.arange(0, num_cand, dilation, device=device)[:k]
    if random is None:
        return dilated
    drawn = torch.randperm(num_cand, generator=generator,
                           device=generator.device if generator is not None else device)
    drawn = drawn[:dilated.numel()].sort().values.to(device)
    return torch.where(random, drawn, dilated)


def _random_flag(stochastic: bool, epsilon: float, training: bool, dilation: int,
                 generator: Optional[torch.Generator], device: torch.device
                 ) -> Optional[Tensor]:
    """``None`` when no random selection can happen, else a 0-dim bool tensor, true with
    probability ``epsilon`` (stays on the device: no host synchronisation)."""
    if not (stochastic and training and dilation > 1):
        return None
    gen_device = generator.device if generator is not None else device
    return (torch.rand((), generator=generator, device=gen_device) < epsilon).to(device)


def _append_pos(x: Tensor, pos: Optional[Tensor], scale: float) -> Tensor:
    return x if pos is None else torch.cat([x, (scale * pos).to(x.dtype)], dim=-1)


def knn_index(x: Tensor, y: Tensor, k: int, *, dilation: int = 1, normalize: bool = False,
              pos_bias: Optional[Tensor] = None,
              pos: Optional[Tuple[Tensor, Tensor, float]] = None, stochastic: bool = False,
              epsilon: float = 0.0, training: bool = False, backend: str = "dense",
              generator: Optional[torch.Generator] = None) -> NeighborIndex:
    r"""For every target row of every sample, its ``k`` (dilated) nearest source rows of the
    same sample, for equally sized samples.

    Args:
        x (Tensor): Sources (keys) ``[B, M, C]``.
        y (Tensor): Targets (queries) ``[B, N, C]``; may be ``x`` itself (self included).
        k (int): Neighbours per target.
        dilation (int): Keep every ``dilation``-th of the ``k * dilation`` nearest.
        normalize (bool): L2-normalise ``x`` and ``y`` over channels first.
        pos_bias (Tensor, optional): ``[N, M]`` term added to the squared distances of every
            sample (relative position, :mod:`gnn_audio.graph.position`); dense backend.
        pos (tuple, optional): ``(pos_x [M, P], pos_y [N, P], scale)``: position embeddings
            appended (times ``scale``) to the features instead; cluster backend.
        stochastic, epsilon, training: With probability ``epsilon``, when ``stochastic`` and
            ``training``, a random ``k`` of the ``k * dilation`` nearest instead.
        backend (str): ``"dense"`` (fixed shapes, traceable) or ``"cluster"`` (eager).
        generator (torch.Generator, optional): For the stochastic draw.

    Returns:
        :class:`~gnn_audio.graph.NeighborIndex` ``[B * N, k']`` over the ``B * M`` flattened
        sources, neighbours ordered by distance, with ``k' = min(k, ceil(min(k * dilation, M)
        / dilation))`` (``k`` unless a sample has fewer than ``k * dilation`` sources).
    """
    if x.dim() != 3 or y.dim() != 3 or x.size(0) != y.size(0) or x.size(2) != y.size(2):
        raise ValueError(f"knn_index expects x [B, M, C] and y [B, N, C] (got "
                         f"{tuple(x.shape)} and {tuple(y.shape)})")
    if k < 1 or dilation < 1:
        raise ValueError(f"k and dilation must be positive (got k={k}, dilation={dilation})")
    b, m, _ = x.shape
    n = y.size(1)
    kk = min(k * dilation, m)
    check_backend(backend, x.device, kk)
    same = x is y
    if normalize:
        x = F.normalize(x, p=2.0, dim=-1)
        y = x if same else F.normalize(y, p=2.0, dim=-1)
    if backend == "cluster":
        if pos is not None:
            pos_x, pos_y, scale = pos
            x = _append_pos(x, pos_x.expand(b, -1, -1), scale)
            y = _append_pos(y, pos_y.expand(b, -1, -1), scale)
        batch_x = torch.arange(b, device=x.device).repeat_interleave(m)
        batch_y = torch.arange(b, device=x.device).repeat_interleave(n)
        cand = _cluster_candidates(x.reshape(b * m, -1), y.reshape(b * n, -1), kk,
                                   batch_x, batch_y)
    else:
        if pos is not None:
            raise ValueError("the dense backend takes the position term as pos_bias")
        cand = _batched_candidates(x, y, kk, pos_bias)
        cand = (cand + (torch.arange(b, device=cand.device) * m).view(-1, 1, 1)).view(b * n, kk)
    random = _random_flag(stochastic, epsilon, training, dilation, generator, cand.device)
    cols = _selected_columns(kk, k, dilation, random, generator, cand.device)
    return NeighborIndex(cand.index_select(1, cols), b * m)


def _to_edge_index(nbr: Tensor, num_x: int) -> EdgeIndex:
    n, k = nbr.shape
    dst = torch.arange(n, device=nbr.device).repeat_interleave(k)
    src = nbr.reshape(-1)
    if bool((src < 0).any()):
        keep = src >= 0
        src, dst = src[keep], dst[keep]
    edge_index = EdgeIndex(torch.stack([src, dst]), sparse_size=(num_x, n), sort_order="col")
    edge_index.get_indptr()  # fill the CSR cache now
    return edge_index


def _plain_config(config: Union[KnnConfig, int]) -> KnnConfig:
    """The :class:`KnnConfig` of a graph without a grid; an int is ``k`` with plain Euclidean
    distances (``normalize=False``), as PyG's ``knn``."""
    if isinstance(config, int) and not isinstance(config, bool):
        return KnnConfig(k=config, normalize=False)
    if not isinstance(config, KnnConfig):
        raise TypeError(f"expected a KnnConfig or k as an int (got {type(config).__name__})")
    if config.reduce_ratio != 1 or config.relative_pos is not None:
        raise ValueError("knn builds no grid graph: reduce_ratio and relative_pos do not "
                         "apply (pass positions as pos or pos_bias, or use GridKnnGraph)")
    return config


@torch.compiler.disable  # samples of any sizes: reads sizes on the host, builds an EdgeIndex
def knn(x: Tensor, y: Tensor, config: Union[KnnConfig, int], batch_x: Optional[Tensor] = None,
        batch_y: Optional[Tensor] = None, *,
        pos: Optional[Tuple[Tensor, Tensor, float]] = None, pos_bias: Optional[Tensor] = None,
        training: bool = False, generator: Optional[torch.Generator] = None,
        loop: bool = True, num_samples: Optional[int] = None) -> EdgeIndex:
    r"""For every row of ``y`` (targets), its ``k`` (dilated) nearest rows of ``x`` (sources)
    within the same sample, for samples of any sizes (the general path; see
    :func:`knn_index` for equally sized samples).

    Args:
        x (Tensor): Source (key) features ``[N_x, C]``.
        y (Tensor): Target (query) features ``[N_y, C]``.
        config (KnnConfig or int): The kNN settings (``k``, ``dilation``, ``normalize``,
            ``stochastic``, ``epsilon``, ``backend``; ``reduce_ratio`` and ``relative_pos``
            must keep their defaults), or just ``k`` with plain Euclidean distances
            (``KnnConfig(k=k, normalize=False)``, as PyG's ``knn``).
        batch_x, batch_y (Tensor, optional): Sorted sample index of every row.
        pos (tuple, optional): ``(pos_x [N_x, P], pos_y [N_y, P], scale)``: position
            embeddings appended, times ``scale``, to the (normalised) features: adds
            ``scale**2 * |p_i - q_j|^2`` to the distance (the form :func:`knn_index` takes).
        pos_bias (Tensor, optional): A ``[targets per sample, sources per sample]`` term
            added to the distances (equally sized samples, dense backend).
        training (bool): Whether the stochastic selection of ``config`` may happen.
            (default: :obj:`False`)
        generator (torch.Generator, optional): For the stochastic draw.
        loop (bool): For graphs on themselves (``x is y``), whether a node may be its own
            neighbour. (default: :obj:`True`)
        num_samples (int, optional): Number of samples (default: from the batch vectors).

    Returns:
        :class:`torch_geometric.EdgeIndex` of size ``(N_x, N_y)``, sorted by target.
    """
    cfg = _plain_config(config)
    k, dilation = cfg.k, cfg.dilation
    pos_x, pos_y, pos_scale = (None, None, 1.0) if pos is None else pos
    same = x is y and batch_x is batch_y and pos_x is pos_y
    kd = k * dilation
    kq = kd if loop or not same else kd + 1
    check_backend(cfg.backend, x.device, kq)
    if cfg.normalize:
        x = F.normalize(x, p=2.0, dim=-1)
        y = x if same else F.normalize(y, p=2.0, dim=-1)
    if (batch_x is None) != (batch_y is None):
        raise ValueError("pass both batch_x and batch_y, or neither")
    if (pos_x is None) != (pos_y is None):
        raise ValueError("pos needs both pos_x and pos_y")
    if num_samples is None:
        num_samples = 1
        for b in (batch_x, batch_y):
            if b is not None and b.numel():
                num_samples = max(num_samples, int(b.max()) + 1)
    if cfg.backend == "cluster" or pos_bias is None:
        x_aug = _append_pos(x, pos_x, pos_scale)
        x, y = x_aug, (x_aug if same else _append_pos(y, pos_y, pos_scale))
    if cfg.backend == "cluster":
        cand = _cluster_candidates(x, y, kq, batch_x, batch_y)
    else:
        ptr_x = _sample_slices(batch_x, x.size(0), num_samples)
        ptr_y = _sample_slices(batch_y, y.size(0), num_samples)
        if pos_bias is not None and len(set(ptr_x.diff().tolist())) > 1:
            raise ValueError("pos_bias needs samples of equal size")
        cand = _dense_candidates(x, y, kq, ptr_x, ptr_y, pos_bias)
    if kq != kd:
        cand = _drop_self(cand, kd)
    random = _random_flag(cfg.stochastic, cfg.epsilon, training, dilation, generator,
                          cand.device)
    cols = _selected_columns(kd, k, dilation, random, generator, cand.device)
    return _to_edge_index(cand.index_select(1, cols), x.size(0))


def knn_graph(x: Tensor, config: Union[KnnConfig, int], batch: Optional[Tensor] = None, *,
              pos: Optional[Tuple[Tensor, float]] = None, pos_bias: Optional[Tensor] = None,
              training: bool = False, generator: Optional[torch.Generator] = None,
              loop: bool = False, num_samples: Optional[int] = None) -> EdgeIndex:
    r"""The (dilated) kNN graph of ``x`` on itself: edges ``j -> i`` for the ``k`` nearest
    ``j`` of every ``i`` in the same sample. ``loop=False`` (PyG's default) excludes ``i``
    itself. Arguments as in :func:`knn`, except ``pos = (pos [N, P], scale)``: one set of
    position embeddings, for sources and targets alike."""
    pos_xy = None if pos is None else (pos[0], pos[0], pos[1])
    return knn(x, x, config, batch, batch, pos=pos_xy, pos_bias=pos_bias, training=training,
               generator=generator, loop=loop, num_samples=num_samples)
