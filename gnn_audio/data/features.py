"""Log-mel filter-bank features, the PSLA / AST / ATGNN way.

``torchaudio.compliance.kaldi.fbank`` on the mean-removed 16 kHz waveform: 25 ms Hanning
windows every 10 ms, 128 mel bins, HTK-compatible, no dither and no energy term; zero-padded
or cut to a fixed number of frames (1024 for FSD50K, 1056 for AudioSet), then normalised with
a data-set mean and standard deviation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional

import torch
import torch.nn.functional as F
from torchaudio.compliance import kaldi

__all__ = ["FbankConfig", "FSD50K_FBANK", "AUDIOSET_FBANK", "AST_AUDIOSET_FBANK",
           "PANNS_FBANK", "fbank", "pad_or_cut", "pad_value"]


@dataclass(frozen=True)
class FbankConfig:
    """Everything that defines the model input; stored in model configs and checkpoints."""

    sample_rate: int = 16000
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    target_length: Optional[int] = 1024
    norm_mean: float = -4.6476
    norm_std: float = 4.5699
    low_freq: float = 20.0
    high_freq: float = 0.0  # kaldi convention: <= 0 means Nyquist + high_freq

    def __post_init__(self) -> None:
        problems = []

        def integer(name: str, low: int, why: str = "") -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(f"{name} must be an integer >= {low}{why} (got {value!r})")

        integer("sample_rate", 1)
        integer("num_mel_bins", 4, ", as kaldi's mel filter bank needs")
        if self.target_length is not None:
            integer("target_length", 1)
        for name in ("frame_length_ms", "frame_shift_ms", "norm_std"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                problems.append(f"{name} must be > 0 (got {value!r})")
        if not problems:
            nyquist = self.sample_rate / 2
            high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
            if not 0 <= self.low_freq < high <= nyquist:
                problems.append(f"the mel range must satisfy 0 <= low_freq < high_freq <= "
                                f"{nyquist:g} Hz (got {self.low_freq:g} to {high:g} Hz)")
            elif self.frame_shift_ms > self.frame_length_ms:
                problems.append(f"frame_shift_ms ({self.frame_shift_ms:g}) must not exceed "
                                f"frame_length_ms ({self.frame_length_ms:g})")
        if problems:
            raise ValueError("front-end (FbankConfig): " + "; ".join(problems))

    def replace(self, **changes) -> "FbankConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


#: PSLA / ATGNN FSD50K recipe: 1024 frames, (x + 4.6476) / 4.5699.
FSD50K_FBANK = FbankConfig()
#: ATGNN AudioSet recipe: 1056 frames.
AUDIOSET_FBANK = FbankConfig(target_length=1056)
#: AST AudioSet normalisation: (x - mean) / (2 std).
AST_AUDIOSET_FBANK = FbankConfig(target_length=1024, norm_mean=-4.2677393,
                                 norm_std=2 * 4.5689974)
#: PANNs-like front-end for CNN10 / AT-GCN: 32 kHz, 64 mel bins in 50-14000 Hz, 32 ms windows
#: every 10 ms, 1000 frames, no normalisation here (CNN10's ``bn0`` normalises every bin).
PANNS_FBANK = FbankConfig(sample_rate=32000, num_mel_bins=64, frame_length_ms=32.0,
                          target_length=1000, norm_mean=0.0, norm_std=1.0, low_freq=50.0,
                          high_freq=14000.0)


def pad_or_cut(feats: torch.Tensor, target_length: Optional[int]) -> torch.Tensor:
    """Zero-pad or cut ``[frames, bins]`` at the end to ``target_length`` frames."""
    if target_length is None:
        return feats
    diff = target_length - feats.size(0)
    if diff > 0:
        return F.pad(feats, (0, 0, 0, diff))
    return feats[:target_length]


def pad_value(config: FbankConfig) -> float:
    """The normalised value of a zero log-mel frame: what :func:`pad_or_cut` padding becomes
    after normalisation, so windows padded later match clips padded in training (computed in
    float32 as the features are)."""
    return float(((torch.zeros(1) - config.norm_mean) / config.norm_std)[0])


def fbank(waveform: torch.Tensor, config: FbankConfig = FSD50K_FBANK,
          normalize: bool = True) -> torch.Tensor:
    """``[T]`` or ``[1, T]`` waveform at ``config.sample_rate`` -> ``[frames, num_mel_bins]``.

    Clips shorter than one window are zero-padded to one window first.
    """
    wav = waveform.reshape(1, -1).to(torch.float32)
    wav = wav - wav.mean()
    min_len = int(round(config.sample_rate * config.frame_length_ms / 1000))
    if wav.size(1) < min_len:
        wav = F.pad(wav, (0, min_len - wav.size(1)))
    feats = kaldi.fbank(
        wav, htk_compat=True, sample_frequency=config.sample_rate, use_energy=False,
        window_type="hanning", num_mel_bins=config.num_mel_bins, dither=0.0,
        frame_length=config.frame_length_ms, frame_shift=config.frame_shift_ms,
        low_freq=config.low_freq, high_freq=config.high_freq)
    feats = pad_or_cut(feats, config.target_length)
    if normalize:
        feats = (feats - config.norm_mean) / config.norm_std
    return feats
