"""Reading audio files: soundfile for decoding, torchaudio for resampling."""
from __future__ import annotations

import os
from typing import Union

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

__all__ = ["load_audio", "resample"]


def resample(waveform: torch.Tensor, orig_sr: int, target_sr: int) -> torch.Tensor:
    """Band-limited sinc resampling of ``[..., T]`` (a no-op when the rates match)."""
    if orig_sr == target_sr:
        return waveform
    return AF.resample(waveform, orig_sr, target_sr)


def load_audio(path: Union[str, os.PathLike], sample_rate: int = 16000,
               mono: bool = True) -> torch.Tensor:
    """Decode an audio file to float32 ``[channels, T]`` at ``sample_rate``.

    Args:
        path: any format libsndfile reads (wav, flac, ogg, ...).
        sample_rate: output rate; the file is resampled with :func:`torchaudio.functional.resample`.
        mono: average the channels to one (as PSLA / AST / ATGNN do).
    """
    data, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)  # [T, C]
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    if mono and wav.size(0) > 1:
        wav = wav.mean(dim=0, keepdim=True)
    return resample(wav, sr, sample_rate)
