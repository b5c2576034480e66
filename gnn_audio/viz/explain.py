"""What ATGNN looked at, drawn over the log-mel spectrogram: for one clip and one label, the
patch nodes the label's PLG node read in every MLG stage, and the kNN neighbours of one patch
node in one PGN block (the dynamic graph itself: dilation, pooled keys and relative
position as the model applied them). The graphs are the ones the model's forward built
(:func:`~gnn_audio.viz.graph_trace.trace_graphs`), not a gradient or an approximation.

``gnn-audio explain FILE --checkpoint CK --label NAME --out fig.png`` calls
:func:`explain_file`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from gnn_audio.data.features import pad_value
from gnn_audio.data.windows import Windowing
from gnn_audio.types import PathLike
from gnn_audio.viz.figure import check_output_path, new_figure, save_figure
from gnn_audio.viz.graph_trace import (GraphTrace, PGNGraph, PLGGraph, check_atgnn,
                                       trace_graphs)
from gnn_audio.viz.inputs import (checkpoint_labels, file_logmel, label_names_of,
                                  load_checkpoint_model, model_fbank)
from gnn_audio.viz.label_lookup import resolve_label
from gnn_audio.zoo import bundle_of

__all__ = ["explain", "explain_file", "select_pgn_block"]

#: edge colours of the MLG blocks of one stage (first, second, ...)
_BLOCK_COLOURS = ("#00e5ff", "#76ff03", "#ffea00", "#ff80ab", "#ffffff", "#b388ff")
_QUERY_COLOUR = "#ff1744"
_KEY_COLOUR = "#00e5ff"


def select_pgn_block(trace: GraphTrace, stage: Optional[int] = None,
                     block: Optional[int] = None) -> PGNGraph:
    """The PGN graph of ``stage`` and ``block`` (both 1-based, as the pictures number them;
    default: the last stage, its last block). One-line ``ValueError`` for a stage or block
    the model does not have."""
    stages = sorted({g.stage for g in trace.pgn})
    s = stages[-1] if stage is None else int(stage) - 1
    if s not in stages:
        raise ValueError(f"stage {stage} does not exist: the model has stages 1-{len(stages)}")
    blocks = trace.pgn_of_stage(s)
    j = len(blocks) - 1 if block is None else int(block) - 1
    if not 0 <= j < len(blocks):
        raise ValueError(f"block {block} does not exist: stage {s + 1} has PGN blocks "
                         f"1-{len(blocks)}")
    return blocks[j]


def _query_node(trace: GraphTrace, graph: PGNGraph, label: int,
                patch: Optional[Tuple[float, float]], frame_shift: float,
                time_offset: float) -> int:
    """The patch node to show the neighbours of: the cell at ``patch = (seconds, mel bin)``,
    else the label's nearest patch in the stage's last MLG block, else the middle cell."""
    geo = graph.geometry
    if patch is not None:
        seconds, mel_bin = patch
        frame = (float(seconds) - time_offset) / frame_shift
        if not 0 <= frame < geo.input_size[0] or not 0 <= mel_bin < geo.input_size[1]:
            raise ValueError(f"patch ({seconds} s, mel bin {mel_bin}) lies outside the "
                             f"analysed window ({time_offset:.2f}-"
                             f"{time_offset + geo.input_size[0] * frame_shift:.2f} s, mel bins "
                             f"0-{geo.input_size[1] - 1})")
        return geo.node_at(frame, mel_bin)
    plg = trace.plg_of_stage(graph.stage)
    if plg:
        return int(plg[-1].index[0, label, 0])
    h, w = geo.grid
    return (h // 2) * w + w // 2


def _draw_boxes(ax, boxes: np.ndarray, colour: str, frame_shift: float, time_offset: float,
                fill_alpha: float = 0.35, lw: float = 1.4, label: Optional[str] = None) -> None:
    from matplotlib.patches import Rectangle

    for i, (f0, f1, m0, m1) in enumerate(boxes):
        x0 = time_offset + f0 * frame_shift
        width = (f1 - f0) * frame_shift
        ax.add_patch(Rectangle((x0, m0), width, m1 - m0, facecolor=colour, alpha=fill_alpha,
                               edgecolor="none"))
        ax.add_patch(Rectangle((x0, m0), width, m1 - m0, facecolor="none", edgecolor=colour,
                               lw=lw, label=label if i == 0 else None))


def _draw_rug(ax, boxes: np.ndarray, colour: str, frame_shift: float, time_offset: float,
              top: float) -> None:
    """Triangles above the panel at the time centres of ``boxes``: where in time a graph's
    nodes sit, readable even where cells are small."""
    centres = time_offset + (boxes[:, 0] + boxes[:, 1]) / 2 * frame_shift
    ax.plot(centres, np.full(len(centres), top), "v", color=colour, ms=6, mec="black",
            mew=0.5, clip_on=False, zorder=5)


def _spectrogram(ax, logmel: np.ndarray, frame_shift: float, time_offset: float,
                 valid_frames: int, ylabel: str) -> None:
    frames, mel = logmel.shape
    real = logmel[:max(1, valid_frames)]  # the colour scale follows the audio, not the padding
    lo, hi = np.percentile(real, [1.0, 99.7])
    ax.imshow(logmel.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
              extent=(time_offset, time_offset + frames * frame_shift, 0, mel),
              vmin=lo, vmax=max(hi, lo + 1e-6))
    if valid_frames < frames:
        x0 = time_offset + valid_frames * frame_shift
        ax.axvspan(x0, time_offset + frames * frame_shift, facecolor="0.45", alpha=0.85,
                   edgecolor="0.8", hatch="//", lw=0)
        ax.text((x0 + time_offset + frames * frame_shift) / 2, mel * 0.5, "padding",
                color="white", ha="center", va="center", fontsize=9)
    ax.set_xlim(time_offset, time_offset + frames * frame_shift)
    ax.set_ylim(0, mel)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)


def _cell_text(stride: int, frame_shift: float) -> str:
    return f"cell {stride} frames ({stride * frame_shift * 1000:.0f} ms) x {stride} mel bins"


class _Clip(NamedTuple):
    """The log-mel ``[frames, mel]`` a picture shows and where it lies in time."""

    spec: np.ndarray
    frame_shift: float
    time_offset: float
    valid_frames: int


def _checked_inputs(model: torch.nn.Module, logmel: Tensor, label: Union[str, int],
                    path: PathLike, source: Optional[str]) -> Tuple[Path, List[str], int]:
    """:func:`explain`'s checks before tracing: ``(output path, label names, label index)``."""
    check_atgnn(model, need_mlg=True, where=source or "")
    path = check_output_path(path)
    names = label_names_of(model)
    li = resolve_label(label, names, bundle_of(model).name)
    if logmel.dim() != 2:
        raise ValueError(f"logmel must be one clip [frames, mel] (got {tuple(logmel.shape)})")
    return path, names, li


