"""gnn_audio checkpoints: weights plus everything needed to rebuild the model.

A checkpoint is a plain dict saved with :func:`torch.save` and read back with
``torch.load(weights_only=True)`` (tensors, strings, numbers, lists and dicts only, so nothing
is unpickled):

``format``, ``format_version``, ``gnn_audio_version``, ``model_name``, ``build_kwargs``
(the entry point's keyword arguments: ``create_model(model_name, **build_kwargs)`` rebuilds
the model), ``arch`` (the values of the entry's :attr:`~gnn_audio.zoo.ModelConfig.arch_args`
the model was built with), ``num_classes``, ``label_names``, ``label_ids`` (the classes'
AudioSet MIDs / dataset ids, or ``None``; files written before it was added lack the key:
:func:`load_checkpoint` then gives ``None``), ``state_dict``, ``extra``.

Format 1 (gnn_audio before the kNN config) had no ``arch``; its ATGNN ``build_kwargs``
carried the flat kNN arguments (``k``, ``knn_backend``, ``stochastic``, ``epsilon``,
``relative_pos``) and ``input_size`` as ``(mel, frames)``. :func:`load_checkpoint` reads such
files and translates them to format 2 (``knn`` dict, ``input_size`` as ``(frames, mel)``).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional

import torch

import gnn_audio
from gnn_audio.models.weights_io import load_weights_file, save_weights_file
from gnn_audio.types import PathLike
from gnn_audio.zoo._registry import get_model_config, is_model

__all__ = ["save_checkpoint", "load_checkpoint", "load_pretrained", "CheckpointMismatch",
           "to_plain"]

FORMAT = "gnn_audio.checkpoint"
FORMAT_VERSION = 2
_REQUIRED = ("model_name", "build_kwargs", "num_classes", "state_dict")


class CheckpointMismatch(ValueError):
    """The checkpoint was saved from another architecture than the model it is loaded into."""


def to_plain(value: Any) -> Any:
    """``value`` as a checkpoint stores it: tuples become lists, config dataclasses (e.g.
    :class:`~gnn_audio.graph.KnnConfig`) their ``to_dict()``, recursively, so that
    ``weights_only`` loading gives it back exactly. Raises ``TypeError`` for anything else
    (tensors, arrays, objects)."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return to_plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint config")


def save_checkpoint(model: torch.nn.Module, path: PathLike,
                    extra: Optional[Dict[str, Any]] = None) -> None:
    """Save a zoo model (built by :func:`gnn_audio.zoo.create_model` or an entry point) with its
    config, label names and label ids; ``extra`` may hold e.g. the epoch or metrics (plain values).

    The file is written to a temporary name in the same folder, then renamed.
    """
    if not hasattr(model, "model_name") or not hasattr(model, "build_kwargs"):
        raise ValueError("save_checkpoint needs a model built by the gnn_audio zoo")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gnn_audio_version": gnn_audio.__version__,
        "model_name": model.model_name,
        "build_kwargs": to_plain(model.build_kwargs),
        "arch": to_plain(getattr(model, "arch_kwargs", {})),
        "num_classes": int(model.num_classes),
        "label_names": to_plain(getattr(model, "label_names", None)),
        "label_ids": to_plain(getattr(model, "label_ids", None)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": to_plain(extra or {}),
    }
    save_weights_file(payload, path)


