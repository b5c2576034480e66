"""PANNs' exact log-mel front-end, batched and on any device: :class:`PannsLogmel`, the
``kind="panns"`` counterpart of :class:`~gnn_audio.data.kaldi_fbank.KaldiFbank`; and
:func:`log_mel_module`, the batched front-end of any
:class:`~gnn_audio.data.features.FbankConfig`.

The steps of torchlibrosa's ``Spectrogram`` + ``LogmelFilterBank`` (PANNs' front-end, see
:mod:`gnn_audio.data.features`): each clip reflect-padded by ``n_fft // 2`` at both of *its
own* ends (a clip in a zero-padded batch is reflected at its length, not at the batch's), STFT
with a periodic Hann window, ``|X|^2``, Slaney mel filters, ``10 * log10(max(x, 1e-10))``;
frames past a clip's own ``1 + n // hop`` set to 0 (what
:func:`~gnn_audio.data.features.pad_or_cut` pads with), then padded or cut to
``target_length`` and normalised. It computes what the per-clip
:func:`~gnn_audio.data.features.fbank` computes (the same torch operations: ``torch.stft``,
``abs().pow(2)``, the same window and mel matrix): bit for bit on a whole clip, to float32
rounding (< 1e-5 dB) on a clip of a padded batch. Both equal torchlibrosa to 1e-4 dB on
every bin within 60 dB of its frame's loudest (tests/data/test_panns_logmel.py).
On the CPU it runs on one thread (:func:`gnn_audio.threads.one_thread`), so its output does not
depend on the process's thread count.

It has no streaming counterpart yet: :func:`gnn_audio.data.windows.logmel_windows` frames a
signal block by block the ``snip_edges`` way (``window_size`` / ``window_shift``), which
centred frames are not; :class:`PannsLogmel` refuses those attributes with a clear error
rather than give wrong frames.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn_audio.data.features import (PANNS_AMIN, PANNS_LOGMEL, FbankConfig, panns_filters,
                                     panns_sizes)
from gnn_audio.data.kaldi_fbank import BatchedFrontEnd, KaldiFbank

__all__ = ["PannsLogmel", "log_mel_module"]


class PannsLogmel(BatchedFrontEnd):
    """``[B, T]`` waveforms at ``config.sample_rate`` (+ optional ``lengths [B]``, each clip's
    valid samples in a zero-padded batch) -> ``[B, frames, num_mel_bins]`` PANNs log-mel (dB),
    normalised unless ``normalize=False``. ``config.kind`` must be ``"panns"``."""

    def __init__(self, config: FbankConfig = PANNS_LOGMEL) -> None:
        super().__init__()
        if config.kind != "panns":
            raise ValueError(f"PannsLogmel computes kind 'panns' front-ends, got kind "
                             f"{config.kind!r} (use log_mel_module(config))")
        self.config = config
        self.n_fft, self.hop_length = panns_sizes(config)
        self.half = self.n_fft // 2
        #: the fewest samples a clip is computed from (shorter: zero-padded to this)
        self.min_samples = self.half + 1
        window, fb = panns_filters(config)  # librosa's values, as fbank() uses
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel_fb", fb, persistent=False)  # [freqs, mels]

    @property
    def window_size(self) -> int:
        raise NotImplementedError(
            "the 'panns' front-end has centred frames: it cannot be streamed block by block "
            "(logmel_windows); compute the whole signal's log-mel instead")

    window_shift = window_size

    def num_frames(self, lengths: Tensor) -> Tensor:
        """Frames per clip of ``lengths`` samples: ``1 + n // hop`` (even ``n_fft``), a clip
        shorter than ``n_fft // 2 + 1`` samples counting as that long."""
        lengths = lengths.clamp(min=self.min_samples)
        return 1 + (lengths + 2 * self.half - self.n_fft) // self.hop_length


    def _padded(self, wav: Tensor, lengths: Optional[Tensor]) -> Tensor:
        """Each clip reflect-padded by ``half`` at its own ends: ``[B, T' + 2 half]``."""
        batch, total = wav.shape
        if lengths is None and total >= self.min_samples:  # what torch.stft(center=True) does
            return F.pad(wav[:, None], (self.half, self.half), mode="reflect")[:, 0]
        if lengths is None:
            lengths = torch.full((batch,), total, dtype=torch.long, device=wav.device)
        valid = torch.arange(total, device=wav.device) < lengths[:, None]
        wav = wav * valid  # zeros after each clip's end, whatever the batch held there
        size = max(total, self.min_samples)
        if size > total:
            wav = F.pad(wav, (0, size - total))
        m = lengths.clamp(min=self.min_samples, max=size)[:, None]
        k = torch.arange(-self.half, size + self.half, device=wav.device)[None]
        idx = torch.where(k < 0, -k, torch.where(k < m, k, 2 * (m - 1) - k))
        # positions past a clip's reflected end only feed frames that are masked later
        return wav.gather(1, idx.clamp(0, size - 1))

    def _features(self, waveforms: Tensor, lengths: Optional[Tensor],
                  normalize: bool) -> Tensor:
        wav = waveforms.reshape(-1, waveforms.size(-1)).to(torch.float32)
        if lengths is not None:
            lengths = lengths.to(device=wav.device, dtype=torch.long).reshape(-1)
        padded = self._padded(wav, lengths)
        spec = torch.stft(padded, self.n_fft, hop_length=self.hop_length,
                          win_length=self.n_fft, window=self.window, center=False,
                          normalized=False, onesided=True, return_complex=True)
        power = spec.abs().pow(2.0)  # [B, freqs, frames], as torchaudio's Spectrogram
        mel = torch.matmul(power.transpose(-1, -2), self.mel_fb)  # [B, frames, mels]
        feats = 10.0 * torch.log10(torch.clamp(mel, min=PANNS_AMIN))
        if lengths is not None:
            keep = (torch.arange(feats.size(1), device=wav.device)
                    < self.num_frames(lengths)[:, None])
            feats = feats.masked_fill(~keep[..., None], 0.0)
        return self._padded_and_normalised(feats, normalize)


def log_mel_module(config: FbankConfig) -> Union[KaldiFbank, PannsLogmel]:
    """The batched front-end module of ``config``: :class:`~gnn_audio.data.kaldi_fbank.KaldiFbank`
    for kind ``"kaldi"``, :class:`PannsLogmel` for kind ``"panns"``."""
    if config.kind == "panns":
        return PannsLogmel(config)
    if config.kind == "kaldi":
        return KaldiFbank(config)
    raise ValueError(f"no front-end module for kind {config.kind!r}")  # pragma: no cover
