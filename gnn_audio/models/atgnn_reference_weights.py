"""Weights trained with the ATGNN authors' code (github.com/shubhrsingh22/ATGNN) in gnn_audio.

The authors train ``src.models.components.atgnn.ATGNN`` (pyramid only: sizes t/s/m/b,
``use_mlg`` on or off) inside a PyTorch Lightning ``TaggingModule`` whose network attribute
is ``net``. Their files are

* Lightning ``.ckpt``: ``{"state_dict": {"net.<name>": tensor, ...}, "epoch", "global_step",
  "hyper_parameters", "optimizer_states", ...}`` (``net._orig_mod.<name>`` when trained with
  ``compile: true``, which wraps ``net`` in ``torch.compile`` during fit);
* ``wa.pth.tar`` (checkpoint averaging): ``net.state_dict()`` itself, no prefix; its
  ``num_batches_tracked`` values are averages.

:func:`convert_reference_checkpoint` takes the loaded dict (any of those) and a gnn_audio
:class:`~gnn_audio.models.ATGNN` and returns the state dict for
``model.load_state_dict(strict=True)``. Their names (after ``net.``) map to ours as follows
(``S``: classes, ``C``: stage width, ``C0``: first stage width, ``i``: flat backbone index,
``s``: stage, ``b``: MLG block in the stage).

Unchanged (same name, same shape):

* ``stem.convs.{0,3,6}.{weight,bias}`` (3x3 convs 1 -> C0/2 -> C0 -> C0) and
  ``stem.convs.{1,4,7}.*`` (BatchNorm, incl. ``num_batches_tracked``, as every BN below);
* ``pos_embed`` ``[1, C0, mel/4, frames/4]``;
* ``backbone.i.0.fc1.{0,1}.*``, ``backbone.i.0.fc2.{0,1}.*`` (Grapher 1x1 conv + BN);
* ``backbone.i.1.fc1.{0,1}.*``, ``backbone.i.1.fc2.{0,1}.*`` (FFN C -> 4C -> C);
* ``backbone.i.conv.{0,1}.*`` (Downsample at i = 2, 5, 12 for blocks [2, 2, 6, 2]);
* ``prediction.{0,1,4}.*`` (1x1 C4 -> 1024, BN, GELU, dropout, 1x1 1024 -> S);
* MLG only: ``label_embed`` ``[1, C0, S, 1]``, ``label_proj.s.{0,1}.*`` (s >= 1, 1x1 conv
  C_{s-1} -> C_s + BN; ``label_proj.0`` is an Identity without tensors),
  ``mlg_stages.s.b.plg.nn.0.bias``, ``mlg_stages.s.b.plg.nn.1.*``,
  ``mlg_stages.s.b.ffn.fc{1,2}.{0,1}.*``, ``label_readout`` ``[S, C4]``.

Renamed and/or reshaped:

* ``backbone.i.0.graph_conv.gconv.nn.0.weight`` ``[2C, 2C/4, 1, 1]`` ->
  ``backbone.i.0.graph_conv.nn.0.weight`` ``[2C, 2C/4]`` (grouped 1x1 Conv2d ->
  :class:`~gnn_audio.nn.GroupedLinear`, same element order);
* ``backbone.i.0.graph_conv.gconv.nn.{0.bias,1.*}`` -> ``backbone.i.0.graph_conv.nn.{...}``;
* ``mlg_stages.s.b.plg.nn.0.weight`` ``[C, 2C/4, 1, 1]`` -> same name, ``[C, 2C/4]``;
* ``mlg_stages.s.b.adj`` ``[S, S]`` -> ``mlg_stages.s.b.llg.weight`` (both compute
  ``L_hat = A L + L``, row i of A = weights into label i).

Dropped:

* ``backbone.i.0.relative_pos`` ``[1, n, n // r^2]`` (12 for blocks [2, 2, 6, 2]; at
  1024 x 128: 8192x512, 2048x512, 512x512, 128x128): gnn_audio computes the term itself.

Facts behind the table: their ``Grapher`` wraps ``MRConv2d`` as ``graph_conv.gconv`` with
``nn = BasicConv([2C, 2C])`` (1x1 conv, groups 4, BN, GELU); the PLG's ``nn`` is
``BasicConv([2C, C])``; both concatenate channel-interleaved, as gnn_audio's
``concat="interleave"``. Each of their ``Grapher`` s holds ``relative_pos``, an
``nn.Parameter(requires_grad=False)`` of shape ``[1, n, n // r^2]`` with ``n`` the nodes of
the stage at the design input (``(mel // 4) * (frames // 4) // 4^stage``) and ``r`` the key
pooling (4, 2, 1, 1); it is dropped after checking its shape against the model's grid (a
file made for another input size is refused). The authors' torchmetrics states are not
persistent; should a file hold them (``train_loss.*``, ``val_loss.*``, ``test_loss.*``,
``val_mAP_best.*``, ``ap.*``, ``ap_test.*``) they are dropped too.

Everything else must match: a file of another size, with MLG for a model without it (or the
reverse), another class count, other MLG block counts or input size, missing or extra
tensors raise a one-line ``ValueError`` naming the file.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from gnn_audio.models.atgnn import ATGNN
from gnn_audio.models.vig_blocks import PGNBlock

__all__ = ["convert_reference_checkpoint", "REFERENCE_NET_PREFIX"]

#: the LightningModule attribute holding the network (``TaggingModule.net``)
REFERENCE_NET_PREFIX = "net."
#: torchmetrics attributes of ``TaggingModule`` (their states are non-persistent by default)
_METRIC_PREFIXES = ("train_loss.", "val_loss.", "test_loss.", "val_mAP_best.", "ap.",
                    "ap_test.")
#: (theirs, ours) name rewrites
_RENAMES = ((re.compile(r"^(backbone\.\d+\.0\.graph_conv\.)gconv\.nn\."), r"\1nn."),
            (re.compile(r"^(mlg_stages\.\d+\.\d+\.)adj$"), r"\1llg.weight"))
_RELATIVE_POS = re.compile(r"^backbone\.(\d+)\.0\.relative_pos$")
#: gnn_audio zoo names of the pyramid widths (the authors' size "b" has none)
_ZOO_NAMES = {(48, 96, 240, 384): "atgnn_pyr_t", (80, 160, 400, 640): "atgnn_pyr_s",
              (96, 192, 384, 768): "atgnn_pyr_med"}
_REFERENCE_SIZES = {(48, 96, 240, 384): "t", (80, 160, 400, 640): "s",
                    (96, 192, 384, 768): "m", (128, 256, 512, 1024): "b"}


def _their_to_our_name(key: str) -> str:
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return key


def _net_state_dict(checkpoint: Any, path: str) -> Tuple[Dict[str, Tensor], List[str], str]:
    """The network's tensors without the ``net.`` (and ``_orig_mod.``) prefix, the names of
    Lightning-module tensors that are not the network's (metric states), and the kind of
    file (``"lightning"`` or ``"state_dict"``)."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path} is not an ATGNN checkpoint: it holds a "
                         f"{type(checkpoint).__name__}, not a dict")
    kind = "state_dict"
    sd = checkpoint
    if "state_dict" in checkpoint:
        sd, kind = checkpoint["state_dict"], "lightning"
        if not isinstance(sd, Mapping):
            raise ValueError(f"{path} is not an ATGNN checkpoint: its 'state_dict' is a "
                             f"{type(sd).__name__}, not a dict of tensors")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"{path} is not an ATGNN checkpoint: {len(bad)} entries of its state "
                         f"dict are not named tensors (e.g. {bad[0]!r})")
    prefixed = any(k.startswith(REFERENCE_NET_PREFIX) for k in sd)
    net: Dict[str, Tensor] = {}
    extra: List[str] = []
    others: List[str] = []
    for key, value in sd.items():
        if prefixed:
            if not key.startswith(REFERENCE_NET_PREFIX):
                (extra if key.startswith(_METRIC_PREFIXES) else others).append(key)
                continue
            key = key[len(REFERENCE_NET_PREFIX):]
        if key.startswith("_orig_mod."):
            key = key[len("_orig_mod."):]
        net[key] = value
    if others:
        raise ValueError(f"{path} holds {len(others)} tensors outside the network "
                         f"'{REFERENCE_NET_PREFIX[:-1]}' of the authors' TaggingModule "
                         f"(e.g. {others[0]!r}): not an ATGNN checkpoint of their code")
    return net, extra, kind


