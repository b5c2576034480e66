"""Everything a lent GPU must tell us, in one run: ``benchmarks/gpu_suite.sh`` calls this.

Steps, each timed and reported (a failed step is reported and the suite goes on):

1. ``matmul``: the measured bf16 and fp32 matrix rate (TFLOP/s), the peak the MFU figures of
   the next steps are taken against;
2. ``gpu_tests``: ``pytest tests/test_gpu.py`` (marker ``gpu``);
3. ``bench_model``: ``benchmarks/bench_model.py``: atgnn_pyr_s inference at batch 1 and 24 and
   the training step at batch 24, eager and compiled, fp32 and bf16, beside the dense
   implementation (ms, clips/s, peak memory, MFU);
4. ``train_epoch``: one epoch of atgnn_pyr_s at batch 24 through ``examples/train_fsd50k.py``
   on a generated FSD50K-format data set (480 training clips): the trainer's pace line (step
   time, peak memory), the epoch's time and clips/s, and the data loader's share;
5. ``tag``: ``gnn-audio tag`` over a 10-minute file and over 100 clips, files/s;
6. ``profile``: the top operators of one compiled bf16 training step (``torch.profiler``).

Everything goes to ``--out`` (``$OUT`` on the device machine): ``suite.json`` and
``suite.md`` (a table per step), and each step's own output. ``--quick`` shrinks every step
(a tiny model, 64 frames, a handful of clips) so that the whole suite dry-runs on a CPU in
about a minute: ``.venv/bin/python benchmarks/gpu_suite.py --device cpu --quick --out /tmp/s``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: a tiny pyramid ATGNN for --quick (the zoo's atgnn_pyr_t at a quarter of its widths)
QUICK_MODEL = {"channels": [8, 16, 24, 32], "drop_path_rate": 0.0}


def _run(cmd: List[str], log: Path, timeout: float) -> subprocess.CompletedProcess:
    """``cmd`` with its output in ``log``; raises on a non-zero exit (the last lines of the
    log in the message)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with open(log, "w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, cwd=ROOT, env=env)
    if done.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise RuntimeError(f"exit {done.returncode}: {tail}")
    return done


def matmul_rate(device: str, quick: bool) -> Dict[str, Any]:
    """Measured dense matrix-multiply rate per dtype (TFLOP/s): n x n @ n x n, median of 10."""
    import torch

    n = 1024 if quick else 8192
    out: Dict[str, Any] = {"n": n}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        times = []
        for i in range(12):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            a @ b
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - t0)
        times.sort()
        out[f"{name}_tflops"] = 2 * n ** 3 / times[len(times) // 2] / 1e12
    return out


def gpu_tests(args, out: Path) -> Dict[str, Any]:
    log = out / "gpu_tests.log"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "tests/test_gpu.py", "-m", "gpu or not gpu"]
    try:
        _run(cmd, log, args.step_timeout)
    except RuntimeError as err:
        if "exit 5" not in str(err):  # 5: nothing collected
            raise
    last = log.read_text().strip().splitlines()[-1]
    return {"summary": last}


def bench_model(args, out: Path) -> Dict[str, Any]:
    target = out / "bench_model.json"
    cmd = [sys.executable, "benchmarks/bench_model.py", "--device", args.device,
           "--json", str(target)]
    if args.quick:
        cmd += ["--frames", "64", "--mel", "32", "--batch-infer", "1", "2", "--batch-train",
                "2", "--repeat", "2", "--warmup", "1", "--variants", "eager",
                "--model", "atgnn_pyr_t"]
    elif "bf16_tflops" in args.rates:
        cmd += ["--peak-tflops-bf16", f"{args.rates['bf16_tflops']:.1f}",
                "--peak-tflops-fp32", f"{args.rates['fp32_tflops']:.1f}"]
    _run(cmd, out / "bench_model.log", args.step_timeout)
    return json.loads(target.read_text())


def _data_set(root: Path, quick: bool) -> Path:
    from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like

    # 600 clips: 480 train, 60 val, 60 eval (the generator's split shares)
    return make_fsd50k_like(root, num_clips=40 if quick else 600, seed=3)


def train_epoch(args, out: Path) -> Dict[str, Any]:
    data = _data_set(out / "data", args.quick)
    run = out / "train_run"
    cmd = [sys.executable, "examples/train_fsd50k.py", "--data-dir", str(data), "--run-dir",
           str(run), "--overwrite", "--epochs", "1", "--device", args.device, "--no-progress",
           "--eval-modes", "crop"]
    if args.quick:
        cmd += ["--recipe", "example", "--model-kwargs", json.dumps(QUICK_MODEL),
                "--fbank.target-length", "64", "--fbank.num-mel-bins", "32", "--batch-size",
                "4", "--num-workers", "0"]
    else:
        cmd += ["--recipe", "atgnn_fsd50k", "--batch-size", "24", "--num-workers", "8",
                "--precision", "bf16", "--eval-batch-size", "48"]
    started = time.perf_counter()
    _run(cmd, out / "train_epoch.log", args.step_timeout)
    wall = time.perf_counter() - started
    history = json.loads((run / "history.json").read_text())[0]
    log = (run / "train.log").read_text()
    pace = re.search(r"pace: ([\d.]+) s per step of (\d+) clips .*?peak memory ([^:,]+)", log)
    result = {"wall_s": wall, "epoch_train_s": history["seconds"], "steps": history["steps"],
              "clips_per_s": history["clips_per_s"], "train_loss": history["train_loss"],
              "loader_wait_s": history.get("loader_wait_s")}
    if pace:
        result.update(step_s=float(pace.group(1)), clips_per_step=int(pace.group(2)),
                      peak_memory=pace.group(3).strip())
    return result


