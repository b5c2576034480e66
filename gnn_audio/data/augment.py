"""Training-time augmentation of PSLA / AST / ATGNN: mixup on waveforms and SpecAugment masks.

* **Mixup** (PSLA): with probability ``mixup`` an item is mixed with a random partner clip,
  ``lam * a + (1 - lam) * b`` with ``lam ~ Beta(alpha, alpha)`` (``Beta(10, 10)``: mean 0.5,
  standard deviation 0.109), on waveforms (the partner zero-padded or cut to the first clip's
  length) and on targets alike. PSLA adds ``lam`` for each label of the first clip and
  ``1 - lam`` for each of the partner's, which for 0/1 targets equals mixing the target vectors.
* **SpecAugment** (torchaudio's ``FrequencyMasking(48)`` then ``TimeMasking(192)``, as PSLA
  applies them): one band of mel bins and one run of frames set to a constant.

Which item is mixed with which partner, and augmenting only in training, is the data set's job
(:class:`gnn_audio.data.dataset.TaggingDataset`). Every random draw here takes an optional
:class:`torch.Generator`, so an item's augmentation can be reproduced from a seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from scipy.special import betaincinv
from torch import Tensor

__all__ = ["AugmentConfig", "NO_AUGMENT", "sample_mixup", "mix", "spec_augment",
           "mask_along_axis"]


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation; the defaults are the PSLA / ATGNN FSD50K recipe.

    Args:
        mixup: probability that an item is mixed with a partner (0 disables mixup).
        mixup_alpha: ``alpha`` of the ``Beta(alpha, alpha)`` mixing weight.
        freq_mask: SpecAugment frequency mask parameter (bins; 0 disables the mask).
        time_mask: SpecAugment time mask parameter (frames; 0 disables the mask).
    """

    mixup: float = 0.5
    mixup_alpha: float = 10.0
    freq_mask: int = 48
    time_mask: int = 192

    def __post_init__(self) -> None:
        if not 0.0 <= self.mixup <= 1.0:
            raise ValueError(f"AugmentConfig.mixup must be a probability in [0, 1], "
                             f"got {self.mixup}")
        if not self.mixup_alpha > 0.0:  # also rejects NaN
            raise ValueError(f"AugmentConfig.mixup_alpha must be > 0, got {self.mixup_alpha}")
        for name in ("freq_mask", "time_mask"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"AugmentConfig.{name} must be an integer >= 0, got {value!r}")

    def replace(self, **changes) -> "AugmentConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


#: no augmentation at all (evaluation, or training without augmentation)
NO_AUGMENT = AugmentConfig(mixup=0.0, freq_mask=0, time_mask=0)


def _uniform(generator: Optional[torch.Generator]) -> float:
    return float(torch.rand(1, generator=generator, dtype=torch.float64))


def sample_mixup(rng: Optional[torch.Generator], cfg: AugmentConfig) -> Optional[float]:
    """Decide whether to mix one item and draw its weight.

    Args:
        rng: the generator to draw from (``None``: torch's global generator).
        cfg: the augmentation config.

    Returns:
        ``None`` (no mixup for this item, probability ``1 - cfg.mixup``), else
        ``lam ~ Beta(cfg.mixup_alpha, cfg.mixup_alpha)``, the weight of the item itself.
        ``lam`` is drawn by inverting the Beta CDF at a uniform from ``rng``, so one call
        consumes one uniform (no mixup) or two (mixup), none when ``cfg.mixup`` is 0.
    """
    if cfg.mixup <= 0.0 or _uniform(rng) >= cfg.mixup:
        return None
    return float(betaincinv(cfg.mixup_alpha, cfg.mixup_alpha, _uniform(rng)))