def _describe(sd: Mapping[str, Tensor]) -> Dict[str, Any]:
    """Architecture read off a state dict (theirs after the prefix, or ours): ``channels``
    and ``blocks`` per stage, ``mlg`` (label branch present), ``mlg_blocks``, ``classes``,
    ``head_hidden`` and ``grid`` (``pos_embed`` ``(H, W)``); ``None`` where unreadable."""
    widths: Dict[int, int] = {}
    downs = set()
    for key, value in sd.items():
        m = re.match(r"^backbone\.(\d+)\.(0\.fc1\.0|conv\.0)\.weight$", key)
        if m:
            if m.group(2) == "conv.0":
                downs.add(int(m.group(1)))
            else:
                widths[int(m.group(1))] = int(value.shape[0])
    channels: List[int] = []
    blocks: List[int] = []
    for i in sorted(set(widths) | downs):
        if i in downs or not channels:
            channels.append(widths.get(i + 1 if i in downs else i, -1))
            blocks.append(0)
        if i in widths:
            blocks[-1] += 1
    mlg_counts: Dict[int, set] = {}
    for key in sd:
        m = re.match(r"^mlg_stages\.(\d+)\.(\d+)\.", key)
        if m:
            mlg_counts.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    mlg = "label_embed" in sd or "label_readout" in sd or bool(mlg_counts)
    classes = None
    for key, dim in (("prediction.4.weight", 0), ("prediction.4.bias", 0),
                     ("label_readout", 0), ("label_embed", 2)):
        if key in sd and sd[key].dim() > dim:
            classes = int(sd[key].shape[dim])
            break
    head = sd.get("prediction.0.weight")
    pos = sd.get("pos_embed")
    return dict(
        channels=channels or None, blocks=blocks or None, mlg=mlg,
        mlg_blocks=[len(mlg_counts.get(s, ())) for s in range(len(channels))] if mlg else None,
        classes=classes, head_hidden=int(head.shape[0]) if head is not None else None,
        grid=tuple(int(d) for d in pos.shape[-2:]) if pos is not None and pos.dim() == 4
        else None)


