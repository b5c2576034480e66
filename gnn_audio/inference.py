"""Tagging audio with a trained log-mel zoo model: files or waveforms of any length, sample rate
and channel count -> per-window and pooled tag scores.

The pipeline, the way training and evaluation saw their clips:

1. the file is decoded, down-mixed to mono and resampled to the front-end's rate
   (:func:`~gnn_audio.data.audio.load_audio`, as the evaluation data set reads a clip), and
   its normalised log-mel computed whole (:class:`~gnn_audio.data.kaldi_fbank.KaldiFbank`,
   the training front-end); a recording longer than :attr:`Tagger.whole_seconds` (default
   10 minutes) is instead read in blocks (:class:`~gnn_audio.data.audio.AudioBlocks`,
   resampled block by block with :class:`~gnn_audio.data.audio.StreamResampler`) and its
   log-mel computed as the samples arrive (:func:`~gnn_audio.data.windows.logmel_windows`),
   so that a one-hour recording is never decoded whole;
2. the log-mel is cut into windows of ``window`` seconds every ``hop`` seconds, the last
   window aligned to the end of the file, a short window padded with the normalised value of
   a zero log-mel frame (:class:`~gnn_audio.data.windows.Windowing`, the windows
   ``gnn-audio eval`` scores);
3. windows of one or many files are batched (``batch_size`` windows per forward) and scored
   with ``sigmoid(logits)`` by the evaluation's scorer
   (:class:`~gnn_audio.scoring.WindowScorer`); a file's score is the maximum (or mean) over
   its windows.

So a file tagged here gets exactly the scores ``gnn-audio eval --no-store`` gives it (with
the same batch size): one window placement, one scorer. Several files are decoded in
parallel by a :class:`~torch.utils.data.DataLoader` (``num_workers``); a file that cannot be
used gives an error result naming it (:attr:`TagResult.error`) and the others are still
tagged.

A model scores whatever it is given, and on some input its scores mean little: a result
carries :attr:`TagResult.notes` saying so (:func:`tag_notes`), and its tags are computed and
listed all the same:

* ``"digital silence"``: the peak of the mono signal the model hears (after decoding,
  down-mixing and resampling; :attr:`TagResult.peak`) is below :data:`SILENCE_PEAK`, 1e-6 of
  full scale (-120 dBFS; the smallest non-zero 16-bit sample is 3e-5), so every sample is
  zero or as good as zero;
* ``"short: ..."``: the audio lasts less than :data:`SHORT_FRACTION` (a quarter) of the
  model's input window (``model.bundle.frames`` frames of the front-end's frame shift, e.g.
  2.56 s of 10.24 s; :attr:`Tagger.model_window`), so that at least three quarters of what
  the model sees is padding. The model's window counts, not ``window``: a shorter tagging
  window is padded to the model's input too.

>>> tagger = Tagger("runs/example/best.pt")                   # doctest: +SKIP
>>> tagger.tag("dog.wav", top_k=3).tags                        # doctest: +SKIP
[('Dog', 0.91), ('Domestic_animals_and_pets', 0.88), ('Bark', 0.42)]
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm.auto import tqdm

from gnn_audio.data.audio import (AudioBlocks, AudioError, StreamResampler, audio_info,
                                  load_audio, resample, resampled_length)
from gnn_audio.data.features import FbankConfig, pad_value
from gnn_audio.data.kaldi_fbank import KaldiFbank
from gnn_audio.data.panns_logmel import log_mel_module
from gnn_audio.data.windows import Windowing, logmel_windows
from gnn_audio.devices import resolve_device
from gnn_audio.errors import one_line
from gnn_audio.scoring import WindowScorer
from gnn_audio.types import PathLike
from gnn_audio.zoo import LOAD_ERRORS, ModelBundle, bundle_of, is_model, load_model
from gnn_audio.zoo.hub import is_pretrained_source

__all__ = ["POOLS", "SILENCE_PEAK", "SHORT_FRACTION", "SILENCE_NOTE", "TaggingConfig",
           "TagResult", "Tagger", "load_tagging_model", "tag_notes"]

#: ways of pooling window scores into a clip score
POOLS = ("max", "mean")
#: a signal whose peak (largest absolute sample, full scale 1.0) is below this is digital
#: silence: 1e-6 is -120 dBFS, under the smallest non-zero 16-bit sample (2 ** -15)
SILENCE_PEAK = 1e-6
#: audio shorter than this fraction of the model's input window is noted as short
SHORT_FRACTION = 0.25
#: the note of a result whose signal is digital silence
SILENCE_NOTE = "digital silence"

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
        peak: the largest absolute sample of the mono signal the model heard (full scale
            1.0; ``None`` for an error result).
        notes: what makes the scores mean little (:func:`tag_notes`: ``"digital silence"``,
            ``"short: ..."``); empty for most files. The tags are listed all the same.
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
    peak: Optional[float] = None
    notes: Tuple[str, ...] = ()

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
        ``pool``, ``num_windows``, ``peak``, ``notes`` (a list, empty for most files),
        ``tags`` (``[{"label", "score"}]``) and with ``windows`` the windows' ``start``,
        ``end`` and ``tags``; ``{"file", "error"}`` for an error result."""
        if not self.ok:
            return {"file": self.source, "error": self.error}

        def tags(pairs):
            return [{"label": name, "score": round(score, 6)} for name, score in pairs]
        out: Dict[str, Any] = {"file": self.source, "duration": round(self.duration, 6),
                               "sample_rate": self.sample_rate, "channels": self.channels,
                               "pool": self.pool, "num_windows": len(self.window_scores),
                               "peak": None if self.peak is None else float(self.peak),
                               "notes": list(self.notes), "tags": tags(self.tags)}
        if windows:
            out["windows"] = [{"start": round(float(a), 4), "end": round(float(b), 4),
                               "tags": tags(t)}
                              for (a, b), t in zip(self.window_times, self.window_tags())]
        return out


