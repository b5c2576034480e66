"""What the file-level picture functions read: a checkpoint's model (checked before its
weights are loaded) and an audio file's log-mel as that model's front-end computes it."""
from __future__ import annotations

import os
from typing import List, Optional, Union

import torch
from torch import Tensor

from gnn_audio.data.audio import load_audio
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.panns_logmel import log_mel_module
from gnn_audio.labels.label_sets import display_names
from gnn_audio.types import PathLike
from gnn_audio.zoo import bundle_of, get_model_config, is_model, load_checkpoint, load_model

__all__ = ["checkpoint_labels", "load_checkpoint_model", "label_names_of", "model_fbank",
           "file_logmel"]


def checkpoint_labels(checkpoint: PathLike, family: Optional[str] = None) -> List[str]:
    """The label names a checkpoint stores (``class_<i>`` where it has none), read before any
    model is built. With ``family`` (e.g. ``"atgnn"``) a checkpoint of another model family is
    refused with one line naming the file. Missing or unreadable files raise as
    :func:`gnn_audio.zoo.load_checkpoint` does (one line naming the file)."""
    path = os.fspath(checkpoint)
    ckpt = load_checkpoint(path)
    name = ckpt["model_name"]
    if family is not None:
        found = get_model_config(name).family if is_model(name) else "unknown"
        if found != family:
            raise ValueError(f"{path}: holds a {name} model (family {found}); this needs an "
                             f"{family} checkpoint")
    return list(display_names(ckpt["label_names"], ckpt["num_classes"]))


def load_checkpoint_model(checkpoint: PathLike,
                          device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """The model of a gnn_audio checkpoint (:func:`gnn_audio.zoo.load_model`: entry point,
    weights, label names and front-end from the file), in eval mode on ``device``."""
    return load_model(os.fspath(checkpoint)).to(device).eval()


def label_names_of(model: torch.nn.Module) -> List[str]:
    """The display names of a zoo model's classes (``class_<i>`` for a model without
    names)."""
    return list(bundle_of(model).names)


def model_fbank(model: torch.nn.Module) -> FbankConfig:
    """The log-mel front-end a zoo model was trained with (``model.bundle.fbank``)."""
    bundle = bundle_of(model)
    return bundle.require_logmel(bundle.name).fbank


def file_logmel(path: PathLike, config: FbankConfig) -> Tensor:
    """The whole file's normalised log-mel ``[frames, mel]`` (decoded, down-mixed, resampled
    to ``config.sample_rate``; no padding or cutting), bit for bit what the evaluation data set
    and the :class:`~gnn_audio.inference.Tagger` compute from the file. Bad files raise
    :class:`~gnn_audio.data.audio.AudioError` (one line naming the file)."""
    wav = load_audio(path, sample_rate=config.sample_rate)
    return log_mel_module(config.replace(target_length=None))(wav)[0]
