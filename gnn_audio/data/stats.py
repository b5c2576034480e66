"""Normalisation statistics of a data set's log-mel features.

The front-ends normalise with ``(x - norm_mean) / norm_std`` (:class:`FbankConfig`); the
published FSD50K (PSLA: -4.6476, 4.5699) and AudioSet (AST: -4.2677, 4.5690) values stay the
defaults. :func:`compute_norm_stats` gives the values for another data set: the mean and
standard deviation over every frame and mel bin of the un-normalised log-mel of its clips (the
zero padding to ``target_length`` excluded), accumulated in float64.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import torch

from gnn_audio.data.clips import ClipList
from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.features import FSD50K_FBANK, FbankConfig
from gnn_audio.data.store import WaveformStore

__all__ = ["compute_norm_stats"]


def compute_norm_stats(source: Union[WaveformStore, ClipList, TaggingDataset],
                       fbank_config: FbankConfig = FSD50K_FBANK,
                       max_clips: Optional[int] = None,
                       progress: bool = False) -> Tuple[float, float]:
    """Mean and standard deviation of the log-mel features of ``source``.

    Args:
        source: a waveform store, a clip list (decoded file by file) or a
            :class:`~gnn_audio.data.dataset.TaggingDataset` (its source is used, without
            augmentation).
        fbank_config: the front-end (its ``target_length`` and normalisation are ignored).
        max_clips: use at most this many clips, evenly spaced over the data set (all if None).
        progress: show a tqdm bar.

    Returns:
        ``(mean, std)`` as floats, to put in ``FbankConfig(norm_mean=..., norm_std=...)``.
    """
    from tqdm.auto import tqdm

    if isinstance(source, TaggingDataset):
        source = source.source
    raw = fbank_config.replace(target_length=None)
    data = TaggingDataset(source, raw, augment=None, train=False)
    n = len(data)
    if n == 0:
        raise ValueError("compute_norm_stats: the data set has no clips")
    if max_clips is not None and max_clips < n:
        indices = np.unique(np.linspace(0, n - 1, max(1, max_clips)).round().astype(int))
    else:
        indices = np.arange(n)
    total = 0
    acc = torch.zeros(2, dtype=torch.float64)
    for i in tqdm(indices, desc="norm stats", unit="clip", disable=not progress):
        feats = data._frontend(data.waveform(int(i))[None], normalize=False)[0].double()
        total += feats.numel()
        acc[0] += feats.sum()
        acc[1] += feats.square().sum()
    mean = float(acc[0] / total)
    var = max(float(acc[1] / total) - mean * mean, 0.0)
    return mean, float(np.sqrt(var))