def tag_notes(duration: float, peak: float, model_window: float) -> Tuple[str, ...]:
    """The notes of a tagged signal (see the module docstring): ``"digital silence"`` when
    ``peak`` (largest absolute sample, full scale 1.0) is below :data:`SILENCE_PEAK`;
    ``"short: D s of audio for the model's W-s window"`` when ``duration`` seconds are less
    than :data:`SHORT_FRACTION` of ``model_window`` seconds (the model's input)."""
    notes = []
    if peak < SILENCE_PEAK:
        notes.append(SILENCE_NOTE)
    if duration < SHORT_FRACTION * model_window:
        notes.append(f"short: {duration:.3g} s of audio for the model's {model_window:g}-s "
                     "window")
    return tuple(notes)


def load_tagging_model(path: PathLike, **kwargs: Any) -> torch.nn.Module:
    """The log-mel model of a gnn_audio checkpoint, model folder or hub id, with its bundle
    (classes, label names, training front-end) (:func:`gnn_audio.zoo.load_model`;
    ``kwargs`` override its build arguments).

    Raises:
        FileNotFoundError: no such file.
        ValueError: anything else that makes the file unusable for tagging (a directory, not
            a checkpoint, a damaged one, weights that do not fit the model it names, a model
            that reads embeddings instead of audio). Every message is one line naming it.
    """
    p = os.fspath(path)
    if not is_pretrained_source(p) and not os.path.exists(p):
        raise FileNotFoundError(f"{p}: no such checkpoint file")
    try:
        model = load_model(p, **kwargs)
    except LOAD_ERRORS as err:
        raise ValueError(one_line(err, p)) from None
    bundle_of(model, p).require_logmel(p)
    return model


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


def _open_source(source: Union[str, _Waveform], sample_rate: int, block_frames: int,
                 whole_samples: int) -> Tuple[Union[Tensor, Iterable[Tensor]], Dict[str, Any]]:
    """``(signal, meta)`` of a file path or an in-memory waveform: up to ``whole_samples``
    samples at ``sample_rate`` the whole mono ``[1, T]`` signal (a file decoded once, as
    :func:`~gnn_audio.data.audio.load_audio` decodes evaluation clips), else its mono blocks
    at ``sample_rate``; ``meta``'s lengths are those of the signal."""
    if isinstance(source, _Waveform):
        x, sr = source.samples, source.sample_rate
        meta = {"sample_rate": sr, "channels": x.size(0), "duration": x.size(1) / sr,
                "num_samples": resampled_length(x.size(1), sr, sample_rate)}
        if meta["num_samples"] <= whole_samples:
            x = x.mean(dim=0, keepdim=True) if x.size(0) > 1 else x
            return resample(x, sr, sample_rate), meta

        def blocks() -> Iterator[Tensor]:
            resampler = StreamResampler(sr, sample_rate)
            for i in range(0, x.size(1), block_frames):
                out = resampler.push(x[:, i:i + block_frames].mean(dim=0, keepdim=True))
                if out.numel():
                    yield out
            out = resampler.finish()
            if out.numel():
                yield out
        return blocks(), meta
    info = audio_info(source)  # the header (for MP3 / Vorbis / Opus an estimated length)
    if resampled_length(info.frames, info.sample_rate, sample_rate) <= whole_samples:
        # load_audio(source, sample_rate), in two steps to know the decoded length
        native = load_audio(source, sample_rate=None)
        sr = info.sample_rate
        meta = {"sample_rate": sr, "channels": info.channels, "duration": native.size(1) / sr,
                "num_samples": resampled_length(native.size(1), sr, sample_rate)}
        return resample(native, sr, sample_rate), meta
    audio = AudioBlocks(source, sample_rate=sample_rate, mono=True, block_frames=block_frames)
    meta = {"sample_rate": audio.info.sample_rate, "channels": audio.info.channels,
            "duration": audio.info.duration, "num_samples": audio.num_samples}
    return audio, meta


