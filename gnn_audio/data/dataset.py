"""The training / evaluation data set: waveform -> (mixup) -> log-mel -> (SpecAugment) -> item.

:class:`TaggingDataset` reads a :class:`~gnn_audio.data.store.WaveformStore` (fast: no decoding)
or a :class:`~gnn_audio.data.clips.ClipList` (decodes and resamples each file on every access,
for small data or when no store is built). Items are ``(features [frames, mel], target [S],
clip_id)``, the PSLA / AST / ATGNN way:

1. the clip's 16 kHz mono waveform;
2. training only, with probability ``augment.mixup``: a random partner clip of the same source is
   mixed in on the *waveform*, ``lam * a + (1 - lam) * b`` with ``lam ~ Beta(10, 10)``, and the
   targets mixed the same way (the returned ``clip_id`` is the item's own);
3. log-mel filter banks equal to :func:`~gnn_audio.data.features.fbank`
   (:class:`~gnn_audio.data.kaldi_fbank.KaldiFbank`, faster), padded or cut to
   ``fbank.target_length`` frames;
4. training only: SpecAugment (one frequency and one time mask) on the un-normalised log-mel,
   masked with 0 as PSLA / AST do;
5. normalisation ``(x - norm_mean) / norm_std``.

**Determinism.** Every random draw of item ``index`` comes from its own
:class:`torch.Generator` seeded from ``(seed, epoch, index)`` (call :meth:`set_epoch` before
each epoch, as with a ``DistributedSampler``; with ``persistent_workers=True`` the workers keep
the epoch they were started with, so leave it off or recreate the loader each epoch). An item's
augmentation is then the same whatever the number of workers or ranks and after resuming from a
checkpoint at that epoch. A sampler that draws with replacement may yield ``(index, draw)``
pairs instead of plain indices (``draw``: the position in the epoch's draws) so that repeated
draws of one clip get different augmentations; the seed then comes from ``(seed, epoch, draw)``.

Any failure while producing an item raises :class:`ItemError`, one line naming the clip and its
audio file (a DataLoader worker re-raises it in the main process with that message).
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from gnn_audio.data.audio import load_audio
from gnn_audio.data.augment import mix, sample_mixup, spec_augment
from gnn_audio.data.clips import ClipList
from gnn_audio.data.features import FSD50K_FBANK, FbankConfig
from gnn_audio.data.panns_logmel import log_mel_module
from gnn_audio.data.store import WaveformStore
from gnn_audio.errors import one_line

__all__ = ["TaggingDataset", "ItemError", "item_generator"]

Index = Union[int, Tuple[int, int]]


class ItemError(RuntimeError):
    """A data-set item that could not be produced; one line naming the clip and file."""


def item_generator(seed: int, epoch: int, key: int) -> torch.Generator:
    """The generator for one item's random draws, a pure function of ``(seed, epoch, key)``."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(key)]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class TaggingDataset(Dataset):
    """Tagging items from a waveform store or a clip list (see the module docstring).

    Args:
        source: a :class:`WaveformStore` (recommended) or a :class:`ClipList`.
        fbank: the front-end; its ``sample_rate`` must equal the store's.
        augment: an :class:`~gnn_audio.data.augment.AugmentConfig`; used only when ``train``.
        train: apply ``augment`` (mixup, SpecAugment); evaluation items are deterministic.
        seed: base seed of the per-item generators.
    """

    def __init__(self, source: Union[WaveformStore, ClipList],
                 fbank: FbankConfig = FSD50K_FBANK, augment=None, train: bool = False,
                 seed: int = 0) -> None:
        if not isinstance(source, (WaveformStore, ClipList)):
            raise TypeError(f"source must be a WaveformStore or a ClipList, got "
                            f"{type(source).__name__}")
        if isinstance(source, WaveformStore) and source.sample_rate != fbank.sample_rate:
            raise ValueError(f"{source.path}: store holds {source.sample_rate} Hz waveforms, the "
                             f"front-end expects {fbank.sample_rate} Hz; build a store at that rate")
        self.source = source
        self.fbank = fbank
        self.augment = augment if train else None
        self.train = train
        self.seed = seed
        self.epoch = 0
        self._frontend = log_mel_module(fbank)
        self._is_store = isinstance(source, WaveformStore)
        self._targets = torch.from_numpy(
            source.targets if self._is_store else source.targets())

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws items take (see the module docstring)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source)

    @property
    def targets(self) -> Tensor:
        """``[N, S]`` float32 multi-hot targets (for the balanced sampler's weights)."""
        return self._targets

    @property
    def label_set(self):
        return self.source.label_set

    def clip_id(self, i: int) -> str:
        return str(self.source.clip_ids[i]) if self._is_store else self.source.clips[i].clip_id

    def audio_path(self, i: int) -> str:
        return self.source.source(i) if self._is_store else self.source.clips[i].path

    def waveform(self, i: int) -> Tensor:
        """Clip ``i`` as float32 ``[T]`` at ``fbank.sample_rate`` (no augmentation)."""
        if self._is_store:
            return self.source.waveform(i)
        return load_audio(self.source.clips[i].path, sample_rate=self.fbank.sample_rate)[0]

    def features(self, waveform: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Log-mel ``[frames, mel]`` of a waveform, SpecAugment-ed when training."""
        feats = self._frontend(waveform[None], normalize=False)[0]
        if self.augment is not None and (self.augment.freq_mask or self.augment.time_mask):
            feats = spec_augment(feats, self.augment, generator)
        return (feats - self.fbank.norm_mean) / self.fbank.norm_std

    def __getitem__(self, index: Index) -> Tuple[Tensor, Tensor, str]:
        i, key = (int(index[0]), int(index[1])) if isinstance(index, tuple) else (index, index)
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} clips")
        i %= len(self)
        partner = None
        try:
            wav, target = self.waveform(i), self._targets[i]
            generator = None
            if self.augment is not None:
                generator = item_generator(self.seed, self.epoch, key)
                lam = sample_mixup(generator, self.augment)
                if lam is not None:
                    partner = int(torch.randint(len(self), (1,), generator=generator))
                    wav = mix(wav, self.waveform(partner), lam)
                    target = mix(target, self._targets[partner], lam, match_length=False)
            feats = self.features(wav, generator)
            if not torch.isfinite(feats).all():
                raise ValueError("non-finite features")
        except Exception as err:  # noqa: BLE001 -- one line naming the clip(s) and file(s)
            where = f"clip {self.clip_id(i)} ({self.audio_path(i)})"
            if partner is not None:
                where += f" mixed with clip {self.clip_id(partner)} ({self.audio_path(partner)})"
            raise ItemError(f"{where}: {one_line(err)}") from err
        return feats, target, self.clip_id(i)
