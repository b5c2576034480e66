"""gnn_audio checkpoints: weights plus everything needed to rebuild the model.

A checkpoint is a plain dict saved with :func:`torch.save` and read back with
``torch.load(weights_only=True)`` (tensors, strings, numbers, lists and dicts only, so nothing
is unpickled):

``format``, ``format_version``, ``gnn_audio_version``, and the model's
:class:`~gnn_audio.zoo.bundle.ModelBundle` whole: ``model_name``, ``build_kwargs`` (the entry
point's keyword arguments, the audio front-end ``fbank`` among them when it is not the
entry's default: ``create_model(model_name, **build_kwargs)`` rebuilds the model), ``arch``
(the values of the entry's :attr:`~gnn_audio.zoo.ModelConfig.arch_args` the model was built
with), ``num_classes``, ``label_names``, ``label_ids`` (the classes' AudioSet MIDs / dataset
ids, or ``None``; files written before it was added lack the key: :func:`load_checkpoint`
then gives ``None``); then ``state_dict`` and ``extra``.

Files written before the bundle carried the front-end kept the trainer's in
``extra["fbank"]``: :func:`load_checkpoint` moves it into ``build_kwargs``.

Format 1 (gnn_audio before the kNN config) had no ``arch``; :func:`load_checkpoint` reads such
files and translates their ``build_kwargs`` with the entry's ``upgrade_v1_kwargs`` hook
(:class:`~gnn_audio.zoo.ZooEntry`; the ATGNN entries' flat kNN arguments). Format 2 files
were written while the pyramid ATGNN's default relative-position term was ``"sincos"``;
the entry's ``upgrade_v2_kwargs`` hook writes that default into their ``build_kwargs``, so
they keep the graphs they were trained with (format 3 records it).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

import gnn_audio
from gnn_audio.weights_io import load_weights_file, save_weights_file
from gnn_audio.types import PathLike
from gnn_audio.zoo._registry import get_entry, is_model
from gnn_audio.zoo.bundle import bundle_of

__all__ = ["save_checkpoint", "load_checkpoint", "load_pretrained", "load_weights",
           "loaded_labels", "CheckpointMismatch", "NotAGnnAudioCheckpoint", "to_plain"]

FORMAT = "gnn_audio.checkpoint"
FORMAT_VERSION = 3
_REQUIRED = ("model_name", "build_kwargs", "num_classes", "state_dict")


class CheckpointMismatch(ValueError):
    """The checkpoint was saved from another architecture than the model it is loaded into."""


class NotAGnnAudioCheckpoint(ValueError):
    """The file is a readable torch file, but not a gnn_audio checkpoint (another program's
    weights, e.g. PANNs' CNN10: see ``ZooEntry.load_foreign``); ``content`` is what
    ``weights_only`` loading read from it, so that it need not be read again."""

    def __init__(self, message: str, content: Any = None) -> None:
        super().__init__(message)
        self.content = content


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
    whole bundle (config with the front-end, label names and ids); ``extra`` may hold e.g. the
    epoch or metrics (plain values).

    The file is written to a temporary name in the same folder, then renamed.
    """
    bundle = bundle_of(model, "save_checkpoint")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gnn_audio_version": gnn_audio.__version__,
        "model_name": bundle.name,
        "build_kwargs": to_plain(bundle.build_kwargs),
        "arch": to_plain(bundle.arch),
        "num_classes": int(bundle.num_classes),
        "label_names": to_plain(bundle.label_names),
        "label_ids": to_plain(bundle.label_ids),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": to_plain(extra or {}),
    }
    save_weights_file(payload, path)


def _upgrade(ckpt: Dict[str, Any], version: int) -> Dict[str, Any]:
    """Format 1 or 2 -> today's: ``build_kwargs`` through the entry's ``upgrade_v1_kwargs``
    (format 1 only) and ``upgrade_v2_kwargs`` hooks."""
    name = ckpt["model_name"]
    kwargs = dict(ckpt["build_kwargs"])
    if is_model(name):
        entry = get_entry(name)
        for upgrade in (entry.upgrade_v1_kwargs if version == 1 else None,
                        entry.upgrade_v2_kwargs):
            if upgrade is not None:
                kwargs = upgrade(kwargs)
    return dict(ckpt, build_kwargs=kwargs, format_version=FORMAT_VERSION,
                source_format_version=version)


