"""benchmarks/train_throughput.py runs the trainer's step for its variants and reports them
(a failing variant in the table, not as an error); benchmarks/measure.py's shared helpers."""
from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import torch

from gnn_audio.zoo import create_model
from gnn_audio.zoo.summary import count_macs

from ..script_loader import load_benchmark


bench = load_benchmark("train_throughput")
measure = sys.modules["measure"]  # what the benchmark imported

TINY = dict(channels=[8, 16, 24, 32], drop_path_rate=0.0)
FRAMES, MEL, CLASSES, BATCH = 64, 32, 5, 2


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread (``--threads 1`` below): tiny ops slow down a lot under OpenMP when other
    processes share the two cores; the process's thread count is restored afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _argv(*extra: str) -> list:
    return ["--device", "cpu", "--model", "atgnn_pyr_t", "--model-kwargs", json.dumps(TINY),
            "--frames", str(FRAMES), "--mel", str(MEL), "--num-classes", str(CLASSES),
            "--batch-size", str(BATCH), "--repeat", "1", "--warmup", "0", "--threads", "1",
            *extra]


def test_eager_variants_measured_and_written(tmp_path):
    out = tmp_path / "tt.json"
    payload = bench.main(_argv("--variants", "fp32", "bf16", "channels-last",
                               "--peak-tflops", "0.5", "--json", str(out)))
    assert json.loads(out.read_text()) == json.loads(json.dumps(payload))
    rows = payload["results"]
    assert [r["variant"] for r in rows] == ["fp32", "bf16", "channels-last"]
    assert [r["precision"] for r in rows] == ["fp32", "bf16", "fp32"]
    model = create_model("atgnn_pyr_t", num_classes=CLASSES, input_size=(FRAMES, MEL), **TINY)
    flops = 2 * count_macs(model, torch.randn(1, FRAMES, MEL))
    assert payload["flops_per_clip"] == flops > 0
    fp32_ms = rows[0]["ms"]
    for r in rows:
        assert r["notes"] == [] and len(r["times_ms"]) == 1 and r["ms"] == r["times_ms"][0] > 0
        assert r["min_ms"] == r["ms"]
        assert r["speedup_vs_fp32"] == pytest.approx(fp32_ms / r["ms"])
        assert r["clips_per_s"] == pytest.approx(BATCH / (r["ms"] / 1e3))
        assert r["mfu"] == pytest.approx(3 * flops * r["clips_per_s"] / 0.5e12)
        # parameters + buffers + gradients + two Adam moments (fp32)
        n_params = sum(p.numel() for p in model.parameters())
        assert r["state_mb"] >= 4 * n_params * 4 / 2 ** 20
        assert r["peak_mb"] is None or r["peak_mb"] >= r["state_mb"]
    assert rows[0]["speedup_vs_fp32"] == 1.0
    assert payload["reference"] is None  # the authors' CUDA figure: only beside CUDA rows
    assert payload["settings"]["model_kwargs"] == TINY
    assert payload["settings"]["batch_size"] == BATCH


def test_variant_copies_start_from_the_same_weights():
    s, _ = bench.parse_args(_argv("--variants", "fp32", "channels-last"))
    base = bench.build_model(s)
    recipe = bench.get_recipe(s.recipe)
    runs = [bench.VariantRun(bench.VARIANTS[v], base, recipe, torch.device("cpu"))
            for v in s.variants]
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b)
    assert runs[0].model.pos_embed.data_ptr() != base.pos_embed.data_ptr()  # a copy
    opt = runs[0].optimizer.param_groups[0]
    assert (opt["lr"], opt["betas"], opt["weight_decay"]) == (5e-4, (0.95, 0.999), 5e-7)
    cl = torch.channels_last
    assert runs[1].model.stem.convs[3].weight.is_contiguous(memory_format=cl)
    assert not runs[0].model.stem.convs[3].weight.is_contiguous(memory_format=cl)


def test_compile_failure_is_reported_not_raised(monkeypatch, capsys):
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("backend exploded")

    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: Broken())
    payload = bench.main(_argv("--variants", "fp32", "compiled"))
    fp32, compiled = payload["results"]
    assert fp32["ms"] > 0 and compiled["ms"] is None and compiled["speedup_vs_fp32"] is None
    assert compiled["notes"] == ["compile failed: RuntimeError: backend exploded"]
    table = capsys.readouterr().out
    assert "| compiled | - | - | - | - |" in table and "compile failed" in table


@pytest.mark.parametrize("args, message", [
    (["--variants", "fp16"], "--variants"),
    (["--variants", "bf16", "bf16"], "each once"),
    (["--model", "atgnn_huge"], "unknown model 'atgnn_huge'"),
    (["--recipe", "nope"], "unknown recipe 'nope'"),
    (["--model-kwargs", "{channels"], "--model-kwargs is not JSON"),
    (["--model-kwargs", '{"input_size": [8, 8]}'], "set these with --num-classes"),
    (["--repeat", "0"], "--repeat must be >= 1"),
])
def test_bad_arguments_are_one_line_errors(args, message):
    with pytest.raises(SystemExit, match=message):
        bench.main(_argv("--variants", "fp32") + args)  # later flags win


def test_reference_row_is_labelled_not_measured():
    s = bench.ThroughputSettings(device="cpu", model="atgnn_pyr_s", frames=1024, mel=128,
                                 batch_size=24, variants=("fp32",))
    ref = bench.reference_row(s, flops_per_clip=int(30e9))
    assert ref["ms"] == 289.9 and ref["measured"] is False
    assert ref["clips_per_s"] == pytest.approx(24 / 0.2899)
    assert ref["mfu"] == pytest.approx(3 * 30e9 * (24 / 0.2899) / 91.6e12)
    row = bench.VariantResult("fp32", "fp32", ms=100.0)
    table = bench.markdown_table([row], "cuda", ref)
    assert "NOT measured" in table.splitlines()[-1] and "289.9" in table.splitlines()[-1]
    other = bench.reference_row(dataclasses.replace(s, frames=256), int(30e9))
    assert other["mfu"] is None  # FLOPs of another clip size say nothing about the reference
    assert bench.reference_row(dataclasses.replace(s, model="atgnn_pyr_t"), 1) is None


def test_peak_table_takes_the_longest_matching_name():
    assert measure.peak_tflops("NVIDIA H100 80GB HBM3") == (989.0, 67.0)
    assert measure.peak_tflops("NVIDIA H100 PCIe") == (756.0, 51.0)
    assert measure.peak_tflops("NVIDIA L40S") == (362.0, 91.6)
    assert measure.peak_tflops("cpu") is None


def test_time_interleaved_alternates_and_skips_missing():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": None, "c": lambda: calls.append("c")}
    times = measure.time_interleaved(fns, 3, torch.device("cpu"))
    assert calls == ["a", "c"] * 3
    assert len(times["a"]) == len(times["c"]) == 3 and times["b"] == []
    assert measure.median_ms([0.001, 0.003, 0.002]) == pytest.approx(2.0)
    assert measure.median_ms([]) is None
