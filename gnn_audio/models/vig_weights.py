"""ImageNet initialisation of the PGN backbone from Vision GNN checkpoints (the paper's recipe).

Reads a Pyramid ViG (``pvig_s_82.1.pth.tar``, ``pvig_m_83.1.pth.tar``, ...) or isotropic ViG
ImageNet checkpoint: a raw ``state_dict`` (or one wrapped under ``"state_dict"``/``"model"``),
loaded with ``torch.load(weights_only=True)``. The files are not downloaded by gnn_audio.

Mapping into :class:`~gnn_audio.models.ATGNN`:

* ``stem.convs.0.weight``: the RGB filters averaged to one (spectrogram) channel;
* ``pos_embed``: bicubically resized from the ImageNet grid (56 x 56 or 14 x 14) to the
  model's spectrogram grid;
* ``backbone.{i}.0.graph_conv.gconv.nn.{0,1}.*`` -> ``backbone.{i}.0.graph_conv.nn.{0,1}.*``
  (grouped 1x1 convolution weights ``[2C, 2C/4, 1, 1]`` -> ``[2C, 2C/4]``);
* ``backbone.{i}.0.relative_pos``: skipped; gnn_audio computes the relative-position term
  for the actual grid (see :mod:`gnn_audio.graph.position`);
* ``prediction.*`` (the ImageNet head): skipped;
* everything else (``fc1``, ``fc2``, FFNs, downsampling, batch-norm statistics) as is.

A file whose tensors fill fewer than half of the model's backbone tensors (``stem``,
``pos_embed``, ``backbone``) is not a ViG checkpoint of this layout: :func:`load_vig_imagenet`
raises and leaves the model untouched.
"""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn_audio.weights_io import load_weights_file
from gnn_audio.types import PathLike

__all__ = ["load_vig_imagenet", "map_vig_state_dict"]

SKIPPED_PREFIXES = ("prediction.",)
SKIPPED_SUFFIXES = (".relative_pos",)
#: the model tensors a ViG checkpoint initialises
BACKBONE_PREFIXES = ("stem.", "pos_embed", "backbone.")
#: fewer mapped backbone tensors than this fraction: not a ViG checkpoint of this layout
MIN_MAPPED_FRACTION = 0.5


def _read_state_dict(path: PathLike) -> Dict[str, Tensor]:
    """The ``state_dict`` in a ViG checkpoint file (raw, or under ``state_dict`` / ``model``
    / ``state_dict_ema``; ``module.`` prefixes dropped), with a one-line error naming the file
    for anything else."""
    path = os.fspath(path)
    obj = load_weights_file(path, "Vision GNN checkpoint")
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a Vision GNN checkpoint: no state_dict of tensors")
    return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}


def map_vig_state_dict(vig: Dict[str, Tensor], target: Dict[str, Tensor]
                       ) -> Tuple[Dict[str, Tensor], List[str], List[str]]:
    """Map a ViG ``state_dict`` onto ``target`` (a model's ``state_dict``).

    Returns ``(mapped, unexpected, skipped)``: tensors ready for ``load_state_dict``, ViG keys
    with no place in the model, and ViG keys deliberately not used (head, relative-position
    tables). Raises ``ValueError`` on a shape that cannot be mapped.
    """
    mapped, unexpected, skipped = {}, [], []
    for key, value in vig.items():
        if key.startswith(SKIPPED_PREFIXES) or key.endswith(SKIPPED_SUFFIXES):
            skipped.append(key)
            continue
        new = key.replace(".graph_conv.gconv.nn.", ".graph_conv.nn.")
        if new not in target:
            unexpected.append(key)
            continue
        want = target[new].shape
        if key == "stem.convs.0.weight" and value.size(1) != want[1]:
            value = value.mean(dim=1, keepdim=True)  # RGB -> one channel
        elif key == "pos_embed" and value.shape[-2:] != want[-2:]:
            value = F.interpolate(value.float(), size=tuple(want[-2:]), mode="bicubic",
                                  align_corners=False)
        elif value.dim() == 4 and len(want) == 2 and value.shape[2:] == (1, 1):
            value = value.flatten(1)  # 1x1 conv -> GroupedLinear
        if value.shape != want:
            raise ValueError(f"{key}: checkpoint shape {tuple(value.shape)} does not fit "
                             f"{new} {tuple(want)} (a checkpoint of another ViG size?)")
        mapped[new] = value.to(target[new].dtype)
    return mapped, unexpected, skipped


def load_vig_imagenet(model: torch.nn.Module, path: PathLike) -> Tuple[List[str], List[str]]:
    """Initialise ``model``'s PGN backbone from a Vision GNN ImageNet checkpoint file.

    Returns ``(missing, unexpected)``: model keys left at their initialisation (for ATGNN:
    the label branch and the patch head) and checkpoint keys with no place in the model.

    Raises ``ValueError`` (naming the file; the model is left untouched) when the file is not
    a checkpoint, when a tensor's shape does not fit, or when fewer than half of the model's
    backbone tensors (``stem``, ``pos_embed``, ``backbone``) are found in it.
    """
    vig = _read_state_dict(path)
    target = model.state_dict()
    try:
        mapped, unexpected, _ = map_vig_state_dict(vig, target)
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)}: {e}") from None
    backbone = [k for k in target if k.startswith(BACKBONE_PREFIXES)]
    found = sum(k in mapped for k in backbone)
    if not backbone or found < MIN_MAPPED_FRACTION * len(backbone):
        raise ValueError(f"{os.fspath(path)} is not a Vision GNN checkpoint for this model: "
                         f"{found} of its {len(backbone)} backbone tensors found, "
                         f"{len(unexpected)} keys with no place in it (e.g. {unexpected[:3]})")
    model.load_state_dict(mapped, strict=False)
    missing = [k for k in target if k not in mapped]
    return missing, unexpected
