"""The one window scorer: windows of many clips in, ``sigmoid(logits)`` of every window out,
batched across clips. Evaluation (:func:`gnn_audio.train.evaluate.predict`), the tagger
(:class:`gnn_audio.inference.Tagger`) and the pictures
(:func:`gnn_audio.viz.tags_over_time.window_scores`) all score through it, so the same windows
in the same order give the same scores, bit for bit.

>>> scorer = WindowScorer(model, batch_size=16)
>>> scorer.add(0, windows_of_clip_0)        # [n, frames, mel], in any number of calls
>>> scorer.close(0)                         # clip 0 has no more windows
>>> scorer.flush()                          # score what is queued
>>> [(owner, scores.shape) for owner, scores in scorer.ready()]
[(0, (n, num_classes))]
"""
from __future__ import annotations

import itertools
from collections import deque
from typing import Deque, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from gnn_audio.precision import autocast, check_precision

__all__ = ["WindowScorer", "model_device"]


def model_device(model: torch.nn.Module,
                 default: Union[str, torch.device] = "cpu") -> torch.device:
    """The device of the model's first parameter or buffer (``default`` for a model with
    neither)."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device(default)


class _Scores:
    """One clip's window scores, in one array grown by doubling: a long recording's scores
    are a handful of allocations, not one small array per batch (those, interleaved with the
    batches' large transient buffers, fragment the heap and make the resident memory of a
    one-hour file grow with its length)."""

    __slots__ = ("rows", "count", "unscored", "closed")

    def __init__(self) -> None:
        self.rows: Optional[np.ndarray] = None
        self.count = 0
        self.unscored = 0
        self.closed = False

    def add(self, row: np.ndarray) -> None:
        if self.rows is None or self.count == len(self.rows):
            grown = np.empty((max(8, 2 * self.count), row.shape[0]), dtype=np.float32)
            if self.rows is not None:
                grown[:self.count] = self.rows
            self.rows = grown
        self.rows[self.count] = row
        self.count += 1
        self.unscored -= 1

    def scores(self, num_classes: int) -> np.ndarray:
        if self.rows is None:
            return np.zeros((0, num_classes), dtype=np.float32)
        return self.rows[:self.count].copy()


class WindowScorer:
    """Scores the windows of many clips ``batch_size`` at a time, in the order they are added.

    Args:
        model: ``model(x [B, frames, bins]) -> [B, S]`` logits; used as it is (put it in
            eval mode, on its device).
        batch_size: windows per forward.
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast (:mod:`gnn_audio.precision`).
        device: where the model runs (default: its parameters' device).

    A clip (``owner``, any hashable) gets windows with :meth:`add` and is declared complete
    with :meth:`close`; :meth:`ready` hands out the ``[W, S]`` scores of the complete clips
    whose windows have all been scored, in the order they were closed.
    """

    def __init__(self, model: torch.nn.Module, batch_size: int, precision: str = "fp32",
                 device: Optional[Union[str, torch.device]] = None) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.model = model
        self.device = torch.device(device) if device is not None else model_device(model)
        check_precision(precision, self.device)
        self.batch_size, self.precision = batch_size, precision
        self.num_classes: Optional[int] = None
        self._queue: Deque[Tuple[object, Tensor]] = deque()
        self._queued = 0
        self._clips: Dict[object, _Scores] = {}
        self._closed: List[object] = []
        self._buffer: Optional[Tensor] = None  # one input buffer, reused by every batch

    def add(self, owner: object, windows: Tensor) -> None:
        """Queue ``windows [n, frames, bins]`` of clip ``owner``; full batches run at once."""
        if windows.dim() != 3:
            raise ValueError(f"windows must be [n, frames, bins], got {tuple(windows.shape)}")
        clip = self._clips.setdefault(owner, _Scores())
        if clip.closed:
            raise ValueError(f"clip {owner!r} was closed: it takes no more windows")
        if windows.size(0) == 0:
            return
        clip.unscored += windows.size(0)
        self._queue.append((owner, windows))
        self._queued += windows.size(0)
        while self._queued >= self.batch_size:
            self._run(self.batch_size)

    def close(self, owner: object) -> None:
        """Clip ``owner`` has no more windows (a clip may have none)."""
        clip = self._clips.setdefault(owner, _Scores())
        clip.closed = True
        self._closed.append(owner)

    def flush(self) -> None:
        """Score every queued window (the last, partial batch)."""
        if self._queued:
            self._run(self._queued)

    def ready(self) -> List[Tuple[object, np.ndarray]]:
        """``(owner, scores [W, S])`` of every closed clip whose windows are all scored, in
        closing order; each clip is handed out once and then forgotten."""
        out, still = [], []
        for owner in self._closed:
            clip = self._clips[owner]
            if clip.unscored:
                still.append(owner)
            else:
                del self._clips[owner]
                out.append((owner, clip.scores(self.num_classes or 0)))
        self._closed = still
        return out

    @torch.no_grad()
    def _run(self, n: int) -> None:
        owners: List[object] = []
        first = self._queue[0][1]
        shape = (self.batch_size, *first.shape[1:])
        if self._buffer is None or self._buffer.shape != shape:
            self._buffer = torch.empty(shape, dtype=torch.float32,
                                       pin_memory=self.device.type == "cuda")
        batch = self._buffer[:n]
        filled = 0
        while filled < n:
            owner, chunk = self._queue[0]
            if tuple(chunk.shape[1:]) != shape[1:]:
                raise ValueError(f"windows of clip {owner!r} are {tuple(chunk.shape[1:])}, "
                                 f"others {shape[1:]}: every window must have one shape")
            take = min(n - filled, chunk.size(0))
            batch[filled:filled + take].copy_(chunk[:take])
            owners += [owner] * take
            if take == chunk.size(0):
                self._queue.popleft()
            else:
                self._queue[0] = (owner, chunk[take:])
            filled += take
        self._queued -= n
        with autocast(self.precision, self.device):
            logits = self.model(batch.to(self.device, non_blocking=True))
        probs = torch.sigmoid(logits.float()).cpu().numpy()
        if probs.ndim != 2 or probs.shape[0] != n:
            raise ValueError(f"the model must return [batch, classes] logits; got "
                             f"{tuple(logits.shape)} for a batch of {n}")
        self.num_classes = probs.shape[1]
        for owner, row in zip(owners, probs):
            self._clips[owner].add(row)