def _draw_plg_panel(ax, graphs: List[PLGGraph], li: int, name: str, clip: _Clip) -> None:
    """One stage's panel: the patch nodes label ``li`` read in each of its MLG blocks."""
    spec, frame_shift, time_offset, valid = clip
    mel = spec.shape[1]
    geo = graphs[0].geometry
    _spectrogram(ax, spec, frame_shift, time_offset, valid, f"'{name}'\nmel bin")
    for g in graphs:
        colour = _BLOCK_COLOURS[g.block % len(_BLOCK_COLOURS)]
        boxes = geo.boxes(g.index[0, li])
        _draw_boxes(ax, boxes, colour, frame_shift, time_offset,
                    label=f"MLG block {g.block + 1}" if len(graphs) > 1 else None)
        _draw_rug(ax, boxes, colour, frame_shift, time_offset, mel * (1.04 + 0.05 * g.block))
    k = graphs[0].index.size(-1)
    ax.set_title(f"stage {graphs[0].stage + 1} PLG: the {k} patch nodes label '{name}' read "
                 f"(grid {geo.grid[0]} x {geo.grid[1]}, {_cell_text(geo.stride, frame_shift)})",
                 fontsize=9, loc="left", pad=8 + 7 * len(graphs))
    if len(graphs) > 1:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6, facecolor="0.3",
                  labelcolor="white")


