"""ATGNN entry points: isotropic, pyramid t / s / med, each with and without MLG.

The "-MLG" models (patch head only) are entries of their own (``atgnn_pyr_s_nomlg``, ...):
``mlg`` is not an argument of any entry point, so a model's name always says what it is.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from gnn_audio.models.atgnn import ATGNN, default_relative_pos
from gnn_audio.models.atgnn_reference_weights import convert_reference_checkpoint
from gnn_audio.types import PathLike
from gnn_audio.zoo._builder import build_model
from gnn_audio.zoo._registry import ModelConfig, register_model

__all__ = ["atgnn_iso", "atgnn_pyr_t", "atgnn_pyr_s", "atgnn_pyr_med", "atgnn_iso_nomlg",
           "atgnn_pyr_t_nomlg", "atgnn_pyr_s_nomlg", "atgnn_pyr_med_nomlg"]

# Paper (Singh et al., Table II/III): params, GFLOPs, FSD50K / AudioSet-balanced mAP.
_PAPER = {
    "atgnn_iso": dict(params_m=38.7, gflops=14.93, map_fsd50k=0.570, map_audioset=0.330),
    "atgnn_pyr_s": dict(params_m=36.4, gflops=14.72, map_fsd50k=0.583, map_audioset=0.335),
    "atgnn_pyr_s_nomlg": dict(params_m=27.3, gflops=12.94, map_fsd50k=0.579,
                              map_audioset=0.331),
    "atgnn_pyr_med": dict(params_m=62.7, gflops=27.2, map_fsd50k=0.585, map_audioset=0.336),
    "atgnn_pyr_med_nomlg": dict(params_m=51.2, gflops=24.93, map_fsd50k=0.580,
                                map_audioset=0.332),
}
#: trainable parameters of the authors' implementation (200 classes, 128 x 1024)
_REFERENCE_PARAMS = {"atgnn_pyr_s": 35_427_112, "atgnn_pyr_s_nomlg": 26_835_672}

# What differs between the variants (everything else: ATGNN's defaults).
_ARCHS = {
    # Pyramid ViG-Ti widths: small enough for CPU demos and tests.
    "atgnn_pyr_t": dict(arch="pyramid", channels=[48, 96, 240, 384], blocks=[2, 2, 6, 2],
                        mlg_blocks=[1, 1, 3, 1]),
    # Pyramid ViG-S; paper III-B: M = [2, 2, 6, 2], P = [1, 1, 3, 1].
    "atgnn_pyr_s": dict(arch="pyramid", channels=[80, 160, 400, 640], blocks=[2, 2, 6, 2],
                        mlg_blocks=[1, 1, 3, 1]),
    # Pyramid ViG-M; paper: M = [2, 2, 16, 2], P = [1, 1, 6, 1].
    "atgnn_pyr_med": dict(arch="pyramid", channels=[96, 192, 384, 768], blocks=[2, 2, 16, 2],
                          mlg_blocks=[1, 1, 6, 1]),
    # Isotropic ViG-S backbone (16 blocks of width 320, the isotropic ViG whose ImageNet
    # weights the paper's recipe can load) and 18 MLG blocks after the stack: the paper does
    # not give the configuration; this one has 38.65 M parameters (paper: 38.7 M).
    "atgnn_iso": dict(arch="isotropic", channels=[320], blocks=[16], mlg_blocks=[18]),
}


#: the ATGNN arguments that define the parameter layout
_ARCH_ARGS = ("arch", "channels", "blocks", "mlg", "mlg_blocks", "head_hidden", "input_size")


def _config(base: str, mlg: bool) -> ModelConfig:
    name = base if mlg else f"{base}_nomlg"
    return ModelConfig(name=name, family="atgnn", k=9, paper=_PAPER.get(name, {}),
                       reference_params=_REFERENCE_PARAMS.get(name),
                       carried_args=("knn", "llg_adjacency"),
                       arch_args=_ARCH_ARGS if mlg else tuple(
                           a for a in _ARCH_ARGS if a != "mlg_blocks"))


def _prepare_kwargs(data: Any, recipe: Any, log: Callable[[str], None]) -> Dict[str, Any]:
    """A training run's ATGNN: the patch grid of its front-end's frames x mel bins."""
    fb = data.fbank
    return {} if fb is None else {"input_size": (fb.target_length, fb.num_mel_bins)}


def _upgrade_v1_kwargs(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Format-1 ATGNN arguments today: the flat kNN arguments (``k``, ``knn_backend``,
    ``stochastic``, ``epsilon``, ``relative_pos``) become the ``knn`` dict, ``input_size``
    ``(mel, frames)`` becomes ``(frames, mel)``, and ``mlg`` goes (the name says it)."""
    kwargs = dict(kwargs)
    kwargs.pop("mlg", None)
    knn = dict(kwargs.pop("knn", None) or {})
    if "k" in kwargs:
        knn["k"] = kwargs.pop("k")
    for key in ("stochastic", "epsilon"):
        if key in kwargs:
            knn[key] = kwargs.pop(key)
    if "relative_pos" in kwargs:
        rel = kwargs.pop("relative_pos")
        if rel is not None:
            knn["relative_pos"] = "sincos" if rel else None
    if "knn_backend" in kwargs:
        backend = kwargs.pop("knn_backend")
        knn["backend"] = "cluster" if backend == "cluster" else "dense"
    if knn:
        kwargs["knn"] = knn
    if kwargs.get("input_size") is not None:
        mel, frames = kwargs["input_size"]
        kwargs["input_size"] = [frames, mel]
    return kwargs


