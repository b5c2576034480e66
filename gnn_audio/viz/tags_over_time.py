"""Tags over time of a long recording: its log-mel spectrogram on top and, under it on the
same time axis, the per-window scores of the strongest labels as a heat map (labels x time).

:func:`plot_tags_over_time` takes the spectrogram, the windows' times and their scores from
anywhere (a sliding-window tagger's output); :func:`window_scores` computes them with a
model the way evaluation windows and scores clips (:mod:`gnn_audio.data.windows`,
:mod:`gnn_audio.scoring`), and :func:`tags_over_time_file` does both for a file and a checkpoint.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from gnn_audio.data.features import pad_value
from gnn_audio.data.windows import Windowing
from gnn_audio.scoring import WindowScorer
from gnn_audio.types import PathLike
from gnn_audio.viz.figure import check_output_path, new_figure, save_figure
from gnn_audio.viz.inputs import file_logmel, label_names_of, load_checkpoint_model, model_fbank
from gnn_audio.zoo import bundle_of
from gnn_audio.viz.label_lookup import resolve_label

__all__ = ["window_scores", "plot_tags_over_time", "tags_over_time_file"]

#: the spectrogram is averaged down to at most this many columns (a 1-hour file has 360 000
#: frames; the picture has about 1500 pixels across)
_MAX_COLUMNS = 3000


def _array(x, name: str, dims: int) -> np.ndarray:
    a = x.detach().float().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, float)
    if a.ndim != dims:
        raise ValueError(f"{name} must have {dims} dimensions (got shape {a.shape})")
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def window_scores(model: torch.nn.Module, logmel: Tensor, *, window_hop: float = 0.5,
                  batch_size: int = 8, frames: Optional[int] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Scores of windows of a recording's normalised log-mel ``[T, mel]``.

    Windows of ``frames`` frames (default: the model's input length) start every
    ``window_hop * frames`` frames, the last one aligned to the end, and are scored by the
    evaluation's scorer (:class:`~gnn_audio.data.windows.Windowing`,
    :class:`~gnn_audio.scoring.WindowScorer`); a recording shorter than a window gives one
    window padded as training padded clips. Returns ``(window_times [W, 2]`` start and end
    seconds of the real frames, ``scores [W, S])`` (sigmoid of the logits).
    """
    bundle = bundle_of(model)
    fb = model_fbank(model)
    windowing = Windowing.from_fraction(int(frames or bundle.frames), window_hop)
    starts, windows = windowing.windows(logmel, pad_value(fb))
    scorer = WindowScorer(model, batch_size)
    was_training = model.training
    model.eval()
    try:
        scorer.add(0, windows)
        scorer.close(0)
        scorer.flush()
        (_, scores), = scorer.ready()
    finally:
        model.train(was_training)
    times = [(s, windowing.end(s, logmel.size(0))) for s in starts]
    return np.asarray(times, dtype=np.float64) * (fb.frame_shift_ms / 1000.0), scores


def _edges(window_times: np.ndarray) -> np.ndarray:
    """Cell edges on the time axis: overlapping windows meet half way between their
    centres; the first and last cells reach the first start and the last end."""
    centres = window_times.mean(1)
    mids = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[window_times[0, 0]], mids, [window_times[-1, 1]]])


