"""Fine-tuning to a new label set: initialise a model from a checkpoint trained on other
labels (``--init-from``) and split its parameters for freezing the backbone.

Every tensor whose shape fits is copied. The per-label tensors (each model class declares its
own with ``label_layout()``, :mod:`gnn_audio.models.label_layout`; they are not guessed from
shapes: two vocabularies can have the same size) are copied entry by entry for the labels
both label sets hold, matched by label id (AudioSet MID) and else by display name
(:func:`~gnn_audio.labels.matching.match_labels`); the other labels keep the new model's own
initial values. :class:`FinetuneReport` records what was copied and says it in log lines.

>>> model = create_model("atgnn_pyr_s", num_classes=10, label_names=names, label_ids=mids)
>>> report = init_from_checkpoint(model, "audioset_best.pt")
>>> for line in report.lines():
...     log.info(line)
>>> for p in backbone_parameters(model):  # the first epochs: train the head only
...     p.requires_grad_(False)

Call these on the plain model, before ``torch.compile`` or DDP wrap it (their state-dict
keys carry prefixes).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from gnn_audio.labels.matching import LabelMatch, match_labels
from gnn_audio.models.label_layout import LabelLayout
from gnn_audio.types import PathLike
from gnn_audio.zoo import ModelBundle, bundle_of, load_checkpoint

__all__ = ["FinetuneReport", "label_axes",
           "head_parameter_names", "backbone_parameters", "init_from_checkpoint"]

#: how many names / keys a log line lists before "(+N more)"
_MAX_LISTED = 20


# -- which tensors are per-label ------------------------------------------------------------

def _layout(model: torch.nn.Module) -> LabelLayout:
    """The model's own :meth:`label_layout`, checked against its state dict."""
    declare = getattr(model, "label_layout", None)
    if not callable(declare):
        raise TypeError(f"{type(model).__name__} declares no label_layout() (see "
                        "gnn_audio.models.label_layout), so fine-tuning cannot tell its "
                        "per-label tensors; pass the plain model, not a compiled or "
                        "DDP-wrapped one")
    layout = declare()
    keys = set(model.state_dict())
    unknown = [k for k in layout.axes if k not in keys]
    if unknown:  # the model changed and its layout did not
        raise RuntimeError(f"label layout of {type(model).__name__} names tensors the model "
                           f"does not have: {unknown}")
    return layout


def label_axes(model: torch.nn.Module) -> Dict[str, Tuple[int, ...]]:
    """The per-label tensors of ``model``: state-dict key -> the dimensions that index
    labels, e.g. ``{"label_embed": (2,), "mlg_stages.0.0.llg.weight": (0, 1), ...}`` for
    ATGNN. Raises ``TypeError`` for a model class fine-tuning does not know."""
    return dict(_layout(model).axes)


def head_parameter_names(model: torch.nn.Module) -> List[str]:
    """Names of the parameters that stay trainable with a frozen backbone: the per-label
    parameters and the classifier / head (ATGNN: the label embeddings, readout and LLG
    adjacencies and the whole patch head ``prediction``; AT-GCN: the GCN; CNN10:
    ``fc_audioset``; embedding taggers: their last linear layer)."""
    layout = _layout(model)
    return [name for name, _ in model.named_parameters()
            if name in layout.axes or name.startswith(layout.head)]


def backbone_parameters(model: torch.nn.Module) -> List[torch.nn.Parameter]:
    """The parameters of ``model`` that :func:`head_parameter_names` does not name: what
    ``--freeze-backbone-epochs`` freezes (``p.requires_grad_(False)``) at first. Batch-norm
    statistics are buffers: keeping them fixed as well is the caller's choice (eval mode)."""
    head = set(head_parameter_names(model))
    return [p for name, p in model.named_parameters() if name not in head]


# -- copying --------------------------------------------------------------------------------

def _copy_entries(dst: Tensor, src: Tensor, dims: Sequence[int], new_idx: Tensor,
                  old_idx: Tensor) -> Tensor:
    """``dst`` with its entries at ``new_idx`` along every dim of ``dims`` (the sub-block, for
    two label axes) replaced by ``src``'s at ``old_idx``."""
    if not dims:
        return src
    d = dims[0]
    inner = _copy_entries(dst.index_select(d, new_idx), src.index_select(d, old_idx),
                          dims[1:], new_idx, old_idx)
    return dst.index_copy(d, new_idx, inner)


def _listed(items: Sequence[str], sep: str = ", ") -> str:
    """``items`` joined by ``sep``; label names are joined by ``"; "`` (AudioSet names hold
    commas: ``Narration, monologue``)."""
    shown = sep.join(items[:_MAX_LISTED])
    return shown + (f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _grouped(keys: Sequence[str]) -> str:
    """State-dict keys listed by their top module: ``label_embed, mlg_stages.* (126)``."""
    groups: Dict[str, List[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".", 1)[0], []).append(key)
    return _listed([members[0] if len(members) == 1 else f"{top}.* ({len(members)})"
                    for top, members in groups.items()])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True)
