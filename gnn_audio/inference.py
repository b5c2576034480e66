"""Tagging audio with a trained log-mel zoo model: files or waveforms of any length, sample rate
and channel count -> per-window and pooled tag scores.

The pipeline, the way training saw its clips:

1. the file is read in blocks (:class:`~gnn_audio.data.audio.AudioBlocks`, any format
   soundfile reads), down-mixed to mono and resampled block by block to the front-end's rate
   (:class:`~gnn_audio.data.audio.StreamResampler`, equal to resampling the whole file);
2. log-mel frames are computed as the samples arrive
   (:class:`~gnn_audio.data.kaldi_fbank.KaldiFbank`, the training front-end) and cut into
   windows of ``window`` seconds every ``hop`` seconds, the last window aligned to the end of
   the file (:func:`gnn_audio.train.evaluate.window_starts`, as ``gnn-audio eval`` scores
   windows); a window shorter than the model's input, or a clip shorter than one window, is
   padded with zero log-mel frames after normalisation (``-norm_mean / norm_std``), as
   :class:`~gnn_audio.data.dataset.TaggingDataset` pads short training clips;
3. windows of one or many files are batched (``batch_size`` windows per forward) and scored
   with ``sigmoid(logits)``; a file's score is the maximum (or mean) over its windows.

Memory is bounded by the block, the window and the batch, never by the length of the file: a
one-hour recording is never decoded whole. Several files are decoded in parallel by a
:class:`~torch.utils.data.DataLoader` (``num_workers``); a file that cannot be used gives an
error result naming it (:attr:`TagResult.error`) and the others are still tagged.

>>> tagger = Tagger("runs/example/best.pt")                   # doctest: +SKIP
>>> tagger.tag("dog.wav", top_k=3).tags                        # doctest: +SKIP
[('Dog', 0.91), ('Domestic_animals_and_pets', 0.88), ('Bark', 0.42)]
"""
from __future__ import annotations

import math
import os
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm.auto import tqdm

from gnn_audio.data.audio import AudioBlocks, AudioError, StreamResampler, resampled_length
from gnn_audio.data.features import FbankConfig, pad_value
from gnn_audio.data.kaldi_fbank import KaldiFbank
from gnn_audio.train.evaluate import window_starts
from gnn_audio.types import PathLike

__all__ = ["POOLS", "TaggingConfig", "TagResult", "Tagger", "AudioTagger", "load_tagging_model",
           "logmel_windows", "resolve_device", "format_tags"]

#: ways of pooling window scores into a clip score
POOLS = ("max", "mean")

Audio = Union[PathLike, Tensor, np.ndarray]
_UNSET: Any = object()


