"""Input checks of the models: is a batch what the model was built for?

Every model's ``forward`` calls one of these first, so that a batch that does not fit (a
transposed spectrogram, another number of mel bins, a raw waveform, an empty batch, a numpy
array, NaN / inf values) fails at once with one line saying what was expected, instead of
deep inside torch or, worse, as logits computed from the wrong thing.

The shape checks read only shapes (free, also under :func:`torch.compile`). The NaN / inf
check is one reduction over the batch read back on the host (``bool`` of a tensor), so it runs
only where that read costs no device synchronisation: on **CPU** tensors (eager), where it
raises the one-line ``ValueError`` below. On any other device (CUDA, ``meta``, fake tensors)
it is skipped, so that a model's forward holds no host synchronisation in the GPU hot path
(every training step); there the data is checked where it is made instead:
:class:`~gnn_audio.data.dataset.TaggingDataset` items raise on non-finite features (naming
the clip), :mod:`gnn_audio.inference` rejects NaN / inf waveforms, and
:class:`~gnn_audio.train.step.TrainStep` stops on a non-finite loss. Set
``model.check_finite = False`` to skip the CPU check too (e.g. in a tuned training loop whose
features are known to be clean). It is also skipped while :func:`torch.compile` traces the
model, which cannot hold a host synchronisation in one graph.
"""
from __future__ import annotations

from typing import NoReturn, Optional, Sequence, Union

import torch
from torch import Tensor

__all__ = ["check_logmel_input", "check_embedding_input"]

ModelLike = Union[str, torch.nn.Module]


def _name(model: ModelLike) -> str:
    if isinstance(model, str):
        return model
    return getattr(getattr(model, "bundle", None), "name", None) or type(model).__name__