class FinetuneReport:
    """What :func:`init_from_checkpoint` did.

    ``copied``: keys copied whole (not per-label); ``label_copied``: per-label keys copied
    for the matched labels; ``skipped``: checkpoint keys not used, with the reason (``"not in
    model"``, ``"shape: checkpoint (..) vs model (..)"``); ``missing``: model keys the
    checkpoint lacks (left as initialised); ``match``: the label matching; ``new_labels`` /
    ``dropped_labels``: names of the labels of the new set only / of the checkpoint only;
    ``name_matched``: ``(new name, checkpoint name)`` of the labels matched by name.
    """

    path: str
    source_model: str
    target_model: str
    copied: Tuple[str, ...]
    label_copied: Tuple[str, ...]
    skipped: Tuple[Tuple[str, str], ...]
    missing: Tuple[str, ...]
    match: LabelMatch
    new_labels: Tuple[str, ...]
    dropped_labels: Tuple[str, ...]
    name_matched: Tuple[Tuple[str, str], ...]

    @property
    def num_matched(self) -> int:
        return len(self.match.new_index)

    def lines(self) -> List[str]:
        """Log lines: the summary, then the new labels, the labels matched by name, the
        checkpoint's labels left out, the tensors not used or not found, and a warning for a
        copy by position."""
        m, pre = self.match, f"init-from {self.path}"
        head = (f"{pre} ({self.source_model}, {_count(m.num_old, 'label')} -> "
                f"{self.target_model}, {_count(m.num_new, 'label')}): "
                f"{_count(len(self.copied), 'tensor')} copied, "
                f"{_count(len(self.label_copied), 'per-label tensor')} copied for ")
        if m.by_position:
            head += f"all {_count(m.num_new, 'label')} by position"
        else:
            head += (f"{self.num_matched} of {_count(m.num_new, 'label')} ({m.by_id} by id, "
                     f"{m.by_name} by name)")
        out = [head]
        if self.new_labels:
            out.append(f"{pre}: {_count(len(self.new_labels), 'new label')} initialised "
                       f"fresh: {_listed(self.new_labels, '; ')}")
        if self.name_matched:
            out.append(f"{pre}: {_count(len(self.name_matched), 'label')} matched by name "
                       "(new <- checkpoint): " + _listed(
                           [n if n == o else f"{n} <- {o}" for n, o in self.name_matched], "; "))
        if self.dropped_labels:
            out.append(f"{pre}: {_count(len(self.dropped_labels), 'checkpoint label')} not in "
                       f"the new label set: {_listed(self.dropped_labels, '; ')}")
        unused = [k for k, why in self.skipped if why == "not in model"]
        if unused:
            out.append(f"{pre}: {_count(len(unused), 'checkpoint tensor')} not in the model: "
                       f"{_grouped(unused)}")
        other = [f"{k} ({why})" for k, why in self.skipped if why != "not in model"]
        if other:
            out.append(f"{pre}: {_count(len(other), 'checkpoint tensor')} of another shape, "
                       f"not used: {_listed(other)}")
        if self.missing:
            out.append(f"{pre}: {_count(len(self.missing), 'model tensor')} not in the "
                       f"checkpoint, left as initialised: {_grouped(self.missing)}")
        if m.by_position:
            out.append(f"WARNING {pre}: no label ids or names to match the label sets by; the "
                       "per-label tensors were copied by position, as if both had the same "
                       "labels in the same order")
        return out


def _display(names: Optional[Sequence[str]], ids: Optional[Sequence[str]], i: int) -> str:
    if names is not None and names[i]:
        return names[i]
    if ids is not None and ids[i]:
        return ids[i]
    return f"#{i}"


def _label_shape(shape: torch.Size, dims: Sequence[int], size: int) -> Tuple[int, ...]:
    return tuple(size if d in dims else n for d, n in enumerate(shape))