def _name(channels: Optional[List[int]], mlg: bool) -> str:
    base = _ZOO_NAMES.get(tuple(channels or ()))
    if base is None:
        return f"an ATGNN of channels {channels}"
    return base if mlg else f"{base}_nomlg"


def _compare(theirs: Dict[str, Any], ours: Dict[str, Any], path: str) -> None:
    """One-line ``ValueError`` for the first architectural difference."""
    tc, oc = theirs["channels"], ours["channels"]
    if tc is not None and (tc != oc or theirs["blocks"] != ours["blocks"]):
        size = _REFERENCE_SIZES.get(tuple(tc))
        size = f" (their size '{size}'" + (f", gnn_audio's {_ZOO_NAMES[tuple(tc)]})"
                                           if tuple(tc) in _ZOO_NAMES else ", no gnn_audio "
                                           "model of that width)") if size else ""
        raise ValueError(f"{path} holds an ATGNN of channels {tc} and blocks {theirs['blocks']}"
                         f"{size}; the model has channels {oc} and blocks {ours['blocks']}"
                         + (f": build {_name(tc, ours['mlg'])} instead"
                            if tuple(tc) in _ZOO_NAMES else ""))
    if theirs["mlg"] and not ours["mlg"]:
        raise ValueError(f"{path} holds an ATGNN with MLG (label graph blocks); the model has "
                         f"none: build {_name(oc, True)} instead of {_name(oc, False)}")
    if ours["mlg"] and not theirs["mlg"]:
        raise ValueError(f"{path} holds an ATGNN without MLG (the encoder-only '-MLG' model); "
                         f"the model has label graph blocks: build {_name(oc, False)} instead "
                         f"of {_name(oc, True)}")
    if theirs["classes"] is not None and theirs["classes"] != ours["classes"]:
        raise ValueError(f"{path} holds an ATGNN for {theirs['classes']} classes; the model has "
                         f"{ours['classes']}: build it with num_classes={theirs['classes']}")
    if theirs["mlg"] and theirs["mlg_blocks"] != ours["mlg_blocks"]:
        raise ValueError(f"{path} holds MLG blocks {theirs['mlg_blocks']} per stage; the model "
                         f"has {ours['mlg_blocks']}: build it with "
                         f"mlg_blocks={theirs['mlg_blocks']}")
    if theirs["head_hidden"] is not None and theirs["head_hidden"] != ours["head_hidden"]:
        raise ValueError(f"{path} has a {theirs['head_hidden']}-wide patch head; the model's is "
                         f"{ours['head_hidden']}: build it with "
                         f"head_hidden={theirs['head_hidden']}")
    if theirs["grid"] is not None and theirs["grid"] != ours["grid"]:
        (h, w), (oh, ow) = theirs["grid"], ours["grid"]
        raise ValueError(f"{path} was made for a {4 * w}-frame x {4 * h}-mel-bin input "
                         f"(pos_embed grid {h} x {w}); the model is built for "
                         f"{4 * ow} x {4 * oh} (grid {oh} x {ow}): build it with "
                         f"input_size=({4 * w}, {4 * h})")


