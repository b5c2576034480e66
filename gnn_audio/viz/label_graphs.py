"""The label graph an ATGNN learned (its LLG adjacency) next to the data set's label
co-occurrence graph of AT-GCN: the strongest label pairs of each drawn as a graph
(:func:`gnn_audio.labels.plot_label_graph`) and both adjacencies as matrices with the label
names on their axes, the strongest pairs framed.

Both matrices follow the same convention: row ``i`` holds the weights of the edges *into*
label ``i`` (``A_ij``: label ``j``'s message to label ``i``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from gnn_audio.data.readers import read_fsd50k
from gnn_audio.labels import cooccurrence_adjacency, plot_label_graph
from gnn_audio.types import PathLike
from gnn_audio.viz.figure import check_output_path, new_figure, save_figure
from gnn_audio.viz.graph_trace import check_atgnn
from gnn_audio.viz.inputs import label_names_of, load_checkpoint_model

__all__ = ["llg_adjacency", "strongest_pairs", "compare_label_graphs", "plot_label_graphs",
           "label_graphs_file"]

#: a matrix panel names every label up to this many; beyond, only the labels of the pairs
_MAX_MATRIX_LABELS = 40


def llg_adjacency(model: torch.nn.Module, blocks: Union[str, int] = "mean") -> Tensor:
    """The learned LLG adjacency ``[S, S]`` of an ATGNN (each block's effective
    :meth:`~gnn_audio.nn.LabelLabelConv.adjacency_matrix`, bounded modes applied).

    ``blocks``: ``"mean"`` (average over all MLG blocks), ``"last"`` (the last block, the
    one right before the label readout) or an index into the MLG blocks in forward order.
    """
    check_atgnn(model, need_mlg=True)
    mats = [block.llg.adjacency_matrix().detach().float().cpu()
            for stage in model.mlg_stages for block in stage]
    if blocks == "mean":
        return torch.stack(mats).mean(0)
    if blocks == "last":
        return mats[-1]
    is_index = isinstance(blocks, int) and not isinstance(blocks, bool)
    if is_index and -len(mats) <= blocks < len(mats):
        return mats[blocks]
    raise ValueError(f"blocks must be 'mean', 'last' or an MLG block index 0-{len(mats) - 1} "
                     f"(got {blocks!r})")


def _off_diagonal(adjacency: Tensor) -> Tensor:
    a = torch.as_tensor(adjacency, dtype=torch.float32).clone()
    if a.dim() != 2 or a.size(0) != a.size(1):
        raise ValueError(f"an adjacency must be [S, S] (got {tuple(a.shape)})")
    a.fill_diagonal_(float("nan"))
    return a


def strongest_pairs(adjacency: Tensor, top_k: int = 20) -> List[Tuple[int, int, float]]:
    """The ``top_k`` largest off-diagonal entries as ``(i, j, A_ij)`` (``j``'s message to
    ``i``), strongest first."""
    a = _off_diagonal(adjacency).flatten()
    valid = ~torch.isnan(a)
    order = torch.argsort(torch.where(valid, a, torch.tensor(-float("inf"))), descending=True)
    order = order[:min(top_k, int(valid.sum()))]
    s = adjacency.shape[0]
    return [(int(k) // s, int(k) % s, float(a[k])) for k in order]


def compare_label_graphs(learned: Tensor, cooccurrence: Tensor, top_k: int = 20) -> dict:
    """How alike two label graphs are: Pearson and Spearman correlation of their off-diagonal
    weights, and how many of their ``top_k`` strongest directed pairs they share."""
    a, b = _off_diagonal(learned).flatten(), _off_diagonal(cooccurrence).flatten()
    keep = ~(torch.isnan(a) | torch.isnan(b))
    a, b = a[keep].double(), b[keep].double()

    def pearson(u: Tensor, v: Tensor) -> float:
        u, v = u - u.mean(), v - v.mean()
        den = float(u.norm() * v.norm())
        return float((u * v).sum()) / den if den > 0 else float("nan")

    def ranks(u: Tensor) -> Tensor:  # average ranks of ties
        vals, inv, counts = torch.unique(u, return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).double()
        return ((ends - (counts.double() - 1) / 2))[inv]

    top_a = {(i, j) for i, j, _ in strongest_pairs(learned, top_k)}
    top_b = {(i, j) for i, j, _ in strongest_pairs(cooccurrence, top_k)}
    return {"pearson": pearson(a, b), "spearman": pearson(ranks(a), ranks(b)),
            "shared_top_pairs": len(top_a & top_b), "top_k": top_k}


def _circle(ax, adjacency: Tensor, names: Sequence[str], top_k: int, title: str,
            folder: str) -> None:
    """One label graph drawn by :func:`gnn_audio.labels.plot_label_graph` (its positive
    off-diagonal weights), placed as an image in ``ax``."""
    from matplotlib.image import imread

    a = torch.as_tensor(adjacency, dtype=torch.float32).clamp(min=0).clone()
    a.fill_diagonal_(0.0)
    file = plot_label_graph(a, list(names), os.path.join(folder, f"{len(os.listdir(folder))}.png"),
                            top_k=top_k, title=title)
    image = imread(file)
    ink = (image[..., :3] < 0.98).any(-1)  # crop the white margin plot_label_graph leaves
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if rows.size:
        image = image[max(0, rows[0] - 8):rows[-1] + 9, max(0, cols[0] - 8):cols[-1] + 9]
    ax.imshow(image)
    ax.axis("off")


def _matrix(fig, ax, adjacency: Tensor, names: Sequence[str], shown: List[int], top_k: int,
            title: str, signed: bool) -> None:
    from matplotlib.patches import Rectangle

    a = _off_diagonal(adjacency)
    sub = a[shown][:, shown].numpy()
    finite = np.abs(sub[np.isfinite(sub)])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    image = ax.imshow(sub, cmap="RdBu_r" if signed else "viridis",
                      vmin=-vmax if signed else 0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="weight")
    pos = {label: k for k, label in enumerate(shown)}
    for i, j, _ in strongest_pairs(adjacency, top_k):
        if i in pos and j in pos:
            ax.add_patch(Rectangle((pos[j] - 0.5, pos[i] - 0.5), 1, 1, fill=False,
                                   edgecolor="black", lw=1.2))
    fontsize = 8 if len(shown) <= 24 else 6
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([names[k] for k in shown], rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([names[k] for k in shown], fontsize=fontsize)
    ax.set_xlabel("from label j", fontsize=9)
    ax.set_ylabel("to label i", fontsize=9)
    ax.set_title(title, fontsize=10)


def plot_label_graphs(learned: Tensor, cooccurrence: Tensor, label_names: Sequence[str],
                      path: PathLike, *, top_k: int = 20, title: Optional[str] = None,
                      learned_title: str = "learned LLG adjacency",
                      cooccurrence_title: str = "co-occurrence graph (AT-GCN)",
                      dpi: int = 120) -> Path:
    """Draw a learned label graph next to the co-occurrence graph and write it to ``path``.

    Top row: the ``top_k`` strongest pairs of each as a graph (positive weights; arrows from
    the conditioning label to the receiving one). Bottom row: both ``[S, S]`` adjacencies
    (diagonal left out, every label named up to 40 labels, else the labels of the strongest
    pairs), the strongest pairs framed; the learned one on a signed colour scale. The title
    gives :func:`compare_label_graphs`'s figures.
    """
    path = check_output_path(path)
    learned = torch.as_tensor(learned, dtype=torch.float32).detach().cpu()
    cooccurrence = torch.as_tensor(cooccurrence, dtype=torch.float32).detach().cpu()
    names = list(label_names)
    s = len(names)
    for what, a in (("learned", learned), ("cooccurrence", cooccurrence)):
        if tuple(a.shape) != (s, s):
            raise ValueError(f"{what} adjacency must be [{s}, {s}] for {s} label names "
                             f"(got {list(a.shape)})")
        if not torch.isfinite(a).all():
            raise ValueError(f"{what} adjacency holds NaN or infinite values")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1 (got {top_k})")
    if s <= _MAX_MATRIX_LABELS:
        shown = list(range(s))
    else:
        pairs = strongest_pairs(learned, top_k) + strongest_pairs(cooccurrence, top_k)
        shown = sorted({i for i, _, _ in pairs} | {j for _, j, _ in pairs})
    stats = compare_label_graphs(learned, cooccurrence, top_k)

    fig = new_figure((16.0, 15.0))
    axes = fig.subplots(2, 2, gridspec_kw=dict(height_ratios=[1.0, 1.0]))
    with tempfile.TemporaryDirectory() as folder:
        _circle(axes[0, 0], learned, names, top_k,
                f"{learned_title}: {top_k} strongest pairs", folder)
        _circle(axes[0, 1], cooccurrence, names, top_k,
                f"{cooccurrence_title}: {top_k} strongest pairs", folder)
    _matrix(fig, axes[1, 0], learned, names, shown, top_k, learned_title, signed=True)
    _matrix(fig, axes[1, 1], cooccurrence, names, shown, top_k, cooccurrence_title,
            signed=False)
    fig.suptitle((title + "\n" if title else "") +
                 f"off-diagonal weights: Pearson r = {stats['pearson']:.2f}, Spearman = "
                 f"{stats['spearman']:.2f}; strongest {top_k} pairs shared: "
                 f"{stats['shared_top_pairs']}", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def _train_targets(source, names: Sequence[str]) -> np.ndarray:
    """Multi-hot training targets ``[N, S]`` in the order of ``names``: an array as given,
    or the ``train`` split of an FSD50K-layout folder (its vocabulary must hold ``names``)."""
    if isinstance(source, (str, os.PathLike)):
        clips = read_fsd50k(source, "train")
        vocab = list(clips.label_set.names)
        missing = [n for n in names if n not in vocab]
        if missing:
            raise ValueError(f"{os.fspath(source)}: the data set's vocabulary lacks the "
                             f"checkpoint's labels {missing[:5]}")
        targets = clips.targets()
        return targets[:, [vocab.index(n) for n in names]]
    targets = np.asarray(torch.as_tensor(source).cpu())
    if targets.ndim != 2 or targets.shape[1] != len(names):
        raise ValueError(f"train targets must be [clips, {len(names)}] (got {targets.shape})")
    return targets


def label_graphs_file(checkpoint: PathLike, train_targets, out_png: PathLike, *,
                      blocks: Union[str, int] = "mean", tau: float = 0.3, p: float = 0.2,
                      scheme: str = "both", top_k: int = 20, dpi: int = 120) -> Path:
    """:func:`plot_label_graphs` for a checkpoint: its :func:`llg_adjacency` next to
    :func:`gnn_audio.labels.cooccurrence_adjacency` (``tau``, ``p``, ``scheme``) of
    ``train_targets`` (an ``[N, S]`` multi-hot array in the checkpoint's label order, or an
    FSD50K-layout folder whose ``train`` split is read)."""
    out = check_output_path(out_png)
    model = load_checkpoint_model(checkpoint)
    check_atgnn(model, need_mlg=True, where=os.fspath(checkpoint))
    names = label_names_of(model)
    targets = _train_targets(train_targets, names)
    cooc = cooccurrence_adjacency(targets, tau, p, scheme=scheme)
    learned = llg_adjacency(model, blocks)
    which = {"mean": "mean over the MLG blocks", "last": "last MLG block"}.get(
        blocks, f"MLG block {blocks}")
    return plot_label_graphs(learned, cooc, names, out, top_k=top_k, dpi=dpi,
                             title=f"{os.path.basename(os.fspath(checkpoint))}: label graphs",
                             learned_title=f"learned LLG adjacency ({which})",
                             cooccurrence_title=f"co-occurrence graph (AT-GCN, tau={tau}, "
                                                f"p={p})")