def _draw_pgn_panel(ax, pgn: PGNGraph, query: int, clip: _Clip) -> None:
    """The last panel: patch node ``query`` and the key nodes it read in block ``pgn``."""
    spec, frame_shift, time_offset, valid = clip
    mel = spec.shape[1]
    geo, cfg = pgn.geometry, pgn.config
    qbox = geo.boxes([query])
    qt = time_offset + (qbox[0, 0] + qbox[0, 1]) / 2 * frame_shift
    qm = (qbox[0, 2] + qbox[0, 3]) / 2
    _spectrogram(ax, spec, frame_shift, time_offset, valid,
                 f"patch ({qt:.2f} s,\nmel {qm:.0f})\nmel bin")
    keys = pgn.key_boxes(pgn.index[0, query])
    _draw_boxes(ax, keys, _KEY_COLOUR, frame_shift, time_offset, fill_alpha=0.25,
                label=f"its {keys.shape[0]} neighbours")
    _draw_boxes(ax, qbox, _QUERY_COLOUR, frame_shift, time_offset, fill_alpha=0.6, lw=2.0,
                label="the patch node")
    _draw_rug(ax, keys, _KEY_COLOUR, frame_shift, time_offset, mel * 1.04)
    r = cfg.reduce_ratio
    key_text = "keys: the nodes" if r == 1 else f"keys: {r} x {r} average-pooled cells"
    ax.set_title(f"stage {pgn.stage + 1}, PGN block {pgn.block + 1}: the kNN neighbours of one "
                 f"patch node (k={cfg.k}, dilation {cfg.dilation}, {key_text}, relative "
                 f"position {cfg.relative_pos}; {_cell_text(geo.stride, frame_shift)})",
                 fontsize=9, loc="left", pad=11)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.6, facecolor="0.3",
              labelcolor="white")
    ax.set_xlabel("time (s)", fontsize=9)


def _headline(source: Optional[str], names: List[str], li: int, scores: Tensor) -> str:
    """The figure title: the clip, the label's score and the three top-scoring labels."""
    top = torch.argsort(scores, descending=True)[:3].tolist()
    head = f"{source}: " if source else ""
    return (f"{head}what ATGNN looked at for '{names[li]}' (score {scores[li]:.2f}; "
            "top: " + ", ".join(f"{names[i]} {scores[i]:.2f}" for i in top) + ")")


