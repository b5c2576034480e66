"""The model registry, timm style: entry points register themselves with a
:class:`ModelConfig`; :func:`list_models` filters names with wildcards.

This module imports nothing from the rest of :mod:`gnn_audio.zoo`: the entry points
(:mod:`gnn_audio.zoo.atgnn`, :mod:`gnn_audio.zoo.baselines`) import it and register on import
of the package, which Python runs before any of its submodules.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from gnn_audio.data.features import FbankConfig

__all__ = ["ModelConfig", "register_model", "list_models", "is_model", "get_model_config",
           "model_entrypoint"]


@dataclass(frozen=True)
class ModelConfig:
    """What tools need to know about a zoo entry without building it.

    ``input_size`` is ``(frames, mel bins)`` for log-mel models (``fbank`` says how to compute
    them) or ``(frames, dims)`` for embedding models; ``arch_args`` names the entry point's
    arguments that define the architecture (the parameter layout): a checkpoint loads only
    into a model whose values of these arguments are the checkpoint's. ``paper`` holds the
    published figures (``params_m``, ``gflops``, ``map_fsd50k``, ``map_audioset``) for
    reference; ``recipe`` the published training settings where the source gives them.
    """

    name: str
    family: str
    input: str = "logmel"
    input_size: Tuple[int, int] = (1024, 128)
    sample_rate: Optional[int] = 16000
    fbank: Optional[FbankConfig] = field(default_factory=FbankConfig)
    label_set: Optional[str] = "fsd50k"
    num_classes: int = 200
    arch_args: Tuple[str, ...] = ()
    k: Optional[int] = None
    reference_params: Optional[int] = None
    paper: Dict[str, float] = field(default_factory=dict)
    recipe: Dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.input not in ("logmel", "embedding"):
            raise ValueError(f"{self.name}: input must be 'logmel' or 'embedding' "
                             f"(got {self.input!r})")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"{self.name}: input_size must be (frames, bins) "
                             f"(got {self.input_size!r})")
        object.__setattr__(self, "arch_args", tuple(self.arch_args))

    def replace(self, **changes: Any) -> "ModelConfig":
        return replace(self, **changes)


_entrypoints: Dict[str, Callable[..., torch.nn.Module]] = {}
_configs: Dict[str, ModelConfig] = {}


def register_model(config: ModelConfig) -> Callable:
    """Decorator: registers ``fn`` under ``config.name`` (which must be ``fn.__name__``)."""
    def wrap(fn: Callable[..., torch.nn.Module]) -> Callable[..., torch.nn.Module]:
        if fn.__name__ != config.name:
            raise ValueError(f"entry point {fn.__name__} registered as {config.name}")
        if config.name in _entrypoints:
            raise ValueError(f"model {config.name!r} is already registered")
        _entrypoints[config.name] = fn
        _configs[config.name] = config
        fn.model_config = config
        return fn
    return wrap


def list_models(pattern: str = "*", family: Optional[str] = None) -> List[str]:
    """Sorted registered names matching the shell-style ``pattern`` (``"atgnn_pyr_*"``)."""
    return sorted(n for n, c in _configs.items()
                  if fnmatch.fnmatch(n, pattern) and (family is None or c.family == family))


def is_model(name: str) -> bool:
    return name in _entrypoints


def get_model_config(name: str) -> ModelConfig:
    if name not in _configs:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _configs[name]


def model_entrypoint(name: str) -> Callable[..., torch.nn.Module]:
    """The entry point function registered as ``name``."""
    get_model_config(name)
    return _entrypoints[name]
