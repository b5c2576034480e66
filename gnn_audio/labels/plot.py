"""Drawing a label graph: its strongest edges with label names, as an image (matplotlib)."""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from gnn_audio.files import atomic_open
from gnn_audio.types import PathLike

__all__ = ["plot_label_graph"]


def plot_label_graph(graph: Union[Data, Tensor], label_names: Optional[Sequence[str]] = None,
                     path: PathLike = "label_graph.png", top_k: int = 40,
                     title: Optional[str] = None, dpi: int = 120) -> str:
    """Draw the ``top_k`` strongest edges between different labels of a label graph.

    ``graph`` is a PyG :class:`Data` with ``edge_index``/``edge_weight`` or a dense
    ``[S, S]`` adjacency (row = target). Labels that take part in a drawn edge are placed on a
    circle and named; line width and opacity follow the edge weight; arrows point from the
    conditioning label to the label that receives the message. The file (PNG, or the format
    its extension names) is written atomically. Returns its path.
    Needs matplotlib (``pip install gnn-audio[plot]``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(graph, Tensor):
        dst, src = graph.nonzero(as_tuple=True)
        weight = graph[dst, src]
        num_nodes = graph.size(0)
    else:
        src, dst = graph.edge_index
        weight = graph.edge_weight if graph.edge_weight is not None else torch.ones(src.numel())
        num_nodes = graph.num_nodes
        if label_names is None:
            label_names = getattr(graph, "label_names", None)
    names = list(label_names) if label_names is not None else [str(i) for i in range(num_nodes)]
    off = src != dst
    src, dst, weight = src[off], dst[off], weight[off].float()
    order = torch.argsort(weight, descending=True)[:top_k]
    src, dst, weight = src[order].tolist(), dst[order].tolist(), weight[order].tolist()
    nodes = sorted(set(src) | set(dst))
    angle = {n: 2 * math.pi * i / max(1, len(nodes)) for i, n in enumerate(nodes)}
    xy = {n: (math.cos(a), math.sin(a)) for n, a in angle.items()}

    fig, ax = plt.subplots(figsize=(9, 9))
    w_max = max(weight) if weight else 1.0
    for s, d, w in zip(src, dst, weight):
        ax.annotate("", xy=xy[d], xytext=xy[s],
                    arrowprops=dict(arrowstyle="-|>", lw=0.5 + 3.0 * w / w_max,
                                    alpha=0.25 + 0.75 * w / w_max, color="tab:blue",
                                    shrinkA=6, shrinkB=6))
    for n in nodes:
        x, y = xy[n]
        ax.plot(x, y, "o", color="tab:orange", ms=6)
        deg = math.degrees(angle[n])
        flip = 90 < deg < 270
        ax.text(1.08 * x, 1.08 * y, names[n], fontsize=8, rotation=deg + (180 if flip else 0),
                rotation_mode="anchor", ha="right" if flip else "left", va="center")
    ax.set_xlim(-1.9, 1.9)
    ax.set_ylim(-1.9, 1.9)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or f"{len(src)} strongest label-label edges")
    fig.tight_layout()
    try:
        with atomic_open(path) as f:
            fig.savefig(f, dpi=dpi, format=os.path.splitext(os.fspath(path))[1][1:] or "png")
    finally:
        plt.close(fig)
    return os.fspath(path)
