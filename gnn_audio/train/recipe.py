"""Training recipes: one validated, frozen :class:`Recipe` holds every setting of a run, named
presets reproduce the papers' recipes, and every field can be overridden from the command line
(:mod:`gnn_audio.cli.train`). The resolved recipe is written to the run directory
(``config.json``) and read back by ``--resume``.

A recipe is made of sections, each a frozen, validated dataclass::

    recipe.name, recipe.seed, recipe.log_every
    recipe.model   ModelSection(name, kwargs, label_graph, tau, p, glove, pretrained_vig,
                                init_from, freeze_backbone_epochs)
    recipe.data    DataSection(source, fbank, norm_stats, augment, sampler, num_workers)
    recipe.optim   OptimSection(epochs, max_steps, batch_size, lr, betas, weight_decay,
                                warmup_steps, lr_decay_start, lr_decay_every, lr_decay,
                                clip_grad_norm, precision, channels_last, compile, sync_bn,
                                hardware)
    recipe.eval    EvalSection(modes, window_hop, batch_size, average_from)

>>> r = get_recipe("atgnn_fsd50k")
>>> r.optim.lr, r.data.fbank.target_length
(0.0005, 1024)
>>> r = r.replace(optim=r.optim.replace(lr=1e-4))     # or r.replace(lr=1e-4)

:meth:`Recipe.replace` also takes the flat names of the command-line flags (``lr``,
``eval_batch_size``, ``model_kwargs``: :data:`FLAT_FIELDS`), and :meth:`Recipe.from_dict`
reads both the sectioned form of ``config.json`` and the flat form older run directories
hold.

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
from types import SimpleNamespace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from gnn_audio.data.augment import NO_AUGMENT, AugmentConfig
from gnn_audio.data.features import (AUDIOSET_FBANK, FSD50K_FBANK, PANNS_FBANK,
                                     FbankConfig)
from gnn_audio.data.readers.sources import get_source, list_sources
from gnn_audio.labels.cooccurrence import SCHEMES
from gnn_audio.precision import PRECISIONS
from gnn_audio.zoo import is_model, list_models

__all__ = ["Recipe", "ModelSection", "DataSection", "OptimSection", "EvalSection", "RECIPES",
           "FBANK_PRESETS", "ATGCN_PAPER_FBANK", "FLAT_FIELDS", "SECTIONS", "get_recipe",
           "list_recipes", "LABEL_GRAPHS", "RESUMABLE_FIELDS", "resumed_recipe"]

#: where the front-end's mean / std come from (:class:`DataSection`)
NORM_STATS = ("auto", "recipe", "compute")

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


class SectionError(ValueError):
    """A section's values are invalid; :attr:`problems` lists each one (one line each, naming
    the field as ``section.field``)."""

    def __init__(self, section: str, problems: List[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class _Checks:
    """Collects the problems of one section."""

    def __init__(self, section: str, values: Any) -> None:
        self.section, self.values, self.problems = section, values, []

    def need(self, ok: bool, message: str) -> None:
        if not ok:
            self.problems.append(f"{self.section}.{message}")

    def integer(self, name: str, low: int = 1) -> None:
        v = getattr(self.values, name)
        self.need(isinstance(v, int) and not isinstance(v, bool) and v >= low,
                  f"{name} must be an integer {'> 0' if low == 1 else f'>= {low}'} "
                  f"(got {v!r})")

    def done(self) -> None:
        if self.problems:
            raise SectionError(self.section, self.problems)


class _Section:
    """Shared by the sections: ``replace`` (validated again) and plain values."""

    SECTION = ""

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown recipe fields {[f'{cls.SECTION}.{k}' for k in unknown]}")
        return cls(**values)


@dataclass(frozen=True)
class ModelSection(_Section):
    """The model: ``name`` (a zoo name), ``kwargs`` (entry-point keyword arguments),
    ``label_graph`` / ``tau`` / ``p`` / ``glove`` (AT-GCN's adjacency and label embeddings),
    ``pretrained_vig`` (ImageNet Pyramid ViG weights), ``init_from`` (a gnn_audio checkpoint;
    shared labels keep their rows) and ``freeze_backbone_epochs``."""

    SECTION = "model"

    name: str = "atgnn_pyr_s"
    kwargs: Dict[str, Any] = field(default_factory=dict)
    label_graph: str = "both"
    tau: float = 0.3
    p: float = 0.2
    glove: Optional[str] = None
    pretrained_vig: Optional[str] = None
    init_from: Optional[str] = None
    freeze_backbone_epochs: int = 0

    __hash__ = None  # type: ignore[assignment]  -- holds a dict

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", dict(self.kwargs))
        c = _Checks(self.SECTION, self)
        c.need(is_model(self.name), f"name {self.name!r} is not in the zoo "
                                    f"({', '.join(list_models())})")
        c.need(self.label_graph in LABEL_GRAPHS,
               f"label_graph must be one of {LABEL_GRAPHS} (got {self.label_graph!r})")
        c.need(0 <= self.tau <= 1 and 0 <= self.p <= 1,
               f"tau and p must be in [0, 1] (got {self.tau}, {self.p})")
        c.integer("freeze_backbone_epochs", low=0)
        try:
            json.dumps(self.kwargs)
        except TypeError:
            c.need(False, "kwargs must hold plain JSON values")
        c.done()


@dataclass(frozen=True)
class DataSection(_Section):
    """The data: ``source`` (a data source of :mod:`gnn_audio.data.readers.sources`:
    ``fsd50k``, ``audioset``, ``embeddings``), ``fbank`` (the front-end), ``norm_stats``
    (where its mean / std come from: ``recipe``: the front-end's, computed on the data set the
    recipe was published for; ``compute``: the training split's; ``auto``: the front-end's
    when the training split has that data set's class list (FSD50K's 200 classes for the
    ``fsd50k`` source, AudioSet's 527 for ``audioset``) or the front-end does not normalise
    (mean 0, std 1), else the training split's), ``augment``,
    ``sampler`` (``balanced``: PSLA's; ``shuffle``), ``num_workers`` (DataLoader processes
    per rank)."""

    SECTION = "data"

    source: str = "fsd50k"
    fbank: FbankConfig = FSD50K_FBANK
    norm_stats: str = "auto"
    augment: AugmentConfig = AugmentConfig()
    sampler: str = "balanced"
    num_workers: int = 2

    def __post_init__(self) -> None:
        c = _Checks(self.SECTION, self)
        for name, cls in (("fbank", FbankConfig), ("augment", AugmentConfig)):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                try:
                    object.__setattr__(self, name, cls(**value))
                except (TypeError, ValueError) as err:
                    c.need(False, f"{name}: {' '.join(str(err).split())}")
        c.need(self.source in list_sources(),
               f"source must be one of {tuple(list_sources())} (got {self.source!r})")
        c.need(self.norm_stats in NORM_STATS,
               f"norm_stats must be one of {', '.join(NORM_STATS)} (got {self.norm_stats!r})")
        c.need(self.sampler in ("balanced", "shuffle"),
               f"sampler must be 'balanced' or 'shuffle' (got {self.sampler!r})")
        c.integer("num_workers", low=0)
        c.done()

    @property
    def reads(self) -> str:
        """``logmel`` or ``embedding``: what the source gives the model."""
        return get_source(self.source).reads


@dataclass(frozen=True)
class OptimSection(_Section):
    """Optimisation: Adam(``lr``, ``betas``, ``weight_decay``), ``batch_size`` clips per step
    in all (split evenly over DDP ranks), linear warm-up over ``warmup_steps`` optimiser
    steps, then the rate multiplied by ``lr_decay`` every ``lr_decay_every`` epochs after the
    first ``lr_decay_start`` epochs (``None``: constant rate); ``epochs``, and ``max_steps``
    to stop earlier (AT-GCN counts iterations). The step: ``precision`` (``fp32``, ``bf16``,
    ``fp16`` with a gradient scaler), ``clip_grad_norm``, ``channels_last``, ``compile``
    (``torch.compile`` of the training forward), ``sync_bn`` (SyncBatchNorm under DDP).
    ``hardware``: what the recipe is sized for (``gpu``: the papers' recipes, which a CPU
    run is warned about before its first step; ``any``)."""

    SECTION = "optim"

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
    hardware: str = "any"

    def __post_init__(self) -> None:
        c = _Checks(self.SECTION, self)
        try:
            object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        except (TypeError, ValueError):
            pass  # reported below
        for name in ("epochs", "batch_size", "lr_decay_every"):
            c.integer(name)
        c.integer("warmup_steps", low=0)
        c.need(self.max_steps is None or (isinstance(self.max_steps, int) and
                                          not isinstance(self.max_steps, bool) and
                                          self.max_steps > 0),
               f"max_steps must be a positive integer or None (got {self.max_steps!r})")
        c.need(self.lr > 0, f"lr must be > 0 (got {self.lr})")
        c.need(isinstance(self.betas, tuple) and len(self.betas) == 2 and
               all(isinstance(b, float) and 0 <= b < 1 for b in self.betas),
               f"betas must be two values in [0, 1) (got {self.betas})")
        c.need(self.weight_decay >= 0, f"weight_decay must be >= 0 (got {self.weight_decay})")
        c.need(0 < self.lr_decay <= 1, f"lr_decay must be in (0, 1] (got {self.lr_decay})")
        c.need(self.lr_decay_start is None or self.lr_decay_start >= 0,
               f"lr_decay_start must be >= 0 or None (got {self.lr_decay_start})")
        c.need(self.clip_grad_norm is None or self.clip_grad_norm > 0,
               f"clip_grad_norm must be > 0 or None (got {self.clip_grad_norm})")
        c.need(self.precision in PRECISIONS,
               f"precision must be one of {PRECISIONS} (got {self.precision!r})")
        c.need(self.hardware in ("any", "gpu"),
               f"hardware must be 'any' or 'gpu' (got {self.hardware!r})")
        c.done()


@dataclass(frozen=True)
class EvalSection(_Section):
    """Evaluation: ``modes`` (``crop``: pad or cut to the model's frames, the paper;
    ``windows``: sliding windows with hop ``window_hop`` x frames, max-pooled; the first mode
    picks the best epoch), ``batch_size`` (windows per forward); ``average_from``: average
    the weights of every epoch after the first ``average_from`` epochs, PSLA's weight
    averaging (``None``: off)."""

    SECTION = "eval"

    modes: Tuple[str, ...] = ("crop", "windows")
    window_hop: float = 0.5
    batch_size: int = 32
    average_from: Optional[int] = None

    def __post_init__(self) -> None:
        modes = (self.modes,) if isinstance(self.modes, str) else tuple(self.modes)
        object.__setattr__(self, "modes", modes)
        c = _Checks(self.SECTION, self)
        c.need(bool(modes) and set(modes) <= {"crop", "windows"},
               f"modes must be a non-empty subset of crop, windows (got {modes})")
        c.need(0 < self.window_hop <= 1, f"window_hop must be in (0, 1] (got {self.window_hop})")
        c.integer("batch_size")
        c.need(self.average_from is None or (isinstance(self.average_from, int) and
                                             self.average_from >= 0),
               f"average_from must be an epoch >= 0 or None (got {self.average_from!r})")
        c.done()


#: the sections of a recipe: attribute -> class
SECTIONS: Dict[str, type] = {"model": ModelSection, "data": DataSection,
                             "optim": OptimSection, "eval": EvalSection}
_TOP = ("name", "seed", "log_every")

#: the flat names (the command-line flags, and the fields of recipes before the sections) ->
#: (section, field)
FLAT_FIELDS: Dict[str, Tuple[str, str]] = {
    "model": ("model", "name"), "model_kwargs": ("model", "kwargs"),
    **{k: ("model", k) for k in ("label_graph", "tau", "p", "glove", "pretrained_vig",
                                 "init_from", "freeze_backbone_epochs")},
    "data": ("data", "source"),
    **{k: ("data", k) for k in ("fbank", "norm_stats", "augment", "sampler", "num_workers")},
    **{f.name: ("optim", f.name) for f in dataclasses.fields(OptimSection)},
    "eval_modes": ("eval", "modes"), "window_hop": ("eval", "window_hop"),
    "eval_batch_size": ("eval", "batch_size"), "average_from": ("eval", "average_from")}


@dataclass(frozen=True)
class Recipe:
    """Everything a training run is made of: ``name``, ``seed``, ``log_every`` (steps between
    TensorBoard loss points) and the sections ``model`` (:class:`ModelSection`), ``data``
    (:class:`DataSection`), ``optim`` (:class:`OptimSection`) and ``eval``
    (:class:`EvalSection`). See the module docstring for the presets.

    Invalid values raise one ``ValueError`` naming the recipe and every problem, when built
    through :meth:`replace` or :meth:`from_dict`.
    """

    name: str = "custom"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    eval: EvalSection = field(default_factory=EvalSection)
    seed: int = 0
    log_every: int = 10

    __hash__ = None  # type: ignore[assignment]  -- holds dicts

    def __post_init__(self) -> None:
        problems = _top_problems(self.seed, self.log_every)
        for key, cls in SECTIONS.items():
            if not isinstance(getattr(self, key), cls):
                problems.append(f"{key} must be a {cls.__name__} (got "
                                f"{type(getattr(self, key)).__name__})")
        if not problems:
            problems += _cross_problems(self.optim, self.eval)
        if problems:
            raise ValueError(f"recipe {self.name!r}: " + "; ".join(problems))

    @property
    def input_kind(self) -> str:
        """``logmel`` or ``embedding``: what the model reads (the data source's)."""
        return self.data.reads

    def replace(self, **changes: Any) -> "Recipe":
        """This recipe with ``changes``: whole sections (``optim=recipe.optim.replace(lr=1e-4)``),
        top-level fields (``name``, ``seed``, ``log_every``) or the flat names of
        :data:`FLAT_FIELDS` (``lr=1e-4``, ``eval_batch_size=8``, ``model="cnn10"``). Every
        problem of the result is reported in one ``ValueError`` naming the recipe."""
        top = {k: getattr(self, k) for k in _TOP}
        sections: Dict[str, Any] = {k: getattr(self, k) for k in SECTIONS}
        fields: Dict[str, Dict[str, Any]] = {k: {} for k in SECTIONS}
        unknown = []
        for key, value in changes.items():
            if key in SECTIONS and isinstance(value, SECTIONS[key]):
                sections[key] = value
            elif key in FLAT_FIELDS:
                section, name = FLAT_FIELDS[key]
                fields[section][name] = value
            elif key in _TOP:
                top[key] = value
            else:
                unknown.append(key)
        if unknown:
            raise ValueError(f"recipe {top['name']!r}: unknown recipe fields {sorted(unknown)}")
        return _build(top, sections, fields)

    def to_dict(self) -> Dict[str, Any]:
        """Plain values (JSON), by section: the form of ``config.json`` and of
        :meth:`from_dict`."""
        out: Dict[str, Any] = {"name": self.name}
        out.update({key: getattr(self, key).to_dict() for key in SECTIONS})
        out.update(seed=self.seed, log_every=self.log_every)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Recipe":
        """The recipe of :meth:`to_dict`'s form, or of the flat form of older
        ``config.json`` files (``{"model": "atgnn_pyr_s", "lr": 0.0005, ...}``)."""
        values = dict(values)
        name = values.get("name", "custom")
        sectioned = any(isinstance(values.get(k), Mapping) for k in SECTIONS) or \
            "optim" in values or "eval" in values
        top = {k: values.pop(k) for k in _TOP if k in values}
        top = {"name": "custom", "seed": 0, "log_every": 10, **top}
        fields: Dict[str, Dict[str, Any]] = {k: {} for k in SECTIONS}
        unknown: List[str] = []
        if sectioned:
            for key in list(values):
                if key in SECTIONS and isinstance(values[key], Mapping):
                    known = {f.name for f in dataclasses.fields(SECTIONS[key])}
                    for k, v in values.pop(key).items():
                        if k in known:
                            fields[key][k] = v
                        else:
                            unknown.append(f"{key}.{k}")
            unknown += sorted(values)
        else:
            for key, value in values.items():
                if key in FLAT_FIELDS:
                    section, field_name = FLAT_FIELDS[key]
                    fields[section][field_name] = value
                else:
                    unknown.append(key)
        if unknown:
            raise ValueError(f"recipe {name!r}: unknown recipe fields {sorted(unknown)}")
        return _build(top, {k: None for k in SECTIONS}, fields)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


#: the recipe fields (flat names) a resumed run may change: where the run ends, how often it
#: logs, how its data is loaded and evaluated in batches; every other field would make it
#: another run than the one its state belongs to
RESUMABLE_FIELDS = ("epochs", "max_steps", "log_every", "num_workers", "eval_batch_size")


def _flag(name: str) -> str:
    """The command-line flag of a flat or dotted recipe field name."""
    if name == "name":
        return "--recipe"
    head, dot, tail = name.rpartition(".")
    return "--" + head + dot + tail.replace("_", "-")


def resumed_recipe(recipe: Recipe, changes: Mapping[str, Any]) -> Tuple[Recipe, List[str]]:
    """The recipe of a run continued with ``--resume`` and the options ``changes`` (flat
    names, ``name`` for the preset, dotted ``fbank.FIELD`` / ``augment.FIELD``): those of
    :data:`RESUMABLE_FIELDS` applied (one note each, for the log), any other that differs
    from the run's value refused in one ``ValueError`` naming them all."""
    current = {**{k: getattr(recipe, k) for k in _TOP},
               **{k: getattr(getattr(recipe, sec), name)
                  for k, (sec, name) in FLAT_FIELDS.items()},
               **{f"{part}.{f.name}": getattr(getattr(recipe.data, part), f.name)
                  for part in ("fbank", "augment")
                  for f in dataclasses.fields(getattr(recipe.data, part))}}
    differ = {k: v for k, v in changes.items() if k not in current or current[k] != v}
    refused = sorted(k for k in differ if k not in RESUMABLE_FIELDS)
    if refused:
        raise ValueError(
            f"--resume continues a run with its own settings: {', '.join(map(_flag, refused))} "
            "cannot change (start a new run for that); a resumed run may change "
            f"{', '.join(map(_flag, RESUMABLE_FIELDS))}")
    notes = [f"--resume with {_flag(k)} {v} (the run had {current[k]})"
             for k, v in differ.items()]
    return (recipe.replace(**differ) if differ else recipe), notes


def _top_problems(seed: Any, log_every: Any) -> List[str]:
    problems = []
    if not (isinstance(seed, int) and not isinstance(seed, bool)):
        problems.append(f"seed must be an integer (got {seed!r})")
    if not (isinstance(log_every, int) and not isinstance(log_every, bool) and log_every > 0):
        problems.append(f"log_every must be an integer > 0 (got {log_every!r})")
    return problems


def _cross_problems(optim: Any, eval: Any) -> List[str]:
    """Problems between sections (of their values, valid or not)."""
    epochs, average_from = getattr(optim, "epochs", None), getattr(eval, "average_from", None)
    if isinstance(epochs, int) and isinstance(average_from, int) and average_from >= epochs:
        return [f"eval.average_from must be an epoch in [0, optim.epochs) or None (got "
                f"{average_from}, {epochs} epochs)"]
    return []


def _build(top: Dict[str, Any], sections: Dict[str, Any],
           fields: Dict[str, Dict[str, Any]]) -> Recipe:
    """The recipe of ``top`` fields and ``sections`` (an existing section, or ``None`` for
    the defaults) with ``fields`` changed in them; every problem in one ``ValueError``."""
    problems = _top_problems(top["seed"], top["log_every"])
    built: Dict[str, Any] = {}
    for key, cls in SECTIONS.items():
        base = sections[key]
        try:
            if base is None:
                built[key] = cls(**fields[key])
            else:
                built[key] = base.replace(**fields[key]) if fields[key] else base
        except SectionError as err:
            problems += err.problems
        except TypeError as err:  # a value of the wrong kind, e.g. a number as a string
            problems.append(f"{key}: {' '.join(str(err).split())}")
    def values(key: str) -> Any:  # the section's values, also when they did not validate
        if key in built:
            return built[key]
        base = sections[key] if sections[key] is not None else SECTIONS[key]()
        return SimpleNamespace(**{**dataclasses.asdict(base), **fields[key]})
    problems += _cross_problems(values("optim"), values("eval"))
    if problems:
        raise ValueError(f"recipe {top['name']!r}: " + "; ".join(problems))
    return Recipe(name=top["name"], seed=top["seed"], log_every=top["log_every"], **built)


_ATGNN_FSD50K = Recipe(name="atgnn_fsd50k").replace(hardware="gpu")
_PAPER_ATGCN = dict(lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0, warmup_steps=0,
                    lr_decay_start=None, batch_size=64, hardware="gpu")
_CUSTOM = Recipe()
_SPEC16_64 = AugmentConfig(freq_mask=16, time_mask=64)

RECIPES: Dict[str, Recipe] = {
    "atgnn_fsd50k": _ATGNN_FSD50K,
    "atgnn_audioset": _ATGNN_FSD50K.replace(name="atgnn_audioset", data="audioset",
                                            fbank=AUDIOSET_FBANK, epochs=60, lr_decay_start=35),
    "at_gcn_audioset": _CUSTOM.replace(name="at_gcn_audioset", model="at_gcn", data="audioset",
                                       fbank=PANNS_FBANK, epochs=100, max_steps=600_000,
                                       augment=_SPEC16_64, **_PAPER_ATGCN),
    "cnn10_audioset": _CUSTOM.replace(name="cnn10_audioset", model="cnn10", data="audioset",
                                      fbank=PANNS_FBANK, epochs=100, max_steps=600_000,
                                      augment=_SPEC16_64, **_PAPER_ATGCN),
    "at_gcn_fsd50k": _CUSTOM.replace(name="at_gcn_fsd50k", model="at_gcn", data="fsd50k",
                                     fbank=PANNS_FBANK, epochs=50, augment=_SPEC16_64,
                                     **_PAPER_ATGCN),
    "cnn10_fsd50k": _CUSTOM.replace(name="cnn10_fsd50k", model="cnn10", data="fsd50k",
                                    fbank=PANNS_FBANK, epochs=50, augment=_SPEC16_64,
                                    **_PAPER_ATGCN),
    "embedding_audioset": _CUSTOM.replace(name="embedding_audioset", model="fc2",
                                          data="embeddings", fbank=FSD50K_FBANK,
                                          augment=NO_AUGMENT, sampler="shuffle", epochs=10,
                                          eval_modes=("crop",),
                                          **dict(_PAPER_ATGCN, batch_size=64,
                                                 hardware="any")),
    # small enough for two CPU cores: ViG-Ti-like widths / 2, 4 s of audio, no mixup
    "example": _CUSTOM.replace(name="example", model="atgnn_pyr_t",
                               model_kwargs=dict(channels=[24, 48, 96, 192], drop_path_rate=0.0),
                               fbank=FSD50K_FBANK.replace(target_length=400),
                               norm_stats="compute",
                               augment=AugmentConfig(mixup=0.0, freq_mask=24, time_mask=40),
                               epochs=12, batch_size=16, lr=1e-3, warmup_steps=20,
                               lr_decay_start=8, lr_decay_every=2, num_workers=1,
                               eval_batch_size=16),
}


def list_recipes() -> list:
    return sorted(RECIPES)


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; available: {', '.join(list_recipes())}")
    return RECIPES[name]