def tag(args, out: Path) -> Dict[str, Any]:
    import numpy as np
    import soundfile as sf

    from gnn_audio.data.synthetic.signals import mixture

    if not (out / "train_run" / "best.pt").is_file():
        raise RuntimeError("needs the train_epoch step's best.pt")
    audio = out / "tag_audio"
    audio.mkdir(exist_ok=True)
    long_seconds = 20.0 if args.quick else 600.0
    clips = 8 if args.quick else 100
    rng = np.random.default_rng(0)
    sf.write(audio / "long.wav", 0.1 * rng.standard_normal(int(long_seconds * 16000)), 16000)
    for i in range(clips):
        sf.write(audio / f"clip{i:03d}.wav", mixture(5.0, 16000, {"tone": {}}, seed=i), 16000)
    ckpt = str(out / "train_run" / "best.pt")
    result: Dict[str, Any] = {}
    for name, files in (("long_file", [str(audio / "long.wav")]),
                        ("clips", sorted(str(p) for p in audio.glob("clip*.wav")))):
        cmd = [sys.executable, "-m", "gnn_audio.cli", "tag", *files, "-c", ckpt, "--device",
               args.device, "--format", "json", "--quiet"]
        started = time.perf_counter()
        _run(cmd, out / f"tag_{name}.log", args.step_timeout)
        seconds = time.perf_counter() - started
        result[name] = {"files": len(files), "seconds": seconds,
                        "files_per_s": len(files) / seconds}
    result["long_file"]["audio_seconds"] = long_seconds
    return result


def profile(args, out: Path) -> Dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from gnn_audio.zoo import create_model

    device = torch.device(args.device)
    frames, mel, batch = (64, 32, 2) if args.quick else (1024, 128, 24)
    name, kwargs = ("atgnn_pyr_t", QUICK_MODEL) if args.quick else ("atgnn_pyr_s", {})
    model = create_model(name, num_classes=200, input_size=(frames, mel), **kwargs).to(device)
    step_model = model if args.quick else torch.compile(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, frames, mel, device=device)
    y = (torch.rand(batch, 200, device=device) < 0.05).float()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(step_model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):  # compile and warm up
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    with torch_profile(activities=activities) as prof:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=20)
    (out / "profile.txt").write_text(table)
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in events) or 1
    return {"top": [{"op": e.key, "share": getattr(e, key) / total} for e in events[:12]]}


STEPS: Dict[str, Callable] = {"gpu_tests": gpu_tests, "bench_model": bench_model,
                              "train_epoch": train_epoch, "tag": tag, "profile": profile}


def _markdown(results: Dict[str, Any]) -> str:
    lines = ["| step | status | seconds | result |", "|---|---|---|---|"]
    for name, r in results["steps"].items():
        brief = r.get("error") or json.dumps(r.get("result"))[:300]
        lines.append(f"| {name} | {r['status']} | {r['seconds']:.1f} | {brief} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a dry run on a CPU")
    p.add_argument("--out", default=os.environ.get("OUT", "gpu_suite_out"))
    p.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS))
    p.add_argument("--step-timeout", type=float, default=300.0,
                   help="seconds one step may take")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: Dict[str, Any] = {"device": args.device, "quick": args.quick, "steps": {}}
    t0 = time.perf_counter()
    try:
        args.rates = matmul_rate(args.device, args.quick)
        results["steps"]["matmul"] = {"status": "ok", "result": args.rates}
    except Exception as err:  # noqa: BLE001 -- reported, the suite goes on
        args.rates = {}
        results["steps"]["matmul"] = {"status": "failed", "error": str(err)}
    results["steps"]["matmul"]["seconds"] = time.perf_counter() - t0
    for name in args.steps:
        t0 = time.perf_counter()
        try:
            results["steps"][name] = {"status": "ok", "result": STEPS[name](args, out)}
        except Exception as err:  # noqa: BLE001 -- reported, the suite goes on
            results["steps"][name] = {"status": "failed",
                                      "error": f"{type(err).__name__}: {err}"[:2000]}
        results["steps"][name]["seconds"] = time.perf_counter() - t0
        print(f"{name}: {results['steps'][name]['status']} "
              f"({results['steps'][name]['seconds']:.1f} s)", flush=True)
        (out / "suite.json").write_text(json.dumps(results, indent=2, default=str))
    results["seconds"] = time.perf_counter() - started
    (out / "suite.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "suite.md").write_text(_markdown(results))
    print(_markdown(results))
    return 0 if all(r["status"] == "ok" for r in results["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
