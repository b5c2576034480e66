"""Recording the graphs an ATGNN forward pass builds: which patch nodes every PLG label node
read (per MLG block) and which key nodes every patch node read in each PGN block, as the
model used them, with where each node sits on the input log-mel.

Nothing in the model is changed. Forward hooks observe:

* PGN: every :class:`~gnn_audio.graph.GridKnnGraph` returns ``(nodes, keys, graph)``; its
  forward hook reads the :class:`~gnn_audio.graph.NeighborIndex` the Grapher then aggregates
  over (dilation, pooled keys and the relative-position term included);
* PLG: :class:`~gnn_audio.nn.PatchLabelConv` builds its graph inside ``forward`` (when no
  ``edge_index`` is passed). A forward pre-hook builds it with the layer's own
  :meth:`~gnn_audio.nn.PatchLabelConv.build_graph` on the same inputs and passes it in as
  ``edge_index``, so the recorded graph is, by construction, the one the layer aggregates;
* the feature-map size of each stage: a forward hook on the stage's last backbone module.

Node indices are per clip (``0 .. H*W-1``, row-major over ``[mel cell, time cell]``, the
order of :func:`~gnn_audio.graph.feature_map_to_nodes`); :class:`GridGeometry` maps them to
frame / mel-bin rectangles of the input.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from gnn_audio.graph import KnnConfig, NeighborIndex
from gnn_audio.models.atgnn import ATGNN

__all__ = ["GridGeometry", "PLGGraph", "PGNGraph", "GraphTrace", "trace_graphs",
           "check_atgnn"]


def check_atgnn(model: torch.nn.Module, need_mlg: bool = True, where: str = "") -> None:
    """Raise a one-line ``ValueError`` unless ``model`` is an ATGNN (with MLG blocks when
    ``need_mlg``): only ATGNN builds the graphs traced here."""
    prefix = f"{where}: " if where else ""
    name = getattr(getattr(model, "bundle", None), "name", None) or type(model).__name__
    if not isinstance(model, ATGNN):
        raise ValueError(f"{prefix}{name} is not an ATGNN model: only ATGNN builds patch and "
                         "label graphs to show")
    if need_mlg and not model.mlg:
        raise ValueError(f"{prefix}{name} has no MLG blocks, so no PLG label nodes to show "
                         "(use the model with MLG blocks)")


@dataclass(frozen=True)
class GridGeometry:
    """Where the nodes of a stage's ``[mel cells, time cells]`` grid sit on the input.

    Attributes:
        grid: ``(H, W)``: mel cells x time cells of the stage's feature map.
        stride: input bins / frames per cell (pyramid ATGNN: ``4 * 2**stage``; isotropic: 16).
        input_size: ``(frames, mel bins)`` of the model input.
    """

    grid: Tuple[int, int]
    stride: int
    input_size: Tuple[int, int]

    @property
    def num_nodes(self) -> int:
        return self.grid[0] * self.grid[1]

    def key_grid(self, reduce_ratio: int, partial_cells: bool = True) -> Tuple[int, int]:
        """``(H_k, W_k)`` of the ``r x r`` pooled key cells (``partial_cells``: a partial
        border cell is kept, as :func:`~gnn_audio.graph.pooled_keys` does unless the
        reference position table is used)."""
        h, w = self.grid
        if reduce_ratio == 1:
            return h, w
        if partial_cells:
            return -(-h // reduce_ratio), -(-w // reduce_ratio)
        return h // reduce_ratio, w // reduce_ratio

    def boxes(self, nodes, reduce_ratio: int = 1, partial_cells: bool = True) -> np.ndarray:
        """``[n, 4]`` int ``(frame_start, frame_end, mel_start, mel_end)`` (ends exclusive,
        clipped to the input) of node (``reduce_ratio = 1``) or pooled key cell indices."""
        nodes = np.asarray(torch.as_tensor(nodes).cpu(), dtype=np.int64).reshape(-1)
        _, wk = self.key_grid(reduce_ratio, partial_cells)
        span = self.stride * reduce_ratio
        row, col = nodes // wk, nodes % wk
        frames, mel = self.input_size
        return np.stack([np.minimum(col * span, frames), np.minimum((col + 1) * span, frames),
                         np.minimum(row * span, mel), np.minimum((row + 1) * span, mel)], 1)

    def node_at(self, frame: float, mel_bin: float) -> int:
        """The node whose cell holds input position ``(frame, mel_bin)``."""
        h, w = self.grid
        row = min(h - 1, max(0, int(mel_bin // self.stride)))
        col = min(w - 1, max(0, int(frame // self.stride)))
        return row * w + col


@dataclass(frozen=True)
class PLGGraph:
    """The PLG graph of one MLG block: ``index[b, i]`` are the ``k`` patch nodes label ``i``
    of clip ``b`` read, nearest first.

    Attributes:
        stage, block: 0-based stage and block within the stage's MLG blocks.
        geometry: the stage's patch grid.
        index: ``[B, S, k]`` int64 per-clip patch node indices.
        features: ``(patches [B, N, C], labels [B, S, C])`` the graph was built from (only
            with ``keep_features=True``).
    """

    stage: int
    block: int
    geometry: GridGeometry
    index: Tensor
    features: Optional[Tuple[Tensor, Tensor]] = None


@dataclass(frozen=True)
class PGNGraph:
    """The kNN graph of one PGN block: ``index[b, n]`` are the ``k`` key nodes patch node
    ``n`` of clip ``b`` read, nearest first (keys are ``r x r`` pooled cells for
    ``config.reduce_ratio = r > 1``).

    Attributes:
        stage, block: 0-based stage and block within the stage's PGN blocks.
        geometry: the stage's patch grid.
        config: the block's :class:`~gnn_audio.graph.KnnConfig` (k, dilation, pooled keys,
            relative position).
        index: ``[B, N, k]`` int64 per-clip key indices.
        features: the Grapher's graph input ``[B, C, H, W]`` (only with
            ``keep_features=True``).
    """

    stage: int
    block: int
    geometry: GridGeometry
    config: KnnConfig
    index: Tensor
    features: Optional[Tensor] = None

    def key_boxes(self, keys) -> np.ndarray:
        """Input rectangles of key indices (see :meth:`GridGeometry.boxes`; pooled keys keep
        partial border cells, as :func:`~gnn_audio.graph.pooled_keys` in the graphs)."""
        return self.geometry.boxes(keys, self.config.reduce_ratio)


@dataclass(frozen=True)
class GraphTrace:
    """What one forward pass of an ATGNN built.

    Attributes:
        logits: ``[B, S]`` the model's output for the traced input.
        plg: the PLG graph of every MLG block, in forward order.
        pgn: the kNN graph of every PGN block, in forward order.
        stages: the patch grid of every stage.
    """

    logits: Tensor
    plg: List[PLGGraph]
    pgn: List[PGNGraph]
    stages: List[GridGeometry]

    def plg_of_stage(self, stage: int) -> List[PLGGraph]:
        return [g for g in self.plg if g.stage == stage]

    def pgn_of_stage(self, stage: int) -> List[PGNGraph]:
        return [g for g in self.pgn if g.stage == stage]


def _local(index: Tensor, batch: int, per_clip_src: int) -> Tensor:
    """``[B * T, k]`` global source indices -> ``[B, T, k]`` per-clip ones."""
    index = index.view(batch, -1, index.size(-1))
    offset = torch.arange(batch, device=index.device).view(-1, 1, 1) * per_clip_src
    return (index - offset).cpu()


def _stage_strides(model: torch.nn.Module) -> List[int]:
    n = len(model.stage_ends)
    return [model.stride * (2 ** s if model.arch == "pyramid" else 1) for s in range(n)]


def _pgn_blocks(model: torch.nn.Module) -> Tuple[dict, dict]:
    """``(stage_of, block_of)``: 0-based stage and block of every PGN block's graph module."""
    stage_of, block_of = {}, {}
    stage, count = 0, 0
    for i, module in enumerate(model.backbone):
        while stage < len(model.stage_ends) - 1 and i > model.stage_ends[stage]:
            stage, count = stage + 1, 0
        if hasattr(module, "__getitem__") and hasattr(module[0], "graph"):
            stage_of[module[0].graph], block_of[module[0].graph] = stage, count
            count += 1
    return stage_of, block_of


