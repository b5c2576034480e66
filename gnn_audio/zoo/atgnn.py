"""ATGNN entry points: isotropic, pyramid t / s / med, each with and without MLG."""
from __future__ import annotations

from typing import Any, Optional

from gnn_audio.models.atgnn import ATGNN
from gnn_audio.zoo._factory import build_model
from gnn_audio.zoo.registry import ModelConfig, register_model

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


def _config(name: str, mlg: bool, description: str) -> ModelConfig:
    key = name if mlg else f"{name}_nomlg"
    return ModelConfig(name=key, family="atgnn", k=9, paper=_PAPER.get(key, {}),
                       reference_params=_REFERENCE_PARAMS.get(key),
                       description=description + ("" if mlg else " without MLG blocks"))


def _create(base: str, pretrained: Optional[str], num_classes: int, mlg: bool,
            **kwargs: Any) -> ATGNN:
    name = base if mlg else f"{base}_nomlg"
    arch = dict(_ARCHS[base])
    if not mlg:
        arch.pop("mlg_blocks")
    arch.update(kwargs)
    return build_model(name, ATGNN, pretrained, num_classes, mlg=mlg, **arch)


@register_model(_config("atgnn_iso", True, "ATGNN isotropic (ViG-S backbone, /16 patches)"))
def atgnn_iso(pretrained: Optional[str] = None, num_classes: int = 200, mlg: bool = True,
              **kwargs: Any) -> ATGNN:
    """ATGNN-iso: isotropic PGN (16 x 320, k 9 -> 18) + 18 MLG blocks."""
    return _create("atgnn_iso", pretrained, num_classes, mlg, **kwargs)


@register_model(_config("atgnn_pyr_t", True, "ATGNN pyramid tiny (ViG-Ti widths)"))
def atgnn_pyr_t(pretrained: Optional[str] = None, num_classes: int = 200, mlg: bool = True,
                **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-t: Pyramid ViG-Ti widths [48, 96, 240, 384], blocks [2, 2, 6, 2]."""
    return _create("atgnn_pyr_t", pretrained, num_classes, mlg, **kwargs)


@register_model(_config("atgnn_pyr_s", True, "ATGNN pyramid small"))
def atgnn_pyr_s(pretrained: Optional[str] = None, num_classes: int = 200, mlg: bool = True,
                **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-s: Pyramid ViG-S widths [80, 160, 400, 640], blocks [2, 2, 6, 2],
    MLG [1, 1, 3, 1]."""
    return _create("atgnn_pyr_s", pretrained, num_classes, mlg, **kwargs)


@register_model(_config("atgnn_pyr_med", True, "ATGNN pyramid medium"))
def atgnn_pyr_med(pretrained: Optional[str] = None, num_classes: int = 200, mlg: bool = True,
                  **kwargs: Any) -> ATGNN:
    """ATGNN-pyr-med: Pyramid ViG-M widths [96, 192, 384, 768], blocks [2, 2, 16, 2],
    MLG [1, 1, 6, 1]."""
    return _create("atgnn_pyr_med", pretrained, num_classes, mlg, **kwargs)


@register_model(_config("atgnn_iso", False, "ATGNN isotropic"))
def atgnn_iso_nomlg(pretrained: Optional[str] = None, num_classes: int = 200,
                    **kwargs: Any) -> ATGNN:
    return atgnn_iso(pretrained, num_classes, mlg=False, **kwargs)


@register_model(_config("atgnn_pyr_t", False, "ATGNN pyramid tiny"))
def atgnn_pyr_t_nomlg(pretrained: Optional[str] = None, num_classes: int = 200,
                      **kwargs: Any) -> ATGNN:
    return atgnn_pyr_t(pretrained, num_classes, mlg=False, **kwargs)


@register_model(_config("atgnn_pyr_s", False, "ATGNN pyramid small"))
def atgnn_pyr_s_nomlg(pretrained: Optional[str] = None, num_classes: int = 200,
                      **kwargs: Any) -> ATGNN:
    return atgnn_pyr_s(pretrained, num_classes, mlg=False, **kwargs)


@register_model(_config("atgnn_pyr_med", False, "ATGNN pyramid medium"))
def atgnn_pyr_med_nomlg(pretrained: Optional[str] = None, num_classes: int = 200,
                        **kwargs: Any) -> ATGNN:
    return atgnn_pyr_med(pretrained, num_classes, mlg=False, **kwargs)
