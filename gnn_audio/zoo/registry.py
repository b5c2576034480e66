"""A timm-style model registry: entry points register themselves with a config;
:func:`create_model` is the one way in, :func:`list_models` filters names with wildcards."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from gnn_audio.data.features import FbankConfig

__all__ = ["ModelConfig", "register_model", "list_models", "create_model", "get_model_config",
           "is_model"]


@dataclass(frozen=True)
class ModelConfig:
    """What tools need to know about a zoo entry without building it.

    ``input_size`` is ``(frames, mel bins)`` for log-mel models (``fbank`` says how to compute
    them) or ``(frames, dims)`` for embedding models; ``paper`` holds the published figures
    (``params_m``, ``gflops``, ``map_fsd50k``, ``map_audioset``) for reference; ``recipe`` the
    published training settings where the source gives them.
    """

    name: str
    family: str
    input: str = "logmel"
    input_size: Tuple[int, int] = (1024, 128)
    sample_rate: Optional[int] = 16000
    fbank: Optional[FbankConfig] = field(default_factory=FbankConfig)
    label_set: Optional[str] = "fsd50k"
    num_classes: int = 200
    k: Optional[int] = None
    reference_params: Optional[int] = None
    paper: Dict[str, float] = field(default_factory=dict)
    recipe: Dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def replace(self, **changes) -> "ModelConfig":
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


def _ensure_registered() -> None:
    # entry points live in gnn_audio.zoo.{atgnn,baselines}; importing the package registers them
    import gnn_audio.zoo  # noqa: F401


def list_models(pattern: str = "*", family: Optional[str] = None) -> List[str]:
    """Sorted registered names matching the shell-style ``pattern`` (``"atgnn_pyr_*"``)."""
    _ensure_registered()
    return sorted(n for n, c in _configs.items()
                  if fnmatch.fnmatch(n, pattern) and (family is None or c.family == family))


def is_model(name: str) -> bool:
    _ensure_registered()
    return name in _entrypoints


def get_model_config(name: str) -> ModelConfig:
    _ensure_registered()
    if name not in _configs:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _configs[name]


def create_model(name: str, pretrained: Optional[str] = None, **kwargs: Any) -> torch.nn.Module:
    """Build a registered model: ``create_model("atgnn_pyr_s", num_classes=527)``.

    ``pretrained`` is the path of a gnn_audio checkpoint (see
    :func:`gnn_audio.zoo.save_checkpoint`); nothing is ever downloaded.
    """
    get_model_config(name)
    return _entrypoints[name](pretrained=pretrained, **kwargs)