def _relative_pos_shapes(model: torch.nn.Module) -> Dict[int, Tuple[int, int, int]]:
    """``{backbone index: (1, n, n // r^2)}``: the shape of the authors' table for each PGN
    block of ``model`` (``n`` the nodes of the block's design grid, ``r`` its key pooling)."""
    shapes = {}
    for i, module in enumerate(model.backbone):
        if isinstance(module, PGNBlock):
            graph = module[0].graph
            if graph.grid is None:
                continue
            n = graph.grid[0] * graph.grid[1]
            r = graph.config.reduce_ratio
            shapes[i] = (1, n, n // (r * r))
    return shapes


def convert_reference_checkpoint(checkpoint: dict, model: torch.nn.Module,
                                 path: str) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
    """Map a checkpoint of the ATGNN authors' code onto ``model``.

    Args:
        checkpoint: the loaded file (``torch.load(path, weights_only=True)``): a Lightning
            checkpoint (weights under ``"state_dict"`` as ``net.<name>``), or a bare state
            dict of their ``ATGNN`` with or without the ``net.`` prefix.
        model: the gnn_audio :class:`~gnn_audio.models.ATGNN` (pyramid) to load into.
        path: the file's name, for error messages.

    Returns:
        ``(state_dict, report)``: the tensors for ``model.load_state_dict(strict=True)`` (in
        the model's dtypes) and ``{"source": "lightning" | "state_dict", "mapped": int,
        "renamed": int, "reshaped": int, "dropped": int, "dropped_names": [...], "epoch",
        "global_step"}`` (``mapped`` counts every tensor returned; ``renamed`` and
        ``reshaped`` are among them; the last two only for a Lightning file).

    Raises:
        ValueError: in one line naming ``path``: not a checkpoint of that layout, another
            model size, MLG in the file but not in the model (or the reverse), another class
            count, MLG block count, patch-head width or input size, missing, extra or
            misshapen tensors, or a model whose LLG adjacency is not the paper's raw one.
    """
    path = str(path)
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    if not isinstance(model, ATGNN) or model.arch != "pyramid":
        what = "an isotropic ATGNN" if isinstance(model, ATGNN) else type(model).__name__
        raise ValueError(f"{path}: the authors' code builds pyramid ATGNNs only; the model is "
                         f"{what}")
    adjacency = {getattr(m.llg, "adjacency", None) for s in getattr(model, "mlg_stages", ())
                 for m in s}
    if adjacency - {None}:
        raise ValueError(f"{path} holds the paper's raw LLG adjacency (L_hat = A L + L); the "
                         f"model uses llg_adjacency={sorted(adjacency - {None})[0]!r}: build it "
                         f"with llg_adjacency=None")

    theirs, metric_keys, kind = _net_state_dict(checkpoint, path)
    target = model.state_dict()
    _compare(_describe(theirs), _describe(target), path)

    rel_shapes = _relative_pos_shapes(model)
    out: Dict[str, Tensor] = {}
    dropped: List[str] = list(metric_keys)
    unexpected: List[str] = []
    renamed = reshaped = 0
    for key, value in theirs.items():
        m = _RELATIVE_POS.match(key)
        if m:
            want = rel_shapes.get(int(m.group(1)))
            if want is None:
                unexpected.append(key)
                continue
            if tuple(value.shape) != want:
                raise ValueError(
                    f"{path} was made for another input size: {key} is "
                    f"{'x'.join(map(str, value.shape))}, the model's grid needs "
                    f"{'x'.join(map(str, want))} (nodes x pooled keys)")
            dropped.append(key)
            continue
        new = _their_to_our_name(key)
        if new not in target:
            unexpected.append(key)
            continue
        want_t = target[new]
        if new != key:
            renamed += 1
        if value.dim() == 4 and want_t.dim() == 2 and tuple(value.shape[2:]) == (1, 1):
            value = value.flatten(1)  # grouped 1x1 Conv2d -> GroupedLinear
            reshaped += 1
        if value.shape != want_t.shape:
            raise ValueError(f"{path}: {key} has shape {tuple(value.shape)}, the model's {new} "
                             f"needs {tuple(want_t.shape)}")
        if not want_t.is_floating_point() and value.is_floating_point():
            value = value.round()  # averaged num_batches_tracked (checkpoint averaging)
        out[new] = value.detach().to(dtype=want_t.dtype)
    if unexpected:
        raise ValueError(f"{path} holds {len(unexpected)} tensors the model has no place for "
                         f"(e.g. {unexpected[0]!r}): not a checkpoint of this ATGNN layout")
    missing = [k for k in target if k not in out]
    missing_rel = [i for i in rel_shapes if f"backbone.{i}.0.relative_pos" not in theirs]
    if missing or missing_rel:
        names = missing + [f"backbone.{i}.0.relative_pos" for i in missing_rel]
        raise ValueError(f"{path} is damaged or not a full ATGNN checkpoint: {len(names)} "
                         f"tensors missing (e.g. {names[0]!r})")
    report: Dict[str, Any] = dict(source=kind, mapped=len(out), renamed=renamed,
                                  reshaped=reshaped, dropped=len(dropped),
                                  dropped_names=dropped)
    if kind == "lightning":
        report["epoch"] = checkpoint.get("epoch")
        report["global_step"] = checkpoint.get("global_step")
    return out, report
