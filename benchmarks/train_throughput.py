"""Training throughput of one zoo model: milliseconds per optimisation step, clips/s, peak
memory and model FLOP utilisation (MFU), in fp32, bf16, channels-last and compiled variants.

=================  ============================================================================
``fp32``           the model as built, no autocast
``bf16``           autocast to bfloat16 (:mod:`gnn_audio.precision`)
``channels-last``  ``model.to(memory_format=torch.channels_last)``, fp32
``compiled``       ``torch.compile(model)``, fp32
``compiled-bf16``  ``torch.compile(model)`` under bf16 autocast
=================  ============================================================================

(default: all on CUDA; all but ``compiled-bf16`` on the CPU, where Inductor's bf16 code for
ATGNN took more than 16 minutes to compile on a processor without bf16 instructions, see
docs/graph.md).

The step is the trainer's own, :class:`gnn_audio.train.step.TrainStep`: forward under the
precision's autocast, BCE on the logits, the finiteness check (one host sync), backward through
the gradient scaler, the recipe's gradient clipping if any, optimiser step. The optimiser is
the recipe's Adam (``--recipe``, default ``atgnn_fsd50k``: lr 5e-4, betas (0.95, 0.999), weight
decay 5e-7). The batch is one generated log-mel batch ``[B, frames, mel]`` with multi-hot
targets (:func:`gnn_audio.data.synthetic.logmel.synthetic_logmel_batch`) already on the device:
data loading is not part of the figure. The model is built for ``(frames, mel)``
(``input_size``), so the relative-position terms are precomputed buffers.

Every variant has its own copy of the model with the same initial weights and its own
optimiser. After the warm-up (compilation included) the variants run interleaved, one step
each in turn (``fp32, bf16, ..., fp32, bf16, ...``: machine noise hits all alike), and the table
gives per variant:

* ms per step: the median of ``--repeat`` steps (and the fastest, less sensitive to other
  processes on a shared machine); speed-up: fp32's median over the variant's, both from this
  run;
* clips/s: batch size / median step time;
* peak MiB: the variant's resident training state (parameters, gradients, optimiser state)
  plus the rise during one extra step: CUDA: ``torch.cuda.max_memory_allocated`` over what was
  allocated before the step; CPU: the RSS high-water mark over the RSS before it (see
  ``benchmarks/measure.py``), i.e. about what one training process of this variant holds;
* MFU: 3 x 2 x the multiply-accumulates of one clip's forward pass
  (:func:`gnn_audio.zoo.summary.count_macs` at batch 1; backward counted as twice the forward)
  x clips/s / peak FLOP/s. The peak comes from ``benchmarks/measure.py``'s table by device name
  (bf16 variants: the dense bf16 tensor-core figure, fp32 ones: the fp32 figure; fp32
  convolutions may run on TF32, cuDNN's default) or ``--peak-tflops*``; "n/a" on the CPU unless
  given.

A variant that fails (a compile error, say) is reported in the table, not fatal. On CUDA the
table also holds, for atgnn_pyr_s (and _nomlg), the ATGNN authors' own figure for their
implementation: 289.9 ms (258.0 ms without MLG) per fp32 step at batch 24 x 1024 x 128 on an
NVIDIA L40S. It comes from the authors' repository and is **not measured here**.

Examples::

    # CPU: small batch and clip, 2 threads (compiling takes minutes on 2 cores when Inductor's
    # cache is cold)
    .venv/bin/python benchmarks/train_throughput.py --device cpu --threads 2 \\
        --model atgnn_pyr_s --frames 256 --batch-size 4 --repeat 5 --warmup 1
    .venv/bin/python benchmarks/train_throughput.py --device cpu --threads 2 \\
        --variants fp32 bf16 channels-last --json cpu.json
    # CUDA: the recipe's batch 24 x 1024 frames x 128 mel, all five variants
    .venv/bin/python benchmarks/train_throughput.py --device cuda --json train_cuda.json
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import (check_device, fmt, median_ms, model_flops_per_clip, one_line,  # noqa: E402
                     peak_memory_mb, peak_tflops, raise_recompile_limits, sync,
                     time_interleaved, write_json)

from gnn_audio.data.synthetic.logmel import synthetic_logmel_batch  # noqa: E402
from gnn_audio.train.recipe import Recipe, get_recipe  # noqa: E402
from gnn_audio.train.step import TrainStep  # noqa: E402
from gnn_audio.zoo import create_model, get_model_config  # noqa: E402


@dataclass(frozen=True)
class Variant:
    """How one measured configuration differs from the plain fp32 model."""

    name: str
    precision: str
    channels_last: bool = False
    compiled: bool = False


VARIANTS: Dict[str, Variant] = {v.name: v for v in (
    Variant("fp32", "fp32"),
    Variant("bf16", "bf16"),
    Variant("channels-last", "fp32", channels_last=True),
    Variant("compiled", "fp32", compiled=True),
    Variant("compiled-bf16", "bf16", compiled=True),
)}
#: variants measured when ``--variants`` is not given (see the module docstring)
DEFAULT_VARIANTS: Dict[str, Tuple[str, ...]] = {
    "cuda": tuple(VARIANTS), "cpu": ("fp32", "bf16", "channels-last", "compiled")}

#: The ATGNN authors' walltime of their own implementation (their repository's figure, not
#: measured here): ms per fp32 training step in :data:`REFERENCE_SETTING`.
REFERENCE_MS: Dict[str, float] = {"atgnn_pyr_s": 289.9, "atgnn_pyr_s_nomlg": 258.0}
REFERENCE_SETTING: Dict[str, Any] = dict(device="NVIDIA L40S", precision="fp32",
                                         batch_size=24, frames=1024, mel=128)

#: model constructor arguments that take the clip shape, by what they mean
_SHAPE_ARGS = {"input_size": lambda f, m: (f, m), "mel_bins": lambda f, m: m,
               "num_frames": lambda f, m: f, "embedding_dim": lambda f, m: m}


@dataclass(frozen=True)
class ThroughputSettings:
    """Everything one run needs; built and validated from the command line."""

    device: str
    model: str
    frames: int
    mel: int
    batch_size: int
    variants: Tuple[str, ...]
    num_classes: int = 200
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    recipe: str = "atgnn_fsd50k"
    repeat: int = 5
    warmup: int = 2
    peak_tflops_bf16: Optional[float] = None
    peak_tflops_fp32: Optional[float] = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_device(self.device)
        get_model_config(self.model)  # ValueError naming the zoo's models
        get_recipe(self.recipe)  # ValueError naming the recipes
        for name in ("frames", "mel", "batch_size", "num_classes", "repeat"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1 "
                                 f"(got {getattr(self, name)})")
        if self.warmup < 0:
            raise ValueError(f"--warmup must be >= 0 (got {self.warmup})")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants or len(set(self.variants)) < len(self.variants):
            raise ValueError(f"--variants {list(self.variants)}: choose one or more of "
                             f"{', '.join(VARIANTS)}, each once")
        for name in ("peak_tflops_bf16", "peak_tflops_fp32"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0 (got {value})")
        clash = sorted(set(self.model_kwargs) & {"num_classes", *_SHAPE_ARGS})
        if clash:
            raise ValueError(f"--model-kwargs {clash}: set these with --num-classes, "
                             f"--frames and --mel")

    def peak_for(self, precision: str) -> Optional[float]:
        """Peak TFLOP/s that a variant of ``precision`` is measured against."""
        return self.peak_tflops_bf16 if precision == "bf16" else self.peak_tflops_fp32


@dataclass
class VariantResult:
    """One row of the table (times in ms; ``None``: not measured)."""

    variant: str
    precision: str
    ms: Optional[float] = None
    min_ms: Optional[float] = None
    speedup_vs_fp32: Optional[float] = None
    clips_per_s: Optional[float] = None
    state_mb: Optional[float] = None
    peak_mb: Optional[float] = None
    mfu: Optional[float] = None
    warmup_s: Optional[float] = None
    times_ms: List[float] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


# -- building -------------------------------------------------------------------------------------

def build_model(s: ThroughputSettings) -> torch.nn.Module:
    """The model on the CPU, built for ``(frames, mel)``, with the seed's initial weights."""
    config = get_model_config(s.model)
    shape = {arg: make(s.frames, s.mel) for arg, make in _SHAPE_ARGS.items()
             if arg in config.arch_args}
    torch.manual_seed(s.seed)
    return create_model(s.model, num_classes=s.num_classes, **shape, **dict(s.model_kwargs))


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's Adam."""
    optim = recipe.optim
    return torch.optim.Adam(model.parameters(), lr=optim.lr, betas=optim.betas,
                            weight_decay=optim.weight_decay)