def _columns(spec: np.ndarray) -> Tuple[np.ndarray, int]:
    """``spec [T, mel]`` averaged over blocks of frames to at most ``_MAX_COLUMNS`` rows, and
    the block size."""
    step = max(1, -(-spec.shape[0] // _MAX_COLUMNS))
    if step == 1:
        return spec, 1
    n = -(-spec.shape[0] // step) * step
    padded = np.concatenate([spec, np.repeat(spec[-1:], n - spec.shape[0], 0)])
    return padded.reshape(-1, step, spec.shape[1]).mean(1), step


def plot_tags_over_time(logmel, window_times, scores, label_names: Sequence[str],
                        path: PathLike, *, frame_shift_ms: float = 10.0, top_k: int = 10,
                        labels: Optional[Sequence[Union[str, int]]] = None,
                        threshold: Optional[float] = None, title: Optional[str] = None,
                        dpi: int = 120) -> Path:
    """Draw a recording's log-mel with its per-window tag scores under it.

    Args:
        logmel: ``[T, mel]`` log-mel of the recording (normalised or not).
        window_times: ``[W, 2]`` start and end second of every window.
        scores: ``[W, S]`` scores in ``[0, 1]`` of every window.
        label_names: the ``S`` label names (the heat map's row names).
        path: the picture file (PNG unless its extension names another format).
        frame_shift_ms: seconds per log-mel frame x 1000 (the time axis).
        top_k: rows shown: the labels with the highest maximum score over the windows.
        labels: show these labels (names or indices) instead, in this order.
        threshold: only labels whose maximum score reaches it (with ``top_k``).
        title: the figure title.
    Returns:
        the path written.
    """
    path = check_output_path(path)
    spec = _array(logmel, "logmel", 2)
    times = _array(window_times, "window_times", 2)
    sc = _array(scores, "scores", 2)
    names = list(label_names)
    if times.shape[1] != 2 or times.shape[0] == 0 or (times[:, 1] <= times[:, 0]).any():
        raise ValueError(f"window_times must be [W, 2] (start, end) seconds with end > start "
                         f"(got shape {times.shape})")
    if sc.shape != (times.shape[0], len(names)):
        raise ValueError(f"scores must be [windows, labels] = [{times.shape[0]}, {len(names)}] "
                         f"(got {list(sc.shape)})")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1 (got {top_k})")
    order = np.argsort(times[:, 0], kind="stable")
    times, sc = times[order], sc[order]
    if labels is not None:
        rows = [resolve_label(n, names) for n in labels]
    else:
        peak = sc.max(0)
        rows = [int(i) for i in np.argsort(-peak, kind="stable")
                if threshold is None or peak[i] >= threshold][:top_k]
    shift = frame_shift_ms / 1000.0

    n_rows = max(1, len(rows))
    fig = new_figure((13.0, 3.4 + 0.3 * n_rows))
    grid = fig.add_gridspec(2, 2, width_ratios=[70, 1],
                            height_ratios=[2.4, max(1.0, 0.3 * n_rows)], hspace=0.08,
                            wspace=0.02, left=0.12, right=0.94, top=0.93, bottom=0.09)
    ax_spec = fig.add_subplot(grid[0, 0])
    ax_heat = fig.add_subplot(grid[1, 0], sharex=ax_spec)
    ax_bar = fig.add_subplot(grid[1, 1])
    fig.add_subplot(grid[0, 1]).axis("off")

    cols, step = _columns(spec)
    end = spec.shape[0] * shift
    lo, hi = np.percentile(spec, [1.0, 99.7]) if spec.size else (0.0, 1.0)
    ax_spec.imshow(cols.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                   extent=(0.0, cols.shape[0] * step * shift, 0, spec.shape[1]), vmin=lo,
                   vmax=max(hi, lo + 1e-6))
    ax_spec.set_ylabel("mel bin", fontsize=9)
    ax_spec.tick_params(labelbottom=False, labelsize=8)
    ax_spec.set_title(title or f"tags over time: {times.shape[0]} windows", fontsize=11,
                      loc="left")

    edges = _edges(times)
    if rows:
        mesh = ax_heat.pcolormesh(edges, np.arange(len(rows) + 1), sc[:, rows].T,
                                  cmap="viridis", vmin=0.0, vmax=1.0, shading="flat")
        fig.colorbar(mesh, cax=ax_bar, label="score")
        ax_heat.set_yticks(np.arange(len(rows)) + 0.5)
        ax_heat.set_yticklabels([names[i] for i in rows], fontsize=8)
        ax_heat.set_ylim(len(rows), 0)
    else:
        ax_heat.text(0.5, 0.5, f"no label reaches {threshold}", transform=ax_heat.transAxes,
                     ha="center", va="center")
        ax_heat.set_yticks([])
        ax_bar.axis("off")
    ax_heat.set_xlim(0.0, max(end, float(times[-1, 1])))
    ax_heat.set_xlabel("time (s)", fontsize=9)
    ax_heat.tick_params(labelsize=8)
    return save_figure(fig, path, dpi)


def tags_over_time_file(checkpoint: PathLike, audio_path: PathLike, out_png: PathLike, *,
                        window_hop: float = 0.5, top_k: int = 10,
                        labels: Optional[Sequence[Union[str, int]]] = None,
                        threshold: Optional[float] = None, batch_size: int = 8,
                        device: Union[str, torch.device] = "cpu", dpi: int = 120) -> Path:
    """Tags over time of an audio file with a checkpoint's model (:func:`window_scores`,
    then :func:`plot_tags_over_time`). The file is decoded whole (a picture of a very long
    recording should be drawn from a streaming tagger's window scores instead)."""
    out = check_output_path(out_png)
    if not os.path.isfile(audio_path):
        raise FileNotFoundError(f"audio file not found: {os.fspath(audio_path)}")
    model = load_checkpoint_model(checkpoint, device)
    fb = model_fbank(model)
    names = label_names_of(model)
    if labels is not None:
        labels = [resolve_label(n, names, os.fspath(checkpoint)) for n in labels]
    logmel = file_logmel(audio_path, fb)
    times, scores = window_scores(model, logmel, window_hop=window_hop, batch_size=batch_size)
    return plot_tags_over_time(logmel, times, scores, names, out,
                               frame_shift_ms=fb.frame_shift_ms, top_k=top_k, labels=labels,
                               threshold=threshold, dpi=dpi,
                               title=f"{os.path.basename(os.fspath(audio_path))}: tags over "
                                     f"time ({len(times)} windows of "
                                     f"{(fb.target_length or 0) * fb.frame_shift_ms / 1000:g} s)")