class _Level:
    """The peak of a signal, seen as it goes by (whole or block by block)."""

    __slots__ = ("peak",)

    def __init__(self) -> None:
        self.peak = 0.0

    def see(self, x: Tensor) -> Tensor:
        if x.numel():
            low, high = torch.aminmax(x)  # no copy of the signal, unlike x.abs()
            self.peak = max(self.peak, float(-low), float(high))
        return x


class _WindowItems(IterableDataset):
    """The windows of many sources as a stream of items (source ``i`` is read by worker
    ``i % num_workers``): ``("start", i, meta)``, then ``("windows", i, spans, features
    [n, frames, mel])`` for up to ``chunk`` windows at a time (one item per window would cost
    a shared-memory transfer each), then ``("end", i, peak)`` (the peak of the signal the
    windows were cut from); or ``("error", i, message)`` as soon as source ``i`` turns out
    unusable."""

    def __init__(self, sources: Sequence[Tuple[int, Union[str, _Waveform]]], fbank: FbankConfig,
                 windowing: Windowing, block_frames: int, whole_samples: int,
                 chunk: int) -> None:
        self.sources = list(sources)
        self.fbank, self.windowing = fbank, windowing
        self.block_frames, self.whole_samples, self.chunk = block_frames, whole_samples, chunk

    def __iter__(self) -> Iterator[tuple]:
        info = get_worker_info()
        mine = self.sources if info is None else self.sources[info.id::info.num_workers]
        frontend = log_mel_module(self.fbank.replace(target_length=None))
        for index, source in mine:
            spans: List[Tuple[int, int]] = []
            chunk: Optional[Tensor] = None
            level = _Level()
            try:
                signal, meta = _open_source(source, self.fbank.sample_rate, self.block_frames,
                                            self.whole_samples)
                yield ("start", index, meta)
                for start, end, x in self.windows(signal, meta, frontend, level):
                    if chunk is None:  # windows are copied into it as they come
                        chunk = x.new_empty((self.chunk, *x.shape))
                    chunk[len(spans)] = x
                    spans.append((start, end))
                    if len(spans) == self.chunk:
                        yield ("windows", index, spans, chunk)
                        spans, chunk = [], None
                if spans:
                    yield ("windows", index, spans, chunk[:len(spans)])
                yield ("end", index, level.peak)
            except AudioError as err:
                yield ("error", index, one_line(err))

    def windows(self, signal: Union[Tensor, Iterable[Tensor]], meta: Dict[str, Any],
                frontend: KaldiFbank, level: _Level) -> Iterator[Tuple[int, int, Tensor]]:
        """``(first frame, end frame, features)`` of every window of a source's signal
        (:func:`_open_source`): from its whole log-mel (as the evaluation data set computes
        it) when it is whole, else streamed from its blocks; ``level`` sees the signal on its
        way."""
        if not isinstance(signal, Tensor):
            yield from logmel_windows((level.see(b) for b in signal), meta["num_samples"],
                                      self.fbank, self.windowing, frontend)
            return
        logmel = frontend(level.see(signal))[0]
        starts, windows = self.windowing.windows(logmel, pad_value(self.fbank))
        for start, x in zip(starts, windows):
            yield start, self.windowing.end(start, logmel.size(0)), x


class _Pending:
    """What has arrived for one source while its windows are being scored."""

    __slots__ = ("meta", "spans", "error", "peak")

    def __init__(self) -> None:
        self.meta: Optional[Dict[str, Any]] = None
        self.spans: List[Tuple[int, int]] = []
        self.error: Optional[str] = None
        self.peak = 0.0


