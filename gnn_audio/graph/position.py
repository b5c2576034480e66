r"""2-D sine-cosine position embeddings and the relative-position term of Pyramid ViG.

Pyramid ViG (and ATGNN) add :math:`-\tfrac{2}{D}\, \mathbf{e}_i^\top \mathbf{e}_j` to the
squared feature distance before choosing neighbours, where :math:`\mathbf{e}` is the 2-D
sin-cos embedding (MAE / MoCo v3) of a node's grid position. Every such embedding has the same
norm (:math:`\lVert \mathbf{e} \rVert^2 = D/2`: one :math:`\sin^2 + \cos^2` per frequency
and axis), so appending :math:`s\,\mathbf{e}` to every feature vector gives

.. math::
    \lVert [\mathbf{x}_i, s\mathbf{e}_i] - [\mathbf{y}_j, s\mathbf{e}_j] \rVert^2
    = \lVert \mathbf{x}_i - \mathbf{y}_j \rVert^2 - 2 s^2\, \mathbf{e}_i^\top \mathbf{e}_j
    + s^2 D,

which with :math:`s^2 = 1/D` is the Pyramid ViG distance plus a constant: the same neighbours,
exactly, for any backend that only computes plain Euclidean distances (torch-cluster).

Pooled key nodes (an :math:`r \times r` average of the grid) sit at the centre of their cell;
their embedding is the sin-cos embedding at that fractional position. (The reference code
instead bicubic-resizes a square ``sqrt(n) x sqrt(n)`` table along the flattened node index,
which does not follow the 2-D geometry of a non-square spectrogram grid.)

Both are available as the term added to squared distances (``[num nodes, num keys]``):
:func:`sincos_position_term` (``relative_pos="sincos"``, the exact geometry) and
:func:`reference_position_term` (``relative_pos="reference"``, the reference code's table, to
reproduce the authors' graphs). At ATGNN's 128 x 1024 input the two pick different neighbours
for a share of the nodes that ``docs/graph.md`` gives per stage
(``benchmarks/relative_pos_difference.py``).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = ["sincos_1d", "sincos_2d", "grid_coordinates", "pooled_cell_centres",
           "grid_sincos_embedding", "position_scale", "node_key_embeddings",
           "sincos_position_term",
           "reference_position_term", "position_term"]


def sincos_1d(pos: Tensor, dim: int) -> Tensor:
    """``[N] -> [N, dim]``: ``[sin(w_f p), cos(w_f p)]`` with ``w_f = 10000^(-f / (dim/2))``."""
    if dim % 2:
        raise ValueError(f"dim must be even (got {dim})")
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = pos.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_2d(h: Tensor, w: Tensor, dim: int) -> Tensor:
    """Embedding of positions ``(h, w)`` (``[N]`` each, may be fractional): half the channels
    encode ``h``, half ``w``. Float64; every row has squared norm ``dim / 2``."""
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 (got {dim})")
    return torch.cat([sincos_1d(h, dim // 2), sincos_1d(w, dim // 2)], dim=1)


def grid_coordinates(height: int, width: int, device=None) -> Tuple[Tensor, Tensor]:
    """Row-major ``(h, w)`` coordinates of an ``height x width`` grid."""
    hh, ww = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float64),
                            torch.arange(width, device=device, dtype=torch.float64),
                            indexing="ij")
    return hh.reshape(-1), ww.reshape(-1)


def _cell_centres(size: int, r: int, device=None) -> Tensor:
    starts = torch.arange(0, size, r, device=device, dtype=torch.float64)
    ends = torch.clamp(starts + r, max=size)
    return (starts + ends - 1) / 2


def pooled_cell_centres(height: int, width: int, r: int, device=None) -> Tuple[Tensor, Tensor]:
    """Row-major centres (in fine-grid coordinates) of the cells of
    ``avg_pool2d(kernel=r, stride=r, ceil_mode=True)``; a partial border cell is centred on the
    rows/columns it covers."""
    hc, wc = _cell_centres(height, r, device), _cell_centres(width, r, device)
    hh, ww = torch.meshgrid(hc, wc, indexing="ij")
    return hh.reshape(-1), ww.reshape(-1)


def grid_sincos_embedding(height: int, width: int, dim: int, r: int = 1,
                          device=None) -> Tensor:
    """Sin-cos embeddings ``[n, dim]`` of a grid's nodes (``r=1``) or of its pooled cells."""
    if r == 1:
        return sincos_2d(*grid_coordinates(height, width, device), dim)
    return sincos_2d(*pooled_cell_centres(height, width, r, device), dim)


