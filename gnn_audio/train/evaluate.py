"""Scores of a tagging model over an evaluation data set, every clip exactly once, split across
the DDP ranks and gathered on all of them; and the tagging metrics of those scores.

A model sees ``frames`` log-mel frames (``fbank.target_length``, e.g. 1024 for FSD50K) while
evaluation clips run longer (FSD50K's to 30 s). Two ways of scoring a clip are computed in one
pass over the data:

* ``crop`` (the ATGNN / PSLA protocol): the log-mel zero-padded or cut to ``frames`` frames,
  i.e. the first window; the clip's score is ``sigmoid(logits)`` of that window;
* ``windows``: windows of ``frames`` frames every ``window_hop * frames`` frames, the last one
  aligned to the clip's end (a clip no longer than ``frames`` gives one padded window); the
  clip's score is the maximum over its windows of ``sigmoid(logits)``.

The data set must then give the *full-length* normalised log-mel, a
:class:`~gnn_audio.data.dataset.TaggingDataset` built with ``fbank.replace(target_length=None)``
and ``train=False`` (:func:`build_eval_dataset`). Windows are padded with the value a zero
log-mel frame takes after normalisation, ``-norm_mean / norm_std``, so the ``crop`` scores
equal those of the data set built with ``target_length=frames``. Windows of several clips are
batched together, ``batch_size`` windows per forward.

For :class:`~gnn_audio.data.audioset_embeddings.AudioSetEmbeddings` (items ``(x [10, 128], y)``,
no clip id) only ``crop`` applies: a plain forward of each item (``frames=None`` takes the items
as they are).

Under DDP each rank scores its contiguous share
(:class:`~gnn_audio.data.sampling.ShardedEvalSampler`) with the bare module (a
``DistributedDataParallel`` wrapper is unwrapped: its forward would synchronise buffers across
ranks that run different numbers of batches), and :func:`predict` gathers the shares on every
rank, checking that each clip was scored exactly once.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from gnn_audio.data.features import FbankConfig
from gnn_audio.data.features import pad_value as fbank_pad_value
from gnn_audio.data.sampling import ShardedEvalSampler
from gnn_audio.files import atomic_open
from gnn_audio.metrics import tagging_metrics
from gnn_audio.train.distributed import DistContext, all_gather_objects
from gnn_audio.train.precision import PRECISIONS, autocast, check_precision
from gnn_audio.types import PathLike

__all__ = ["MODES", "EvalConfig", "Predictions", "build_eval_dataset", "window_starts",
           "predict", "evaluate"]

#: the scoring modes (see the module docstring)
MODES = ("crop", "windows")


@dataclass(frozen=True)
class EvalConfig:
    """How an evaluation runs.

    Args:
        modes: which of :data:`MODES` to score (both in one pass).
        window_hop: hop between windows as a fraction of the window length, in ``(0, 1]``.
        batch_size: windows per forward.
        num_workers: DataLoader worker processes (0: load in the main process).
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast (see
            :mod:`gnn_audio.train.precision`).
    """

    modes: Tuple[str, ...] = MODES
    window_hop: float = 0.5
    batch_size: int = 32
    num_workers: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        modes = (self.modes,) if isinstance(self.modes, str) else tuple(self.modes)
        object.__setattr__(self, "modes", modes)
        bad = [m for m in modes if m not in MODES]
        if not modes or bad or len(set(modes)) != len(modes):
            raise ValueError(f"modes must be distinct values of {MODES}, got {modes!r}")
        if not 0.0 < self.window_hop <= 1.0:
            raise ValueError(f"window_hop must be in (0, 1], got {self.window_hop}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got "
                             f"{self.precision!r}")


def build_eval_dataset(source, fbank: FbankConfig):
    """The evaluation :class:`~gnn_audio.data.dataset.TaggingDataset` of a waveform store or
    clip list: full-length features (``target_length=None``), no augmentation. Pass
    ``frames=fbank.target_length`` to :func:`predict`."""
    from gnn_audio.data.dataset import TaggingDataset

    return TaggingDataset(source, fbank.replace(target_length=None), train=False)


def window_starts(num_frames: int, frames: int, window_hop: float = 0.5) -> List[int]:
    """First frames of the windows of a clip of ``num_frames`` frames: every
    ``max(1, round(window_hop * frames))`` frames, plus a last window ending at the clip's end;
    ``[0]`` for a clip no longer than ``frames``."""
    if num_frames <= frames:
        return [0]
    hop = max(1, int(round(window_hop * frames)))
    starts = list(range(0, num_frames - frames + 1, hop))
    if starts[-1] != num_frames - frames:
        starts.append(num_frames - frames)
    return starts


def _finite_list(a: np.ndarray) -> list:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(a, dtype=np.float64)]


def _jsonable(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """Per-class arrays -> lists (``None`` where undefined), NumPy scalars -> Python ones."""
    out: Dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, np.ndarray):
            out[key] = _finite_list(value)
        elif isinstance(value, (np.integer, int)) and not isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, (np.floating, float)):
            out[key] = float(value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Predictions:
    """Clip scores in data-set order.

    Args:
        clip_ids: ``N`` clip ids (the item's id; the index, or the data set's ``video_ids``,
            for items without one).
        targets: ``[N, S]`` float32 targets.
        scores: mode -> ``[N, S]`` float32 probabilities.
    """

    clip_ids: List[str]
    targets: np.ndarray
    scores: Dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.clip_ids)
        if self.targets.ndim != 2 or self.targets.shape[0] != n:
            raise ValueError(f"targets must be [{n}, S], got {self.targets.shape}")
        for mode, s in self.scores.items():
            if s.shape != self.targets.shape:
                raise ValueError(f"{mode} scores {s.shape} do not match targets "
                                 f"{self.targets.shape}")

    def __len__(self) -> int:
        return len(self.clip_ids)

    def metrics(self) -> Dict[str, Dict[str, Any]]:
        """mode -> :func:`~gnn_audio.metrics.tagging_metrics` (``mAP``, ``mAUC``, ``d_prime``,
        ``lwlrap``, per-class ``AP`` / ``AUC`` lists with ``None`` where undefined, class
        counts) plus ``num_clips``; JSON-serialisable."""
        return {mode: {**_jsonable(tagging_metrics(s, self.targets)), "num_clips": len(self)}
                for mode, s in self.scores.items()}

    def save(self, path: PathLike) -> None:
        """Write to ``path`` atomically: ``.npz`` (arrays ``clip_ids``, ``targets``,
        ``scores_<mode>``) or ``.json`` (``{"clip_ids", "targets", "scores": {mode: [N][S]}}``,
        for small sets: readable, but about 20 bytes per score)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".npz", ".json"):
            raise ValueError(f"{path}: predictions are saved as .npz or .json")
        with atomic_open(path) as f:
            if suffix == ".npz":
                np.savez(f, clip_ids=np.asarray(self.clip_ids, dtype=str),
                         targets=self.targets,
                         **{f"scores_{m}": s for m, s in self.scores.items()})
            else:
                f.write(json.dumps({
                    "clip_ids": list(self.clip_ids), "targets": self.targets.tolist(),
                    "scores": {m: s.tolist() for m, s in self.scores.items()}}).encode())

    @classmethod
    def load(cls, path: PathLike) -> "Predictions":
        """Read a file written by :meth:`save`."""
        path = Path(path)
        try:
            if path.suffix.lower() == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    return cls([str(c) for c in z["clip_ids"]], z["targets"],
                               {k[len("scores_"):]: z[k] for k in z.files
                                if k.startswith("scores_")})
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls([str(c) for c in data["clip_ids"]],
                       np.asarray(data["targets"], dtype=np.float32).reshape(
                           len(data["clip_ids"]), -1),
                       {m: np.asarray(s, dtype=np.float32).reshape(len(data["clip_ids"]), -1)
                        for m, s in data["scores"].items()})
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path}: not a predictions file ({err})") from None


