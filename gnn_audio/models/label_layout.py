"""What a tagging model declares about its labels: which tensors hold one entry per label
(and along which dimensions), and which modules are its head. Fine-tuning to another label
set copies the per-label entries of the labels both sets share and trains the head first
(:mod:`gnn_audio.train.finetune`); every model class says it itself with a
``label_layout()`` method, so that a new model needs no table elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import torch

__all__ = ["LabelLayout", "classifier_axes", "last_linear"]


@dataclass(frozen=True)
class LabelLayout:
    """The per-label tensors and the head of a model.

    Args:
        axes: state-dict key -> the dimensions of that tensor that index labels (e.g.
            ``{"fc.weight": (0,), "fc.bias": (0,)}``; ``(0, 1)`` for a label x label
            adjacency).
        head: module prefixes (``"fc."``) of the classifier / head, trained even while the
            backbone is frozen.
    """

    axes: Dict[str, Tuple[int, ...]]
    head: Tuple[str, ...]


def classifier_axes(prefix: str, module: torch.nn.Module) -> Dict[str, Tuple[int, ...]]:
    """The rows of a classifier layer (``Linear`` or 1x1 ``Conv2d`` named ``prefix``): one
    per label, weight and bias."""
    axes = {f"{prefix}.weight": (0,)}
    if getattr(module, "bias", None) is not None:
        axes[f"{prefix}.bias"] = (0,)
    return axes


def last_linear(model: torch.nn.Module, seq_name: str) -> str:
    """The name (``"net.2"``) of the last ``Linear`` of the ``Sequential`` ``seq_name``."""
    seq = getattr(model, seq_name)
    index = max(i for i, m in enumerate(seq) if isinstance(m, torch.nn.Linear))
    return f"{seq_name}.{index}"
