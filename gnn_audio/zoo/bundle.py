"""What a zoo model carries besides its weights: one frozen :class:`ModelBundle`, set once by the
builder (``model.bundle``), written whole by :func:`~gnn_audio.zoo.save_checkpoint` and
trusted by :func:`~gnn_audio.zoo.load_model`, the tagger, evaluation and the pictures.

As torchaudio's pipeline bundles, it is the contract between training and inference: the
entry point and its build arguments (``create_model(bundle.name, **bundle.build_kwargs)``
rebuilds the model), the architecture arguments a checkpoint must match, the
:class:`~gnn_audio.zoo.ModelConfig` with the audio front-end the model was trained with, and
the label set (display names and ids, e.g. AudioSet MIDs).

>>> model = create_model("atgnn_pyr_t", fbank=FSD50K_FBANK.replace(target_length=400))
>>> model.bundle.fbank.target_length, model.bundle.num_classes
(400, 200)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch

from gnn_audio.data.features import FbankConfig
from gnn_audio.labels.label_sets import LabelSet, display_names
from gnn_audio.zoo._registry import ModelConfig

__all__ = ["ModelBundle", "bundle_of"]


@dataclass(frozen=True)
class ModelBundle:
    """Everything known about a built zoo model besides its weights.

    Args:
        name: the zoo entry point (``"atgnn_pyr_s"``).
        config: the entry's :class:`ModelConfig` for this model: its ``num_classes``,
            ``label_set`` (the shipped class list it uses, or ``None``), and for log-mel
            models the front-end ``fbank`` with the ``input_size`` and ``sample_rate`` it
            gives.
        build_kwargs: the entry point's keyword arguments as plain values, ``fbank``
            included when it is not the entry's default.
        arch: the values of the entry's ``ModelConfig.arch_args`` (the parameter layout).
        label_names: one display name per class, or ``None``.
        label_ids: one id per class (AudioSet MIDs / data-set ids), or ``None``: what
            fine-tuning matches label sets by.
    """

    name: str
    config: ModelConfig
    build_kwargs: Dict[str, Any]
    arch: Dict[str, Any]
    label_names: Optional[Tuple[str, ...]] = None
    label_ids: Optional[Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        n = self.config.num_classes
        for key in ("label_names", "label_ids"):
            value = getattr(self, key)
            if value is not None:
                value = tuple(value)
                if len(value) != n or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{self.name}: {key} must be {n} strings (one per class), "
                                     f"got {len(value)}")
                object.__setattr__(self, key, value)
        object.__setattr__(self, "build_kwargs", dict(self.build_kwargs))
        object.__setattr__(self, "arch", dict(self.arch))

    __hash__ = None  # type: ignore[assignment]  -- holds dicts

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def fbank(self) -> Optional[FbankConfig]:
        """The log-mel front-end (``None`` for models that read embeddings)."""
        return self.config.fbank

    @property
    def is_logmel(self) -> bool:
        """Whether the model reads log-mel features of audio (else AudioSet embeddings)."""
        return self.config.input == "logmel" and self.config.fbank is not None

    @property
    def frames(self) -> int:
        """Input frames per clip (log-mel frames, or embedding frames)."""
        return int(self.config.input_size[0])

    @property
    def names(self) -> Tuple[str, ...]:
        """Display names of the classes (``class_<i>`` for a model without names)."""
        return display_names(self.label_names, self.num_classes)

    @property
    def labels(self) -> Optional[LabelSet]:
        """The label set (ids and names) when the model has both, else ``None``."""
        if self.label_names is None or self.label_ids is None:
            return None
        return LabelSet(self.config.label_set or self.name, self.label_ids, self.label_names)

    def require_logmel(self, where: str) -> "ModelBundle":
        """``self``, or ``ValueError`` (one line starting with ``where``) for a model that
        reads embeddings instead of audio."""
        if not self.is_logmel:
            raise ValueError(f"{where}: holds a {self.name} model, which reads AudioSet "
                             "embeddings, not audio; this needs a log-mel model")
        return self

    def replace(self, **changes: Any) -> "ModelBundle":
        return dataclasses.replace(self, **changes)


def bundle_of(model: torch.nn.Module, where: Optional[str] = None) -> ModelBundle:
    """``model.bundle``; ``ValueError`` (one line) for a module the zoo did not build. A
    ``DistributedDataParallel`` or ``torch.compile`` wrapper is looked through."""
    for inner in (model, getattr(model, "module", None), getattr(model, "_orig_mod", None)):
        bundle = getattr(inner, "bundle", None)
        if isinstance(bundle, ModelBundle):
            return bundle
    what = where or type(model).__name__
    raise ValueError(f"{what}: not a gnn_audio zoo model (no bundle); build it with "
                     "gnn_audio.zoo.create_model")