class _Indexed(Dataset):
    """``dataset[i]`` -> ``(i, item)`` (the DataLoader may run it in workers)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return i, self.dataset[i]


def _as_list(batch: list) -> list:
    return batch


def _base_dataset(dataset: Dataset) -> Dataset:
    """Through ``Subset`` wrappers to the data set that holds ``fbank``."""
    while not hasattr(dataset, "fbank") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    return dataset


def _model_device(module: torch.nn.Module, ctx: DistContext) -> torch.device:
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return first.device if first is not None else ctx.device


class _WindowScorer:
    """Collects windows of many clips, runs them ``batch_size`` at a time and keeps, per clip
    slot, the score of its first window (``crop``) and the maximum over its windows."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str,
                 batch_size: int, num_slots: int) -> None:
        self.model, self.device, self.precision = model, device, precision
        self.batch_size, self.num_slots = batch_size, num_slots
        self.x: List[Tensor] = []
        self.owner: List[Tensor] = []
        self.first: List[Tensor] = []
        self.pending = 0
        self.crop: Optional[Tensor] = None
        self.max: Optional[Tensor] = None

    def add(self, slot: int, windows: Tensor) -> None:
        n = windows.size(0)
        self.x.append(windows)
        self.owner.append(torch.full((n,), slot, dtype=torch.long))
        self.first.append(torch.arange(n) == 0)
        self.pending += n
        while self.pending >= self.batch_size:
            self._run(self.batch_size)

    def finish(self) -> None:
        if self.pending:
            self._run(self.pending)

    def _run(self, n: int) -> None:
        x, owner, first = torch.cat(self.x), torch.cat(self.owner), torch.cat(self.first)
        self.x, self.owner, self.first = [x[n:]], [owner[n:]], [first[n:]]
        self.pending -= n
        x, owner, first = x[:n], owner[:n], first[:n]
        with autocast(self.precision, self.device):
            logits = self.model(x.to(self.device, non_blocking=True))
        probs = torch.sigmoid(logits.float()).cpu()
        if probs.dim() != 2 or probs.size(0) != n:
            raise ValueError(f"the model must return [batch, classes] logits; got "
                             f"{tuple(logits.shape)} for a batch of {n}")
        if self.crop is None:
            self.crop = probs.new_zeros(self.num_slots, probs.size(1))
            self.max = probs.new_zeros(self.num_slots, probs.size(1))
        self.crop[owner[first]] = probs[first]
        # a clip's windows may span several forwards: keep the running maximum (probs >= 0)
        self.max.scatter_reduce_(0, owner[:, None].expand_as(probs), probs, reduce="amax")


