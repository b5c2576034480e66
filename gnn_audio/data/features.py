"""Log-mel filter-bank features, the PSLA / AST / ATGNN way or the PANNs way.

``FbankConfig.kind`` picks the front-end:

* ``"kaldi"`` (the default): ``torchaudio.compliance.kaldi.fbank`` on the mean-removed 16 kHz
  waveform: 25 ms Hanning windows every 10 ms, 128 mel bins, HTK-compatible, no dither and no
  energy term;
* ``"panns"``: PANNs' own front-end (torchlibrosa's ``Spectrogram`` + ``LogmelFilterBank``):
  STFT with ``n_fft = win_length = round(sample_rate * frame_length_ms / 1000)`` and
  ``hop = round(sample_rate * frame_shift_ms / 1000)``, periodic Hann window, centred frames
  (reflect padding by ``n_fft // 2``, so a clip of ``n`` samples has ``1 + n // hop`` frames),
  power spectrum, librosa's Slaney-scale, Slaney-normalised mel filters, then
  ``10 * log10(max(x, 1e-10))`` (dB, ref 1, no ``top_db``); no mean removal. A clip of at most
  ``n_fft // 2`` samples (too short to reflect) is zero-padded to ``n_fft // 2 + 1`` samples
  first. :data:`PANNS_LOGMEL` is PANNs' exact setting.

Either is then zero-padded or cut to a fixed number of frames (1024 for FSD50K, 1056 for
AudioSet), and normalised with a data-set mean and standard deviation.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
import torchaudio
from torchaudio.compliance import kaldi

__all__ = ["FbankConfig", "FSD50K_FBANK", "AUDIOSET_FBANK", "AST_AUDIOSET_FBANK",
           "PANNS_FBANK", "PANNS_LOGMEL", "FRONT_END_KINDS", "fbank", "pad_or_cut",
           "pad_value"]

#: the values of :attr:`FbankConfig.kind`
FRONT_END_KINDS = ("kaldi", "panns")
#: the floor of the ``"panns"`` front-end's power before the log (torchlibrosa's ``amin``)
PANNS_AMIN = 1e-10


def panns_sizes(config: "FbankConfig") -> Tuple[int, int]:
    """``(n_fft, hop)`` in samples of a ``"panns"`` front-end (``n_fft`` is also the window
    length)."""
    return (int(round(config.sample_rate * config.frame_length_ms / 1000)),
            int(round(config.sample_rate * config.frame_shift_ms / 1000)))


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
    #: ``"kaldi"`` or ``"panns"`` (see the module docstring); dicts stored without it (before
    #: it existed) load as ``"kaldi"``. Last, so positional construction is unchanged.
    kind: str = "kaldi"

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in FRONT_END_KINDS:
            problems.append(f"kind must be one of {', '.join(map(repr, FRONT_END_KINDS))} "
                            f"(got {self.kind!r})")
        panns = self.kind == "panns"

        def integer(name: str, low: int, why: str = "") -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(f"{name} must be an integer >= {low}{why} (got {value!r})")

        integer("sample_rate", 1)
        if panns:
            integer("num_mel_bins", 1)
        else:
            integer("num_mel_bins", 4, ", as kaldi's mel filter bank needs")
        if self.target_length is not None:
            integer("target_length", 1)
        for name in ("frame_length_ms", "frame_shift_ms", "norm_std"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                problems.append(f"{name} must be > 0 (got {value!r})")
        if not problems and panns and not self.high_freq > 0:
            # no kaldi "Nyquist + high_freq" convention for PANNs: its fmax is always given
            problems.append(f"high_freq must be > 0 Hz for kind 'panns' (an explicit upper mel "
                            f"edge; got {self.high_freq:g})")
        if not problems and panns:
            n_fft, hop = panns_sizes(self)
            if n_fft < 2 or hop < 1:
                problems.append(f"frame_length_ms and frame_shift_ms must give a window of >= 2 "
                                f"samples and a hop of >= 1 at {self.sample_rate} Hz (got "
                                f"{n_fft} and {hop})")
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
#: PANNs' (and torchlibrosa's) exact front-end, as PANNs' CNN10 / CNN14 were trained on:
#: 32 kHz, 1024-sample periodic Hann windows every 320 samples, centred, power spectrum,
#: 64 Slaney mel bins in 50-14000 Hz, dB; 1001 frames (a 10-s clip), no normalisation here.
PANNS_LOGMEL = FbankConfig(kind="panns", sample_rate=32000, num_mel_bins=64,
                           frame_length_ms=32.0, frame_shift_ms=10.0, target_length=1001,
                           norm_mean=0.0, norm_std=1.0, low_freq=50.0, high_freq=14000.0)


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

    Kind ``"kaldi"``: clips shorter than one window are zero-padded to one window first. Kind
    ``"panns"``: see the module docstring.
    """
    feats = (panns_logmel(waveform, config) if config.kind == "panns"
             else _kaldi_logmel(waveform, config))
    feats = pad_or_cut(feats, config.target_length)
    if normalize:
        feats = (feats - config.norm_mean) / config.norm_std
    return feats