def init_from_checkpoint(model: torch.nn.Module, path: PathLike, *,
                         strict_backbone: bool = False) -> FinetuneReport:
    """Initialise ``model`` (a zoo model, built for the new label set) from the gnn_audio
    checkpoint ``path``, which may hold other labels and even another model of the family
    (``atgnn_pyr_s`` -> ``atgnn_pyr_s_nomlg``).

    * tensors that are not per-label (see :func:`label_axes`) are copied where the
      checkpoint has the key with the same shape;
    * per-label tensors are copied for the labels of both sets (:func:`match_labels` on the
      checkpoint's ``label_ids`` / ``label_names`` and the model's): rows, or the sub-block
      of the matched labels for ``[S, S]`` tensors; the new labels' entries keep the model's
      own initial values. Same labels in the same order: copied whole.

    If the checkpoint or the model has neither label ids nor names, the label sets cannot be
    matched: with the same number of classes the per-label tensors are copied by position
    (the report's lines warn), else a ``ValueError`` is raised. ``strict_backbone=True``
    raises ``ValueError`` (and changes nothing) when a model tensor that is not per-label is
    missing from the checkpoint or has another shape there. A checkpoint of which no tensor
    fits raises ``ValueError`` too. Errors name the file; reading errors are those of
    :func:`~gnn_audio.zoo.load_checkpoint`.
    """
    path = os.fspath(path)
    ckpt = load_checkpoint(path)
    layout = _layout(model)
    bundle = bundle_of(model, path)
    match = _match(ckpt, bundle, path)
    copy = _copy_plan(model, ckpt["state_dict"], layout, match)
    if strict_backbone:
        bad = [k for k in copy.missing if k not in layout.axes] + [
            f"{k} ({why})" for k, why in copy.skipped if k in copy.own and k not in layout.axes]
        if bad:
            raise ValueError(f"{path} does not hold the whole backbone of {bundle.name}: "
                             f"{len(bad)} tensors missing or of another shape, e.g. "
                             f"{'; '.join(bad[:3])}")
    if not copy.copied and not copy.label_copied:
        raise ValueError(f"{path}: no tensor of the checkpoint ({ckpt['model_name']}) fits "
                         f"{bundle.name}")
    model.load_state_dict(copy.updates, strict=False)
    old_names, old_ids = ckpt["label_names"], ckpt["label_ids"]
    new_names, new_ids = bundle.label_names, bundle.label_ids
    return FinetuneReport(
        path=path, source_model=str(ckpt["model_name"]), target_model=bundle.name,
        copied=tuple(copy.copied), label_copied=tuple(copy.label_copied),
        skipped=tuple(copy.skipped), missing=tuple(copy.missing), match=match,
        new_labels=tuple(_display(new_names, new_ids, i) for i in match.unmatched_new),
        dropped_labels=tuple(_display(old_names, old_ids, j) for j in match.unmatched_old),
        name_matched=tuple((_display(new_names, new_ids, i), _display(old_names, old_ids, j))
                           for i, j, how in zip(match.new_index, match.old_index, match.how)
                           if how == "name"))


def _match(ckpt: Dict[str, Any], bundle: ModelBundle, path: str) -> LabelMatch:
    """The checkpoint's labels matched to the model's (by position when neither side has ids
    or names and the counts agree); ``ValueError`` naming the file when they cannot be."""
    old_ids, old_names = ckpt["label_ids"], ckpt["label_names"]
    new_ids, new_names = bundle.label_ids, bundle.label_names
    num_old, num_new = int(ckpt["num_classes"]), int(bundle.num_classes)
    if (old_ids and new_ids) or (old_names and new_names):
        match = match_labels(old_ids or None, old_names or None, new_ids or None,
                             new_names or None)
    elif num_old == num_new:
        match = LabelMatch.positional(num_new)
    else:
        lacking = ("the checkpoint" if not (old_ids or old_names)
                   else f"the model ({bundle.name})")
        raise ValueError(f"{path}: cannot match the checkpoint's {num_old} labels to the "
                         f"model's {num_new}: {lacking} has no label ids or names")
    if match.num_old != num_old or match.num_new != num_new:
        raise ValueError(f"{path}: {match.num_old} checkpoint labels for {num_old} classes or "
                         f"{match.num_new} model labels for {num_new} classes")
    return match


@dataclass
class _CopyPlan:
    """What :func:`init_from_checkpoint` loads: ``updates`` (key -> tensor) and the keys
    copied whole, copied per label, skipped (with the reason) and missing."""

    own: Dict[str, Tensor]
    updates: Dict[str, Tensor] = field(default_factory=dict)
    copied: List[str] = field(default_factory=list)
    label_copied: List[str] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)


def _copy_plan(model: torch.nn.Module, old_state: Dict[str, Tensor], layout: LabelLayout,
               match: LabelMatch) -> _CopyPlan:
    """Every model tensor found in ``old_state``: whole where it is not per-label, the
    matched labels' entries where it is."""
    plan = _CopyPlan(own=model.state_dict())
    new_idx = torch.tensor(match.new_index, dtype=torch.long)
    old_idx = torch.tensor(match.old_index, dtype=torch.long)
    for key, dst in plan.own.items():
        src = old_state.get(key)
        if src is None:
            plan.missing.append(key)
            continue
        dims = layout.axes.get(key)
        expected = (tuple(dst.shape) if dims is None
                    else _label_shape(dst.shape, dims, match.num_old))
        if tuple(src.shape) != expected:
            plan.skipped.append((key, f"shape: checkpoint {tuple(src.shape)} vs model "
                                      f"{tuple(dst.shape)}"))
            continue
        src = src.to(device=dst.device, dtype=dst.dtype)
        if dims is None:
            plan.updates[key] = src
            plan.copied.append(key)
        elif match.is_identity:
            plan.updates[key] = src
            plan.label_copied.append(key)
        elif match.new_index:
            plan.updates[key] = _copy_entries(dst.detach(), src, dims, new_idx.to(dst.device),
                                              old_idx.to(dst.device))
            plan.label_copied.append(key)
    plan.skipped += [(key, "not in model") for key in old_state if key not in plan.own]
    return plan
