"""Parameter and multiply-accumulate counts of zoo models.

MACs come from :class:`torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2) over one forward
pass of one clip in eval mode. It counts matrix products and convolutions (``mm``, ``addmm``,
``bmm``, ``baddbmm``, ``convolution``), which includes the kNN distance products of the dense
graph builder. It does **not** count gathers of neighbour features, max / min / top-k
reductions, element-wise operations (activations, normalisation, residual additions),
pooling, softmax or interpolation; nor anything cached across calls (the relative-position
tables). The paper's "GFLOPs" are multiply-accumulates in the same sense (Pyramid ViG-S
reports 4.6 "GFLOPs" at 224 x 224).

FLOPs (:func:`count_flops`) come from the same counter, per clip and not halved: a forward
pass and a training step (forward + backward), split into convolutions, matrix products and
the rest; they are what the benchmarks' model FLOP utilisation (MFU) divides by. For
``atgnn_pyr_s`` at 1024 frames x 128 mel: 29.9 GFLOP/clip forward (2 x its 14.9 G MACs, 86 %
in convolutions), 87.0 GFLOP/clip training step.

What ``gnn-audio models`` and ``gnn-audio summary`` print comes from here: :func:`zoo_rows`
(counts of every entry, cached per code version in ``~/.cache/gnn_audio/zoo_counts.json``),
:func:`zoo_table` (those rows as a text or Markdown table), :func:`layer_table` (one model's
modules with their parameters and output shapes), and the README's table
(:func:`summary_table`, written by ``scripts/update_docs.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

import gnn_audio
from gnn_audio.files import atomic_write_text
from gnn_audio.zoo._factory import create_model
from gnn_audio.zoo._registry import get_model_config, list_models

__all__ = ["count_parameters", "count_macs", "count_flops", "FLOP_FAMILIES", "model_summary",
           "summary_table", "markdown_table", "text_table", "zoo_rows", "zoo_table",
           "count_cache_file", "code_fingerprint", "COUNTS_LAYOUT", "layer_table", "LayerTable"]


def count_parameters(model: torch.nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def _warm_up(model: torch.nn.Module, example: torch.Tensor) -> None:
    """One uncounted eval forward pass of the first clip: what a model computes once per input
    size and caches (ATGNN's relative-position tables) is then not counted."""
    was_training = model.training
    model.eval()
    try:
        model(example[:1])
    finally:
        model.train(was_training)


@torch.no_grad()
def count_macs(model: torch.nn.Module, example: torch.Tensor, warmup: bool = True) -> int:
    """Multiply-accumulates of ``model(example)`` in eval mode (see the module docstring),
    after an uncounted forward pass of the first clip (``warmup``) so that tables a model
    caches per input size are not counted."""
    if warmup:
        _warm_up(model, example)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


#: the operator families of :func:`count_flops`'s shares
FLOP_FAMILIES = ("convolution", "matmul", "other")
_MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm", "linear", "matmul"}


def _family(op: Any) -> str:
    name = str(op).split(".")[-1]  # "aten.convolution_backward" -> "convolution_backward"
    if "conv" in name:
        return "convolution"
    return "matmul" if name in _MATMUL_OPS else "other"


def _by_family(counter: FlopCounterMode, clips: int) -> Dict[str, int]:
    out = dict.fromkeys(FLOP_FAMILIES, 0)
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        out[_family(op)] += flops
    return {k: round(v / clips) for k, v in out.items()}


def _first_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, dict) else (
        value if isinstance(value, (tuple, list)) else ())
    for v in items:
        try:
            return _first_tensor(v)
        except TypeError:
            continue
    raise TypeError(f"no tensor in the model's output ({type(value).__name__})")