def mix(a: Tensor, b: Tensor, lam: float, *, match_length: bool = True) -> Tensor:
    """``lam * a + (1 - lam) * b``: mixup of two waveforms or of their targets.

    Args:
        a: the item, e.g. a waveform ``[T]`` / ``[C, T]`` or a target ``[S]``.
        b: the partner; with ``match_length`` its last dimension is zero-padded at the end
            or cut to ``a``'s (PSLA's rule for waveforms of different lengths), otherwise its
            shape must equal ``a``'s (use this for targets).
        lam: the weight of ``a``, in ``[0, 1]``.

    Returns:
        A tensor of ``a``'s shape, in ``a``'s floating dtype (``float32`` for integer input).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"mixup weight lam must be in [0, 1], got {lam}")
    if a.shape[:-1] != b.shape[:-1] or a.dim() == 0 or (
            not match_length and a.shape != b.shape):
        raise ValueError(f"cannot mix tensors of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    dtype = a.dtype if a.is_floating_point() else torch.float32
    if match_length and b.size(-1) != a.size(-1):
        b = b[..., :a.size(-1)] if b.size(-1) > a.size(-1) else F.pad(
            b, (0, a.size(-1) - b.size(-1)))
    return lam * a.to(dtype) + (1.0 - lam) * b.to(dtype)


def _mask_span(size: int, mask_param: int,
               generator: Optional[torch.Generator]) -> Tuple[int, int]:
    """torchaudio's mask interval ``[start, end)`` along an axis of ``size`` entries, clipped
    to ``0 .. size``; draws two uniforms (none when ``mask_param < 1``)."""
    if mask_param < 1:
        return 0, 0
    value = torch.rand(1, generator=generator) * mask_param
    min_value = torch.rand(1, generator=generator) * (size - value)
    start = int(min_value.long())
    end = start + int(value.long())
    return min(max(start, 0), size), min(max(end, 0), size)


def mask_along_axis(x: Tensor, mask_param: int, axis: int, mask_value: float = 0.0,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """One SpecAugment mask along ``axis`` of ``x``, with torchaudio's distribution.

    As ``torchaudio.functional.mask_along_axis``: ``v = U * mask_param`` and
    ``v0 = U' * (size - v)`` with ``U, U'`` uniform in ``[0, 1)``; entries
    ``[floor(v0), floor(v0) + floor(v))`` are set to ``mask_value``. The width is therefore
    uniform over the integers ``0 .. mask_param - 1`` and the start uniform over the positions
    that keep the mask inside the axis (where ``mask_param`` exceeds the axis length, the mask
    may start before 0 and is clipped, as torchaudio does). With the same uniforms the result
    equals torchaudio's, which draws them from the global generator; here they come from
    ``generator``. Returns a new tensor.
    """
    out = x.clone()
    start, end = _mask_span(x.size(axis), mask_param, generator)
    out.narrow(axis, start, max(end - start, 0)).fill_(mask_value)
    return out


def spec_augment(feats: Tensor, cfg: AugmentConfig, generator: Optional[torch.Generator] = None,
                 *, mask_value: float = 0.0) -> Tensor:
    """SpecAugment as PSLA applies it: one frequency mask, then one time mask.

    Args:
        feats: log-mel features ``[frames, mel]``.
        cfg: ``cfg.freq_mask`` / ``cfg.time_mask`` are the mask parameters (0: no mask).
        generator: where the four uniforms come from (``None``: torch's global generator,
            which gives exactly torchaudio's ``FrequencyMasking`` / ``TimeMasking`` result on
            ``feats.T[None]``).
        mask_value: the value written into the masks. PSLA / AST mask the *un-normalised*
            log-mel with 0 and normalise afterwards; on features normalised with ``(x - mean)
            / std`` pass ``mask_value = -mean / std`` (about 1.017 for
            :data:`~gnn_audio.data.features.FSD50K_FBANK`) to get the same input, or apply
            this function before normalising.

    Returns:
        The masked features, a new ``[frames, mel]`` tensor.
    """
    if feats.dim() != 2:
        raise ValueError(f"spec_augment expects features [frames, mel], got {tuple(feats.shape)}")
    out = feats.clone()
    for axis, mask_param in ((1, cfg.freq_mask), (0, cfg.time_mask)):
        start, end = _mask_span(out.size(axis), mask_param, generator)
        out.narrow(axis, start, max(end - start, 0)).fill_(mask_value)
    return out
