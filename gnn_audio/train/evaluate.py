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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from gnn_audio.data.audioset_embeddings import AudioSetEmbeddings
from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.features import FbankConfig, pad_value
from gnn_audio.data.readers.sources import get_source, infer_source
from gnn_audio.data.sampling import ShardedEvalSampler
from gnn_audio.data.windows import Windowing
from gnn_audio.files import atomic_open
from gnn_audio.metrics import tagging_metrics
from gnn_audio.precision import PRECISIONS
from gnn_audio.scoring import WindowScorer, model_device
from gnn_audio.train.data import DataPaths, open_split_store
from gnn_audio.train.distributed import (DistContext, all_gather_objects, barrier,
                                         init_distributed)
from gnn_audio.types import PathLike
from gnn_audio.zoo import bundle_of, load_model

__all__ = ["MODES", "EvalConfig", "Predictions", "build_eval_dataset", "predict", "evaluate",
           "CheckpointEvaluation", "evaluate_checkpoint"]

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
            :mod:`gnn_audio.precision`).
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
    return TaggingDataset(source, fbank.replace(target_length=None), train=False)


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
    pad = _check_eval_dataset(dataset, config, frames)
    module = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) \
        else model
    scorer = WindowScorer(module, config.batch_size, config.precision,
                          model_device(module, ctx.device))
    windowing = Windowing.from_fraction(frames, config.window_hop) if frames else None
    sampler = ShardedEvalSampler(len(dataset), rank=ctx.rank, world_size=ctx.world_size)
    loader = DataLoader(_Indexed(dataset), batch_size=config.batch_size, sampler=sampler,
                        num_workers=config.num_workers, collate_fn=_as_list,
                        pin_memory=scorer.device.type == "cuda")
    share = _Share()
    was_training = module.training
    module.eval()
    try:
        for batch in tqdm(loader, desc="evaluating", unit=" batches",
                          disable=not (progress and ctx.is_main)):
            for index, item in batch:
                x, y, clip_id = _unpack(item, index, dataset)
                slot = share.add(int(index), clip_id, y)
                scorer.add(slot, _clip_windows(x, clip_id, windowing, pad, share,
                                               first_only="windows" not in config.modes))
                scorer.close(slot)
                share.keep(scorer.ready())
        scorer.flush()
        share.keep(scorer.ready())
    finally:
        module.train(was_training)
    return _assemble(all_gather_objects(share.payload(config.modes), ctx), len(dataset),
                     config.modes)


def _check_eval_dataset(dataset: Dataset, config: EvalConfig, frames: Optional[int]) -> float:
    """Refuse a data set :func:`predict` cannot score as asked; the value windows are padded
    with (a zero log-mel frame, normalised as the data set normalises; 0 for other
    features)."""
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
        if isinstance(base, AudioSetEmbeddings):
            raise ValueError("windows mode applies to log-mel data sets; evaluate "
                             "AudioSetEmbeddings with EvalConfig(modes=('crop',))")
        if isinstance(fbank, FbankConfig) and fbank.target_length is not None:
            raise ValueError(f"windows mode needs full-length features but the data set cuts "
                             f"them to target_length={fbank.target_length}; build it with "
                             "fbank.replace(target_length=None) (build_eval_dataset)")
    if len(dataset) == 0:
        raise ValueError("the evaluation data set is empty")
    return pad_value(fbank) if isinstance(fbank, FbankConfig) else 0.0


def _clip_windows(x: Tensor, clip_id: str, windowing: Optional[Windowing], pad: float,
                  share: "_Share", first_only: bool) -> Tensor:
    """The windows of one clip's features: as they are without ``windowing`` (all clips of
    one length), else its first window (``crop``) or all its windows."""
    if windowing is None:
        if share.length is not None and x.size(0) != share.length:
            raise ValueError(f"clip {clip_id} has {x.size(0)} frames, another "
                             f"{share.length}; pass frames= to pad or cut them")
        share.length = x.size(0)
        return x[None]
    return windowing.windows(x, pad, first_only=first_only)[1]


class _Share:
    """This rank's clips: data-set index, id and target of every slot, and per slot the
    ``crop`` score (first window) and the ``windows`` score (maximum over its windows)."""

    def __init__(self) -> None:
        self.indices: List[int] = []
        self.clip_ids: List[str] = []
        self.targets: List[Tensor] = []
        self.crop: Dict[int, np.ndarray] = {}
        self.max: Dict[int, np.ndarray] = {}
        self.length: Optional[int] = None

    def add(self, index: int, clip_id: str, target: Tensor) -> int:
        self.indices.append(index)
        self.clip_ids.append(clip_id)
        self.targets.append(target)
        return len(self.indices) - 1

    def keep(self, ready: Sequence[Tuple[object, np.ndarray]]) -> None:
        for slot, scores in ready:
            self.crop[slot], self.max[slot] = scores[0], scores.max(axis=0)

    def payload(self, modes: Sequence[str]) -> Dict[str, Any]:
        n = len(self.indices)
        scores = {"crop": self.crop, "windows": self.max}
        return {"indices": self.indices, "clip_ids": self.clip_ids,
                "targets": torch.stack(self.targets).numpy() if n else None,
                "scores": {m: np.stack([scores[m][i] for i in range(n)]) if n else None
                           for m in modes}}


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


