"""``build_model``: the one builder every entry point calls (model + config + label names +
architecture record + checkpoint)."""
from __future__ import annotations

import inspect
from typing import Any, Dict, Optional, Sequence

import torch

from gnn_audio.labels import LABEL_SETS, load_label_set
from gnn_audio.types import PathLike
from gnn_audio.zoo._registry import get_model_config
from gnn_audio.zoo.checkpoints import load_pretrained, to_plain

__all__ = ["build_model", "resolve_arch"]


def _default_label_set(num_classes: int, preferred: Optional[str]) -> Optional[str]:
    if preferred and len(load_label_set(preferred)) == num_classes:
        return preferred
    for name in LABEL_SETS:
        if len(load_label_set(name)) == num_classes:
            return name
    return None


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


def build_model(name: str, model_cls: type, pretrained: Optional[PathLike], num_classes: int,
                label_names: Optional[Sequence[str]] = None,
                defaults: Optional[Dict[str, Any]] = None, **kwargs: Any) -> torch.nn.Module:
    """Build ``model_cls(num_classes, **defaults, **kwargs)`` for the registered entry
    ``name`` and attach:

    * ``model_name``: ``name``, always (an entry point never renames a model);
    * ``build_kwargs``: ``num_classes`` and the caller's ``kwargs`` as plain values (config
      dataclasses as dicts), so ``create_model(name, **build_kwargs)`` rebuilds the model;
      data arguments (tensors, arrays: e.g. AT-GCN's adjacency) are left out (they live in
      buffers);
    * ``arch_kwargs``: the values of the entry's ``ModelConfig.arch_args``;
    * ``model_config`` and ``label_names``.

    ``defaults`` are the entry point's own constructor values (e.g. the channel widths of a
    variant); ``kwargs`` override them. ``label_names`` default to the FSD50K (200) or
    AudioSet (527) class list when ``num_classes`` matches one, else to ``None``.
    ``pretrained`` (a gnn_audio checkpoint path) is loaded if given.
    """
    config = get_model_config(name)
    ctor_kwargs = {**(defaults or {}), **kwargs}
    model = model_cls(num_classes=num_classes, **ctor_kwargs)
    label_set = _default_label_set(num_classes, config.label_set)
    if label_names is not None:
        if len(label_names) != num_classes:
            raise ValueError(f"{len(label_names)} label names for {num_classes} classes")
        label_set = None
    elif label_set is not None:
        label_names = load_label_set(label_set).names
    build_kwargs: Dict[str, Any] = {"num_classes": num_classes}
    for key, value in kwargs.items():
        try:
            build_kwargs[key] = to_plain(value)
        except TypeError:
            continue  # data, not configuration
    model.model_name = name
    model.build_kwargs = build_kwargs
    model.arch_kwargs = resolve_arch(model_cls, config.arch_args, ctor_kwargs)
    model.model_config = config.replace(num_classes=num_classes, label_set=label_set)
    model.label_names = list(label_names) if label_names is not None else None
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model