def resident_mb(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> float:
    """MiB held between steps: parameters, buffers, gradients and optimiser state (each
    storage counted once)."""
    tensors = list(model.parameters()) + list(model.buffers())
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [v for state in optimizer.state.values() for v in state.values()
                if isinstance(v, torch.Tensor)]
    seen: Dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values()) / 2 ** 20


class VariantRun:
    """One variant's model copy, optimiser and :class:`TrainStep`."""

    def __init__(self, variant: Variant, base: torch.nn.Module, recipe: Recipe,
                 device: torch.device) -> None:
        self.variant = variant
        self.model = copy.deepcopy(base).to(device)
        if variant.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, recipe)
        net = torch.compile(self.model) if variant.compiled else self.model
        self.step = TrainStep(net, self.optimizer, precision=variant.precision, device=device,
                              clip_grad_norm=recipe.optim.clip_grad_norm)


def warm_up(run: VariantRun, x: torch.Tensor, y: torch.Tensor, steps: int,
            result: VariantResult) -> Optional[Callable[[], None]]:
    """The step to time after ``steps`` warm-up steps (a compiled variant: one more, the
    compiling one); ``None`` with a note in ``result`` if it failed."""
    def step() -> None:
        run.step(x, y)

    t0 = time.perf_counter()
    try:
        for _ in range(max(steps, 1) + (1 if run.variant.compiled else 0)):
            step()
        sync(x.device)
    except Exception as err:  # noqa: BLE001 - reported in the table
        what = "compile failed" if run.variant.compiled else "failed"
        result.notes.append(f"{what}: {one_line(err)}")
        return None
    result.warmup_s = time.perf_counter() - t0
    if run.variant.compiled:
        result.notes.append(f"compile + warm-up {result.warmup_s:.0f} s")
    return step