def count_flops(model: torch.nn.Module, example: torch.Tensor,
                train_step: bool = False, warmup: bool = True) -> Dict[str, Any]:
    """FLOPs per clip of ``model`` on ``example`` (a batch of clips: every count is divided by
    its batch size), from :class:`torch.utils.flop_counter.FlopCounterMode`.

    Returns ``{"clips", "forward", "forward_families", "train_step", "train_step_families"}``:

    * ``forward``: one forward pass in eval mode without gradients, per clip (2 FLOPs per
      multiply-accumulate: ``2 * count_macs`` of one clip);
    * ``train_step`` (``train_step=True``, else ``None``): a forward pass in train mode plus
      ``loss.backward()`` of a sum of the first output tensor, per clip (the optimizer step
      is element-wise: 0 here). The example does not require gradients, so the first layer's
      backward computes its weight gradient only. At batch 1 the example is repeated to a
      batch of 2 (BatchNorm cannot train on one value per channel) and the count halved;
      the model's buffers (BatchNorm statistics) and ``.grad`` are restored afterwards;
    * ``*_families``: the same FLOPs split into ``"convolution"`` (``convolution`` and
      ``convolution_backward``), ``"matmul"`` (``mm``, ``addmm``, ``bmm``, ``baddbmm``) and
      ``"other"`` (e.g. scaled-dot-product attention), per clip.

    ``warmup``: first one uncounted forward pass of the first clip, so that what a model
    computes once per input size and caches (ATGNN's relative-position tables) is not counted
    (without it the first call at a new size counts them once, and the per-clip figure then
    depends on the batch).

    FlopCounterMode counts only operators with a registered formula (convolutions, matrix
    products, attention): element-wise operations (activations, normalisation, additions,
    the optimizer), gathers, ``topk``, ``max`` / ``amax`` reductions, pooling, softmax and
    interpolation are **not** counted, so these are the FLOPs of the dense linear algebra,
    the usual numerator of model FLOP utilisation (MFU).
    """
    clips = example.shape[0]
    was_training = model.training
    out: Dict[str, Any] = {"clips": clips, "forward": None, "forward_families": None,
                           "train_step": None, "train_step_families": None}
    if warmup:
        _warm_up(model, example)
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
        out["forward"] = round(counter.get_total_flops() / clips)
        out["forward_families"] = _by_family(counter, clips)
        if train_step:
            batch = example if clips > 1 else torch.cat([example, example])
            buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
            grads = {n: p.grad for n, p in model.named_parameters()}
            model.train()
            try:
                with torch.enable_grad(), FlopCounterMode(display=False) as counter:
                    loss = _first_tensor(model(batch)).float().sum()
                    loss.backward()
            finally:
                with torch.no_grad():
                    for n, b in model.named_buffers():
                        if n in buffers:
                            b.copy_(buffers[n])
                for n, p in model.named_parameters():
                    p.grad = grads.get(n)
            out["train_step"] = round(counter.get_total_flops() / batch.shape[0])
            out["train_step_families"] = _by_family(counter, batch.shape[0])
    finally:
        model.train(was_training)
    return out


def model_summary(name: str, num_classes: int = 200,
                  input_size: Optional[Tuple[int, int]] = None) -> Dict[str, float]:
    """``{"params": ..., "macs": ..., "paper_params_m": ..., "paper_gflops": ...}`` for a zoo
    entry at ``input_size`` (default: its config, e.g. 1024 frames x 128 mel)."""
    config = get_model_config(name)
    model = create_model(name, num_classes=num_classes)
    size = input_size or config.input_size
    example = torch.randn(1, *size)
    out = {"params": count_parameters(model), "macs": count_macs(model, example)}
    out["paper_params_m"] = config.paper.get("params_m")
    out["paper_gflops"] = config.paper.get("gflops")
    out["reference_params"] = config.reference_params
    return out


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                   right_from: int = 1) -> str:
    """A Markdown table; columns from ``right_from`` on are right-aligned (numbers)."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < right_from else "---:" for i in range(len(header))) +
             "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]],
               right: Callable[[int], bool] = lambda i: i > 0) -> str:
    """A plain-text table, columns two spaces apart; ``right(i)``: right-align column ``i``."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(header)]
    return "\n".join("  ".join(v.rjust(w) if right(i) else v.ljust(w)
                               for i, (v, w) in enumerate(zip(row, widths))).rstrip()
                     for row in [list(header)] + [list(r) for r in rows])


def summary_table(names: Optional[Iterable[str]] = None, num_classes: int = 200) -> str:
    """A Markdown table of :func:`model_summary` for ``names`` (default: all models)."""
    names = list(names) if names is not None else list_models()
    rows: List[List[str]] = []
    for name in names:
        s = model_summary(name, num_classes)
        paper_p = f"{s['paper_params_m']:.1f} M" if s["paper_params_m"] else "-"
        if s["reference_params"]:
            paper_p += f" (ref. code {s['reference_params'] / 1e6:.3f} M)"
        paper_g = f"{s['paper_gflops']:.2f}" if s["paper_gflops"] else "-"
        rows.append([name, f"{s['params'] / 1e6:.3f} M", paper_p, f"{s['macs'] / 1e9:.2f}",
                     paper_g])
    return markdown_table(["model", "params", "paper params", "MACs (G)", "paper GFLOPs"], rows)


# --------------------------------------------------------------------------------------------
# the zoo's counts (gnn-audio models)


