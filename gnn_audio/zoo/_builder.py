"""``build_model``: the one builder every entry point calls: the model, its bundle (config with
the front-end, label names and ids, build and architecture arguments) and its checkpoint."""
from __future__ import annotations

import inspect
import logging
import os
import pickle
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from gnn_audio.data.features import FbankConfig
from gnn_audio.labels import LABEL_SETS, load_label_set
from gnn_audio.types import PathLike
from gnn_audio.weights_io import load_tensors_only
from gnn_audio.zoo._registry import ModelConfig, get_entry, get_model_config
from gnn_audio.zoo.bundle import ModelBundle
from gnn_audio.zoo.checkpoints import (NotAGnnAudioCheckpoint, loaded_labels, load_checkpoint,
                                       load_weights, to_plain)

_log = logging.getLogger("gnn_audio.zoo")

__all__ = ["build_model", "resolve_arch"]


def _default_label_set(num_classes: int, preferred: Optional[str]) -> Optional[str]:
    if preferred and len(load_label_set(preferred)) == num_classes:
        return preferred
    for name in LABEL_SETS:
        if len(load_label_set(name)) == num_classes:
            return name
    return None


def _check_label_ids(label_ids: Sequence[str], num_classes: int) -> List[str]:
    """``label_ids`` as a list, checked: one string per class, no id twice."""
    if isinstance(label_ids, str):
        raise TypeError(f"label_ids must be a sequence of strings (got the string {label_ids!r})")
    ids = list(label_ids)
    if len(ids) != num_classes:
        raise ValueError(f"{len(ids)} label ids for {num_classes} classes")
    bad = [i for i in ids if not isinstance(i, str) or not i]
    if bad:
        raise ValueError(f"label ids must be non-empty strings (got {bad[0]!r})")
    seen = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"label id {i!r} occurs twice in label_ids")
        seen.add(i)
    return ids


def _names_for_ids(label_ids: Sequence[str]) -> Optional[List[str]]:
    """The display names of ``label_ids`` from the shipped label sets (AudioSet names first),
    or ``None`` when one of the ids is in none of them."""
    names: Dict[str, str] = {}
    for set_name in sorted(LABEL_SETS, key=lambda n: n != "audioset"):
        label_set = load_label_set(set_name)
        for mid, name in zip(label_set.mids, label_set.names):
            names.setdefault(mid, name)
    if not all(i in names for i in label_ids):
        return None
    return [names[i] for i in label_ids]