def _kaldi_logmel(waveform: torch.Tensor, config: FbankConfig) -> torch.Tensor:
    """The ``"kaldi"`` log-mel ``[frames, num_mel_bins]`` of one waveform, not padded, cut or
    normalised (a clip shorter than one window is zero-padded to one window first)."""
    wav = waveform.reshape(1, -1).to(torch.float32)
    wav = wav - wav.mean()
    min_len = int(round(config.sample_rate * config.frame_length_ms / 1000))
    if wav.size(1) < min_len:
        wav = F.pad(wav, (0, min_len - wav.size(1)))
    return kaldi.fbank(
        wav, htk_compat=True, sample_frequency=config.sample_rate, use_energy=False,
        window_type="hanning", num_mel_bins=config.num_mel_bins, dither=0.0,
        frame_length=config.frame_length_ms, frame_shift=config.frame_shift_ms,
        low_freq=config.low_freq, high_freq=config.high_freq)


#: the Slaney mel scale (librosa's ``htk=False``): Hz per mel below 1 kHz, where it turns
#: logarithmic, and the log step per mel above
_F_SP, _MIN_LOG_HZ, _LOGSTEP = 200.0 / 3, 1000.0, math.log(6.4) / 27.0


def _slaney_hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """librosa's ``hz_to_mel(htk=False)``: linear below 1 kHz, logarithmic above."""
    return torch.where(f >= _MIN_LOG_HZ, _MIN_LOG_HZ / _F_SP
                       + torch.log(f.clamp(min=1e-30) / _MIN_LOG_HZ) / _LOGSTEP, f / _F_SP)


def _slaney_mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    """librosa's ``mel_to_hz(htk=False)``, the inverse of :func:`_slaney_hz_to_mel`."""
    min_log_mel = _MIN_LOG_HZ / _F_SP
    return torch.where(m >= min_log_mel, _MIN_LOG_HZ * torch.exp(_LOGSTEP * (m - min_log_mel)),
                       _F_SP * m)


def panns_filters(config: FbankConfig) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(window [n_fft], mel filters [n_fft // 2 + 1, num_mel_bins])`` of a ``"panns"``
    front-end, float32: the periodic Hann window and librosa's ``filters.mel`` (Slaney scale,
    Slaney norm), both computed in float64 and rounded once, as librosa / scipy do.
    (torchaudio's ``melscale_fbanks`` computes in float32: its small weights near the filter
    edges differ by up to 0.2 % from librosa's, enough to move a tone's dB by 1e-3.)"""
    n_fft, _ = panns_sizes(config)
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (config.sample_rate / n_fft)
    low, high = (_slaney_hz_to_mel(torch.tensor(x, dtype=torch.float64))
                 for x in (float(config.low_freq), float(config.high_freq)))
    mel_f = _slaney_mel_to_hz(torch.linspace(float(low), float(high), config.num_mel_bins + 2,
                                             dtype=torch.float64))
    fdiff = mel_f.diff()
    ramps = mel_f[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.minimum(lower, upper).clamp(min=0.0)
    weights = weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # Slaney: equal area
    return window.float(), weights.t().float().contiguous()


@lru_cache(maxsize=8)
def _panns_transforms(config: FbankConfig, device: str) -> torch.nn.Module:
    n_fft, hop = panns_sizes(config)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=config.sample_rate, n_fft=n_fft, win_length=n_fft, hop_length=hop,
        f_min=config.low_freq, f_max=config.high_freq, n_mels=config.num_mel_bins,
        window_fn=torch.hann_window, power=2.0, center=True, pad_mode="reflect",
        norm="slaney", mel_scale="slaney")
    window, filters = panns_filters(config)  # librosa's exact float32 values
    mel.spectrogram.window.copy_(window)
    mel.mel_scale.fb.copy_(filters)
    return torch.nn.Sequential(
        mel, torchaudio.transforms.AmplitudeToDB(stype="power", top_db=None)).to(device)


def panns_logmel(waveform: torch.Tensor, config: FbankConfig) -> torch.Tensor:
    """The ``"panns"`` log-mel ``[frames, num_mel_bins]`` of one ``[T]`` or ``[1, T]``
    waveform, in dB, not padded, cut or normalised (torchaudio's ``MelSpectrogram`` +
    ``AmplitudeToDB``, set as torchlibrosa)."""
    n_fft, _ = panns_sizes(config)
    wav = waveform.reshape(1, -1).to(torch.float32)
    shortest = n_fft // 2 + 1  # reflect padding needs more samples than it pads
    if wav.size(1) < shortest:
        wav = F.pad(wav, (0, shortest - wav.size(1)))
    return _panns_transforms(config, str(wav.device))(wav)[0].t()