# -- measuring ------------------------------------------------------------------------------------

def run_variants(s: ThroughputSettings, base: torch.nn.Module, flops_per_clip: Optional[int],
            log: Callable[[str], None] = print) -> List[VariantResult]:
    """Warm up and time every variant of ``s``, each on its own copy of ``base`` (see the
    module docstring)."""
    device = torch.device(s.device)
    recipe = get_recipe(s.recipe)
    gen = torch.Generator().manual_seed(s.seed)
    x, y = synthetic_logmel_batch(s.batch_size, s.num_classes, s.frames, s.mel, generator=gen)
    x, y = x.to(device), y.to(device)
    results = {name: VariantResult(name, VARIANTS[name].precision) for name in s.variants}
    runs: Dict[str, VariantRun] = {}
    steps: Dict[str, Optional[Callable[[], None]]] = {}
    for name in s.variants:
        result = results[name]
        try:
            runs[name] = VariantRun(VARIANTS[name], base, recipe, device)
        except Exception as err:  # noqa: BLE001 - reported in the table
            result.notes.append(f"setup failed: {one_line(err)}")
            steps[name] = None
            continue
        steps[name] = warm_up(runs[name], x, y, s.warmup, result)
        if steps[name] is None:
            del runs[name]  # free its memory before the others are measured
        log(f"  {name}: warm-up {fmt(result.warmup_s, '.1f', 'failed')} s"
            + (f" ({'; '.join(result.notes)})" if result.notes else ""))

    times = time_interleaved(steps, s.repeat, device)
    for name, seconds in times.items():
        r = results[name]
        r.times_ms = [1e3 * t for t in seconds]
        r.ms = median_ms(seconds)
        if r.ms is None:
            continue
        r.min_ms = min(r.times_ms)
        r.clips_per_s = s.batch_size / (r.ms / 1e3)
        peak = s.peak_for(r.precision)
        if flops_per_clip and peak:
            r.mfu = 3 * flops_per_clip * r.clips_per_s / (peak * 1e12)
        rise = peak_memory_mb(steps[name], device, over_allocated=True)
        r.state_mb = resident_mb(runs[name].model, runs[name].optimizer)
        r.peak_mb = None if rise is None else r.state_mb + rise
    base_ms = results["fp32"].ms if "fp32" in results else None
    for r in results.values():
        if base_ms and r.ms:
            r.speedup_vs_fp32 = base_ms / r.ms
    return [results[name] for name in s.variants]