def _unpack(item: Any, index: int, dataset: Dataset) -> Tuple[Tensor, Tensor, str]:
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise ValueError(f"data set item {index} must be (features, target) or (features, "
                         f"target, clip_id), got {type(item).__name__}")
    x, y = torch.as_tensor(item[0]), torch.as_tensor(item[1])
    if len(item) == 3:
        clip_id = str(item[2])
    else:
        ids = getattr(dataset, "video_ids", None)
        clip_id = str(ids[index]) if ids is not None else str(index)
    if x.dim() != 2 or y.dim() != 1:
        raise ValueError(f"clip {clip_id}: features must be [frames, bins] and the target [S], "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")
    return x.float(), y.float(), clip_id


def predict(model: torch.nn.Module, dataset: Dataset, config: EvalConfig = EvalConfig(),
            ctx: Optional[DistContext] = None, *, frames: Optional[int] = None,
            progress: bool = False) -> Predictions:
    """Score every clip of ``dataset`` once; this rank scores its share, all ranks get all.

    Args:
        model: ``model(x [B, frames, bins]) -> [B, S]`` logits, on its device (a
            ``DistributedDataParallel`` wrapper is unwrapped). Put in eval mode for the pass,
            its train / eval mode restored afterwards.
        dataset: items ``(features [T, bins], target [S], clip_id)`` or ``(features,
            target)``; for ``windows`` full-length features (:func:`build_eval_dataset`).
        config: modes, window hop, batch size, workers, precision.
        ctx: this process's place in the run (default: a single process). Every rank must
            call :func:`predict` (the shares are gathered with a collective).
        frames: the model's input length; ``None`` (``crop`` only) feeds the features as they
            are, all of one length.
        progress: a progress bar on rank 0.

    Returns:
        :class:`Predictions` of all clips in data-set order, on every rank.
    """
    ctx = ctx or DistContext()
    windows_mode = "windows" in config.modes
    if frames is not None and frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if windows_mode and frames is None:
        raise ValueError("windows mode needs frames= (the model's input length)")
    base = _base_dataset(dataset)
    fbank = getattr(base, "fbank", None)
    if getattr(base, "train", False) is True:
        raise ValueError("the evaluation data set augments its items (train=True); build it "
                         "with train=False (build_eval_dataset)")
    if windows_mode:
        from gnn_audio.data.audioset_embeddings import AudioSetEmbeddings

        if isinstance(base, AudioSetEmbeddings):
            raise ValueError("windows mode applies to log-mel data sets; evaluate "
                             "AudioSetEmbeddings with EvalConfig(modes=('crop',))")
        if isinstance(fbank, FbankConfig) and fbank.target_length is not None:
            raise ValueError(f"windows mode needs full-length features but the data set cuts "
                             f"them to target_length={fbank.target_length}; build it with "
                             "fbank.replace(target_length=None) (build_eval_dataset)")
    if len(dataset) == 0:
        raise ValueError("the evaluation data set is empty")
    pad_value = 0.0
    if isinstance(fbank, FbankConfig):  # a zero log-mel frame, normalised as the data set does
        pad_value = fbank_pad_value(fbank)

    module = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) \
        else model
    device = _model_device(module, ctx)
    check_precision(config.precision, device)
    sampler = ShardedEvalSampler(len(dataset), rank=ctx.rank, world_size=ctx.world_size)
    loader = DataLoader(_Indexed(dataset), batch_size=config.batch_size, sampler=sampler,
                        num_workers=config.num_workers, collate_fn=_as_list,
                        pin_memory=device.type == "cuda")
    scorer = _WindowScorer(module, device, config.precision, config.batch_size, len(sampler))
    indices: List[int] = []
    clip_ids: List[str] = []
    targets: List[Tensor] = []
    length = None
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for batch in tqdm(loader, desc="evaluating", unit=" batches",
                              disable=not (progress and ctx.is_main)):
                for index, item in batch:
                    x, y, clip_id = _unpack(item, index, dataset)
                    if frames is None:
                        if length is not None and x.size(0) != length:
                            raise ValueError(f"clip {clip_id} has {x.size(0)} frames, another "
                                             f"{length}; pass frames= to pad or cut them")
                        length, windows = x.size(0), x[None]
                    else:
                        starts = window_starts(x.size(0), frames, config.window_hop) \
                            if windows_mode else [0]
                        windows = torch.stack([x[s:s + frames] for s in starts])
                        if windows.size(1) < frames:
                            windows = F.pad(windows, (0, 0, 0, frames - windows.size(1)),
                                            value=pad_value)
                    scorer.add(len(indices), windows)
                    indices.append(int(index))
                    clip_ids.append(clip_id)
                    targets.append(y)
            scorer.finish()
    finally:
        module.train(was_training)

    local_scores = {"crop": scorer.crop, "windows": scorer.max}
    payload = {"indices": indices, "clip_ids": clip_ids,
               "targets": torch.stack(targets).numpy() if targets else None,
               "scores": {m: local_scores[m].numpy() if indices else None
                          for m in config.modes}}
    return _assemble(all_gather_objects(payload, ctx), len(dataset), config.modes)