def explain(model: torch.nn.Module, logmel: Tensor, label: Union[str, int], path: PathLike, *,
            stage: Optional[int] = None, block: Optional[int] = None,
            patch: Optional[Tuple[float, float]] = None, frame_shift_ms: float = 10.0,
            time_offset: float = 0.0, valid_frames: Optional[int] = None,
            source: Optional[str] = None, dpi: int = 120) -> Path:
    """Draw what an ATGNN looked at for ``label`` on one clip and write it to ``path``.

    One panel per MLG stage: the ``k`` patch nodes the label's PLG node connected to in each
    of the stage's MLG blocks (one colour per block, triangles above the panel at their
    times), over the log-mel; a last panel: one patch node (red) and the ``k`` key nodes it
    connected to in a PGN block (cyan; ``r x r`` cells where keys are pooled).

    Args:
        model: an ATGNN with MLG blocks (see :func:`~gnn_audio.viz.graph_trace.check_atgnn`).
        logmel: the normalised log-mel the model takes, ``[frames, mel]`` (one clip).
        label: one of the model's label names (or its index).
        path: the picture file (PNG unless its extension names another format).
        stage, block: the PGN block of the last panel, 1-based (default: the last stage,
            its last block).
        patch: ``(seconds, mel bin)`` of the patch node of the last panel (default: the
            label's nearest patch node in that stage).
        frame_shift_ms: the front-end's frame shift (time axis).
        time_offset: seconds of the first frame in the file (for a window of a long file).
        valid_frames: frames of real audio (the rest is padding, shown hatched).
        source: what the clip is (a file name) for the title.
    Returns:
        the path written.
    """
    path, names, li = _checked_inputs(model, logmel, label, path, source)
    trace = trace_graphs(model, logmel[None].to(next(model.parameters()).device))
    pgn = select_pgn_block(trace, stage, block)
    frame_shift = frame_shift_ms / 1000.0
    query = _query_node(trace, pgn, li, patch, frame_shift, time_offset)
    spec = logmel.detach().float().cpu().numpy()
    valid = spec.shape[0] if valid_frames is None else int(valid_frames)
    clip = _Clip(spec, frame_shift, time_offset, valid)
    scores = torch.sigmoid(trace.logits[0].float()).cpu()

    plg_stages = sorted({g.stage for g in trace.plg})
    rows = len(plg_stages) + 1
    fig = new_figure((13.0, 2.35 * rows + 1.0))
    axes = fig.subplots(rows, 1, sharex=True)
    for ax, s in zip(axes, plg_stages):
        _draw_plg_panel(ax, trace.plg_of_stage(s), li, names[li], clip)
    _draw_pgn_panel(axes[-1], pgn, query, clip)
    fig.suptitle(_headline(source, names, li, scores), fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def explain_file(checkpoint: PathLike, audio_path: PathLike, label: Union[str, int],
                 out_png: PathLike, stage: Optional[int] = None, block: Optional[int] = None,
                 *, patch: Optional[Tuple[float, float]] = None, start: float = 0.0,
                 device: Union[str, torch.device] = "cpu", dpi: int = 120) -> Path:
    """:func:`explain` for an audio file and a checkpoint (what ``gnn-audio explain`` runs).

    The window the model takes (``fbank.target_length`` frames from ``start`` seconds; a
    shorter clip padded as in training) is analysed. Everything that can be checked before
    the model runs is checked first, each with a one-line ``ValueError`` (or
    ``FileNotFoundError`` / :class:`~gnn_audio.data.audio.AudioError`) naming the file or
    value: the output folder, the checkpoint (missing, not a checkpoint, not an ATGNN with
    MLG blocks), the label (unknown names list the closest ones), the audio file and
    ``start``.

    Returns:
        the path of the picture written.
    """
    out = check_output_path(out_png)
    ck = os.fspath(checkpoint)
    names = checkpoint_labels(ck, family="atgnn")
    li = resolve_label(label, names, ck)
    if not os.path.isfile(audio_path):
        raise FileNotFoundError(f"audio file not found: {os.fspath(audio_path)}")
    if start < 0:
        raise ValueError(f"start must be >= 0 seconds (got {start})")
    model = load_checkpoint_model(ck, device)
    check_atgnn(model, need_mlg=True, where=ck)
    fb = model_fbank(model)
    windowing = Windowing(bundle_of(model).frames)
    logmel = file_logmel(audio_path, fb)
    shift = fb.frame_shift_ms / 1000.0
    first = int(round(start / shift))
    if first >= logmel.size(0):
        raise ValueError(f"{os.fspath(audio_path)}: start {start} s is past the end of the file "
                         f"({logmel.size(0) * shift:.2f} s)")
    window = windowing.cut(logmel, first, pad_value(fb))
    valid = windowing.end(first, logmel.size(0)) - first
    return explain(model, window, li, out, stage=stage, block=block, patch=patch,
                   frame_shift_ms=fb.frame_shift_ms, time_offset=first * shift,
                   valid_frames=valid, source=os.path.basename(os.fspath(audio_path)), dpi=dpi)
