"""The model registry, timm style: entry points register themselves with a
:class:`ModelConfig` and the hooks that make them a zoo entry (:class:`ZooEntry`: how a
training run prepares the model's arguments from its data, how old checkpoints' arguments
are read); :func:`list_models` filters names with wildcards.

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

__all__ = ["ModelConfig", "ZooEntry", "register_model", "unregister_model", "list_models",
           "is_model", "get_entry", "get_model_config", "model_entrypoint"]


@dataclass(frozen=True)
class ModelConfig:
    """What tools need to know about a zoo entry without building it.

    ``input_size`` is ``(frames, mel bins)`` for log-mel models (``fbank`` says how to compute
    them) or ``(frames, dims)`` for embedding models; ``arch_args`` names the entry point's
    arguments that define the architecture (the parameter layout): a checkpoint loads only
    into a model whose values of these arguments are the checkpoint's. ``paper`` holds the
    published figures (``params_m``, ``gflops``, ``map_fsd50k``, ``map_audioset``) for
    reference. ``carried_args`` names the arguments that change what the model computes but
    not its parameters (ATGNN's ``knn`` graph settings): ``create_model(name,
    pretrained=path)`` takes the checkpoint's values of those it is not given.
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
    carried_args: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.input not in ("logmel", "embedding"):
            raise ValueError(f"{self.name}: input must be 'logmel' or 'embedding' "
                             f"(got {self.input!r})")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"{self.name}: input_size must be (frames, bins) "
                             f"(got {self.input_size!r})")
        object.__setattr__(self, "arch_args", tuple(self.arch_args))
        object.__setattr__(self, "carried_args", tuple(self.carried_args))

    def replace(self, **changes: Any) -> "ModelConfig":
        return replace(self, **changes)

    def with_fbank(self, fbank: FbankConfig) -> "ModelConfig":
        """This config for a log-mel model trained with the front-end ``fbank``: its
        ``sample_rate`` and ``input_size`` (``target_length`` frames, or the entry's when
        ``None``, by ``num_mel_bins``) follow it."""
        if self.input != "logmel":
            raise ValueError(f"{self.name} reads {self.input} input, which has no audio "
                             "front-end (fbank)")
        return replace(self, fbank=fbank, sample_rate=fbank.sample_rate,
                       input_size=(fbank.target_length or self.input_size[0],
                                   fbank.num_mel_bins))


def _no_kwargs(data: Any, recipe: Any, log: Callable[[str], None]) -> Dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ZooEntry:
    """A registered model: its entry point, its :class:`ModelConfig` and its hooks.

    Args:
        fn: the entry point (``fn(pretrained=None, num_classes=..., **kwargs)``).
        config: what tools know about the entry without building it.
        prepare_kwargs: ``prepare_kwargs(data, recipe, log) -> kwargs``: the entry-point
            arguments a training run derives from its data (``data.label_set``,
            ``data.train_targets``, ``data.fbank``) and recipe, e.g. the input size from the
            front-end or AT-GCN's label graph from the training targets; ``log`` takes one
            line for the run log. The recipe's own ``model.kwargs`` override them.
        upgrade_v1_kwargs: ``kwargs -> kwargs``: the build arguments of a format-1
            checkpoint of this entry in format-2 form (``None``: unchanged).
        upgrade_v2_kwargs: ``kwargs -> kwargs``: the build arguments of a format-2 (or
            upgraded format-1) checkpoint in today's form, e.g. the defaults it was built
            with where they have changed since (``None``: unchanged).
        load_foreign: ``(content, model, path) -> (state_dict, report)``: the weights of a
            file in another program's layout (its content as
            :func:`~gnn_audio.weights_io.load_tensors_only` reads it) for ``model``, e.g. a
            checkpoint of the ATGNN authors' code; ``report`` says what was mapped, and its
            ``fbank`` the front-end the weights need (``None``: only gnn_audio checkpoints
            load).
    """

    fn: Callable[..., torch.nn.Module]
    config: ModelConfig
    prepare_kwargs: Callable[..., Dict[str, Any]] = _no_kwargs
    upgrade_v1_kwargs: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None
    upgrade_v2_kwargs: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None
    load_foreign: Optional[Callable[..., Tuple[Dict[str, Any], Dict[str, Any]]]] = None


_entries: Dict[str, ZooEntry] = {}


def register_model(config: ModelConfig, *,
                   prepare_kwargs: Optional[Callable[..., Dict[str, Any]]] = None,
                   upgrade_v1_kwargs: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
                   upgrade_v2_kwargs: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
                   load_foreign: Optional[Callable[..., Tuple[Dict[str, Any], Dict[str, Any]]]]
                   = None) -> Callable:
    """Decorator: registers ``fn`` under ``config.name`` (which must be ``fn.__name__``) with
    its hooks (see :class:`ZooEntry`)."""
    def wrap(fn: Callable[..., torch.nn.Module]) -> Callable[..., torch.nn.Module]:
        if fn.__name__ != config.name:
            raise ValueError(f"entry point {fn.__name__} registered as {config.name}")
        if config.name in _entries:
            raise ValueError(f"model {config.name!r} is already registered")
        _entries[config.name] = ZooEntry(fn, config, prepare_kwargs or _no_kwargs,
                                         upgrade_v1_kwargs, upgrade_v2_kwargs, load_foreign)
        fn.model_config = config
        return fn
    return wrap


def unregister_model(name: str) -> None:
    """Remove a registered entry (for tests that register a model of their own)."""
    get_entry(name)
    del _entries[name]


def list_models(pattern: str = "*", family: Optional[str] = None) -> List[str]:
    """Sorted registered names matching the shell-style ``pattern`` (``"atgnn_pyr_*"``)."""
    return sorted(n for n, e in _entries.items() if fnmatch.fnmatch(n, pattern)
                  and (family is None or e.config.family == family))


def is_model(name: str) -> bool:
    return name in _entries


def get_entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` registered as ``name``; ``ValueError`` naming the models."""
    if name not in _entries:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _entries[name]


def get_model_config(name: str) -> ModelConfig:
    return get_entry(name).config


def model_entrypoint(name: str) -> Callable[..., torch.nn.Module]:
    """The entry point function registered as ``name``."""
    return get_entry(name).fn