# --------------------------------------------------------------------------------------------


class Tagger:
    """Tag audio files or waveforms with a trained log-mel zoo model.

    Args:
        model_or_checkpoint: a gnn_audio checkpoint (e.g. a training run's ``best.pt``: its
            bundle names the model, its classes, label names and front-end) or a zoo model
            built and trained in this process (moved to ``device`` and put in eval mode). A
            bare zoo name is refused: its weights would be random.
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

    #: frames decoded per read of a file streamed in blocks
    block_frames = 1 << 16
    #: recordings up to this long are decoded whole (their features then equal the
    #: evaluation's exactly); longer ones are streamed in blocks (not for PANNs' centred
    #: log-mel, kind ``"panns"``, which is always computed whole)
    whole_seconds = 600.0

    def __init__(self, model_or_checkpoint: Union[torch.nn.Module, PathLike],
                 device: Union[str, torch.device] = "cpu", window: Optional[float] = None,
                 hop: Optional[float] = None, pool: str = "max", batch_size: int = 16,
                 num_workers: int = 0) -> None:
        self.config = TaggingConfig(window, hop, pool, batch_size, num_workers)
        self.device = resolve_device(device)
        self.checkpoint: Optional[str] = None
        if isinstance(model_or_checkpoint, torch.nn.Module):
            model = model_or_checkpoint
            bundle_of(model).require_logmel(bundle_of(model).name)
        elif isinstance(model_or_checkpoint, (str, os.PathLike)):
            path = os.fspath(model_or_checkpoint)
            if is_model(path) and not os.path.exists(path):
                raise ValueError(f"{path!r} is a zoo model name, not a checkpoint: its weights "
                                 "would be random and its scores meaningless; pass a trained "
                                 "checkpoint (a training run's best.pt) or a trained model")
            model = load_tagging_model(path)
            self.checkpoint = path
        else:
            raise TypeError(f"model_or_checkpoint must be a model or a checkpoint path, got "
                            f"{type(model_or_checkpoint).__name__}")
        self.model = model.to(self.device).eval()
        self.bundle: ModelBundle = bundle_of(model)
        self.fbank: FbankConfig = self.bundle.fbank
        #: the model's input length in log-mel frames
        self.frames = self.bundle.frames
        self.windowing = self._windowing(window, hop)
        self.label_names: List[str] = list(self.bundle.names)
        self.label_ids: Optional[List[str]] = (list(self.bundle.label_ids)
                                               if self.bundle.label_ids else None)

    def _windowing(self, window: Optional[float], hop: Optional[float]) -> Windowing:
        shift = self.fbank.frame_shift_ms / 1000.0
        size = self.frames if window is None else int(round(window / shift))
        if not 1 <= size <= self.frames:
            raise ValueError(f"window {window} s must be between {shift:g} s and the model's "
                             f"input, {self.frames * shift:g} s ({self.frames} frames)")
        step = None if hop is None else int(round(hop / shift))
        if step is not None and not 1 <= step <= size:
            raise ValueError(f"hop {hop} s must be between {shift:g} s and the window, "
                             f"{size * shift:g} s")
        return Windowing(self.frames, size, step)

    @property
    def window(self) -> float:
        """Seconds of audio per window."""
        return self.windowing.window * self.fbank.frame_shift_ms / 1000.0

    @property
    def hop(self) -> float:
        """Seconds between window starts."""
        return self.windowing.hop * self.fbank.frame_shift_ms / 1000.0

    @property
    def model_window(self) -> float:
        """Seconds of the model's input (:attr:`frames` frames), which every window is padded
        to; audio shorter than a quarter of it is noted as short (:func:`tag_notes`)."""
        return self.frames * self.fbank.frame_shift_ms / 1000.0

    def describe(self) -> str:
        """One line: the model, its classes and the windowing."""
        where = f" from {self.checkpoint}" if self.checkpoint else ""
        return (f"{self.bundle.name}{where}: {len(self.label_names)} classes, "
                f"{self.window:g}-s windows every {self.hop:g} s, {self.config.pool} pooling, "
                f"on {self.device}")

    def _source(self, audio: Audio, sample_rate: Optional[int]) -> Union[str, _Waveform]:
        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise ValueError("sample_rate is for waveforms; a file's own rate is read from "
                                 "its header")
            return os.fspath(audio)
        if isinstance(audio, (Tensor, np.ndarray)):
            return _as_waveform(audio, sample_rate)
        raise TypeError(f"expected a path or a waveform, got {type(audio).__name__}")

    def _items(self, sources: Sequence[Tuple[int, Union[str, _Waveform]]],
               chunk: int) -> _WindowItems:
        whole = int(self.whole_seconds * self.fbank.sample_rate)
        if self.fbank.kind == "panns":  # centred frames: decoded whole, never streamed
            whole = sys.maxsize
        return _WindowItems(sources, self.fbank, self.windowing, self.block_frames, whole,
                            chunk)

    def windows(self, audio: Audio, sample_rate: Optional[int] = None
                ) -> Iterator[Tuple[float, float, Tensor]]:
        """``(start s, end s, features [frames, mel])`` of every window of a file or
        waveform: exactly what the model is fed (normalised, padded)."""
        source = self._source(audio, sample_rate)
        items = self._items([(0, source)], chunk=1)
        signal, meta = _open_source(source, self.fbank.sample_rate, self.block_frames,
                                    items.whole_samples)
        frontend = log_mel_module(self.fbank.replace(target_length=None))
        for start, end, x in items.windows(signal, meta, frontend, _Level()):
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

    def _run(self, sources: Sequence[Tuple[int, Union[str, _Waveform]]],
             top_k: Optional[int], threshold: Optional[float], num_workers: int,
             progress: bool = False) -> Iterator[TagResult]:
        batch_size = self.config.batch_size
        loader = DataLoader(self._items(sources, chunk=batch_size), batch_size=None,
                            num_workers=min(num_workers, len(sources)),
                            pin_memory=self.device.type == "cuda")
        scorer = WindowScorer(self.model, batch_size, device=self.device)
        names = dict(sources)
        pending: Dict[int, _Pending] = {}
        ready: Dict[int, TagResult] = {}
        next_out = 0
        bar = tqdm(total=len(sources), desc="tagging", unit=" files", disable=not progress)
        try:
            for item in loader:
                kind, index = item[0], item[1]
                acc = pending.setdefault(index, _Pending())
                if kind == "windows":
                    acc.spans.extend(item[2])
                    scorer.add(index, item[3])
                elif kind == "start":
                    acc.meta = item[2]
                else:  # "end" or "error"
                    if kind == "error":
                        acc.error = item[2]
                    else:
                        acc.peak = item[2]
                    scorer.close(index)
                item = acc = None  # scored windows are freed before the next chunk comes
                self._finish(scorer, pending, names, ready, bar, top_k, threshold)
                while next_out in ready:
                    yield ready.pop(next_out)
                    next_out += 1
            scorer.flush()
            self._finish(scorer, pending, names, ready, bar, top_k, threshold)
            while next_out in ready:
                yield ready.pop(next_out)
                next_out += 1
        finally:
            bar.close()

    def _finish(self, scorer: WindowScorer, pending: Dict[int, _Pending],
                names: Dict[int, Union[str, _Waveform]], ready: Dict[int, TagResult], bar,
                top_k: Optional[int], threshold: Optional[float]) -> None:
        """The results of the sources whose windows have all been scored."""
        for index, scores in scorer.ready():
            ready[index] = self._result(names[index], pending.pop(index), scores, top_k,
                                        threshold)
            bar.update(1)

    def _result(self, source: Union[str, _Waveform], acc: _Pending, window_scores: np.ndarray,
                top_k: Optional[int], threshold: Optional[float]) -> TagResult:
        name = source.name if isinstance(source, _Waveform) else source
        common = dict(source=name, label_names=tuple(self.label_names), pool=self.config.pool,
                      top_k=top_k, threshold=threshold)
        if acc.error is not None:
            return TagResult(error=acc.error, **common)
        meta = acc.meta
        scores = (window_scores.max(axis=0) if self.config.pool == "max"
                  else window_scores.mean(axis=0))
        times = np.array([self._span_seconds(a, b, meta["num_samples"]) for a, b in acc.spans],
                         dtype=np.float64).reshape(-1, 2)
        duration = float(meta["duration"])
        return TagResult(scores=scores.astype(np.float32), window_times=times,
                         window_scores=window_scores, duration=duration,
                         sample_rate=int(meta["sample_rate"]), channels=int(meta["channels"]),
                         peak=acc.peak, notes=tag_notes(duration, acc.peak, self.model_window),
                         **common)


def _check_selection(top_k: Optional[int], threshold: Optional[float]) -> None:
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 or None, got {top_k!r}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}")