def count_cache_file() -> Path:
    """Where :func:`zoo_rows` caches its counts (``$XDG_CACHE_HOME/gnn_audio``, default
    ``~/.cache/gnn_audio``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "gnn_audio" / "zoo_counts.json"


def code_fingerprint() -> str:
    """A hash of the model code: cached counts are recomputed whenever it changes."""
    root = Path(gnn_audio.__file__).parent
    digest = hashlib.sha1(gnn_audio.__version__.encode())
    for folder in ("models", "nn", "graph", "zoo"):
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


#: the layout of the cached counts: part of every cache key, so that a cache written by an
#: older layout (parameters and MACs only) is never read as this one
COUNTS_LAYOUT = "counts-v2"
_FORWARD_COUNTS = {"macs", "flops", "flops_conv", "train_flops"}


def _read_cache(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def zoo_rows(names: Sequence[str], macs: bool = True, use_cache: bool = True,
             progress: bool = False,
             log: Optional[Callable[[str], None]] = None) -> List[Dict[str, Any]]:
    """One row per zoo entry of ``names``: its family, input, classes, trainable parameters,
    MACs, FLOPs per clip of a forward pass (``flops``, of which ``flops_conv`` in
    convolutions) and of a training step (``train_flops``, :func:`count_flops`)
    (``macs=False``: ``None`` for these, no forward pass) and the papers' mAP. Counts are
    read from and written to :func:`count_cache_file` (``use_cache``), keyed by the entry, its
    classes and input, :func:`code_fingerprint` and :data:`COUNTS_LAYOUT`; ``log`` gets one
    line when the cache cannot be written (the rows are still returned)."""
    cache_path = count_cache_file()
    cache = _read_cache(cache_path) if use_cache else {}
    fingerprint = code_fingerprint()
    rows, changed = [], False
    for name in tqdm(names, desc="counting", unit=" models", disable=not progress):
        cfg = get_model_config(name)
        key = (f"{name}|{cfg.num_classes}|{cfg.input_size[0]}x{cfg.input_size[1]}|"
               f"{fingerprint}|{COUNTS_LAYOUT}")
        counts = dict(cache.get(key) or {})
        if "params" not in counts or (macs and not _FORWARD_COUNTS <= set(counts)):
            with warnings.catch_warnings():  # construction notes (e.g. AT-GCN without GloVe)
                warnings.simplefilter("ignore")
                model = create_model(name, num_classes=cfg.num_classes)
                counts["params"] = count_parameters(model)
                if macs:
                    example = torch.randn(1, *cfg.input_size)
                    counts["macs"] = count_macs(model, example)
                    flops = count_flops(model, example, train_step=True)
                    counts["flops"], counts["train_flops"] = flops["forward"], flops["train_step"]
                    counts["flops_conv"] = flops["forward_families"]["convolution"]
            cache[key], changed = counts, True
        paper = cfg.paper or {}
        rows.append({"model": name, "family": cfg.family, "input": cfg.input,
                     "input_size": list(cfg.input_size), "sample_rate": cfg.sample_rate,
                     "classes": cfg.num_classes, "params": counts["params"],
                     "macs": counts.get("macs") if macs else None,
                     "flops": counts.get("flops") if macs else None,
                     "flops_conv": counts.get("flops_conv") if macs else None,
                     "train_flops": counts.get("train_flops") if macs else None,
                     "paper_map_fsd50k": paper.get("map_fsd50k"),
                     "paper_map_audioset": paper.get("map_audioset")})
    if changed and use_cache:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache_path, json.dumps(cache, indent=1, sort_keys=True) + "\n")
        except OSError as err:  # a read-only home: the rows are still returned
            if log is not None:
                log(f"could not cache the counts in {cache_path} ({err})")
    return rows


def zoo_table(rows: Sequence[Dict[str, Any]], fmt: str = "table") -> str:
    """:func:`zoo_rows` as a text table (``fmt="table"``) or a Markdown one (``"markdown"``)."""
    def fmt_input(r: Dict[str, Any]) -> str:
        size = "x".join(str(v) for v in r["input_size"])
        rate = f" {r['sample_rate'] / 1000:g} kHz" if r["input"] == "logmel" else ""
        return f"{r['input']} {size}{rate}"

    def fmt_map(v: Optional[float]) -> str:
        return f"{v:.3f}" if v is not None else "-"

    def fmt_giga(v: Optional[float], spec: str = ".3f") -> str:
        return format(v / 1e9, spec) if v is not None else "-"

    header = ["model", "family", "input", "classes", "params (M)", "MACs (G)",
              "GFLOP/clip", "train GFLOP/clip", "paper mAP FSD50K", "paper mAP AudioSet"]
    table = [[r["model"], r["family"], fmt_input(r), str(r["classes"]),
              f"{r['params'] / 1e6:.3f}", fmt_giga(r["macs"]), fmt_giga(r.get("flops"), ".2f"),
              fmt_giga(r.get("train_flops"), ".2f"),
              fmt_map(r["paper_map_fsd50k"]), fmt_map(r["paper_map_audioset"])] for r in rows]
    if fmt == "markdown":
        return markdown_table(header, table, right_from=3)
    if fmt != "table":
        raise ValueError(f"fmt must be 'table' or 'markdown', got {fmt!r}")
    return text_table(header, table, right=lambda i: i >= 3)


# --------------------------------------------------------------------------------------------
# one model's layers (gnn-audio summary)


def _shape_of(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return "[" + ", ".join(str(v) for v in value.shape) + "]"
    if isinstance(value, (tuple, list)):
        inner = [_shape_of(v) for v in value]
        return "(" + ", ".join(inner) + ")" if inner else "()"
    if value is None:
        return "-"
    return type(value).__name__


class LayerTable:
    """The modules of a zoo model down to ``depth`` levels with their type, parameters and
    output shape, from forward hooks during the one forward pass that :func:`count_macs`
    runs, and the FLOPs per clip of a forward pass and a training step (:func:`count_flops`,
    run after the hooks are removed); :meth:`text` is ``gnn-audio summary``'s output."""

    def __init__(self, name: str, num_classes: int, example: torch.Tensor,
                 rows: List[List[str]], params: int, macs: int, config,
                 flops: Optional[Dict[str, Any]] = None) -> None:
        self.name, self.num_classes, self.example = name, num_classes, example
        self.rows, self.params, self.macs, self.config = rows, params, macs, config
        self.flops = flops  # count_flops(..., train_step=True) of one clip, or None

    def text(self) -> str:
        header = ["module", "type", "params", "output"]
        lines = [f"{self.name}: input {_shape_of(self.example)} ({self.config.input}, "
                 f"{self.config.family}), {self.num_classes} classes",
                 text_table(header, self.rows, right=lambda i: i == 2),
                 f"total: {self.params:,} parameters ({self.params / 1e6:.3f} M), "
                 f"{self.macs / 1e9:.3f} G MACs (matrix products and convolutions of one "
                 "forward pass, gnn_audio.zoo.summary)"]
        if self.flops:
            f = self.flops
            conv = f["forward_families"]["convolution"] / f["forward"] if f["forward"] else 0.0
            line = (f"FLOPs: {f['forward'] / 1e9:.2f} GFLOP/clip forward ({100 * conv:.0f} % "
                    "convolutions)")
            if f["train_step"] is not None:
                line += (f", {f['train_step'] / 1e9:.2f} GFLOP/clip training step "
                         "(forward + backward)")
            lines.append(line + "; matrix products and convolutions only (FlopCounterMode)")
        return "\n".join(lines)