def _eval_forward(model: torch.nn.Module, x: Tensor) -> Tensor:
    """``model(x)`` in eval mode; the model's train / eval mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        return model(x)
    finally:
        model.train(was_training)


class _Recorder:
    """The hooks of :func:`trace_graphs` and what they record during one forward pass."""

    def __init__(self, batch: int, num_stages: int, keep_features: bool) -> None:
        self.batch = batch
        self.keep_features = keep_features
        self.grids: List[Optional[Tuple[int, int]]] = [None] * num_stages
        self.pgn: list = []
        self.plg: list = []
        self.hooks: list = []

    def attach(self, model: torch.nn.Module, graph_modules) -> None:
        """Hook every PGN graph module, every stage's last module and every PLG layer."""
        for graph_module in graph_modules:
            self.hooks.append(graph_module.register_forward_hook(self.on_grid))
        for s, end in enumerate(model.stage_ends):
            self.hooks.append(model.backbone[end].register_forward_hook(self.on_stage_end(s)))
        if model.mlg:
            for s, blocks in enumerate(model.mlg_stages):
                for j, block in enumerate(blocks):
                    self.hooks.append(block.plg.register_forward_pre_hook(self.on_plg(s, j),
                                                                          with_kwargs=True))

    def detach(self) -> None:
        """Remove every hook :meth:`attach` registered."""
        for h in self.hooks:
            h.remove()

    def on_grid(self, graph_module, inputs, output) -> None:
        """Forward hook of a :class:`~gnn_audio.graph.GridKnnGraph`: records its graph."""
        feats = inputs[0]
        nodes, keys, graph = output
        h, w = feats.shape[-2:]
        self.pgn.append((graph_module, (h, w), graph, keys.size(0) // self.batch,
                         feats.detach().clone() if self.keep_features else None))

    def on_stage_end(self, s: int):
        """Forward hook recording the feature-map size of stage ``s``."""
        def hook(module, inputs, output):
            self.grids[s] = (output.size(2), output.size(3))
        return hook

    def on_plg(self, stage_index: int, block_index: int):
        """Forward pre-hook of a PLG layer: builds its graph, records it and passes it in."""
        b = self.batch

        def hook(module, args, kwargs):
            bound = inspect.signature(module.forward).bind(*args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            x_patch, x_label = a["x"]
            graph = a["edge_index"]
            if graph is None:
                graph = module.build_graph((x_patch, x_label), a["batch"], a["batch_size"])
                a["edge_index"] = graph
            if not isinstance(graph, NeighborIndex):
                raise ValueError("tracing needs equally sized clips (a NeighborIndex graph)")
            feats = None
            if self.keep_features:
                feats = (x_patch.detach().reshape(b, -1, x_patch.size(-1)).clone(),
                         x_label.detach().reshape(b, -1, x_label.size(-1)).clone())
            self.plg.append((stage_index, block_index, graph, x_patch.size(0) // b, feats))
            return bound.args, bound.kwargs
        return hook

@torch.no_grad()
def trace_graphs(model: torch.nn.Module, x: Tensor, keep_features: bool = False
                 ) -> GraphTrace:
    """Run ``model`` (an ATGNN) on ``x`` in eval mode and record its graphs.

    Args:
        model: an :class:`~gnn_audio.models.ATGNN` (pyramid or isotropic; without MLG
            blocks the trace has no PLG graphs). Its train / eval mode is restored after.
        x: log-mel ``[B, frames, mel]`` (normalised, as the model takes it) or ``[frames,
            mel]`` for one clip.
        keep_features: also keep the features every graph was built from (to rebuild it).

    Returns:
        :class:`GraphTrace`; ``logits`` equal a plain forward's.
    """
    check_atgnn(model, need_mlg=False)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    b = x.size(0)
    input_size = (x.size(-2), x.size(-1)) if x.dim() == 3 else (x.size(-1), x.size(-2))
    strides = _stage_strides(model)
    stage_of, block_of = _pgn_blocks(model)
    recorder = _Recorder(b, len(model.stage_ends), keep_features)
    try:
        recorder.attach(model, stage_of)
        logits = _eval_forward(model, x)
    finally:
        recorder.detach()

    stages = [GridGeometry(tuple(g), strides[s], input_size)
              for s, g in enumerate(recorder.grids)]
    pgn = []
    for graph_module, grid, graph, per_clip_keys, feats in recorder.pgn:
        s = stage_of[graph_module]
        geometry = GridGeometry(tuple(grid), strides[s], input_size)
        pgn.append(PGNGraph(s, block_of[graph_module], geometry, graph_module.config,
                            _local(graph.index, b, per_clip_keys), feats))
    plg = [PLGGraph(s, j, stages[s], _local(graph.index, b, per_clip), feats)
           for s, j, graph, per_clip, feats in recorder.plg]
    return GraphTrace(logits.detach(), plg, pgn, stages)

