"""PANNs' released CNN10 weights (``Cnn10_mAP=0.380.pth``, Kong et al., 2020) as a state dict of
gnn_audio's :class:`~gnn_audio.models.cnn10.CNN10` (527 AudioSet classes, 64 mel bins).

A PANNs file is ``{"model": state_dict, ...}`` (some also hold ``"iteration"``, ignored). Its
parameter names are CNN10's own (``bn0``, ``conv_block1..4.{conv1,conv2}.weight``,
``conv_block1..4.{bn1,bn2}.*``, ``fc1``, ``fc_audioset``); it also holds torchlibrosa's
front-end buffers (the STFT's DFT kernels and the mel matrix), which gnn_audio computes in its
own front-end (:data:`~gnn_audio.data.features.PANNS_LOGMEL`), so they are dropped. The
weights expect that front-end's input: PANNs' log-mel in dB, not normalised (``bn0`` does it).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import torch

from gnn_audio.models.cnn10 import CNN10

__all__ = ["convert_panns_cnn10", "PANNS_FRONT_END_KEYS"]

#: torchlibrosa's front-end buffers in a PANNs checkpoint (dropped by the conversion)
PANNS_FRONT_END_KEYS = ("spectrogram_extractor.stft.conv_real.weight",
                        "spectrogram_extractor.stft.conv_imag.weight",
                        "logmel_extractor.melW")

_NUM_CLASSES, _MEL_BINS = 527, 64
_SHOWN = 3  # names listed per kind of difference


def _expected_shapes() -> Dict[str, Tuple[int, ...]]:
    with torch.device("meta"):
        model = CNN10(num_classes=_NUM_CLASSES, mel_bins=_MEL_BINS)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _names(keys: List[str]) -> str:
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def _shape(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def convert_panns_cnn10(checkpoint: Mapping[str, Any], path: str
                        ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``(state dict of CNN10(num_classes=527, mel_bins=64), dropped front-end keys)`` of a
    PANNs CNN10 checkpoint (what ``torch.load(path, weights_only=True)`` returns; a bare state
    dict is taken too). The tensors are the checkpoint's own, not copies, in CNN10's order.

    Raises:
        ValueError: in one line naming ``path``, when the file is not a CNN10 of 527 classes
            on 64 mel bins: keys CNN10 lacks (a CNN14's ``conv_block5``), keys it needs that
            are missing (a truncated file) or tensors of another shape (another class count).
    """
    where = f"{path}: not a PANNs CNN10 checkpoint (527 classes, 64 mel bins)"
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{where}: expected a dict, got {type(checkpoint).__name__}")
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError(f"{where}: its 'model' entry is a {type(state).__name__}, not a "
                         "state dict")
    expected = _expected_shapes()
    dropped = [k for k in state if k in PANNS_FRONT_END_KEYS]
    problems = []
    unexpected = [k for k in state if k not in expected and k not in PANNS_FRONT_END_KEYS]
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_names(unexpected)}")
    missing = [k for k in expected if k not in state]
    if missing:
        problems.append(f"{len(missing)} missing keys: {_names(missing)}")
    not_tensors = [k for k in expected if k in state and not isinstance(state[k], torch.Tensor)]
    if not_tensors:
        problems.append(f"not tensors: {_names(not_tensors)}")
    wrong = [f"{k} is {_shape(state[k].shape)}, CNN10's is {_shape(shape)}"
             for k, shape in expected.items()
             if isinstance(state.get(k), torch.Tensor) and tuple(state[k].shape) != shape]
    if wrong:
        more = f" (+{len(wrong) - _SHOWN} more)" if len(wrong) > _SHOWN else ""
        problems.append("shapes differ: " + ", ".join(wrong[:_SHOWN]) + more)
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))
    return {k: state[k] for k in expected}, dropped
