"""Whole-model benchmark: gnn_audio's ATGNN against a plain dense implementation of the same
model (``benchmarks/dense_atgnn.py``: batched distance + topk + gather + amax, the Pyramid ViG
way), with identical weights.

For every setting {eager, compiled} x {fp32, bf16 autocast} x {inference at each
``--batch-infer``, train step at ``--batch-train``} the two implementations run interleaved
(project, dense, project, dense, ... so that machine noise hits both alike) and the table gives
the median milliseconds, the ratio project / dense, peak memory, clips/s and, on CUDA, model
FLOP utilisation. A train step is forward + BCE-with-logits loss + backward + Adam step.

* compiled: ``torch.compile(model, dynamic=False)``; for the project ``fullgraph=True`` is
  tried first (``--fullgraph try``) and the notes say which worked. A compile failure is
  reported in the table, not fatal.
* peak memory: CUDA: ``torch.cuda.max_memory_allocated`` during one extra call (weights,
  optimizer state and activations). CPU: the process's RSS high-water mark during one extra
  call over its RSS before it (``/proc/self/clear_refs`` resets the mark, ``malloc_trim``
  returns freed heap pages first); "n/a" where /proc is not available.
* MFU: model FLOPs per clip (:func:`gnn_audio.zoo.summary.count_flops` of the project model:
  a forward pass for inference, forward + backward measured for a train step) x clips/s /
  peak FLOP/s (the same model FLOPs for both implementations); the peak defaults to the
  device's dense figures in ``benchmarks/measure.py``'s table (H100 / H200 SXM: bf16 989,
  fp32 67 TFLOP/s; fp32 convolutions may use TF32, cuDNN's default) or ``--peak-tflops-*``.

The measuring helpers (timing, peak memory, FLOPs, peak table) are ``benchmarks/measure.py``'s,
shared with ``benchmarks/train_throughput.py``.

Examples::

    .venv/bin/python benchmarks/bench_model.py --device cpu --frames 256 --batch-train 4 \\
        --repeat 5 --variants eager
    .venv/bin/python benchmarks/bench_model.py --device cuda --json bench_cuda.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dense_atgnn import DenseATGNN, DenseATGNNConfig  # noqa: E402
from measure import (check_device, fmt, median_ms, model_flops_per_clip, one_line,  # noqa: E402
                     peak_memory_mb, peak_tflops, raise_recompile_limits, sync,
                     time_interleaved, write_json)

MODES = ("eager", "compiled")
PRECISIONS = ("fp32", "bf16")
IMPLS = ("project", "dense")


@dataclass(frozen=True)
class BenchSettings:
    """Everything one benchmark run needs; built and validated from the command line."""

    device: str = "cpu"
    model: str = "atgnn_pyr_s"
    num_classes: int = 200
    frames: int = 1024
    mel: int = 128
    batch_infer: Tuple[int, ...] = (1, 24)
    batch_train: int = 4
    repeat: int = 5
    warmup: int = 2
    modes: Tuple[str, ...] = MODES
    precisions: Tuple[str, ...] = PRECISIONS
    tasks: Tuple[str, ...] = ()
    fullgraph: str = "try"
    lr: float = 1e-4
    peak_tflops_bf16: Optional[float] = None
    peak_tflops_fp32: Optional[float] = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_device(self.device)
        if min(self.frames, self.mel, self.batch_train, self.repeat, *self.batch_infer) < 1:
            raise ValueError("frames, mel, batch sizes and repeat must be positive")
        if self.warmup < 0:
            raise ValueError("--warmup must be >= 0")
        if self.fullgraph not in ("try", "yes", "no"):
            raise ValueError(f"--fullgraph must be try, yes or no (got {self.fullgraph!r})")
        if not (self.modes and self.precisions and self.tasks):
            raise ValueError("--variants selects no setting")


def all_tasks(batch_infer: Sequence[int], batch_train: int) -> Tuple[str, ...]:
    return tuple(f"infer_b{b}" for b in batch_infer) + (f"train_b{batch_train}",)


def select_variants(tokens: Sequence[str], batch_infer: Sequence[int],
                    batch_train: int) -> Tuple[Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]]:
    """``(modes, precisions, tasks)`` kept by ``--variants`` tokens: a mode, a precision,
    ``infer`` / ``train`` or an exact task name (``infer_b1``); each dimension that gets no
    token keeps everything."""
    tasks = all_tasks(batch_infer, batch_train)
    known = set(MODES) | set(PRECISIONS) | {"infer", "train"} | set(tasks)
    bad = [t for t in tokens if t not in known]
    if bad:
        raise ValueError(f"unknown --variants {bad}; choose from {sorted(known)}")
    modes = tuple(m for m in MODES if m in tokens) or MODES
    precs = tuple(p for p in PRECISIONS if p in tokens) or PRECISIONS
    task_tokens = [t for t in tokens if t in tasks or t in ("infer", "train")]
    if task_tokens:
        tasks = tuple(t for t in tasks if t in task_tokens or t.split("_")[0] in task_tokens)
    return modes, precs, tasks


# -- runners -------------------------------------------------------------------------------------

class Runner:
    """One implementation (eager module, its compiled forms, its optimizer)."""

    def __init__(self, name: str, model: torch.nn.Module, lr: float) -> None:
        self.name = name
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.compiled: Dict[bool, torch.nn.Module] = {}

    def net(self, mode: str, fullgraph: bool) -> torch.nn.Module:
        if mode == "eager":
            return self.model
        if fullgraph not in self.compiled:
            self.compiled[fullgraph] = torch.compile(self.model, fullgraph=fullgraph,
                                                     dynamic=False)
        return self.compiled[fullgraph]

    def make_fn(self, net: torch.nn.Module, task: str, x: torch.Tensor, y: torch.Tensor,
                precision: str) -> Callable[[], None]:
        device_type = x.device.type
        autocast = (torch.autocast(device_type, dtype=torch.bfloat16) if precision == "bf16"
                    else nullcontext())
        model, opt = self.model, self.optimizer
        if task.startswith("infer"):
            def infer() -> None:
                model.eval()
                with torch.no_grad(), autocast:
                    net(x)
            return infer

        def train_step() -> None:
            model.train()
            opt.zero_grad(set_to_none=True)
            with autocast:
                logits = net(x)
            loss = F.binary_cross_entropy_with_logits(logits.float(), y)
            loss.backward()
            opt.step()
        return train_step


@dataclass
class Result:
    task: str
    precision: str
    mode: str
    ms: Dict[str, Optional[float]]
    peak_mb: Dict[str, Optional[float]]
    clips_per_s: Dict[str, Optional[float]]
    mfu: Dict[str, Optional[float]]
    notes: List[str]

    @property
    def ratio(self) -> Optional[float]:
        a, b = self.ms.get("project"), self.ms.get("dense")
        return a / b if a and b else None


def prepare(runner: Runner, mode: str, task: str, precision: str, x: torch.Tensor,
            y: torch.Tensor, warmup: int, fullgraph: str,
            notes: List[str]) -> Optional[Callable[[], None]]:
    """The call to time, warmed up (and compiled); ``None`` with a note if it failed."""
    device = x.device
    attempts = [False]
    if mode == "compiled" and runner.name == "project":
        attempts = {"try": [True, False], "yes": [True], "no": [False]}[fullgraph]
    for full in attempts:
        fn = runner.make_fn(runner.net(mode, full), task, x, y, precision)
        t0 = time.perf_counter()
        try:
            for _ in range(max(warmup, 1) + (1 if mode == "compiled" else 0)):
                fn()
            sync(device)
        except Exception as err:  # noqa: BLE001 - reported in the table
            what = "fullgraph compile failed" if full else (
                "compile failed" if mode == "compiled" else "failed")
            notes.append(f"{runner.name}: {what}: {one_line(err)}")
            continue
        if mode == "compiled":
            kind = "fullgraph" if full else "compile (graph breaks allowed)"
            notes.append(f"{runner.name}: {kind} ok, warm-up {time.perf_counter() - t0:.0f} s")
        return fn
    return None


def run_setting(runners: Dict[str, Runner], task: str, precision: str, mode: str,
                s: BenchSettings, flops_per_clip: Optional[Dict[str, int]]) -> Result:
    """``flops_per_clip``: model FLOPs per clip, ``{"infer": forward, "train": training
    step}`` (:func:`measure.model_flops_per_clip`), ``None``: no MFU."""
    device = torch.device(s.device)
    batch = int(task.split("_b")[1])
    gen = torch.Generator().manual_seed(s.seed)
    x = torch.randn(batch, s.frames, s.mel, generator=gen).to(device)
    y = (torch.rand(batch, s.num_classes, generator=gen) < 0.05).float().to(device)
    notes: List[str] = []
    fns = {name: prepare(r, mode, task, precision, x, y, s.warmup, s.fullgraph, notes)
           for name, r in runners.items()}
    times = time_interleaved(fns, s.repeat, device)  # project, dense, project, dense, ...
    ms = {n: median_ms(t) for n, t in times.items()}
    peak = {n: (peak_memory_mb(fn, device) if fn is not None else None)
            for n, fn in fns.items()}
    clips = {n: (batch / (v / 1e3) if v else None) for n, v in ms.items()}
    mfu: Dict[str, Optional[float]] = {n: None for n in runners}
    peak_tflops = s.peak_tflops_bf16 if precision == "bf16" else s.peak_tflops_fp32
    if device.type == "cuda" and flops_per_clip and peak_tflops:
        per_clip = flops_per_clip["train" if task.startswith("train") else "infer"]
        mfu = {n: (per_clip * c / (peak_tflops * 1e12) if c else None)
               for n, c in clips.items()}
    return Result(task, precision, mode, ms, peak, clips, mfu, notes)


# -- report --------------------------------------------------------------------------------------

def markdown_table(results: Sequence[Result], device: str) -> str:
    mem = "peak alloc MiB" if device == "cuda" else "peak RSS over pre-call MiB"
    rows = [f"| task | prec | mode | project ms | dense ms | project/dense | project {mem} | "
            f"dense {mem} | project clips/s | dense clips/s | project MFU | dense MFU | notes |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        mfu = [fmt(None if r.mfu[n] is None else 100 * r.mfu[n], ".1f") + (
            "%" if r.mfu[n] is not None else "") for n in IMPLS]
        rows.append(
            f"| {r.task} | {r.precision} | {r.mode} | {fmt(r.ms['project'], '.1f')} | "
            f"{fmt(r.ms['dense'], '.1f')} | {fmt(r.ratio, '.3f')} | "
            f"{fmt(r.peak_mb['project'], '.0f', 'n/a')} | "
            f"{fmt(r.peak_mb['dense'], '.0f', 'n/a')} | "
            f"{fmt(r.clips_per_s['project'], '.2f')} | {fmt(r.clips_per_s['dense'], '.2f')} | "
            f"{mfu[0]} | {mfu[1]} | {'; '.join(r.notes)} |")
    return "\n".join(rows)


def acceptance(results: Sequence[Result], s: BenchSettings) -> Dict[str, Optional[float]]:
    """The issue's figures: eager fp32 project/dense at the largest inference batch and for the
    train step; dense fp32 eager train time over project bf16 compiled train time."""
    by_key = {(r.task, r.precision, r.mode): r for r in results}
    infer_task = f"infer_b{max(s.batch_infer)}"
    train_task = f"train_b{s.batch_train}"
    out: Dict[str, Optional[float]] = {}
    r = by_key.get((infer_task, "fp32", "eager"))
    out[f"eager_fp32_{infer_task}_ratio"] = r.ratio if r else None
    r = by_key.get((train_task, "fp32", "eager"))
    out[f"eager_fp32_{train_task}_ratio"] = r.ratio if r else None
    base = by_key.get((train_task, "fp32", "eager"))
    fast = by_key.get((train_task, "bf16", "compiled"))
    speedup = None
    if base and fast and base.ms["dense"] and fast.ms["project"]:
        speedup = base.ms["dense"] / fast.ms["project"]
    out["train_speedup_project_bf16_compiled_vs_dense_fp32_eager"] = speedup
    return out


# -- main ----------------------------------------------------------------------------------------

def build_runners(s: BenchSettings) -> Dict[str, Runner]:
    from gnn_audio.zoo import create_model

    torch.manual_seed(s.seed)
    device = torch.device(s.device)
    # the design input size is the benchmarked one: the relative-position terms are then
    # precomputed buffers (another size recomputes them in every call)
    # the dense model implements the sin-cos relative-position term; the project's default
    # (the authors' table) costs the same (both are a precomputed [N, M] addend)
    project = create_model(s.model, num_classes=s.num_classes, input_size=(s.frames, s.mel),
                           knn={"relative_pos": "sincos"})
    state = project.state_dict()
    dense = DenseATGNN(DenseATGNNConfig.from_state_dict(state))
    dense.load_state_dict(state, strict=True)
    return {"project": Runner("project", project.to(device), s.lr),
            "dense": Runner("dense", dense.to(device), s.lr)}


def parse_args(argv: Optional[Sequence[str]] = None) -> Tuple[BenchSettings, Optional[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"],
                   default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="atgnn_pyr_s", help="zoo name of a pyramid ATGNN")
    p.add_argument("--num-classes", type=int, default=200)
    p.add_argument("--frames", type=int, default=1024, help="frames per clip (smaller on CPU)")
    p.add_argument("--mel", type=int, default=128)
    p.add_argument("--batch-infer", type=int, nargs="+", default=[1, 24])
    p.add_argument("--batch-train", type=int, default=None, help="default 24 cuda, 4 cpu")
    p.add_argument("--repeat", type=int, default=None, help="timed calls per implementation "
                   "(default 20 cuda, 5 cpu)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--variants", nargs="*", default=[],
                   help="subset: eager compiled fp32 bf16 infer train infer_b1 ...")
    p.add_argument("--fullgraph", choices=["try", "yes", "no"], default="try",
                   help="project compile: fullgraph=True first (try), only, or never")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--peak-tflops-bf16", type=float, default=None)
    p.add_argument("--peak-tflops-fp32", type=float, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    cuda = a.device == "cuda"
    batch_train = a.batch_train or (24 if cuda else 4)
    modes, precs, tasks = select_variants(a.variants, a.batch_infer, batch_train)
    peak_bf16, peak_fp32 = a.peak_tflops_bf16, a.peak_tflops_fp32
    known = peak_tflops(torch.cuda.get_device_name()) if (
        cuda and torch.cuda.is_available()) else None
    if known:
        peak_bf16 = peak_bf16 or known[0]
        peak_fp32 = peak_fp32 or known[1]
    settings = BenchSettings(
        device=a.device, model=a.model, num_classes=a.num_classes, frames=a.frames,
        mel=a.mel, batch_infer=tuple(a.batch_infer), batch_train=batch_train,
        repeat=a.repeat or (20 if cuda else 5), warmup=a.warmup, modes=modes,
        precisions=precs, tasks=tasks, fullgraph=a.fullgraph, lr=a.lr,
        peak_tflops_bf16=peak_bf16, peak_tflops_fp32=peak_fp32, seed=a.seed)
    return settings, a.json


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    try:
        s, json_out = parse_args(argv)
    except ValueError as err:
        raise SystemExit(f"bench_model.py: {err}")
    # every (shape, grad mode, autocast, train/eval) is its own graph: allow them all
    raise_recompile_limits()
    device = torch.device(s.device)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# bench_model: {s.model}, {s.frames} frames x {s.mel} mel, device {dev_name}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"repeat {s.repeat} (median, interleaved), warm-up {s.warmup}")
    runners = build_runners(s)
    flops = None
    if device.type == "cuda":
        example = torch.randn(1, s.frames, s.mel, device=device)
        model = runners["project"].model
        flops = {"infer": model_flops_per_clip(model, example),
                 "train": model_flops_per_clip(model, example, train_step=True)}
        print(f"# model FLOPs per clip (count_flops): forward {flops['infer'] / 1e9:.2f} G, "
              f"train step {flops['train'] / 1e9:.2f} G; peak TFLOP/s assumed: "
              f"bf16 {s.peak_tflops_bf16}, fp32 {s.peak_tflops_fp32}")
    results: List[Result] = []
    for task in s.tasks:
        for precision in s.precisions:
            for mode in s.modes:
                t0 = time.perf_counter()
                r = run_setting(runners, task, precision, mode, s, flops)
                results.append(r)
                print(f"  {task} {precision} {mode}: project {fmt(r.ms['project'], '.1f')} "
                      f"ms, dense {fmt(r.ms['dense'], '.1f')} ms, ratio "
                      f"{fmt(r.ratio, '.3f')} ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    print()
    print(markdown_table(results, s.device))
    acc = acceptance(results, s)
    print()
    for key, value in acc.items():
        print(f"{key}: {fmt(value, '.3f', 'not measured')}")
    payload = {"settings": asdict(s), "device_name": dev_name, "torch": torch.__version__,
               "threads": torch.get_num_threads(), "flops_per_clip": flops,
               "results": [dict(asdict(r), ratio=r.ratio) for r in results],
               "acceptance": acc}
    if json_out:
        write_json(json_out, payload)
    return payload


if __name__ == "__main__":
    main()