def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _check_tensor(x, expected: str) -> None:
    if isinstance(x, Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{expected} as a real floating-point tensor; got dtype {x.dtype}")
        return
    kind = f"{type(x).__module__}.{type(x).__name__}".replace("builtins.", "")
    hint = " (convert it with torch.from_numpy(x).float())" if kind == "numpy.ndarray" else ""
    raise TypeError(f"{expected}; got a {kind}{hint}")


def _fail_if_compiling(expected: str) -> None:
    # under torch.compile shapes are symbolic and cannot be printed: a shorter message
    if torch.compiler.is_compiling():
        raise ValueError(f"{expected}; got another shape (run the model without "
                         "torch.compile to see which)")


def _check_not_empty(x: Tensor, expected: str) -> None:
    if x.size(0) == 0:
        raise ValueError(f"{expected}; got {_shape(x.shape)} (an empty batch)")
    if x.numel() == 0:
        raise ValueError(f"{expected}; got {_shape(x.shape)} (no frames: a 0-length time "
                         "axis)")


def _check_finite(x: Tensor, model: ModelLike, allow_nonfinite: Optional[bool]) -> None:
    if allow_nonfinite is None:
        allow_nonfinite = not getattr(model, "check_finite", True)
    if allow_nonfinite or torch.compiler.is_compiling() or x.device.type != "cpu":
        return  # off the device hot path: no host sync on an accelerator (module docstring)
    if not bool(torch.isfinite(x).all()):  # one reduction + host sync
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{_name(model)}: the input holds {bad} NaN / inf values (of "
                         f"{x.numel()}); clean the features, or set model.check_finite = "
                         "False to skip this check")


def check_logmel_input(x: Tensor, mel_bins: int, model: ModelLike, *,
                       allow_nonfinite: Optional[bool] = None) -> Tensor:
    """Check a log-mel batch and return it as ``[B, frames, mel]`` (a view).

    Accepts ``[B, frames, mel_bins]`` (what :func:`gnn_audio.data.fbank` returns, batched)
    and ``[B, 1, mel_bins, frames]``. ``model`` (a module or a name) names the model in the
    message; ``allow_nonfinite`` defaults to ``not model.check_finite`` (checked if unset).
    The NaN / inf check runs on CPU inputs only (no host sync on an accelerator: see the
    module docstring).

    Raises:
        TypeError: ``x`` is not a real floating-point tensor (e.g. a numpy array).
        ValueError: another layout (transposed, a raw waveform, other mel bins), an empty
            batch, no frames, or NaN / inf values (CPU input).
    """
    if isinstance(x, Tensor) and x.is_floating_point():
        if x.dim() == 3 and x.size(2) == mel_bins and x.size(0) > 0 and x.size(1) > 0:
            out = x
        elif (x.dim() == 4 and x.size(1) == 1 and x.size(2) == mel_bins and x.size(0) > 0
              and x.size(3) > 0):
            out = x[:, 0].transpose(1, 2)
        else:
            _logmel_error(x, mel_bins, model)
        _check_finite(out, model, allow_nonfinite)
        return out
    _logmel_error(x, mel_bins, model)


def _logmel_error(x, mel_bins: int, model: ModelLike) -> NoReturn:
    expected = (f"{_name(model)} expects log-mel [B, frames, {mel_bins}] or "
                f"[B, 1, {mel_bins}, frames]")
    _check_tensor(x, expected)
    _fail_if_compiling(expected)
    if x.dim() in (3, 4):
        _check_not_empty(x, expected)
    got = f"{expected}; got {_shape(x.shape)}"
    waveform = " (a raw waveform? compute features with gnn_audio.data.fbank)"
    if x.dim() <= 2:
        single = x.dim() == 2 and x.size(-1) == mel_bins
        raise ValueError(got + (" (one clip? add the batch dimension: x.unsqueeze(0))"
                                if single else waveform))
    if x.dim() == 3 and x.size(1) == mel_bins:
        raise ValueError(got + " (transposed, [B, mel, frames]? pass x.transpose(1, 2))")
    if x.dim() == 3 and x.size(1) == 1:
        raise ValueError(got + waveform)
    if x.dim() == 4 and x.size(1) != 1:
        raise ValueError(got + f" ({x.size(1)} channels; log-mel has one)")
    if x.dim() == 4 and x.size(3) == mel_bins:
        raise ValueError(got + " (transposed, [B, 1, frames, mel]? pass x.transpose(2, 3))")
    if x.dim() in (3, 4):
        raise ValueError(got + f" ({x.size(2)} mel bins; this model was built for "
                         f"{mel_bins})")
    raise ValueError(got)


def check_embedding_input(x: Tensor, num_frames: int, embedding_dim: int, model: ModelLike,
                          *, allow_nonfinite: Optional[bool] = None) -> Tensor:
    """Check a batch of clip embeddings ``[B, num_frames, embedding_dim]`` (e.g. the AudioSet
    release: 10 frames of 128 dimensions) and return it. Errors as
    :func:`check_logmel_input`."""
    if (isinstance(x, Tensor) and x.is_floating_point() and x.dim() == 3 and x.size(0) > 0
            and x.size(1) == num_frames and x.size(2) == embedding_dim):
        _check_finite(x, model, allow_nonfinite)
        return x
    expected = (f"{_name(model)} expects embeddings [B, {num_frames}, {embedding_dim}] "
                f"({num_frames} frames of {embedding_dim} dimensions per clip)")
    _check_tensor(x, expected)
    _fail_if_compiling(expected)
    got = f"{expected}; got {_shape(x.shape)}"
    if x.dim() == 2 and x.shape == (num_frames, embedding_dim):
        raise ValueError(got + " (one clip? add the batch dimension: x.unsqueeze(0))")
    if x.dim() != 3:
        raise ValueError(got)
    _check_not_empty(x, expected)
    if x.size(2) != embedding_dim and x.size(1) == embedding_dim:
        raise ValueError(got + " (transposed? pass x.transpose(1, 2))")
    if x.size(2) != embedding_dim:
        raise ValueError(got + f" ({x.size(2)} dimensions per frame)")
    if x.size(1) != num_frames:
        raise ValueError(got + f" ({x.size(1)} frames: pad or cut every clip to "
                         f"{num_frames} with gnn_audio.data.pad_or_cut)")
    raise ValueError(got)
