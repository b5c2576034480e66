"""Fine-tuning to a new label set: initialise a model from a checkpoint trained on other
labels (``--init-from``) and split its parameters for freezing the backbone.

Every tensor whose shape fits is copied. The per-label tensors (each model's are declared by
:func:`label_axes`, not guessed from shapes: two vocabularies can have the same size) are
copied entry by entry for the labels both label sets hold, matched by label id (AudioSet MID)
and else by display name (:func:`match_labels`); the other labels keep the new model's own
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
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from gnn_audio.models.at_gcn import ATGCN
from gnn_audio.models.atgnn import ATGNN
from gnn_audio.models.cnn10 import CNN10
from gnn_audio.models.embedding_taggers import FCTagger, GatedCNNTagger, LSTMTagger
from gnn_audio.nn import LabelLabelConv
from gnn_audio.types import PathLike
from gnn_audio.zoo.checkpoints import load_checkpoint

__all__ = ["LabelMatch", "FinetuneReport", "match_labels", "label_axes",
           "head_parameter_names", "backbone_parameters", "init_from_checkpoint"]

#: how many names / keys a log line lists before "(+N more)"
_MAX_LISTED = 20


# -- which tensors are per-label ------------------------------------------------------------

@dataclass(frozen=True)
class _LabelLayout:
    """``axes``: state-dict key -> the dimensions that index labels; ``head``: the module
    prefixes (``"prediction."``) of the classifier / head, trained even with a frozen
    backbone."""

    axes: Dict[str, Tuple[int, ...]]
    head: Tuple[str, ...]


def _linear(prefix: str, module: torch.nn.Module) -> Dict[str, Tuple[int, ...]]:
    """The rows of a classifier layer (``Linear`` / 1x1 ``Conv2d``): one per label."""
    axes = {f"{prefix}.weight": (0,)}
    if getattr(module, "bias", None) is not None:
        axes[f"{prefix}.bias"] = (0,)
    return axes


def _last_linear(model: torch.nn.Module, seq_name: str) -> str:
    """The name (``"net.2"``) of the last ``Linear`` of the ``Sequential`` ``seq_name``."""
    seq = getattr(model, seq_name)
    index = max(i for i, m in enumerate(seq) if isinstance(m, torch.nn.Linear))
    return f"{seq_name}.{index}"


def _atgnn_layout(model: ATGNN) -> _LabelLayout:
    # patch head: the last 1x1 convolution's rows; label branch: label embeddings [1, C, S, 1],
    # readout rows [S, C] and every LLG adjacency [S, S] (both axes are labels)
    last = f"prediction.{len(model.prediction) - 1}"
    axes = _linear(last, model.prediction[-1])
    if model.mlg:
        axes.update({"label_embed": (2,), "label_readout": (0,)})
        for name, module in model.named_modules():
            if isinstance(module, LabelLabelConv):
                axes[f"{name}.weight"] = (0, 1)
    return _LabelLayout(axes, ("prediction.",))


def _atgcn_layout(model: ATGCN) -> _LabelLayout:
    # label nodes: GloVe features [S, D] and the co-occurrence graph A' [S, S] (buffers); the
    # GCN that turns them into the classifier is the head
    return _LabelLayout({"label_embeddings": (0,), "adjacency": (0, 1)}, ("gcn.",))


def _cnn10_layout(model: CNN10) -> _LabelLayout:
    return _LabelLayout(_linear("fc_audioset", model.fc_audioset), ("fc_audioset.",))


def _fc_layout(model: FCTagger) -> _LabelLayout:
    last = _last_linear(model, "net")
    return _LabelLayout(_linear(last, model.get_submodule(last)), (f"{last}.",))


def _lstm_layout(model: LSTMTagger) -> _LabelLayout:
    last = _last_linear(model, "head")
    return _LabelLayout(_linear(last, model.get_submodule(last)), (f"{last}.",))


def _gated_layout(model: GatedCNNTagger) -> _LabelLayout:
    return _LabelLayout(_linear("fc", model.fc), ("fc.",))


#: model class -> its label layout (subclasses use their base's)
_LAYOUTS: Dict[type, Callable[..., _LabelLayout]] = {
    ATGNN: _atgnn_layout, ATGCN: _atgcn_layout, CNN10: _cnn10_layout, FCTagger: _fc_layout,
    LSTMTagger: _lstm_layout, GatedCNNTagger: _gated_layout,
}


def _layout(model: torch.nn.Module) -> _LabelLayout:
    for cls in type(model).__mro__:
        if cls in _LAYOUTS:
            layout = _LAYOUTS[cls](model)
            keys = set(model.state_dict())
            unknown = [k for k in layout.axes if k not in keys]
            if unknown:  # the model changed and its layout entry did not
                raise RuntimeError(f"label layout of {type(model).__name__} names tensors the "
                                   f"model does not have: {unknown}")
            return layout
    raise TypeError(f"no label layout for {type(model).__name__} (fine-tuning knows "
                    f"{', '.join(c.__name__ for c in _LAYOUTS)}); pass the plain model, not a "
                    "compiled or DDP-wrapped one")


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


# -- matching two label sets ----------------------------------------------------------------

def _norm_name(name: str) -> str:
    """Case-folded, with underscores as spaces and runs of white space as one space (FSD50K
    writes ``Accelerating_and_revving_and_vroom``)."""
    return " ".join(name.replace("_", " ").split()).casefold()


@dataclass(frozen=True)
class LabelMatch:
    """Which label of the new set is which label of the old one.

    ``new_index[i]`` (a position in the new set) is ``old_index[i]`` (a position in the old
    set), matched as ``how[i]``: ``"id"``, ``"name"`` or ``"position"`` (no ids or names to
    match by, same size). ``unmatched_new`` / ``unmatched_old``: labels of one set only.
    """

    new_index: Tuple[int, ...]
    old_index: Tuple[int, ...]
    how: Tuple[str, ...]
    unmatched_new: Tuple[int, ...]
    unmatched_old: Tuple[int, ...]
    num_new: int
    num_old: int

    @property
    def pairs(self) -> Dict[int, int]:
        """``new position -> old position``."""
        return dict(zip(self.new_index, self.old_index))

    @property
    def by_id(self) -> int:
        return self.how.count("id")

    @property
    def by_name(self) -> int:
        return self.how.count("name")

    @property
    def by_position(self) -> bool:
        return "position" in self.how

    @property
    def is_identity(self) -> bool:
        """The same labels in the same order."""
        n = self.num_new
        return self.num_old == n and self.new_index == self.old_index == tuple(range(n))

    @classmethod
    def positional(cls, num_classes: int) -> "LabelMatch":
        """Label ``i`` is label ``i`` (for label sets with nothing to match them by)."""
        index = tuple(range(num_classes))
        return cls(index, index, ("position",) * num_classes, (), (), num_classes, num_classes)


def _side(ids: Optional[Sequence[str]], names: Optional[Sequence[str]], what: str) -> int:
    if ids is None and names is None:
        raise ValueError(f"the {what} label set has neither ids nor names to match by")
    if ids is not None and names is not None and len(ids) != len(names):
        raise ValueError(f"the {what} label set has {len(ids)} ids but {len(names)} names")
    return len(ids) if ids is not None else len(names)


def match_labels(old_ids: Optional[Sequence[str]], old_names: Optional[Sequence[str]],
                 new_ids: Optional[Sequence[str]],
                 new_names: Optional[Sequence[str]]) -> LabelMatch:
    """Match the new label set to the old one: first by id (where both sets have ids; empty
    ids count as none), then the rest by display name (case-insensitive, ``_`` as space,
    white space normalised), each old label used once. Ids from different namespaces thus
    still match by name; :class:`FinetuneReport` lists the labels matched by name.
    ``new_index`` is in new-set order."""
    num_old = _side(old_ids, old_names, "old")
    num_new = _side(new_ids, new_names, "new")
    found: Dict[int, Tuple[int, str]] = {}
    used = set()
    if old_ids is not None and new_ids is not None:
        by_id: Dict[str, int] = {}
        for j, mid in enumerate(old_ids):
            if mid:
                by_id.setdefault(mid, j)
        for i, mid in enumerate(new_ids):
            j = by_id.get(mid) if mid else None
            if j is not None and j not in used:
                found[i] = (j, "id")
                used.add(j)
    if old_names is not None and new_names is not None:
        by_name: Dict[str, List[int]] = {}
        for j, name in enumerate(old_names):
            if name and j not in used:
                by_name.setdefault(_norm_name(name), []).append(j)
        for i, name in enumerate(new_names):
            if i in found or not name:
                continue
            free = [j for j in by_name.get(_norm_name(name), []) if j not in used]
            if free:
                found[i] = (free[0], "name")
                used.add(free[0])
    order = sorted(found)
    return LabelMatch(new_index=tuple(order), old_index=tuple(found[i][0] for i in order),
                      how=tuple(found[i][1] for i in order),
                      unmatched_new=tuple(i for i in range(num_new) if i not in found),
                      unmatched_old=tuple(j for j in range(num_old) if j not in used),
                      num_new=num_new, num_old=num_old)


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
    target = getattr(model, "model_name", type(model).__name__)
    old_ids, old_names = ckpt["label_ids"], ckpt["label_names"]
    new_ids = getattr(model, "label_ids", None)
    new_names = getattr(model, "label_names", None)
    num_old, num_new = int(ckpt["num_classes"]), int(model.num_classes)
    if (old_ids and new_ids) or (old_names and new_names):
        match = match_labels(old_ids or None, old_names or None, new_ids or None,
                             new_names or None)
    elif num_old == num_new:
        match = LabelMatch.positional(num_new)
    else:
        lacking = "the checkpoint" if not (old_ids or old_names) else f"the model ({target})"
        raise ValueError(f"{path}: cannot match the checkpoint's {num_old} labels to the "
                         f"model's {num_new}: {lacking} has no label ids or names")
    if match.num_old != num_old or match.num_new != num_new:
        raise ValueError(f"{path}: {match.num_old} checkpoint labels for {num_old} classes or "
                         f"{match.num_new} model labels for {num_new} classes")

    old_state, own = ckpt["state_dict"], model.state_dict()
    new_idx = torch.tensor(match.new_index, dtype=torch.long)
    old_idx = torch.tensor(match.old_index, dtype=torch.long)
    updates: Dict[str, Tensor] = {}
    copied, label_copied, skipped, missing = [], [], [], []
    for key, dst in own.items():
        src = old_state.get(key)
        if src is None:
            missing.append(key)
            continue
        dims = layout.axes.get(key)
        expected = tuple(dst.shape) if dims is None else _label_shape(dst.shape, dims, num_old)
        if tuple(src.shape) != expected:
            skipped.append((key, f"shape: checkpoint {tuple(src.shape)} vs model "
                                 f"{tuple(dst.shape)}"))
            continue
        src = src.to(device=dst.device, dtype=dst.dtype)
        if dims is None:
            updates[key] = src
            copied.append(key)
        elif match.is_identity:
            updates[key] = src
            label_copied.append(key)
        elif match.new_index:
            updates[key] = _copy_entries(dst.detach(), src, dims, new_idx.to(dst.device),
                                         old_idx.to(dst.device))
            label_copied.append(key)
    skipped += [(key, "not in model") for key in old_state if key not in own]
    if strict_backbone:
        bad = [k for k in missing if k not in layout.axes] + [
            f"{k} ({why})" for k, why in skipped if k in own and k not in layout.axes]
        if bad:
            raise ValueError(f"{path} does not hold the whole backbone of {target}: "
                             f"{len(bad)} tensors missing or of another shape, e.g. "
                             f"{'; '.join(bad[:3])}")
    if not copied and not label_copied:
        raise ValueError(f"{path}: no tensor of the checkpoint ({ckpt['model_name']}) fits "
                         f"{target}")
    model.load_state_dict(updates, strict=False)

    return FinetuneReport(
        path=path, source_model=str(ckpt["model_name"]), target_model=target,
        copied=tuple(copied), label_copied=tuple(label_copied), skipped=tuple(skipped),
        missing=tuple(missing), match=match,
        new_labels=tuple(_display(new_names, new_ids, i) for i in match.unmatched_new),
        dropped_labels=tuple(_display(old_names, old_ids, j) for j in match.unmatched_old),
        name_matched=tuple((_display(new_names, new_ids, i), _display(old_names, old_ids, j))
                           for i, j, how in zip(match.new_index, match.old_index, match.how)
                           if how == "name"))