@dataclass(frozen=True)
class TaggingConfig:
    """How a :class:`Tagger` cuts and batches audio.

    Args:
        window: seconds of audio per window (``None``: the model's input length, e.g. 10.24 s
            for 1024 frames); at most the model's input length (shorter windows are padded
            to it).
        hop: seconds between window starts (``None``: half the window); at most ``window``.
        pool: ``"max"`` or ``"mean"`` over a file's window scores.
        batch_size: windows per forward pass.
        num_workers: DataLoader processes decoding files (0: in this process).
    """

    window: Optional[float] = None
    hop: Optional[float] = None
    pool: str = "max"
    batch_size: int = 16
    num_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("window", "hop"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and
                                          math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.window is not None and self.hop is not None and self.hop > self.window:
            raise ValueError(f"hop ({self.hop} s) must not exceed the window ({self.window} s):"
                             " audio between windows would be skipped")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {self.num_workers!r}")


@dataclass(frozen=True, eq=False)
class TagResult:
    """The tags of one file or waveform.

    Attributes:
        source: the file's path as given (``"<waveform>"`` for an array).
        label_names: the model's class names (column order of the scores).
        scores: ``[S]`` pooled probabilities (empty for an error result).
        window_times: ``[W, 2]`` start and end of each window in seconds.
        window_scores: ``[W, S]`` probabilities of each window.
        duration: seconds of audio.
        sample_rate: the source's own sample rate.
        channels: the source's channel count (down-mixed to mono for the model).
        pool: how ``scores`` pools ``window_scores``.
        top_k: how many tags :attr:`tags` lists (``None``: all).
        threshold: the lowest score :attr:`tags` lists (``None``: no limit).
        error: one line naming the file when it could not be tagged, else ``None``.
    """

    source: str
    label_names: Tuple[str, ...]
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    window_times: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    window_scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    duration: float = 0.0
    sample_rate: Optional[int] = None
    channels: Optional[int] = None
    pool: str = "max"
    top_k: Optional[int] = 10
    threshold: Optional[float] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def _select(self, scores: np.ndarray, k: Optional[int],
                threshold: Optional[float]) -> List[Tuple[str, float]]:
        order = np.argsort(-scores, kind="stable")
        if threshold is not None:
            order = order[scores[order] >= threshold]
        if k is not None:
            order = order[:k]
        return [(self.label_names[i], float(scores[i])) for i in order]

    @property
    def tags(self) -> List[Tuple[str, float]]:
        """``(label, score)`` of the pooled scores, best first: the ``top_k`` best at or above
        ``threshold``."""
        return self.top()

    def top(self, k: Any = _UNSET, threshold: Any = _UNSET) -> List[Tuple[str, float]]:
        """The best ``k`` pooled tags at or above ``threshold`` (``None``: no limit; by
        default the result's :attr:`top_k` and :attr:`threshold`)."""
        if not self.ok:
            return []
        return self._select(self.scores, self.top_k if k is _UNSET else k,
                            self.threshold if threshold is _UNSET else threshold)

    def window_tags(self) -> List[List[Tuple[str, float]]]:
        """:attr:`tags` of every window."""
        return [self._select(s, self.top_k, self.threshold) for s in self.window_scores]

    def to_dict(self, windows: bool = False) -> Dict[str, Any]:
        """A JSON-serialisable dict: ``file``, ``duration``, ``sample_rate``, ``channels``,
        ``tags`` (``[{"label", "score"}]``) and with ``windows`` the windows' ``start``,
        ``end`` and ``tags``; ``{"file", "error"}`` for an error result."""
        if not self.ok:
            return {"file": self.source, "error": self.error}

        def tags(pairs):
            return [{"label": name, "score": round(score, 6)} for name, score in pairs]
        out: Dict[str, Any] = {"file": self.source, "duration": round(self.duration, 6),
                               "sample_rate": self.sample_rate, "channels": self.channels,
                               "pool": self.pool, "num_windows": len(self.window_scores),
                               "tags": tags(self.tags)}
        if windows:
            out["windows"] = [{"start": round(float(a), 4), "end": round(float(b), 4),
                               "tags": tags(t)}
                              for (a, b), t in zip(self.window_times, self.window_tags())]
        return out


def resolve_device(device: Union[str, torch.device]) -> torch.device:
    """``device`` as a :class:`torch.device`; ``ValueError`` (one line) for a device that does
    not exist here (``cuda`` without CUDA, ``cuda:3`` on a one-GPU machine)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r} ({' '.join(str(err).split())})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and
                                    torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r}: MPS is not available on this machine")
    return dev


def load_tagging_model(path: PathLike, **kwargs: Any) -> torch.nn.Module:
    """The log-mel model of a gnn_audio checkpoint, with its classes, label names and training
    front-end (:func:`gnn_audio.zoo.load_model`; ``kwargs`` override its build arguments).

    Raises:
        FileNotFoundError: no such file.
        ValueError: anything else that makes the file unusable for tagging (not a
            checkpoint, a damaged one, weights that do not fit the model it names, a model
            that reads embeddings instead of audio). Every message is one line naming it.
    """
    from gnn_audio.zoo import load_model

    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p}: no such checkpoint file")
    if os.path.isdir(p):
        raise ValueError(f"{p}: is a directory, not a checkpoint (a training run's best "
                         "weights are RUN_DIR/best.pt)")
    try:
        model = load_model(p, **kwargs)
    except (ValueError, TypeError, KeyError, pickle.UnpicklingError, RuntimeError,
            EOFError) as err:
        msg = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(msg if p in msg else f"{p}: {msg}") from None
    config = getattr(model, "model_config", None)
    if config is None or config.input != "logmel" or config.fbank is None:
        raise ValueError(f"{p}: holds a {getattr(model, 'model_name', type(model).__name__)} "
                         "model, which reads AudioSet embeddings, not audio; tagging audio "
                         "needs a log-mel model")
    return model


def logmel_windows(blocks: Iterable[Tensor], num_samples: int, fbank: FbankConfig,
                   frames: int, window_frames: Optional[int] = None,
                   hop_frames: Optional[int] = None,
                   frontend: Optional[KaldiFbank] = None) -> Iterator[Tuple[int, int, Tensor]]:
    """Sliding log-mel windows of a mono signal that arrives in blocks.

    Args:
        blocks: ``[1, t]`` (or ``[t]``) float blocks at ``fbank.sample_rate``, ``num_samples``
            in all.
        num_samples: the signal's length; the window positions depend on it.
        fbank: the model's front-end.
        frames: the model's input length in frames; every window is padded to it.
        window_frames: log-mel frames per window (default ``frames``), at most ``frames``.
        hop_frames: frames between window starts (default half the window).
        frontend: a :class:`KaldiFbank` of ``fbank`` to reuse (built when ``None``).

    Yields:
        ``(first frame, end frame, features [frames, num_mel_bins])`` per window, normalised,
        padded with zero log-mel frames after normalisation. Only about one window and one
        block are held at a time.
    """
    window_frames = frames if window_frames is None else int(window_frames)
    hop_frames = max(1, int(round(window_frames / 2))) if hop_frames is None else int(hop_frames)
    if not 1 <= window_frames <= frames:
        raise ValueError(f"window_frames must be in [1, {frames}], got {window_frames}")
    if not 1 <= hop_frames <= window_frames:
        raise ValueError(f"hop_frames must be in [1, window_frames={window_frames}], got "
                         f"{hop_frames}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if frontend is None:
        frontend = KaldiFbank(fbank.replace(target_length=None))
    size, shift = frontend.window_size, frontend.window_shift
    total = int(frontend.num_frames(torch.tensor([num_samples]))[0])
    starts = window_starts(total, window_frames, hop_frames / window_frames)
    # a zero log-mel frame after normalisation, computed as TaggingDataset normalises
    pad = pad_value(fbank)

    samples = torch.zeros(0)  # the signal from frame `produced`'s first sample on
    feats = torch.zeros(0, fbank.num_mel_bins)  # log-mel frames from frame `first` on
    first = produced = received = 0
    k = 0

    def compute(final: bool) -> None:
        nonlocal samples, feats, produced
        count = 0
        if samples.numel() >= size:
            count = min(1 + (samples.numel() - size) // shift, total - produced)
        if count > 0:
            new = frontend(samples[:(count - 1) * shift + size][None], normalize=False)[0]
            samples = samples[count * shift:]
        elif final and produced < total:  # shorter than one frame: padded to one, as fbank
            new = frontend(samples[None], normalize=False)[0]
            count = new.size(0)
        else:
            return
        feats = torch.cat([feats, new]) if feats.numel() else new
        produced += count

    def emit() -> Iterator[Tuple[int, int, Tensor]]:
        nonlocal feats, first, k
        while k < len(starts):
            start = starts[k]
            end = min(start + window_frames, total)
            if produced < end:
                break
            x = (feats[start - first:end - first] - fbank.norm_mean) / fbank.norm_std
            if x.size(0) < frames:
                x = torch.cat([x, x.new_full((frames - x.size(0), x.size(1)), pad)])
            k += 1
            yield start, end, x
        if k < len(starts) and starts[k] > first:  # frames before the next window go
            feats = feats[starts[k] - first:]
            first = starts[k]

    for block in blocks:
        if block.dim() > 2 or (block.dim() == 2 and block.size(0) != 1):
            raise ValueError(f"blocks must be mono, [1, t] or [t]; got {tuple(block.shape)}")
        block = block.reshape(-1).to(torch.float32)
        received += block.numel()
        if received > num_samples:
            raise ValueError(f"the blocks hold more than num_samples={num_samples} samples")
        samples = torch.cat([samples, block]) if samples.numel() else block
        if produced < total:
            compute(final=False)
            yield from emit()
    if received != num_samples:
        raise ValueError(f"the blocks hold {received} samples, num_samples says {num_samples}")
    compute(final=True)
    yield from emit()
    if k != len(starts):  # pragma: no cover -- a bug, not a data problem
        raise RuntimeError(f"{len(starts) - k} windows were not produced")


# --------------------------------------------------------------------------------------------
# sources and the parallel decoding data set


@dataclass(frozen=True)
class _Waveform:
    """An in-memory signal to tag: ``[channels, T]`` float32 at ``sample_rate``."""

    samples: Tensor
    sample_rate: int
    name: str = "<waveform>"


def _as_waveform(audio: Union[Tensor, np.ndarray], sample_rate: Optional[int],
                 name: str = "<waveform>") -> _Waveform:
    if sample_rate is None:
        raise ValueError("a waveform needs its sample_rate")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    x = torch.as_tensor(np.asarray(audio) if isinstance(audio, np.ndarray) else audio)
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2 or x.size(0) > 64:
        raise ValueError(f"a waveform must be [samples] or [channels, samples] (channels "
                         f"first), got shape {tuple(x.shape)}")
    if x.size(1) == 0:
        raise AudioError(f"{name}: zero-length audio (0 samples)")
    if not x.is_floating_point():
        raise ValueError(f"{name}: waveform samples must be floats in [-1, 1], got {x.dtype}")
    x = x.detach().to("cpu", torch.float32)
    finite = torch.isfinite(x).all(dim=0)
    if not bool(finite.all()):
        first = int(torch.nonzero(~finite)[0, 0])
        raise AudioError(f"{name}: NaN or infinite samples (first at "
                         f"{first / sample_rate:.3f} s)")
    return _Waveform(x, int(sample_rate), name)


def _open_source(source: Union[str, _Waveform], sample_rate: int, block_frames: int
                 ) -> Tuple[Iterable[Tensor], Dict[str, Any]]:
    """``(mono blocks at sample_rate, meta)`` of a file path or an in-memory waveform."""
    if isinstance(source, _Waveform):
        x, sr = source.samples, source.sample_rate

        def blocks() -> Iterator[Tensor]:
            resampler = StreamResampler(sr, sample_rate)
            for i in range(0, x.size(1), block_frames):
                out = resampler.push(x[:, i:i + block_frames].mean(dim=0, keepdim=True))
                if out.numel():
                    yield out
            out = resampler.finish()
            if out.numel():
                yield out
        meta = {"sample_rate": sr, "channels": x.size(0), "duration": x.size(1) / sr,
                "num_samples": resampled_length(x.size(1), sr, sample_rate)}
        return blocks(), meta
    audio = AudioBlocks(source, sample_rate=sample_rate, mono=True, block_frames=block_frames)
    meta = {"sample_rate": audio.info.sample_rate, "channels": audio.info.channels,
            "duration": audio.info.duration, "num_samples": audio.num_samples}
    return audio, meta


class _WindowItems(IterableDataset):
    """The windows of many sources as a stream of items (source ``i`` is read by worker
    ``i % num_workers``): ``("start", i, meta)``, then ``("windows", i, spans, features
    [n, frames, mel])`` for up to ``chunk`` windows at a time (one item per window would cost
    a shared-memory transfer each), then ``("end", i)``; or ``("error", i, message)`` as soon
    as source ``i`` turns out unusable."""

    def __init__(self, sources: Sequence[Tuple[int, Union[str, _Waveform]]], fbank: FbankConfig,
                 frames: int, window_frames: int, hop_frames: int, block_frames: int,
                 chunk: int) -> None:
        self.sources = list(sources)
        self.fbank, self.frames = fbank, frames
        self.window_frames, self.hop_frames = window_frames, hop_frames
        self.block_frames, self.chunk = block_frames, chunk

    def __iter__(self) -> Iterator[tuple]:
        info = get_worker_info()
        mine = self.sources if info is None else self.sources[info.id::info.num_workers]
        frontend = KaldiFbank(self.fbank.replace(target_length=None))
        for index, source in mine:
            spans: List[Tuple[int, int]] = []
            chunk: Optional[Tensor] = None
            try:
                blocks, meta = _open_source(source, self.fbank.sample_rate, self.block_frames)
                yield ("start", index, meta)
                for start, end, x in logmel_windows(blocks, meta["num_samples"], self.fbank,
                                                    self.frames, self.window_frames,
                                                    self.hop_frames, frontend):
                    if chunk is None:  # windows are copied into it as they come
                        chunk = x.new_empty((self.chunk, *x.shape))
                    chunk[len(spans)] = x
                    spans.append((start, end))
                    if len(spans) == self.chunk:
                        yield ("windows", index, spans, chunk)
                        spans, chunk = [], None
                if spans:
                    yield ("windows", index, spans, chunk[:len(spans)])
                yield ("end", index)
            except AudioError as err:
                yield ("error", index, " ".join(str(err).split()))


class _Pending:
    """What has arrived for one source while its windows are being scored. Window scores go
    into one array grown by doubling: a long file's scores are a handful of allocations, not
    one small tensor per batch (those, interleaved with the batches' large transient buffers,
    fragment the heap and made the resident memory of a one-hour file grow with its length)."""

    __slots__ = ("meta", "spans", "scores", "count", "unscored", "ended", "error")

    def __init__(self) -> None:
        self.meta: Optional[Dict[str, Any]] = None
        self.spans: List[Tuple[int, int]] = []
        self.scores: Optional[np.ndarray] = None
        self.count = 0
        self.unscored = 0
        self.ended = False
        self.error: Optional[str] = None

    def add(self, row: np.ndarray) -> None:
        if self.scores is None or self.count == len(self.scores):
            grown = np.empty((max(8, 2 * self.count), row.shape[0]), dtype=np.float32)
            if self.scores is not None:
                grown[:self.count] = self.scores
            self.scores = grown
        self.scores[self.count] = row
        self.count += 1
        self.unscored -= 1


# --------------------------------------------------------------------------------------------


class Tagger:
    """Tag audio files or waveforms with a trained log-mel zoo model.

    Args:
        model_or_checkpoint: a gnn_audio checkpoint (e.g. a training run's ``best.pt``: it
            names the model, its classes, label names and front-end) or a zoo model built and
            trained in this process (moved to ``device`` and put in eval mode). A bare zoo
            name is refused: its weights would be random.
        device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        window: seconds per window (default: the model's input, e.g. 10.24 s).
        hop: seconds between windows (default: half the window).
        pool: ``"max"`` or ``"mean"`` of the window scores.
        batch_size: windows per forward pass.
        num_workers: processes decoding files in :meth:`tag_files` (0: this process).

    Raises:
        FileNotFoundError, ValueError: a missing or unusable checkpoint, a model that does
            not read audio, a device that is not there, bad settings (one line each).
    """

    #: frames decoded per read of a file
    block_frames = 1 << 16

    def __init__(self, model_or_checkpoint: Union[torch.nn.Module, PathLike],
                 device: Union[str, torch.device] = "cpu", window: Optional[float] = None,
                 hop: Optional[float] = None, pool: str = "max", batch_size: int = 16,
                 num_workers: int = 0) -> None:
        self.config = TaggingConfig(window, hop, pool, batch_size, num_workers)
        self.device = resolve_device(device)
        self.checkpoint: Optional[str] = None
        if isinstance(model_or_checkpoint, torch.nn.Module):
            model = model_or_checkpoint
        elif isinstance(model_or_checkpoint, (str, os.PathLike)):
            path = os.fspath(model_or_checkpoint)
            from gnn_audio.zoo import is_model

            if is_model(path) and not os.path.exists(path):
                raise ValueError(f"{path!r} is a zoo model name, not a checkpoint: its weights "
                                 "would be random and its scores meaningless; pass a trained "
                                 "checkpoint (a training run's best.pt) or a trained model")
            model = load_tagging_model(path)
            self.checkpoint = path
        else:
            raise TypeError(f"model_or_checkpoint must be a model or a checkpoint path, got "
                            f"{type(model_or_checkpoint).__name__}")
        config = getattr(model, "model_config", None)
        if config is None or config.input != "logmel" or config.fbank is None:
            raise ValueError("tagging audio needs a log-mel zoo model (embedding models read "
                             "AudioSet embeddings, not audio)")
        self.model = model.to(self.device).eval()
        self.fbank: FbankConfig = config.fbank
        #: the model's input length in log-mel frames
        self.frames = int(self.fbank.target_length or config.input_size[0])
        shift = self.fbank.frame_shift_ms / 1000.0
        self.window_frames = self.frames if window is None else int(round(window / shift))
        if not 1 <= self.window_frames <= self.frames:
            raise ValueError(f"window {window} s must be between {shift:g} s and the model's "
                             f"input, {self.frames * shift:g} s ({self.frames} frames)")
        self.hop_frames = (max(1, int(round(self.window_frames / 2))) if hop is None
                           else int(round(hop / shift)))
        if not 1 <= self.hop_frames <= self.window_frames:
            raise ValueError(f"hop {hop} s must be between {shift:g} s and the window, "
                             f"{self.window_frames * shift:g} s")
        names = getattr(model, "label_names", None)
        self.label_names: List[str] = (list(names) if names else
                                       [f"class_{i}" for i in range(model.num_classes)])
        self.label_ids: Optional[List[str]] = getattr(model, "label_ids", None)

    @property
    def window(self) -> float:
        """Seconds of audio per window."""
        return self.window_frames * self.fbank.frame_shift_ms / 1000.0

    @property
    def hop(self) -> float:
        """Seconds between window starts."""
        return self.hop_frames * self.fbank.frame_shift_ms / 1000.0

    def describe(self) -> str:
        """One line: the model, its classes and the windowing."""
        name = getattr(self.model, "model_name", type(self.model).__name__)
        where = f" from {self.checkpoint}" if self.checkpoint else ""
        return (f"{name}{where}: {len(self.label_names)} classes, {self.window:g}-s windows "
                f"every {self.hop:g} s, {self.config.pool} pooling, on {self.device}")

    def _source(self, audio: Audio, sample_rate: Optional[int]) -> Union[str, _Waveform]:
        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise ValueError("sample_rate is for waveforms; a file's own rate is read from "
                                 "its header")
            return os.fspath(audio)
        if isinstance(audio, (Tensor, np.ndarray)):
            return _as_waveform(audio, sample_rate)
        raise TypeError(f"expected a path or a waveform, got {type(audio).__name__}")

    def windows(self, audio: Audio, sample_rate: Optional[int] = None
                ) -> Iterator[Tuple[float, float, Tensor]]:
        """``(start s, end s, features [frames, mel])`` of every window of a file or
        waveform: exactly what the model is fed (normalised, padded)."""
        source = self._source(audio, sample_rate)
        blocks, meta = _open_source(source, self.fbank.sample_rate, self.block_frames)
        for start, end, x in logmel_windows(blocks, meta["num_samples"], self.fbank,
                                            self.frames, self.window_frames, self.hop_frames):
            a, b = self._span_seconds(start, end, meta["num_samples"])
            yield a, b, x

    def _span_seconds(self, start: int, end: int, num_samples: int) -> Tuple[float, float]:
        """Seconds from the first sample of frame ``start`` to the last of frame ``end - 1``
        (to the end of the signal for the last window)."""
        sr = self.fbank.sample_rate
        size = int(sr * self.fbank.frame_length_ms * 0.001)
        shift = int(sr * self.fbank.frame_shift_ms * 0.001)
        total = 1 + (max(num_samples, size) - size) // shift
        last = num_samples if end >= total else min((end - 1) * shift + size, num_samples)
        return start * shift / sr, last / sr

    def tag(self, audio: Audio, sample_rate: Optional[int] = None, top_k: Optional[int] = 10,
            threshold: Optional[float] = None) -> TagResult:
        """Tag one file (any format soundfile reads) or waveform (``[samples]`` or
        ``[channels, samples]`` floats, with its ``sample_rate``).

        Args:
            top_k: how many tags :attr:`TagResult.tags` lists (``None``: all).
            threshold: the lowest score listed (``None``: no limit).

        Raises:
            AudioError: the file or waveform cannot be used (one line naming it).
        """
        _check_selection(top_k, threshold)
        source = self._source(audio, sample_rate)
        result = next(self._run([(0, source)], top_k, threshold, num_workers=0))
        if not result.ok:
            raise AudioError(result.error)
        return result

    def tag_files(self, paths: Iterable[PathLike], top_k: Optional[int] = 10,
                  threshold: Optional[float] = None, progress: bool = False
                  ) -> Iterator[TagResult]:
        """Tag many files, decoded in parallel (``num_workers``) and batched together; yields
        one :class:`TagResult` per path in the order given, as soon as it is ready. A file
        that cannot be used gives a result whose :attr:`~TagResult.error` names it, and the
        others are still tagged."""
        _check_selection(top_k, threshold)
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        sources = [(i, os.fspath(p)) for i, p in enumerate(paths)]
        yield from self._run(sources, top_k, threshold, self.config.num_workers, progress)

    @torch.no_grad()
    def _run(self, sources: Sequence[Tuple[int, Union[str, _Waveform]]],
             top_k: Optional[int], threshold: Optional[float], num_workers: int,
             progress: bool = False, batch_size: Optional[int] = None) -> Iterator[TagResult]:
        batch_size = batch_size or self.config.batch_size
        num_workers = min(num_workers, len(sources))
        items = _WindowItems(sources, self.fbank, self.frames, self.window_frames,
                             self.hop_frames, self.block_frames, chunk=batch_size)
        loader = DataLoader(items, batch_size=None, num_workers=num_workers,
                            pin_memory=self.device.type == "cuda")
        names = dict(sources)
        pending: Dict[int, _Pending] = {}
        xs: List[Tensor] = []
        owners: List[int] = []
        ready: Dict[int, TagResult] = {}
        ended: List[int] = []
        batch: Optional[Tensor] = None
        next_out = 0
        bar = tqdm(total=len(sources), desc="tagging", unit=" files", disable=not progress)

        def run_batch() -> None:
            if not xs:
                return
            nonlocal batch
            n = len(xs)
            if batch is None:  # one input buffer, reused by every batch
                batch = torch.empty((batch_size, *xs[0].shape), dtype=torch.float32,
                                    pin_memory=self.device.type == "cuda")
            torch.stack(xs, out=batch[:n])
            xs.clear()
            probs = torch.sigmoid(self.model(batch[:n].to(self.device, non_blocking=True))
                                  .float()).cpu().numpy()
            if probs.ndim != 2 or probs.shape[0] != n:
                raise ValueError(f"the model must return [batch, classes] logits; got "
                                 f"{tuple(probs.shape)} for a batch of {n}")
            for owner, row in zip(owners, probs):
                pending[owner].add(row)
            owners.clear()

        def take(index: int, spans: List[Tuple[int, int]], chunk: Tensor) -> None:
            acc = pending[index]
            for span, x in zip(spans, chunk):
                acc.spans.append(span)
                acc.unscored += 1
                xs.append(x)
                owners.append(index)
                if len(xs) == batch_size:
                    run_batch()

        def finalize() -> None:
            for index in [i for i in ended if pending[i].unscored == 0]:
                ended.remove(index)
                ready[index] = self._result(names[index], pending.pop(index), top_k, threshold)
                bar.update(1)

        try:
            for item in loader:
                kind, index = item[0], item[1]
                acc = pending.setdefault(index, _Pending())
                if kind == "windows":
                    take(index, item[2], item[3])
                elif kind == "start":
                    acc.meta = item[2]
                else:  # "end" or "error"
                    if kind == "error":
                        acc.error = item[2]
                    acc.ended = True
                    ended.append(index)
                finalize()
                item = acc = None  # scored windows are freed before the next chunk comes
                while next_out in ready:
                    yield ready.pop(next_out)
                    next_out += 1
            run_batch()
            finalize()
            while next_out in ready:
                yield ready.pop(next_out)
                next_out += 1
        finally:
            bar.close()

    def _result(self, source: Union[str, _Waveform], acc: _Pending, top_k: Optional[int],
                threshold: Optional[float]) -> TagResult:
        name = source.name if isinstance(source, _Waveform) else source
        common = dict(source=name, label_names=tuple(self.label_names), pool=self.config.pool,
                      top_k=top_k, threshold=threshold)
        if acc.error is not None:
            return TagResult(error=acc.error, **common)
        meta = acc.meta
        window_scores = acc.scores[:acc.count].copy()
        scores = (window_scores.max(axis=0) if self.config.pool == "max"
                  else window_scores.mean(axis=0))
        times = np.array([self._span_seconds(a, b, meta["num_samples"]) for a, b in acc.spans],
                         dtype=np.float64).reshape(-1, 2)
        return TagResult(scores=scores.astype(np.float32), window_times=times,
                         window_scores=window_scores, duration=float(meta["duration"]),
                         sample_rate=int(meta["sample_rate"]), channels=int(meta["channels"]),
                         **common)


def _check_selection(top_k: Optional[int], threshold: Optional[float]) -> None:
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 or None, got {top_k!r}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}")


class AudioTagger(Tagger):
    """The tagger of earlier gnn_audio versions, now a :class:`Tagger` (whole files in
    sliding windows, max-pooled) with the old methods.

    Args:
        model: a zoo model, or a zoo name with ``checkpoint``.
        checkpoint: gnn_audio checkpoint of the named model (it must hold that model).
            Without one the model's weights are random: allowed for a named model only with a
            loud warning.
        device: where to run.
        **kwargs: ``create_model`` arguments (e.g. ``num_classes``); with a checkpoint they
            must agree with it.
    """

    def __init__(self, model: Union[torch.nn.Module, str], checkpoint: Optional[PathLike] = None,
                 device: Union[str, torch.device] = "cpu", **kwargs: Any) -> None:
        from gnn_audio.zoo import CheckpointMismatch, create_model

        if isinstance(model, str):
            if checkpoint is not None:
                net = load_tagging_model(checkpoint, **kwargs)
                if net.model_name != model:
                    raise CheckpointMismatch(f"{os.fspath(checkpoint)} holds a "
                                             f"{net.model_name} checkpoint, not {model}")
                model = net
            else:
                warnings.warn(f"AudioTagger({model!r}) without a checkpoint: the weights are "
                              "RANDOM (untrained) and the scores meaningless", UserWarning,
                              stacklevel=2)
                model = create_model(model, **kwargs)
        super().__init__(model, device=device)
        if checkpoint is not None:
            self.checkpoint = os.fspath(checkpoint)

    def features(self, path: PathLike) -> Tensor:
        """``[frames, mel]`` log-mel features of the file's first window, as the model sees
        them (the whole input of a clip no longer than the model's input)."""
        return next(self.windows(path))[2]

    def predict(self, paths: Union[PathLike, Sequence[PathLike]], batch_size: int = 8,
                progress: bool = False) -> Tensor:
        """Pooled tag probabilities ``[len(paths), num_classes]``.

        Raises:
            AudioError: for the first file that cannot be used.
        """
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        rows = []
        sources = [(i, os.fspath(p)) for i, p in enumerate(paths)]
        for result in self._run(sources, None, None, self.config.num_workers, progress,
                                batch_size=batch_size):
            if not result.ok:
                raise AudioError(result.error)
            rows.append(torch.from_numpy(result.scores))
        return torch.stack(rows) if rows else torch.empty(0, len(self.label_names))

    def top_tags(self, paths: Union[PathLike, Sequence[PathLike]], k: int = 5,
                 batch_size: int = 8):
        """The ``k`` most probable tags as ``(name, probability)``: a list per file for a
        list of paths, one list for a single path."""
        if isinstance(paths, (str, os.PathLike)):
            return self.rank(self.predict([paths], batch_size), k)[0]
        return self.rank(self.predict(paths, batch_size), k)

    def rank(self, probs: Tensor, k: int = 5) -> List[List[Tuple[str, float]]]:
        """``[N, S]`` probabilities -> the ``k`` best ``(name, probability)`` per row."""
        top = probs.topk(min(k, probs.size(1)), dim=1)
        return [[(self.label_names[j], float(v)) for v, j in zip(vals, idx)]
                for vals, idx in zip(top.values.tolist(), top.indices.tolist())]


def format_tags(title: str, tags: Sequence[Tuple[str, float]]) -> str:
    """``title:`` and one ``probability  name`` line per tag."""
    return "\n".join([f"{title}:"] + [f"    {prob:6.3f}  {name}" for name, prob in tags])