# --------------------------------------------------------------------------------------------
# a checkpoint on a split of a data source (gnn-audio eval)



@dataclass
class CheckpointEvaluation:
    """What :func:`evaluate_checkpoint` found: the :class:`Predictions` of every clip of the
    split, the clips the reader left out (``skip_bad``) and whether this is the main rank
    (which writes the results)."""

    checkpoint: str
    split: str
    predictions: Predictions
    skipped: int = 0
    is_main: bool = True

    #: the metrics reported per mode
    REPORTED = ("mAP", "mAUC", "d_prime", "lwlrap")

    def to_dict(self) -> Dict[str, Any]:
        """``{"checkpoint", "split", "clips", "metrics": {mode: {mAP, mAUC, d_prime,
        lwlrap}}, "skipped"}`` (``gnn-audio eval --out``)."""
        metrics = self.predictions.metrics()
        return {"checkpoint": self.checkpoint, "split": self.split,
                "clips": len(self.predictions),
                "metrics": {mode: {k: m[k] for k in self.REPORTED}
                            for mode, m in metrics.items()},
                "skipped": self.skipped}


def evaluate_checkpoint(checkpoint: PathLike, paths: DataPaths, *, source: Optional[str] = None,
                        split: str = "eval", modes: Optional[Sequence[str]] = None,
                        window_hop: float = 0.5, batch_size: int = 32, num_workers: int = 0,
                        device: Optional[str] = None, use_store: bool = True,
                        progress: bool = True, log=print) -> CheckpointEvaluation:
    """Score the checkpoint ``checkpoint`` on split ``split`` of a data source, read as
    training reads it: audio through the split's waveform store under ``paths``
    (:class:`~gnn_audio.train.data.DataPaths`; built by the main rank when missing or stale,
    :func:`~gnn_audio.train.data.open_split_store`), embeddings as they are.

    Args:
        checkpoint: a gnn_audio checkpoint (``best.pt``).
        paths: the source's options and the stores' (``store_dir``, ``skip_bad``).
        source: the data source's name (``None``: the one whose options ``paths`` set).
        split: ``train``, ``val`` or ``eval``.
        modes: of :data:`MODES`; ``None``: both for log-mel models, ``crop`` for embedding
            models (the only mode they have).
        window_hop, batch_size, num_workers: of :class:`EvalConfig`.
        device: where the model runs (``None``: CUDA when available); under ``torchrun`` every
            rank scores its share.
        use_store: ``False`` decodes the audio files directly.
        progress, log: tqdm bars; one line per store built.

    Raises:
        ValueError: one line, for a checkpoint whose input (log-mel or embeddings) or class
            list does not fit the data, options that do not give the split, or modes an
            embedding model does not have; the readers' and stores' one-line errors
            (:class:`~gnn_audio.data.readers.DataError`, ``StoreError``, ``OSError``).
    """
    where = str(checkpoint)
    src = get_source(source) if source is not None else infer_source(paths.options)
    src.check(paths.options, (split,))
    ctx = init_distributed(device)
    model = load_model(checkpoint).to(ctx.device)
    bundle = bundle_of(model, where)
    if bundle.config.input != src.reads:
        raise ValueError(f"{where}: {bundle.name} reads {bundle.config.input} input; the "
                         f"{src.name} data gives {src.reads}")
    if not bundle.is_logmel:
        modes = ("crop",) if modes is None else tuple(modes)
        if tuple(modes) != ("crop",):
            raise ValueError(f"{where}: {bundle.name} reads embeddings, which are scored in "
                             "crop mode only")
    data = src.read(paths.options, split, skip_bad=paths.skip_bad)
    for warning in getattr(data, "warnings", ()):  # embedding data sets have none
        log(f"warning: {warning}")
    labels = src.label_set(paths.options, data)
    if bundle.label_names is not None and list(labels.names) != list(bundle.label_names):
        raise ValueError(f"{where} was trained on another class list than "
                         f"{src.where(paths.options, split)} ({len(bundle.label_names)} vs "
                         f"{len(labels)} classes)")
    frames = None
    dataset = data
    if bundle.is_logmel:
        fb = bundle.fbank
        clips = data
        if use_store:  # the training stores: the same waveforms as training saw
            clips = open_split_store(data, split, paths, src, fb.sample_rate,
                                     is_main=ctx.is_main, barrier=lambda: barrier(ctx),
                                     progress=progress, log=log)
        dataset = build_eval_dataset(clips, fb)
        frames = fb.target_length
    config = EvalConfig(modes=tuple(modes) if modes is not None else MODES,
                        window_hop=window_hop, batch_size=batch_size, num_workers=num_workers)
    preds = predict(model, dataset, config, ctx, frames=frames, progress=progress)
    return CheckpointEvaluation(where, split, preds, len(getattr(data, "skipped", ())),
                                ctx.is_main)