def reference_row(s: ThroughputSettings, flops_per_clip: Optional[int]) -> Optional[Dict]:
    """The authors' figure for ``s.model`` (not measured here), with the clips/s it means and,
    where this run counted FLOPs at the reference clip size, its MFU on an L40S."""
    if s.model not in REFERENCE_MS:
        return None
    ms = REFERENCE_MS[s.model]
    row: Dict[str, Any] = dict(REFERENCE_SETTING, model=s.model, ms=ms,
                               clips_per_s=REFERENCE_SETTING["batch_size"] / (ms / 1e3),
                               mfu=None, measured=False)
    same_clip = (s.frames, s.mel) == (REFERENCE_SETTING["frames"], REFERENCE_SETTING["mel"])
    l40s = peak_tflops(REFERENCE_SETTING["device"])
    if flops_per_clip and same_clip and l40s:
        row["mfu"] = 3 * flops_per_clip * row["clips_per_s"] / (l40s[1] * 1e12)
    return row


# -- report ---------------------------------------------------------------------------------------

def _pct(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def markdown_table(results: Sequence[VariantResult], device: str,
                   reference: Optional[Dict] = None) -> str:
    """The results (and the reference row, if given) as a Markdown table."""
    rise = "alloc rise" if device == "cuda" else "RSS rise"
    rows = ["| variant | ms / step | min ms | speed-up vs fp32 | clips/s | state MiB | "
            f"peak MiB (state + {rise}) | MFU | notes |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        rows.append(f"| {r.variant} | {fmt(r.ms, '.1f')} | {fmt(r.min_ms, '.1f')} | "
                    f"{fmt(r.speedup_vs_fp32, '.2f')} | "
                    f"{fmt(r.clips_per_s, '.2f')} | {fmt(r.state_mb, '.0f')} | "
                    f"{fmt(r.peak_mb, '.0f', 'n/a')} | {_pct(r.mfu)} | "
                    f"{'; '.join(r.notes)} |")
    if reference is not None:
        rows.append(f"| reference (authors' implementation, their repository's figure, NOT "
                    f"measured: {reference['device']}, {reference['precision']}, batch "
                    f"{reference['batch_size']} x {reference['frames']} x {reference['mel']}) | "
                    f"{reference['ms']:.1f} | - | - | {reference['clips_per_s']:.2f} | - | - | "
                    f"{_pct(reference['mfu'])} | MFU against the L40S fp32 peak |")
    return "\n".join(rows)


# -- command line ---------------------------------------------------------------------------------

def parse_args(argv: Optional[Sequence[str]] = None) -> Tuple[ThroughputSettings, Optional[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"],
                   default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="atgnn_pyr_s", help="zoo name")
    p.add_argument("--model-kwargs", default="{}",
                   help='JSON object of extra entry-point arguments, e.g. \'{"channels": '
                        '[8, 16, 24, 32]}\'')
    p.add_argument("--num-classes", type=int, default=None, help="default: the model's")
    p.add_argument("--frames", type=int, default=None,
                   help="frames per clip (default: the model's, 1024, on CUDA; 256 on CPU)")
    p.add_argument("--mel", type=int, default=None, help="mel bands (default: the model's)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="clips per step (default: the recipe's, 24, on CUDA; 4 on CPU)")
    p.add_argument("--recipe", default="atgnn_fsd50k",
                   help="optimiser settings (Adam lr, betas, weight decay, clipping) of this "
                        "recipe")
    p.add_argument("--variants", nargs="+", default=None,
                   help=f"of {', '.join(VARIANTS)} (default: all on CUDA, all but "
                        "compiled-bf16 on CPU)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed steps per variant (default 20 on CUDA, 5 on CPU)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="peak TFLOP/s for MFU, every precision (default: the device table)")
    p.add_argument("--peak-tflops-bf16", type=float, default=None)
    p.add_argument("--peak-tflops-fp32", type=float, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    if a.threads is not None:
        if a.threads < 1:
            raise ValueError(f"--threads must be >= 1 (got {a.threads})")
        torch.set_num_threads(a.threads)
    try:
        model_kwargs = json.loads(a.model_kwargs)
    except json.JSONDecodeError as err:
        raise ValueError(f"--model-kwargs is not JSON ({err.msg}): {a.model_kwargs!r}")
    if not isinstance(model_kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object (got {a.model_kwargs!r})")
    config = get_model_config(a.model)
    cuda = a.device == "cuda"

    def given(value: Any, default: Any) -> Any:
        return default if value is None else value

    peak_bf16 = given(a.peak_tflops_bf16, a.peak_tflops)
    peak_fp32 = given(a.peak_tflops_fp32, a.peak_tflops)
    known = peak_tflops(torch.cuda.get_device_name()) if (
        cuda and torch.cuda.is_available()) else None
    if known:
        peak_bf16, peak_fp32 = given(peak_bf16, known[0]), given(peak_fp32, known[1])
    settings = ThroughputSettings(
        device=a.device, model=a.model, model_kwargs=model_kwargs,
        num_classes=given(a.num_classes, config.num_classes),
        frames=given(a.frames, config.input_size[0] if cuda else 256),
        mel=given(a.mel, config.input_size[1]),
        batch_size=given(a.batch_size, get_recipe(a.recipe).optim.batch_size if cuda else 4),
        variants=tuple(given(a.variants, DEFAULT_VARIANTS[a.device])), recipe=a.recipe,
        repeat=given(a.repeat, 20 if cuda else 5), warmup=a.warmup,
        peak_tflops_bf16=peak_bf16, peak_tflops_fp32=peak_fp32, seed=a.seed)
    return settings, a.json


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    try:
        s, json_out = parse_args(argv)
    except ValueError as err:
        raise SystemExit(f"train_throughput.py: {err}")
    raise_recompile_limits()  # one graph per compiled variant (model copy, autocast)
    device = torch.device(s.device)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    optim = get_recipe(s.recipe).optim
    print(f"# train_throughput: {s.model}, batch {s.batch_size} x {s.frames} frames x {s.mel} "
          f"mel, device {dev_name}, torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}; Adam lr {optim.lr} betas {optim.betas} wd "
          f"{optim.weight_decay} ({s.recipe}); median of {s.repeat} interleaved steps after "
          f"{s.warmup} warm-up", flush=True)
    base = build_model(s)
    flops = model_flops_per_clip(base, torch.randn(1, s.frames, s.mel))
    print(f"# model FLOPs per clip: forward {flops / 1e9:.4g} G (2 x MACs), train step "
          f"{3 * flops / 1e9:.4g} G; peak TFLOP/s for MFU: bf16 {s.peak_tflops_bf16}, fp32 "
          f"{s.peak_tflops_fp32}", flush=True)
    results = run_variants(s, base, flops)
    reference = reference_row(s, flops) if device.type == "cuda" else None
    print()
    print(markdown_table(results, s.device, reference))
    fp32 = next((r for r in results if r.variant == "fp32"), None)
    same_as_reference = reference is not None and (s.batch_size, s.frames, s.mel) == (
        REFERENCE_SETTING["batch_size"], REFERENCE_SETTING["frames"], REFERENCE_SETTING["mel"])
    if same_as_reference and fp32 is not None and fp32.ms:
        print(f"\nmeasured fp32 ms / reference ms ({dev_name} vs "
              f"{REFERENCE_SETTING['device']}, not the same GPU): "
              f"{fp32.ms / reference['ms']:.3f}")
    payload = {"settings": asdict(s), "device_name": dev_name, "torch": torch.__version__,
               "threads": torch.get_num_threads(), "flops_per_clip": flops,
               "results": [asdict(r) for r in results], "reference": reference}
    if json_out:
        write_json(json_out, payload)
    return payload


if __name__ == "__main__":
    main()
