"""Training recipes: one validated, frozen :class:`Recipe` holds every setting of a run, named
presets reproduce the papers' recipes, and every field can be overridden from the command line
(:mod:`gnn_audio.train.cli`). The resolved recipe is written to the run directory
(``config.json``) and read back by ``--resume``.

============================  ===========================================================
preset                        source
============================  ===========================================================
``atgnn_fsd50k``              ATGNN paper III-B: Adam 5e-4 (0.95, 0.999), wd 5e-7, 1,000
                              warm-up steps, lr halved every 5 epochs after epoch 10, batch
                              24, 50 epochs, mixup 0.5, SpecAugment 48/192, balanced
                              sampling, 1024 frames
``atgnn_audioset``            the same on AudioSet-balanced: 1056 frames, 60 epochs, halving
                              every 5 epochs after epoch 35
``at_gcn_audioset``,          AT-GCN paper IV-B: Adam 1e-3, batch 64, mixup and SpecAugment;
``cnn10_audioset``            600,000 iterations (``max_steps``); the co-occurrence graph of
                              the training split (tau 0.3, p 0.2)
``at_gcn_fsd50k``,            the AT-GCN / CNN10 recipe on FSD50K
``cnn10_fsd50k``
``embedding_audioset``        the student report's embedding baselines: Adam 1e-3, batch 64,
                              10 epochs (``lstm_tagger``: gradient clipping 5)
``example``                   a small ATGNN-pyr-t that trains on the generated FSD50K-format
                              data set on two CPU cores in minutes
============================  ===========================================================
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from gnn_audio.data.augment import NO_AUGMENT, AugmentConfig
from gnn_audio.data.features import (AUDIOSET_FBANK, FSD50K_FBANK, PANNS_FBANK,
                                     FbankConfig)
from gnn_audio.labels.cooccurrence import SCHEMES
from gnn_audio.train.precision import PRECISIONS

__all__ = ["Recipe", "RECIPES", "FBANK_PRESETS", "ATGCN_PAPER_FBANK", "get_recipe",
           "list_recipes", "LABEL_GRAPHS"]

#: the AT-GCN paper's own front-end (section IV-A): 64 mel bands, 50 ms windows every 25 ms,
#: 400 frames (10 s); PANNs' 32 kHz and mel range, no normalisation (CNN10's bn0 normalises)
ATGCN_PAPER_FBANK = PANNS_FBANK.replace(frame_length_ms=50.0, frame_shift_ms=25.0,
                                        target_length=400)

#: front-ends by name (``--fbank-preset``)
FBANK_PRESETS: Dict[str, FbankConfig] = {
    "fsd50k": FSD50K_FBANK, "audioset": AUDIOSET_FBANK, "panns": PANNS_FBANK,
    "atgcn_paper": ATGCN_PAPER_FBANK}

#: AT-GCN label-graph constructions (Table II): the co-occurrence schemes and the ontology
LABEL_GRAPHS = tuple(SCHEMES) + ("ontology",)
DATA_KINDS = ("fsd50k", "audioset", "embeddings")


@dataclass(frozen=True)
class Recipe:
    """Everything a training run is made of (see the module docstring for the presets).

    Data: ``data`` (``fsd50k``: an FSD50K-layout folder; ``audioset``: segment CSVs or JSON
    datafiles; ``embeddings``: AudioSet embedding TFRecords), ``fbank`` (the front-end;
    ``norm_stats="compute"`` replaces its mean / std by the training split's),
    ``augment``, ``sampler`` (``balanced``: PSLA's; ``shuffle``).

    Optimisation: Adam(``lr``, ``betas``, ``weight_decay``), ``batch_size`` clips per step in
    all (split evenly over DDP ranks), linear warm-up over ``warmup_steps`` optimiser steps,
    then the rate multiplied by ``lr_decay`` every ``lr_decay_every`` epochs from epoch
    ``lr_decay_start`` on (epochs counted from 0; ``lr_decay_start=None``: constant rate);
    ``epochs``, and ``max_steps`` to stop earlier (AT-GCN counts iterations).

    Step: ``precision`` (``fp32``, ``bf16``, ``fp16`` with a gradient scaler),
    ``clip_grad_norm``, ``channels_last``, ``compile`` (``torch.compile`` of the training
    forward), ``sync_bn`` (SyncBatchNorm under DDP).

    Evaluation: ``eval_modes`` (``crop``: pad or cut to the model's frames, the paper;
    ``windows``: sliding windows with hop ``window_hop`` x frames, max-pooled),
    ``eval_batch_size``; ``average_from``: average the weights of every epoch from this one
    (0-based) to the end, PSLA's weight averaging (``None``: off).

    Model: ``model`` (a zoo name), ``model_kwargs`` (entry-point keyword arguments),
    ``label_graph`` / ``tau`` / ``p`` / ``glove`` (AT-GCN's adjacency and label embeddings),
    ``pretrained_vig`` (ImageNet Pyramid ViG weights), ``init_from`` (a gnn_audio checkpoint;
    shared labels keep their rows) and ``freeze_backbone_epochs``.
    """

    name: str = "custom"
    model: str = "atgnn_pyr_s"
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    data: str = "fsd50k"
    fbank: FbankConfig = FSD50K_FBANK
    norm_stats: str = "recipe"
    augment: AugmentConfig = AugmentConfig()
    sampler: str = "balanced"
    epochs: int = 50
    max_steps: Optional[int] = None
    batch_size: int = 24
    lr: float = 5e-4
    betas: Tuple[float, float] = (0.95, 0.999)
    weight_decay: float = 5e-7
    warmup_steps: int = 1000
    lr_decay_start: Optional[int] = 10
    lr_decay_every: int = 5
    lr_decay: float = 0.5
    clip_grad_norm: Optional[float] = None
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    eval_modes: Tuple[str, ...] = ("crop", "windows")
    window_hop: float = 0.5
    eval_batch_size: int = 32
    average_from: Optional[int] = None
    label_graph: str = "both"
    tau: float = 0.3
    p: float = 0.2
    glove: Optional[str] = None
    pretrained_vig: Optional[str] = None
    init_from: Optional[str] = None
    freeze_backbone_epochs: int = 0
    num_workers: int = 2
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 -- frozen dataclass
        if isinstance(self.fbank, dict):
            set_("fbank", FbankConfig(**self.fbank))
        if isinstance(self.augment, dict):
            set_("augment", AugmentConfig(**self.augment))
        set_("betas", tuple(float(b) for b in self.betas))
        set_("eval_modes", tuple(self.eval_modes))
        set_("model_kwargs", dict(self.model_kwargs))
        problems = []

        def need(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        def positive_int(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and (v >= 0 if allow_zero
                                                                     else v > 0),
                 f"{name} must be an integer {'>= 0' if allow_zero else '> 0'} (got {v!r})")

        from gnn_audio.zoo import is_model, list_models

        need(is_model(self.model), f"model {self.model!r} is not in the zoo "
                                   f"({', '.join(list_models())})")
        need(self.data in DATA_KINDS, f"data must be one of {DATA_KINDS} (got {self.data!r})")
        need(self.norm_stats in ("recipe", "compute"),
             f"norm_stats must be 'recipe' or 'compute' (got {self.norm_stats!r})")
        need(self.sampler in ("balanced", "shuffle"),
             f"sampler must be 'balanced' or 'shuffle' (got {self.sampler!r})")
        for name in ("epochs", "batch_size", "lr_decay_every", "eval_batch_size", "log_every"):
            positive_int(name)
        for name in ("warmup_steps", "freeze_backbone_epochs", "num_workers"):
            positive_int(name, allow_zero=True)
        need(self.max_steps is None or (isinstance(self.max_steps, int) and self.max_steps > 0),
             f"max_steps must be a positive integer or None (got {self.max_steps!r})")
        need(self.lr > 0, f"lr must be > 0 (got {self.lr})")
        need(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             f"betas must be two values in [0, 1) (got {self.betas})")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0 (got {self.weight_decay})")
        need(0 < self.lr_decay <= 1, f"lr_decay must be in (0, 1] (got {self.lr_decay})")
        need(self.lr_decay_start is None or self.lr_decay_start >= 0,
             f"lr_decay_start must be >= 0 or None (got {self.lr_decay_start})")
        need(self.clip_grad_norm is None or self.clip_grad_norm > 0,
             f"clip_grad_norm must be > 0 or None (got {self.clip_grad_norm})")
        need(self.precision in PRECISIONS,
             f"precision must be one of {PRECISIONS} (got {self.precision!r})")
        need(bool(self.eval_modes) and set(self.eval_modes) <= {"crop", "windows"},
             f"eval_modes must be a non-empty subset of crop, windows (got {self.eval_modes})")
        need(0 < self.window_hop <= 1, f"window_hop must be in (0, 1] (got {self.window_hop})")
        need(self.average_from is None or 0 <= self.average_from < self.epochs,
             f"average_from must be an epoch in [0, epochs) or None (got {self.average_from})")
        need(self.label_graph in LABEL_GRAPHS,
             f"label_graph must be one of {LABEL_GRAPHS} (got {self.label_graph!r})")
        need(0 <= self.tau <= 1 and 0 <= self.p <= 1,
             f"tau and p must be in [0, 1] (got {self.tau}, {self.p})")
        try:
            json.dumps(self.model_kwargs)
        except TypeError:
            problems.append("model_kwargs must hold plain JSON values")
        if problems:
            raise ValueError(f"recipe {self.name!r}: " + "; ".join(problems))

    @property
    def input_kind(self) -> str:
        """``logmel`` or ``embedding``: what the model reads."""
        return "embedding" if self.data == "embeddings" else "logmel"

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        """Plain values (JSON): the form of ``config.json`` and of :meth:`from_dict`."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        out["eval_modes"] = list(self.eval_modes)
        return out

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "Recipe":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown recipe fields {unknown}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


_ATGNN_FSD50K = Recipe(name="atgnn_fsd50k")
_PAPER_ATGCN = dict(lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0, warmup_steps=0,
                    lr_decay_start=None, batch_size=64)

RECIPES: Dict[str, Recipe] = {
    "atgnn_fsd50k": _ATGNN_FSD50K,
    "atgnn_audioset": _ATGNN_FSD50K.replace(name="atgnn_audioset", data="audioset",
                                            fbank=AUDIOSET_FBANK, epochs=60, lr_decay_start=35),
    "at_gcn_audioset": Recipe(name="at_gcn_audioset", model="at_gcn", data="audioset",
                              fbank=PANNS_FBANK, epochs=100, max_steps=600_000,
                              augment=AugmentConfig(freq_mask=16, time_mask=64),
                              **_PAPER_ATGCN),
    "cnn10_audioset": Recipe(name="cnn10_audioset", model="cnn10", data="audioset",
                             fbank=PANNS_FBANK, epochs=100, max_steps=600_000,
                             augment=AugmentConfig(freq_mask=16, time_mask=64), **_PAPER_ATGCN),
    "at_gcn_fsd50k": Recipe(name="at_gcn_fsd50k", model="at_gcn", data="fsd50k",
                            fbank=PANNS_FBANK, epochs=50,
                            augment=AugmentConfig(freq_mask=16, time_mask=64), **_PAPER_ATGCN),
    "cnn10_fsd50k": Recipe(name="cnn10_fsd50k", model="cnn10", data="fsd50k",
                           fbank=PANNS_FBANK, epochs=50,
                           augment=AugmentConfig(freq_mask=16, time_mask=64), **_PAPER_ATGCN),
    "embedding_audioset": Recipe(name="embedding_audioset", model="fc2", data="embeddings",
                                 fbank=FSD50K_FBANK, augment=NO_AUGMENT,
                                 sampler="shuffle", epochs=10, eval_modes=("crop",),
                                 **dict(_PAPER_ATGCN, batch_size=64)),
    # small enough for two CPU cores: ViG-Ti-like widths / 2, 4 s of audio, no mixup
    "example": Recipe(name="example", model="atgnn_pyr_t",
                      model_kwargs=dict(channels=[24, 48, 96, 192], drop_path_rate=0.0),
                      fbank=FSD50K_FBANK.replace(target_length=400), norm_stats="compute",
                      augment=AugmentConfig(mixup=0.0, freq_mask=24, time_mask=40),
                      epochs=12, batch_size=16, lr=1e-3, warmup_steps=20, lr_decay_start=8,
                      lr_decay_every=2, num_workers=1, eval_batch_size=16),
}


def list_recipes() -> list:
    return sorted(RECIPES)


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; available: {', '.join(list_recipes())}")
    return RECIPES[name]
