"""What the file-level picture functions read: a checkpoint's model (checked before its
weights are loaded) and an audio file's log-mel as that model's front-end computes it."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from gnn_audio.data.audio import load_audio
from gnn_audio.data.features import FbankConfig, fbank, pad_value
from gnn_audio.types import PathLike

__all__ = ["checkpoint_labels", "load_checkpoint_model", "label_names_of", "model_fbank",
           "file_logmel", "crop_window", "pad_value"]


def checkpoint_labels(checkpoint: PathLike, family: Optional[str] = None) -> List[str]:
    """The label names a checkpoint stores (``class_<i>`` where it has none), read before any
    model is built. With ``family`` (e.g. ``"atgnn"``) a checkpoint of another model family is
    refused with one line naming the file. Missing or unreadable files raise as
    :func:`gnn_audio.zoo.load_checkpoint` does (one line naming the file)."""
    from gnn_audio.zoo import get_model_config, is_model, load_checkpoint

    path = os.fspath(checkpoint)
    ckpt = load_checkpoint(path)
    name = ckpt["model_name"]
    if family is not None:
        found = get_model_config(name).family if is_model(name) else "unknown"
        if found != family:
            raise ValueError(f"{path}: holds a {name} model (family {found}); this needs an "
                             f"{family} checkpoint")
    return list(ckpt["label_names"] or [f"class_{i}" for i in range(ckpt["num_classes"])])


def load_checkpoint_model(checkpoint: PathLike,
                          device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """The model of a gnn_audio checkpoint (:func:`gnn_audio.zoo.load_model`: entry point,
    weights, label names and front-end from the file), in eval mode on ``device``."""
    from gnn_audio.zoo import load_model

    return load_model(os.fspath(checkpoint)).to(device).eval()


def label_names_of(model: torch.nn.Module) -> List[str]:
    """``model.label_names``, or ``class_<i>`` for a model without names."""
    names = getattr(model, "label_names", None)
    return list(names) if names else [f"class_{i}" for i in range(model.num_classes)]


def model_fbank(model: torch.nn.Module) -> FbankConfig:
    """The log-mel front-end a zoo model was trained with (``model.model_config.fbank``)."""
    config = getattr(model, "model_config", None)
    fb = getattr(config, "fbank", None)
    if fb is None:
        name = getattr(model, "model_name", type(model).__name__)
        raise ValueError(f"{name} has no log-mel front-end (model_config.fbank)")
    return fb


def file_logmel(path: PathLike, config: FbankConfig) -> Tensor:
    """The whole file's normalised log-mel ``[frames, mel]`` (decoded, down-mixed, resampled
    to ``config.sample_rate``; no padding or cutting). Bad files raise
    :class:`~gnn_audio.data.audio.AudioError` (one line naming the file)."""
    wav = load_audio(path, sample_rate=config.sample_rate)
    return fbank(wav, config.replace(target_length=None))


def crop_window(logmel: Tensor, start: int, frames: int, value: float) -> Tuple[Tensor, int]:
    """``logmel[start:start + frames]`` padded with ``value`` to ``frames`` rows, and how many
    of them are real frames."""
    window = logmel[start:start + frames]
    valid = window.size(0)
    if valid < frames:
        pad = window.new_full((frames - valid, logmel.size(1)), value)
        window = torch.cat([window, pad], 0)
    return window, valid
