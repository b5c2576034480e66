"""The GPU suite's dry run: ``benchmarks/gpu_suite.sh --device cpu --quick`` runs every step
(matrix rate, the gpu tests, bench_model, one training epoch through the example, the tagger
over a long file and many clips, a profiled training step) and writes its JSON and table, so
that nothing is found out on a lent GPU."""
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_suite_dry_runs_on_the_cpu(tmp_path):
    out = tmp_path / "suite"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--device", "cpu",
                           "--quick"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OUT": str(out), "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "suite.json").read_text())
    assert list(results["steps"]) == ["matmul", "gpu_tests", "bench_model", "train_epoch",
                                      "tag", "profile"]
    assert all(step["status"] == "ok" for step in results["steps"].values()), results
    steps = {name: step["result"] for name, step in results["steps"].items()}
    assert steps["matmul"]["bf16_tflops"] > 0 and steps["matmul"]["fp32_tflops"] > 0
    assert {r["task"] for r in steps["bench_model"]["results"]} == {"infer_b1", "infer_b2", "train_b2"}
    train = steps["train_epoch"]
    assert train["steps"] >= 1 and 0 <= train["loader_wait_s"] <= train["epoch_train_s"]
    assert train["step_s"] > 0 and "GiB" in train["peak_memory"]
    assert steps["tag"]["clips"]["files"] == 8 and steps["tag"]["long_file"]["files"] == 1
    assert steps["profile"]["top"] and (out / "profile.txt").is_file()
    assert (out / "suite.md").read_text().startswith("| step | status |")


def test_the_memory_estimate_counts_what_the_backward_keeps():
    """A linear model's forward saves its input (for the weight gradient): 4 bytes x features
    per clip; the estimate finds that, and the 4 copies of the weights."""
    import torch

    from ..script_loader import load_benchmark

    memory = load_benchmark("memory_estimate")
    model = torch.nn.Linear(256, 8)
    x = torch.randn(3, 256)
    assert memory.saved_bytes(model, x, "fp32") == 3 * 256 * 4
    e = memory.estimate("atgnn_pyr_t", batch=4, frames=64, mel=32, precision="fp32")
    assert e["activations_gib"] > 0 and e["total_gib"] > e["weights_grads_adam_gib"] > 0