def _upgrade_v1(ckpt: Dict[str, Any]) -> Dict[str, Any]:
    """Format 1 -> 2: ATGNN-family ``build_kwargs`` get the ``knn`` dict and ``(frames, mel)``
    ``input_size``; ``mlg`` goes (the model name says it). Other families are unchanged."""
    name = ckpt["model_name"]
    kwargs = dict(ckpt["build_kwargs"])
    if is_model(name) and get_model_config(name).family == "atgnn":
        kwargs.pop("mlg", None)
        knn = dict(kwargs.pop("knn", None) or {})
        if "k" in kwargs:
            knn["k"] = kwargs.pop("k")
        for key in ("stochastic", "epsilon"):
            if key in kwargs:
                knn[key] = kwargs.pop(key)
        if "relative_pos" in kwargs:
            rel = kwargs.pop("relative_pos")
            if rel is not None:
                knn["relative_pos"] = "sincos" if rel else None
        if "knn_backend" in kwargs:
            backend = kwargs.pop("knn_backend")
            knn["backend"] = "cluster" if backend == "cluster" else "dense"
        if knn:
            kwargs["knn"] = knn
        if kwargs.get("input_size") is not None:
            mel, frames = kwargs["input_size"]
            kwargs["input_size"] = [frames, mel]
    return dict(ckpt, build_kwargs=kwargs, format_version=FORMAT_VERSION,
                source_format_version=1)


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``), check its format and bring a
    format-1 file to format 2 (``source_format_version`` then says 1). ``label_names`` and
    ``label_ids`` are always there in the result (``None`` where the file has none).

    Raises ``FileNotFoundError`` for a missing file, ``pickle.UnpicklingError`` for a file
    holding objects ``weights_only`` refuses, ``ValueError`` for anything else that is not a
    gnn_audio checkpoint (text, empty, truncated files); each message names the file.
    """
    path = os.fspath(path)
    ckpt = load_weights_file(path, "gnn_audio checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a gnn_audio checkpoint (for Pyramid ViG "
                         "ImageNet files use gnn_audio.models.load_vig_imagenet)")
    version = ckpt.get("format_version", 0)
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {version!r}; this gnn_audio "
                         f"reads 1 to {FORMAT_VERSION}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise ValueError(f"{path} is a damaged gnn_audio checkpoint: no {', '.join(missing)}")
    if not isinstance(ckpt["state_dict"], dict) or not all(
            isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values()):
        raise ValueError(f"{path} is a damaged gnn_audio checkpoint: state_dict is not a "
                         "dict of tensors")
    ckpt = dict(ckpt, label_names=ckpt.get("label_names"), label_ids=ckpt.get("label_ids"))
    for key in ("label_names", "label_ids"):
        labels = ckpt[key]
        if labels is not None and (
                not isinstance(labels, list) or len(labels) != ckpt["num_classes"]
                or not all(isinstance(v, str) for v in labels)):
            raise ValueError(f"{path} is a damaged gnn_audio checkpoint: {key} is not a list "
                             f"of {ckpt['num_classes']} strings")
    return _upgrade_v1(ckpt) if version == 1 else ckpt


def _differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: checkpoint {a.get(k, '<unset>')!r} vs model {b.get(k, '<unset>')!r}"
            for k in keys if a.get(k) != b.get(k)]


def load_pretrained(model: torch.nn.Module, path: PathLike) -> torch.nn.Module:
    """Load a checkpoint into a zoo model built with the same architecture.

    Raises :class:`CheckpointMismatch` naming what differs (model name, number of classes,
    the entry's architecture arguments, tensor shapes) instead of a bare ``state_dict`` error.
    The checkpoint's ``label_names`` and ``label_ids`` replace the model's where it has them.
    """
    ckpt = load_checkpoint(path)
    problems = []
    if ckpt["model_name"] != model.model_name:
        problems.append(f"model: checkpoint {ckpt['model_name']!r} vs model "
                        f"{model.model_name!r}")
    if ckpt["num_classes"] != model.num_classes:
        problems.append(f"num_classes: checkpoint {ckpt['num_classes']} vs model "
                        f"{model.num_classes} (pass num_classes={ckpt['num_classes']})")
    own_arch = to_plain(getattr(model, "arch_kwargs", {}))
    arch = ckpt.get("arch")
    if arch is None:  # format 1: compare the architecture arguments its build_kwargs hold
        arch = {k: v for k, v in ckpt["build_kwargs"].items() if k in own_arch}
        own_arch = {k: v for k, v in own_arch.items() if k in arch}
    problems += _differences(arch, own_arch)
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
    if ckpt["label_names"]:
        if list(ckpt["label_names"]) != getattr(model, "label_names", None):
            model.label_ids = None  # the model's own ids belong to its own names
        model.label_names = list(ckpt["label_names"])
    if ckpt["label_ids"]:
        model.label_ids = list(ckpt["label_ids"])
    return model
