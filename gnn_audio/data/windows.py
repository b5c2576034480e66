"""Sliding windows over a clip's log-mel frames: where they start, how they are cut and padded,
and the log-mel windows of a long signal that arrives in blocks. The one place evaluation
(``windows`` and ``crop`` modes), the tagger and the pictures take windows from.

A model reads ``frames`` log-mel frames (its input, e.g. 1024). A :class:`Windowing` takes
``window`` frames (at most ``frames``) every ``hop`` frames, the last window aligned to the
clip's end; a clip no longer than one window gives one window at 0. A window shorter than
``frames`` (a short clip, or ``window < frames``) is padded after normalisation with the
normalised value of a zero log-mel frame, :func:`~gnn_audio.data.features.pad_value`, exactly
as training pads short clips (:func:`~gnn_audio.data.features.pad_or_cut` before
normalisation).

>>> w = Windowing(frames=1024)              # 1024-frame windows every 512 frames
>>> w.starts(3000)
[0, 512, 1024, 1536, 1976]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Tuple

import torch
from torch import Tensor

from gnn_audio.data.features import FbankConfig, pad_value
from gnn_audio.data.kaldi_fbank import KaldiFbank
from gnn_audio.data.panns_logmel import log_mel_module

__all__ = ["Windowing", "window_starts", "logmel_windows"]


def window_starts(num_frames: int, window: int, hop: int) -> List[int]:
    """First frames of the windows of a clip of ``num_frames`` frames: every ``hop`` frames,
    plus a last window ending at the clip's end; ``[0]`` for a clip no longer than
    ``window``."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, hop))
    if starts[-1] != num_frames - window:
        starts.append(num_frames - window)
    return starts


@dataclass(frozen=True)
class Windowing:
    """Windows of ``window`` frames (default ``frames``) every ``hop`` frames (default half a
    window), each fed to the model as ``frames`` frames.

    Args:
        frames: the model's input length in frames.
        window: frames per window, in ``[1, frames]``.
        hop: frames between window starts, in ``[1, window]``.
    """

    frames: int
    window: Optional[int] = None
    hop: Optional[int] = None

    def __post_init__(self) -> None:
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"frames must be an integer >= 1, got {self.frames!r}")
        window = self.frames if self.window is None else int(self.window)
        if not 1 <= window <= self.frames:
            raise ValueError(f"window must be in [1, {self.frames}] frames, got {window}")
        hop = max(1, int(round(window / 2))) if self.hop is None else int(self.hop)
        if not 1 <= hop <= window:
            raise ValueError(f"hop must be in [1, window={window}] frames, got {hop}")
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "hop", hop)

    @classmethod
    def from_fraction(cls, frames: int, window_hop: float) -> "Windowing":
        """Windows of ``frames`` frames every ``max(1, round(window_hop * frames))`` frames
        (evaluation's ``window_hop``, a fraction of the window in ``(0, 1]``)."""
        if not 0.0 < window_hop <= 1.0:
            raise ValueError(f"window_hop must be in (0, 1], got {window_hop}")
        return cls(frames, frames, max(1, int(round(window_hop * frames))))

    def starts(self, num_frames: int) -> List[int]:
        """First frames of the windows of a clip of ``num_frames`` frames."""
        return window_starts(num_frames, self.window, self.hop)

    def end(self, start: int, num_frames: int) -> int:
        """The frame after the last real frame of the window at ``start``."""
        return min(start + self.window, num_frames)

    def cut(self, logmel: Tensor, start: int, pad: float) -> Tensor:
        """The window of the normalised ``logmel [T, mel]`` at ``start``: its real frames,
        padded with ``pad`` to ``frames`` rows."""
        x = logmel[start:self.end(start, logmel.size(0))]
        if x.size(0) < self.frames:
            x = torch.cat([x, x.new_full((self.frames - x.size(0), x.size(1)), pad)])
        return x

    def windows(self, logmel: Tensor, pad: float, first_only: bool = False
                ) -> Tuple[List[int], Tensor]:
        """``(starts, windows [W, frames, mel])`` of a clip's normalised log-mel (only the
        first window, the ``crop`` of evaluation, with ``first_only``)."""
        starts = [0] if first_only else self.starts(logmel.size(0))
        return starts, torch.stack([self.cut(logmel, s, pad) for s in starts])


