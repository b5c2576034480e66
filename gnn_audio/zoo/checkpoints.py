"""gnn_audio checkpoints: weights plus everything needed to rebuild the model.

A checkpoint is a plain dict saved with :func:`torch.save` and read back with
``torch.load(weights_only=True)`` (tensors, strings, numbers, lists and dicts only, so nothing
is unpickled):

``format``, ``format_version``, ``gnn_audio_version``, ``model_name``, ``build_kwargs``
(the entry point's arguments), ``num_classes``, ``label_names``, ``state_dict``, ``extra``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Union

import torch

import gnn_audio

__all__ = ["save_checkpoint", "load_checkpoint", "load_pretrained", "CheckpointMismatch"]

FORMAT = "gnn_audio.checkpoint"
FORMAT_VERSION = 1
PathLike = Union[str, os.PathLike]
#: build arguments that change the architecture (and so the parameter layout)
ARCH_KEYS = {"arch", "channels", "blocks", "mlg", "mlg_blocks", "head_hidden", "input_size",
             "gcn_layers", "hidden", "gru_hidden", "embedding_dim", "num_frames", "mel_bins"}


class CheckpointMismatch(ValueError):
    """The checkpoint was saved from another architecture than the model it is loaded into."""


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively: what ``weights_only`` loading round-trips exactly."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint config")


def save_checkpoint(model: torch.nn.Module, path: PathLike,
                    extra: Optional[Dict[str, Any]] = None) -> None:
    """Save a zoo model (built by :func:`gnn_audio.zoo.create_model` or an entry point) with its
    config and label names; ``extra`` may hold e.g. the epoch or metrics (plain values)."""
    if not hasattr(model, "model_name") or not hasattr(model, "build_kwargs"):
        raise ValueError("save_checkpoint needs a model built by the gnn_audio zoo")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gnn_audio_version": gnn_audio.__version__,
        "model_name": model.model_name,
        "build_kwargs": _plain(model.build_kwargs),
        "num_classes": int(model.num_classes),
        "label_names": _plain(getattr(model, "label_names", None)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": _plain(extra or {}),
    }
    torch.save(payload, os.fspath(path))


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``) and check its format."""
    ckpt = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)} is not a gnn_audio checkpoint (for Pyramid ViG "
                         "ImageNet files use gnn_audio.models.load_vig_imagenet)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{os.fspath(path)} has checkpoint format version "
                         f"{ckpt['format_version']}; this gnn_audio reads up to {FORMAT_VERSION}")
    return ckpt


def _differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: checkpoint {a.get(k, '<unset>')!r} vs model {b.get(k, '<unset>')!r}"
            for k in keys if a.get(k) != b.get(k)]


def load_pretrained(model: torch.nn.Module, path: PathLike) -> torch.nn.Module:
    """Load a checkpoint into a zoo model built with the same architecture.

    Raises :class:`CheckpointMismatch` naming what differs (model name, number of classes,
    architecture arguments, tensor shapes) instead of a bare ``state_dict`` error.
    """
    ckpt = load_checkpoint(path)
    problems = []
    if ckpt["model_name"] != model.model_name:
        problems.append(f"model: checkpoint {ckpt['model_name']!r} vs model "
                        f"{model.model_name!r}")
    if ckpt["num_classes"] != model.num_classes:
        problems.append(f"num_classes: checkpoint {ckpt['num_classes']} vs model "
                        f"{model.num_classes} (pass num_classes={ckpt['num_classes']})")
    arch_a = {k: v for k, v in ckpt["build_kwargs"].items() if k in ARCH_KEYS}
    arch_b = {k: v for k, v in _plain(model.build_kwargs).items() if k in ARCH_KEYS}
    problems += _differences(arch_a, arch_b)
    own = model.state_dict()
    shape_bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                 for k, v in ckpt["state_dict"].items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in ckpt["state_dict"]]
    unexpected = [k for k in ckpt["state_dict"] if k not in own]
    if shape_bad:
        problems.append("shapes differ: " + "; ".join(shape_bad[:5]) +
                        (f" (+{len(shape_bad) - 5} more)" if len(shape_bad) > 5 else ""))
    if missing or unexpected:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} "
                        f"unexpected keys (e.g. {unexpected[:3]})")
    if problems:
        raise CheckpointMismatch(f"{os.fspath(path)} does not fit {model.model_name}: " +
                                 " | ".join(problems))
    model.load_state_dict(ckpt["state_dict"], strict=True)
    if ckpt.get("label_names"):
        model.label_names = list(ckpt["label_names"])
    return model