def layer_table(name: str, num_classes: Optional[int] = None, depth: int = 2,
                use_cache: bool = True) -> LayerTable:
    """The :class:`LayerTable` of the zoo entry ``name`` (default: its classes) on one clip at
    its input size. Its FLOPs come from :func:`zoo_rows`'s count cache at the entry's own
    classes (``use_cache``; a training step of a full-size model takes seconds to count),
    else from :func:`count_flops` of the model."""
    cfg = get_model_config(name)
    num_classes = num_classes or cfg.num_classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(name, num_classes=num_classes).eval()
    chosen = [(mname, m) for mname, m in model.named_modules()
              if mname and mname.count(".") < depth]
    shapes: Dict[str, str] = {}
    calls: Dict[str, int] = {}

    def hook(mname: str):
        def record(module, inputs, output):
            shapes[mname] = _shape_of(output)
            calls[mname] = calls.get(mname, 0) + 1
        return record
    example = torch.randn(1, *cfg.input_size)
    _warm_up(model, example)  # before the hooks: they see the counted pass only
    handles = [m.register_forward_hook(hook(mname)) for mname, m in chosen]
    try:
        macs = count_macs(model, example, warmup=False)
    finally:
        for h in handles:
            h.remove()
    if use_cache and num_classes == cfg.num_classes:
        row = zoo_rows([name])[0]
        flops = {"forward": row["flops"], "train_step": row["train_flops"],
                 "forward_families": {"convolution": row["flops_conv"]}}
    else:
        flops = count_flops(model, example, train_step=True, warmup=False)
    rows = []
    for mname, m in chosen:
        out = shapes.get(mname, "-")
        if calls.get(mname, 0) > 1:
            out += f" (x{calls[mname]} calls)"
        rows.append(["  " * mname.count(".") + mname, type(m).__name__,
                     f"{sum(p.numel() for p in m.parameters()):,}", out])
    return LayerTable(name, num_classes, example, rows, count_parameters(model), macs, cfg,
                      flops)