def logmel_windows(blocks: Iterable[Tensor], num_samples: int, fbank: FbankConfig,
                   windowing: Windowing, frontend: Optional[KaldiFbank] = None
                   ) -> Iterator[Tuple[int, int, Tensor]]:
    """The windows of a mono signal that arrives in blocks, without holding the signal.

    Args:
        blocks: ``[1, t]`` (or ``[t]``) float blocks at ``fbank.sample_rate``, ``num_samples``
            in all.
        num_samples: the signal's length; the window positions depend on it.
        fbank: the model's front-end.
        windowing: where the windows go (:class:`Windowing`).
        frontend: a :class:`KaldiFbank` of ``fbank`` to reuse (built when ``None``).

    Yields:
        ``(first frame, end frame, features [frames, num_mel_bins])`` per window, normalised
        and padded as :meth:`Windowing.cut` pads. Only about one window and one block are
        held at a time. The log-mel of a block equals that of the whole signal up to float32
        rounding (the whole-clip mean removal is not known in advance; the per-frame DC
        removal makes it a no-op but for rounding).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    stream = _FrameStream(frontend or log_mel_module(fbank.replace(target_length=None)),
                          num_samples, fbank.num_mel_bins)
    starts = windowing.starts(stream.total)
    pad = pad_value(fbank)
    k = 0
    for block in blocks:
        stream.push(block)
        while k < len(starts) and stream.has(windowing.end(starts[k], stream.total)):
            start, end = starts[k], windowing.end(starts[k], stream.total)
            k += 1
            yield start, end, windowing.cut(stream.normalized(start, end, fbank), 0, pad)
            if k < len(starts):
                stream.forget_before(starts[k])
    stream.finish()
    for start in starts[k:]:
        end = windowing.end(start, stream.total)
        yield start, end, windowing.cut(stream.normalized(start, end, fbank), 0, pad)


class _FrameStream:
    """Log-mel frames of a signal computed as its samples arrive (``snip_edges`` framing:
    frame ``i`` covers samples ``[i * shift, i * shift + size)``)."""

    def __init__(self, frontend: KaldiFbank, num_samples: int, num_mel_bins: int) -> None:
        self.frontend, self.num_samples = frontend, num_samples
        self.size, self.shift = frontend.window_size, frontend.window_shift
        self.total = int(frontend.num_frames(torch.tensor([num_samples]))[0])
        self.samples = torch.zeros(0)  # the signal from frame `produced`'s first sample on
        self.feats = torch.zeros(0, num_mel_bins)  # log-mel frames from frame `first` on
        self.first = self.produced = self.received = 0

    def push(self, block: Tensor) -> None:
        if block.dim() > 2 or (block.dim() == 2 and block.size(0) != 1):
            raise ValueError(f"blocks must be mono, [1, t] or [t]; got {tuple(block.shape)}")
        block = block.reshape(-1).to(torch.float32)
        self.received += block.numel()
        if self.received > self.num_samples:
            raise ValueError(f"the blocks hold more than num_samples={self.num_samples} "
                             "samples")
        self.samples = torch.cat([self.samples, block]) if self.samples.numel() else block
        if self.produced < self.total:
            self._compute(final=False)

    def finish(self) -> None:
        if self.received != self.num_samples:
            raise ValueError(f"the blocks hold {self.received} samples, num_samples says "
                             f"{self.num_samples}")
        self._compute(final=True)
        if self.produced != self.total:  # pragma: no cover -- a bug, not a data problem
            raise RuntimeError(f"{self.total - self.produced} frames were not produced")

    def has(self, end: int) -> bool:
        return self.produced >= end

    def normalized(self, start: int, end: int, fbank: FbankConfig) -> Tensor:
        return (self.feats[start - self.first:end - self.first] - fbank.norm_mean) / \
            fbank.norm_std

    def forget_before(self, frame: int) -> None:
        """Frames before ``frame`` are not needed again."""
        if frame > self.first:
            self.feats = self.feats[frame - self.first:]
            self.first = frame

    def _compute(self, final: bool) -> None:
        count = 0
        if self.samples.numel() >= self.size:
            count = min(1 + (self.samples.numel() - self.size) // self.shift,
                        self.total - self.produced)
        if count > 0:
            used = self.samples[:(count - 1) * self.shift + self.size]
            new = self.frontend(used[None], normalize=False)[0]
            self.samples = self.samples[count * self.shift:]
        elif final and self.produced < self.total:  # shorter than one frame: padded to one
            new = self.frontend(self.samples[None], normalize=False)[0]
            count = new.size(0)
        else:
            return
        self.feats = torch.cat([self.feats, new]) if self.feats.numel() else new
        self.produced += count