def _front_end_in_build_kwargs(ckpt: Dict[str, Any]) -> Dict[str, Any]:
    """A file whose front-end is in the trainer's ``extra["fbank"]`` (written before the
    bundle carried it) with it in ``build_kwargs``, where a log-mel entry reads it."""
    fbank = (ckpt.get("extra") or {}).get("fbank")
    name = ckpt["model_name"]
    if not fbank or "fbank" in ckpt["build_kwargs"] or not is_model(name) \
            or get_entry(name).config.input != "logmel":
        return ckpt
    return dict(ckpt, build_kwargs=dict(ckpt["build_kwargs"], fbank=fbank))


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``), check its format and bring a
    file of an older format to today's (``source_format_version`` then says which).
    ``label_names`` and ``label_ids`` are always there in the result (``None`` where the file
    has none).

    Raises ``FileNotFoundError`` for a missing file, ``pickle.UnpicklingError`` for a file
    holding objects ``weights_only`` refuses, ``ValueError`` for anything else that is not a
    gnn_audio checkpoint (text, empty, truncated files); each message names the file.
    """
    path = os.fspath(path)
    ckpt = load_weights_file(path, "gnn_audio checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise NotAGnnAudioCheckpoint(f"{path} is not a gnn_audio checkpoint (for Pyramid ViG "
                                     "ImageNet files use gnn_audio.models.load_vig_imagenet)",
                                     content=ckpt)
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
    if version < FORMAT_VERSION:
        ckpt = _upgrade(ckpt, version)
    return _front_end_in_build_kwargs(ckpt)


def _differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: checkpoint {a.get(k, '<unset>')!r} vs model {b.get(k, '<unset>')!r}"
            for k in keys if a.get(k) != b.get(k)]


def load_weights(model: torch.nn.Module, ckpt: Dict[str, Any], path: PathLike) -> None:
    """Load the weights of the checkpoint ``ckpt`` (read from ``path``) into a zoo model
    built with the same architecture.

    Raises :class:`CheckpointMismatch` naming what differs (model name, number of classes,
    the entry's architecture arguments, tensor shapes) instead of a bare ``state_dict`` error.
    """
    bundle = bundle_of(model, os.fspath(path))
    problems = []
    if ckpt["model_name"] != bundle.name:
        problems.append(f"model: checkpoint {ckpt['model_name']!r} vs model {bundle.name!r}")
    if ckpt["num_classes"] != bundle.num_classes:
        problems.append(f"num_classes: checkpoint {ckpt['num_classes']} vs model "
                        f"{bundle.num_classes} (pass num_classes={ckpt['num_classes']})")
    own_arch = to_plain(bundle.arch)
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
        raise CheckpointMismatch(f"{os.fspath(path)} does not fit {bundle.name}: " +
                                 " | ".join(problems))
    model.load_state_dict(ckpt["state_dict"], strict=True)


def load_pretrained(model: torch.nn.Module, path: PathLike) -> torch.nn.Module:
    """Load a checkpoint into a zoo model built with the same architecture
    (:func:`load_weights`); the checkpoint's ``label_names`` and ``label_ids`` become the
    model's (its bundle is replaced by one with them) where it has them.
    ``create_model(name, pretrained=path)`` does this in one step."""
    ckpt = load_checkpoint(path)
    load_weights(model, ckpt, path)
    bundle = model.bundle
    names, ids = loaded_labels(ckpt, bundle.label_names, bundle.label_ids)
    model.bundle = bundle.replace(label_names=names, label_ids=ids)
    return model


def loaded_labels(ckpt: Dict[str, Any], names: Optional[Sequence[str]],
                      ids: Optional[Sequence[str]]
                      ) -> Tuple[Optional[List[str]], Optional[List[str]]]:
    """The labels of a model of names ``names`` and ids ``ids`` loaded from ``ckpt``: the
    checkpoint's names and ids replace the model's where it has them (the model's own ids
    go with its own names)."""
    names = list(names) if names is not None else None
    ids = list(ids) if ids is not None else None
    if ckpt["label_names"]:
        if list(ckpt["label_names"]) != names:
            ids = None
        names = list(ckpt["label_names"])
    if ckpt["label_ids"]:
        ids = list(ckpt["label_ids"])
    return names, ids