def _assemble(parts: Sequence[Dict[str, Any]], num_clips: int,
              modes: Sequence[str]) -> Predictions:
    """The ranks' shares -> :class:`Predictions` in data-set order; every clip exactly once."""
    count = np.zeros(num_clips, dtype=np.int64)
    for part in parts:
        np.add.at(count, np.asarray(part["indices"], dtype=np.int64), 1)
    if (count != 1).any():
        missing, repeated = np.flatnonzero(count == 0), np.flatnonzero(count > 1)
        raise RuntimeError(f"evaluation shares do not cover the {num_clips} clips exactly "
                           f"once: {len(missing)} missing (e.g. {missing[:5].tolist()}), "
                           f"{len(repeated)} repeated (e.g. {repeated[:5].tolist()})")
    filled = [p for p in parts if p["indices"]]
    num_classes = filled[0]["targets"].shape[1]
    clip_ids: List[str] = [""] * num_clips
    targets = np.zeros((num_clips, num_classes), dtype=np.float32)
    scores = {m: np.zeros((num_clips, num_classes), dtype=np.float32) for m in modes}
    for part in filled:
        idx = np.asarray(part["indices"], dtype=np.int64)
        for i, clip_id in zip(idx, part["clip_ids"]):
            clip_ids[i] = clip_id
        targets[idx] = part["targets"]
        for m in modes:
            scores[m][idx] = part["scores"][m]
    return Predictions(clip_ids, targets, scores)


def evaluate(model: torch.nn.Module, dataset: Dataset, config: EvalConfig = EvalConfig(),
             ctx: Optional[DistContext] = None, *, frames: Optional[int] = None,
             progress: bool = False) -> Dict[str, Dict[str, Any]]:
    """mode -> metrics (:meth:`Predictions.metrics`) of :func:`predict`; every rank computes
    and returns the same values."""
    return predict(model, dataset, config, ctx, frames=frames, progress=progress).metrics()
