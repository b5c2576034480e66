"""The one builder every entry point calls: model + config + label names + checkpoint."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from gnn_audio.labels import LABEL_SETS, load_label_set
from gnn_audio.zoo.checkpoints import load_pretrained
from gnn_audio.zoo.registry import get_model_config

__all__ = ["build_model"]


def _default_label_set(num_classes: int, preferred: Optional[str]) -> Optional[str]:
    if preferred and len(load_label_set(preferred)) == num_classes:
        return preferred
    for name in LABEL_SETS:
        if len(load_label_set(name)) == num_classes:
            return name
    return None


def _storable(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_storable(v) for v in value)
    if isinstance(value, dict):
        return all(_storable(v) for v in value.values())
    return value is None or isinstance(value, (str, int, float, bool))


def build_model(name: str, builder: Callable[..., torch.nn.Module], pretrained: Optional[str],
                num_classes: int, label_names: Optional[Sequence[str]] = None,
                config_name: Optional[str] = None, **kwargs: Any) -> torch.nn.Module:
    """Build ``builder(num_classes=..., **kwargs)`` and attach ``model_name``,
    ``build_kwargs``, ``model_config`` and ``label_names``; load ``pretrained`` (a gnn_audio
    checkpoint path) if given.

    ``label_names`` default to the FSD50K (200) or AudioSet (527) class list when
    ``num_classes`` matches one, else to ``None``.
    """
    model = builder(num_classes=num_classes, **kwargs)
    config = get_model_config(config_name or name)
    label_set = _default_label_set(num_classes, config.label_set)
    if label_names is not None:
        if len(label_names) != num_classes:
            raise ValueError(f"{len(label_names)} label names for {num_classes} classes")
        label_set = None
    elif label_set is not None:
        label_names = load_label_set(label_set).names
    model.model_name = name
    # data arguments (tensors, arrays: e.g. AT-GCN's adjacency) live in buffers, not here
    model.build_kwargs = dict(num_classes=num_classes,
                              **{k: v for k, v in kwargs.items() if _storable(v)})
    model.model_config = config.replace(num_classes=num_classes, label_set=label_set)
    model.label_names = list(label_names) if label_names is not None else None
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model