def position_scale(dim: int) -> float:
    """The factor ``s = 1/sqrt(D)`` that turns appended embeddings into the ViG term."""
    return 1.0 / math.sqrt(dim)


def node_key_embeddings(height: int, width: int, dim: int, r: int = 1,
                        device=None) -> Tuple[Tensor, Tensor]:
    """Float64 sin-cos embeddings ``(nodes [H*W, D], keys [M, D])`` of a grid and of its
    ``r x r`` pooled key cells (``keys is nodes`` for ``r = 1``)."""
    pos_q = grid_sincos_embedding(height, width, dim, 1, device)
    return pos_q, (pos_q if r == 1 else grid_sincos_embedding(height, width, dim, r, device))


def sincos_position_term(height: int, width: int, dim: int, r: int = 1,
                         device=None) -> Tensor:
    r"""``[H*W, M]`` float64: :math:`-\tfrac{2}{D}\,\mathbf{e}_i^\top \mathbf{e}_j` between
    the grid's nodes and its ``r x r`` pooled key cells (the nodes themselves for ``r=1``)."""
    pos_q, pos_k = node_key_embeddings(height, width, dim, r, device)
    return pos_q @ pos_k.t() * (-2.0 / dim)


@lru_cache(maxsize=8)
def _reference_table(n: int, r: int, dim: int) -> Tensor:
    side = int(n ** 0.5)
    hh, ww = grid_coordinates(side, side, "cpu")  # cached: never on a default meta device
    emb = sincos_2d(hh, ww, dim)
    table = (2.0 * emb @ emb.t() / dim).to(torch.float32)[None, None]  # numpy float32 cast
    # at least one key column: a design grid smaller than one r x r cell (the reference code
    # cannot build one) still gets a table, resized below like any other size
    out = torch.nn.functional.interpolate(table, size=(n, max(1, n // (r * r))),
                                          mode="bicubic", align_corners=False)
    return -out[0, 0]


def reference_position_term(height: int, width: int, dim: int, r: int = 1,
                            design_size: Optional[Tuple[int, int]] = None,
                            device=None) -> Tensor:
    r"""``[H*W, M]`` float32: the Pyramid ViG / ATGNN code's relative-position term, ``M``
    the ``r x r`` key cells of the grid (``H*W // r^2`` when ``r`` divides both sides).

    The reference builds :math:`2 P P^\top / D` for a *square* ``s x s`` grid,
    ``s = int(sqrt(n))`` with ``n`` the node count at the design input size
    (``design_size``, default ``(height, width)``), bicubically resizes that table to
    ``(n, n // r^2)`` along the flattened node index, negates it, and resizes it again
    (bicubic) when a feature map of another size comes in. Reproduced step by step here.

    The reference code only runs on grids that ``r`` divides. On other grids (a partial
    border cell of keys) the table is resized the same way to ``(H*W, M)`` with ``M =
    ceil(H/r) * ceil(W/r)``: a documented extension, so that any input size works."""
    n = (design_size[0] * design_size[1]) if design_size is not None else height * width
    table = _reference_table(n, r, dim)
    size = (height * width, -(-height // r) * -(-width // r))
    if tuple(table.shape) != size:
        table = torch.nn.functional.interpolate(table[None, None], size=size,
                                                mode="bicubic")[0, 0]
    return table.to(device)


def position_term(mode: Optional[str], height: int, width: int, dim: int, r: int = 1,
                  design_size: Optional[Tuple[int, int]] = None, device=None,
                  dtype: torch.dtype = torch.float32) -> Optional[Tensor]:
    """The ``[H*W, M]`` term of ``mode`` (``None``, ``"sincos"``, ``"reference"``)."""
    if mode is None:
        return None
    if mode == "sincos":
        return sincos_position_term(height, width, dim, r, device).to(dtype)
    if mode == "reference":
        return reference_position_term(height, width, dim, r, design_size, device).to(dtype)
    raise ValueError(f"unknown relative_pos mode {mode!r}")