def _with_relative_pos(kwargs: Dict[str, Any], mode: Optional[str]) -> Dict[str, Any]:
    """``kwargs`` whose ``knn`` (``None``, ``k`` as an int or a dict of fields) names a
    relative-position term: ``mode`` where it names none. A whole
    :class:`~gnn_audio.graph.KnnConfig` names one already; any other value is left for
    ATGNN's own check to name."""
    knn = kwargs.get("knn")
    if isinstance(knn, int) and not isinstance(knn, bool):
        knn = {"k": knn}
    if knn is not None and not isinstance(knn, Mapping):
        return kwargs
    knn = dict(knn or {})
    knn.setdefault("relative_pos", mode)
    return dict(kwargs, knn=knn)


def _upgrade_v2_kwargs(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Format-2 pyramid ATGNN arguments today: a file that does not say which
    relative-position term its graphs used was built with the default of then, ``"sincos"``
    (the default is now the authors' ``"reference"``)."""
    if kwargs.get("arch", "pyramid") != "pyramid":
        return kwargs
    return _with_relative_pos(kwargs, "sincos")


def _load_reference(content: Any, model: ATGNN, path: str
                    ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``ZooEntry.load_foreign`` of the pyramid entries: a checkpoint of the ATGNN authors'
    code (:func:`~gnn_audio.models.atgnn_reference_weights.convert_reference_checkpoint`)."""
    state, report = convert_reference_checkpoint(content, model, path)
    note = "the authors' relative-position tables, which gnn_audio computes"
    if model.knn_config.relative_pos != "reference":
        note += (f"; this model's graphs use relative_pos={model.knn_config.relative_pos!r}, "
                 "not the authors' table")
    return state, dict(report, dropped_note=note)


def _register(base: str, mlg: bool) -> Callable:
    pyramid = _ARCHS[base]["arch"] == "pyramid"
    return register_model(_config(base, mlg), prepare_kwargs=_prepare_kwargs,
                          upgrade_v1_kwargs=_upgrade_v1_kwargs,
                          upgrade_v2_kwargs=_upgrade_v2_kwargs if pyramid else None,
                          load_foreign=_load_reference if pyramid else None)


def _create(base: str, mlg: bool, pretrained: Optional[PathLike], num_classes: int,
            kwargs: Dict[str, Any]) -> ATGNN:
    name = base if mlg else f"{base}_nomlg"
    other = f"{base}_nomlg" if mlg else base
    if "mlg" in kwargs:
        raise TypeError(f"{name}() got an unexpected keyword argument 'mlg': the model "
                        f"{'without' if mlg else 'with'} MLG blocks is {other}()")
    if not mlg and "mlg_blocks" in kwargs:
        raise TypeError(f"{name}() has no MLG blocks, so no 'mlg_blocks' (see {other}())")
    defaults = dict(_ARCHS[base], mlg=mlg)
    if not mlg:
        defaults.pop("mlg_blocks")
    if pretrained is None or "knn" in kwargs:  # else the checkpoint's graphs (carried_args)
        # written down, so that the bundle and checkpoints record the graphs it computes
        kwargs = _with_relative_pos(kwargs, default_relative_pos(_ARCHS[base]["arch"]))
    return build_model(name, ATGNN, pretrained, num_classes, defaults=defaults, **kwargs)


@_register("atgnn_iso", True)
def atgnn_iso(pretrained: Optional[PathLike] = None, num_classes: int = 200,
              **kwargs: Any) -> ATGNN:
    """ATGNN-iso: isotropic PGN (16 x 320, k 9 -> 18) + 18 MLG blocks."""
    return _create("atgnn_iso", True, pretrained, num_classes, kwargs)


@_register("atgnn_pyr_t", True)
def atgnn_pyr_t(pretrained: Optional[PathLike] = None, num_classes: int = 200,
                **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-t: Pyramid ViG-Ti widths [48, 96, 240, 384], blocks [2, 2, 6, 2]."""
    return _create("atgnn_pyr_t", True, pretrained, num_classes, kwargs)


@_register("atgnn_pyr_s", True)
def atgnn_pyr_s(pretrained: Optional[PathLike] = None, num_classes: int = 200,
                **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-s: Pyramid ViG-S widths [80, 160, 400, 640], blocks [2, 2, 6, 2],
    MLG [1, 1, 3, 1]."""
    return _create("atgnn_pyr_s", True, pretrained, num_classes, kwargs)


@_register("atgnn_pyr_med", True)
def atgnn_pyr_med(pretrained: Optional[PathLike] = None, num_classes: int = 200,
                  **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-med: Pyramid ViG-M widths [96, 192, 384, 768], blocks [2, 2, 16, 2],
    MLG [1, 1, 6, 1]."""
    return _create("atgnn_pyr_med", True, pretrained, num_classes, kwargs)


@_register("atgnn_iso", False)
def atgnn_iso_nomlg(pretrained: Optional[PathLike] = None, num_classes: int = 200,
                    **kwargs: Any) -> ATGNN:
    """ATGNN-iso-MLG: the isotropic PGN backbone and the patch head only."""
    return _create("atgnn_iso", False, pretrained, num_classes, kwargs)


@_register("atgnn_pyr_t", False)
def atgnn_pyr_t_nomlg(pretrained: Optional[PathLike] = None, num_classes: int = 200,
                      **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-t-MLG: :func:`atgnn_pyr_t` without the label branch."""
    return _create("atgnn_pyr_t", False, pretrained, num_classes, kwargs)


@_register("atgnn_pyr_s", False)
def atgnn_pyr_s_nomlg(pretrained: Optional[PathLike] = None, num_classes: int = 200,
                      **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-s-MLG: :func:`atgnn_pyr_s` without the label branch (the paper's -MLG)."""
    return _create("atgnn_pyr_s", False, pretrained, num_classes, kwargs)


@_register("atgnn_pyr_med", False)
def atgnn_pyr_med_nomlg(pretrained: Optional[PathLike] = None, num_classes: int = 200,
                        **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-med-MLG: :func:`atgnn_pyr_med` without the label branch."""
    return _create("atgnn_pyr_med", False, pretrained, num_classes, kwargs)
