"""``create_model``: build any registered model by name (the one way in, timm style)."""
from __future__ import annotations

import pickle
from typing import Any, Optional

import torch

from gnn_audio.types import PathLike
from gnn_audio.zoo._registry import model_entrypoint
from gnn_audio.zoo.checkpoints import load_checkpoint
from gnn_audio.zoo.hub import from_pretrained, is_pretrained_source

__all__ = ["create_model", "load_model", "LOAD_ERRORS"]

#: what :func:`load_model` raises, besides ``FileNotFoundError``, for a source it cannot use
#: (not a checkpoint, damaged, weights that do not fit the model it names): one line each
LOAD_ERRORS = (ValueError, TypeError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError)


def create_model(name: str, pretrained: Optional[PathLike] = None,
                 **kwargs: Any) -> torch.nn.Module:
    """Build a registered model: ``create_model("atgnn_pyr_s", num_classes=527)``.

    ``pretrained`` is the path of a gnn_audio checkpoint (see
    :func:`gnn_audio.zoo.save_checkpoint`); nothing is ever downloaded. Other keyword
    arguments go to the entry point (and from there to the model's constructor).
    """
    return model_entrypoint(name)(pretrained=pretrained, **kwargs)


def load_model(path: PathLike, **kwargs: Any) -> torch.nn.Module:
    """Rebuild the model a gnn_audio checkpoint was saved from and load its weights: the
    entry point and its arguments, the front-end and the labels come from the checkpoint's
    bundle (``kwargs`` override the build arguments). ``path`` may also be a model folder
    (``model.safetensors`` + ``config.json``, :func:`~gnn_audio.zoo.hub.save_pretrained`)
    or a hub id ``hf-hub:org/name``: see :func:`~gnn_audio.zoo.hub.from_pretrained`."""
    if is_pretrained_source(path):
        return from_pretrained(path, **kwargs)
    ckpt = load_checkpoint(path)
    return create_model(ckpt["model_name"], pretrained=path,
                        **{**ckpt["build_kwargs"], **kwargs})
