"""Measuring helpers shared by the model benchmarks (``bench_model.py``,
``train_throughput.py``): device synchronisation, interleaved timing, peak memory, model FLOPs
per clip, the peak-throughput table behind model FLOP utilisation, compile limits, table
formatting and atomic JSON output.

* peak memory (:func:`peak_memory_mb`): CUDA: ``torch.cuda.max_memory_allocated`` during one
  call (optionally over what was allocated before it). CPU: the process's RSS high-water mark
  during one call over its RSS before it (``/proc/self/clear_refs`` resets the mark,
  ``malloc_trim`` returns freed heap pages first); ``None`` where /proc is not available.
* model FLOPs (:func:`model_flops_per_clip`): :func:`gnn_audio.zoo.summary.count_flops` per
  clip, of a forward pass (2 x the multiply-accumulates that ``count_macs`` counts) or of a
  training step (forward + backward, measured).
* peak FLOP/s (:data:`PEAK_TFLOPS`, :func:`peak_tflops`): dense bf16 tensor-core and fp32
  (non-tensor) figures of the data sheets, by device-name fragment.
"""
from __future__ import annotations

import ctypes
import gc
import json
import re
import statistics
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch

__all__ = ["PEAK_TFLOPS", "peak_tflops", "check_device", "sync", "one_line", "peak_memory_mb",
           "model_flops_per_clip", "time_interleaved", "median_ms", "raise_recompile_limits",
           "fmt", "write_json"]

#: dense peak throughput in TFLOP/s ``(bf16, fp32)`` by device-name fragment; the longest
#: fragment found in the device name wins ("H100 PCIe" before "H100", the SXM part)
PEAK_TFLOPS: Dict[str, Tuple[float, float]] = {
    "H100 PCIe": (756.0, 51.0),
    "H100 NVL": (835.0, 60.0),
    "H100": (989.0, 67.0),
    "H200": (989.0, 67.0),
    "A100": (312.0, 19.5),
    "L40S": (362.0, 91.6),
}


def peak_tflops(device_name: str) -> Optional[Tuple[float, float]]:
    """``(bf16, fp32)`` peak TFLOP/s of the device called ``device_name``, ``None`` if the
    table does not know it."""
    hits = [frag for frag in PEAK_TFLOPS if frag in device_name]
    return PEAK_TFLOPS[max(hits, key=len)] if hits else None


def check_device(device: str) -> None:
    """``ValueError`` for a ``--device`` other than cpu / cuda, or cuda without a GPU."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda (got {device!r})")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device available")


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_line(err: BaseException) -> str:
    """``"Type: first line of the message"``, at most 160 characters (for table cells)."""
    text = str(err).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(err).__name__}: {msg}"[:160]


def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"^{field}:\s+(\d+)", f.read(), re.M)
    if match is None:
        raise OSError(f"{field} not in /proc/self/status")
    return int(match.group(1))


def _release_host_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def peak_memory_mb(fn: Callable[[], None], device: torch.device,
                   over_allocated: bool = False) -> Optional[float]:
    """Peak memory of one call of ``fn`` in MiB (see the module docstring), ``None`` if it
    cannot be measured here. ``over_allocated``: on CUDA, subtract what was allocated before
    the call (the CPU figure is always over the RSS before the call)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) if over_allocated else 0
        fn()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20
    try:
        _release_host_memory()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        before = _proc_status_kb("VmRSS")
        fn()
        return max(0, _proc_status_kb("VmHWM") - before) / 1024
    except OSError:
        return None


def model_flops_per_clip(model: torch.nn.Module, example: torch.Tensor,
                         train_step: bool = False) -> int:
    """FLOPs per clip of ``example``'s forward pass (``train_step``: of a training step,
    forward + backward), as :func:`gnn_audio.zoo.summary.count_flops` counts them (matrix
    products and convolutions; the forward figure is 2 x ``count_macs``)."""
    from gnn_audio.zoo.summary import count_flops

    flops = count_flops(model, example, train_step=train_step)
    return int(flops["train_step"] if train_step else flops["forward"])


def time_interleaved(fns: Mapping[str, Optional[Callable[[], None]]], repeat: int,
                     device: torch.device) -> Dict[str, List[float]]:
    """Seconds per call of every function, ``repeat`` rounds of one call each in turn (a, b,
    c, a, b, c, ...: machine noise hits all alike); ``None`` entries are skipped (empty
    list)."""
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            if fn is None:
                continue
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def median_ms(seconds: List[float]) -> Optional[float]:
    """Median in milliseconds, ``None`` for no measurement."""
    return 1e3 * statistics.median(seconds) if seconds else None


def raise_recompile_limits(at_least: int = 256) -> None:
    """Let ``torch.compile`` keep a graph per setting (shape, grad mode, autocast, train / eval
    and model instance) instead of falling back to eager after the default handful."""
    config = torch._dynamo.config
    for limit in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                  "accumulated_recompile_limit"):
        if hasattr(config, limit):
            setattr(config, limit, max(at_least, getattr(config, limit)))


def fmt(value: Optional[float], spec: str, none: str = "-") -> str:
    """``format(value, spec)``, or ``none`` for a missing value."""
    return none if value is None else format(value, spec)


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically
    (:func:`gnn_audio.files.atomic_write_text`)."""
    from gnn_audio.files import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=2))