def resolve_arch(model_cls: type, arch_args: Sequence[str],
                 kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The values of ``arch_args`` that ``model_cls(**kwargs)`` is built with: ``kwargs``
    where given, else the constructor's defaults (stored as :func:`to_plain` stores them)."""
    params = inspect.signature(model_cls).parameters
    out = {}
    for name in arch_args:
        if name in kwargs:
            out[name] = to_plain(kwargs[name])
        elif name in params and params[name].default is not inspect.Parameter.empty:
            out[name] = to_plain(params[name].default)
        else:
            raise ValueError(f"{model_cls.__name__} has no argument {name!r} with a default "
                             "(a wrong ModelConfig.arch_args entry?)")
    return out


def _front_end(config: ModelConfig, fbank: Any) -> Optional[FbankConfig]:
    """``fbank`` (a config or its dict) for the entry ``config``; ``None``: the entry's own."""
    if fbank is None:
        return None
    if config.input != "logmel":
        raise ValueError(f"{config.name} reads {config.input} input: it has no audio front-end "
                         "(fbank)")
    if isinstance(fbank, dict):
        fbank = FbankConfig(**fbank)
    if not isinstance(fbank, FbankConfig):
        raise TypeError(f"fbank must be a FbankConfig or its dict, got {type(fbank).__name__}")
    return fbank


def _labels(config: ModelConfig, num_classes: int, label_names: Optional[Sequence[str]],
            label_ids: Optional[Sequence[str]]
            ) -> Tuple[Optional[str], Optional[List[str]], Optional[List[str]]]:
    """``(shipped label set, names, ids)`` of a model of ``num_classes`` classes (see
    :func:`build_model`)."""
    label_set = _default_label_set(num_classes, config.label_set)
    if label_ids is not None:
        label_ids = _check_label_ids(label_ids, num_classes)
        if label_set is not None and tuple(label_ids) != load_label_set(label_set).mids:
            label_set = None
        if label_names is None:
            label_names = (list(load_label_set(label_set).names) if label_set is not None
                           else _names_for_ids(label_ids))
    if label_names is not None:
        if isinstance(label_names, str) or len(label_names) != num_classes:
            raise ValueError(f"{len(label_names)} label names for {num_classes} classes")
        if label_ids is None:
            label_set = None
    elif label_set is not None:
        label_names = list(load_label_set(label_set).names)
        label_ids = list(load_label_set(label_set).mids)
    return (label_set, list(label_names) if label_names is not None else None,
            list(label_ids) if label_ids is not None else None)


def build_model(name: str, model_cls: type, pretrained: Optional[PathLike], num_classes: int,
                label_names: Optional[Sequence[str]] = None,
                defaults: Optional[Dict[str, Any]] = None, *,
                label_ids: Optional[Sequence[str]] = None, fbank: Any = None,
                **kwargs: Any) -> torch.nn.Module:
    """Build ``model_cls(num_classes, **defaults, **kwargs)`` for the registered entry
    ``name`` and give it its :class:`~gnn_audio.zoo.bundle.ModelBundle` (``model.bundle``),
    set once here:

    * ``name``: the entry, always (an entry point never renames a model);
    * ``build_kwargs``: ``num_classes``, ``fbank`` (when given) and the caller's ``kwargs``
      as plain values (config dataclasses as dicts), so ``create_model(name,
      **build_kwargs)`` rebuilds the model; data arguments (tensors, arrays: e.g. AT-GCN's
      adjacency) are left out (they live in buffers);
    * ``arch``: the values of the entry's ``ModelConfig.arch_args``;
    * ``config``: the entry's config with ``num_classes``, the shipped label set it uses,
      and ``fbank`` (the audio front-end the model is trained and used with; default the
      entry's own) with the ``input_size`` and ``sample_rate`` it gives;
    * ``label_names`` and ``label_ids`` (the classes' AudioSet MIDs / data-set ids).

    ``defaults`` are the entry point's own constructor values (e.g. the channel widths of a
    variant); ``kwargs`` override them. Without ``label_names`` and ``label_ids``, both default
    to the FSD50K (200) or AudioSet (527) class list when ``num_classes`` matches one, else to
    ``None``. ``label_ids`` given alone take their names from the shipped class lists (where
    every id is in one, else the names stay ``None``); ``label_names`` given alone have no ids.
    ``pretrained`` (a gnn_audio checkpoint path) is loaded if given: its label names, ids,
    front-end and the entry's ``carried_args`` (ATGNN's graph settings) are the model's
    unless passed. A file in another program's layout that the entry maps
    (``ZooEntry.load_foreign``: the ATGNN authors' Lightning checkpoints) is read for its
    tensors only (:func:`~gnn_audio.weights_io.load_tensors_only`: nothing in it runs) and
    mapped onto the model built from the arguments given (with the front-end the weights
    need, e.g. PANNs' log-mel for its CNN10, unless ``fbank`` is passed); one ``INFO`` line
    on the ``gnn_audio.zoo`` logger says what was mapped.
    """
    config = get_model_config(name)
    ckpt, foreign = _read_pretrained(name, pretrained)
    if fbank is None and ckpt is not None:
        fbank = ckpt["build_kwargs"].get("fbank")
    if ckpt is not None:  # what the checkpoint computes with, unless given (e.g. its graphs)
        kwargs = {**{k: ckpt["build_kwargs"][k] for k in config.carried_args
                     if k in ckpt["build_kwargs"] and k not in kwargs}, **kwargs}
    front_end = _front_end(config, fbank)
    ctor_kwargs = {**(defaults or {}), **kwargs}
    model = model_cls(num_classes=num_classes, **ctor_kwargs)
    label_set, names, ids = _labels(config, num_classes, label_names, label_ids)
    if ckpt is not None and ckpt["num_classes"] == num_classes:  # else load_weights says so
        names, ids = loaded_labels(ckpt, names, ids)
    build_kwargs: Dict[str, Any] = {"num_classes": num_classes}
    if front_end is not None:
        build_kwargs["fbank"] = to_plain(front_end)
    for key, value in kwargs.items():
        try:
            build_kwargs[key] = to_plain(value)
        except TypeError:
            continue  # data, not configuration
    model_config = config.replace(num_classes=num_classes, label_set=label_set)
    if front_end is not None:
        model_config = model_config.with_fbank(front_end)
    model.bundle = ModelBundle(name=name, config=model_config, build_kwargs=build_kwargs,
                               arch=resolve_arch(model_cls, config.arch_args, ctor_kwargs),
                               label_names=names, label_ids=ids)
    if ckpt is not None:
        load_weights(model, ckpt, pretrained)
    if foreign is not None:
        state, report = get_entry(name).load_foreign(foreign[0], model, os.fspath(pretrained))
        model.load_state_dict(state, strict=True)
        if report.get("fbank") is not None and front_end is None:  # the weights' front-end
            bundle = model.bundle
            model.bundle = bundle.replace(
                config=bundle.config.with_fbank(report["fbank"]),
                build_kwargs={**bundle.build_kwargs, "fbank": to_plain(report["fbank"])})
        _log.info("%s", foreign_report_line(pretrained, name, report, foreign[1]))
    return model


def _read_pretrained(name: str, pretrained: Optional[PathLike]):
    """``(gnn_audio checkpoint, None)``, or ``(None, (content, replaced classes))`` of a file
    in another program's layout that the entry can map (``ZooEntry.load_foreign``). The file
    is read once: a plain file of tensors by ``weights_only`` loading, a file that also holds
    objects (a Lightning ``.ckpt``) again for its tensors only."""
    if pretrained is None:
        return None, None
    foreign = get_entry(name).load_foreign is not None
    try:
        return load_checkpoint(pretrained), None
    except NotAGnnAudioCheckpoint as err:
        if not foreign:
            raise
        return None, (err.content, [])
    except pickle.UnpicklingError:
        if not foreign:
            raise
    return None, load_tensors_only(pretrained, f"{name} weights file")


def foreign_report_line(path: PathLike, name: str, report: Dict[str, Any],
                        replaced: Sequence[str]) -> str:
    """One line on what :func:`build_model` took from another program's weights file."""
    parts = [f"{os.fspath(path)}: {report.get('mapped', '?')} tensors mapped onto {name}"]
    for key in ("renamed", "reshaped", "dropped"):
        if report.get(key):
            parts.append(f"{report[key]} {key}")
    line = ", ".join(parts)
    if report.get("dropped_note"):
        line += f" ({report['dropped_note']})"
    if replaced:
        line += f"; {len(replaced)} non-tensor objects of the file left unbuilt"
    return line
