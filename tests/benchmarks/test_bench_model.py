"""benchmarks/dense_atgnn.py computes the same model as gnn_audio's ATGNN (it is the baseline of
benchmarks/bench_model.py and an independent check of the layers' arithmetic); the benchmark
script runs end to end."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gnn_audio.zoo import create_model

from ..script_loader import load_benchmark


dense_atgnn = load_benchmark("dense_atgnn")

# 64 frames x 128 mel: grids 32x16 / 16x8 / 8x4 / 4x2, keys pooled 4 and 2; stage 4 has fewer
# nodes than k * dilation (both models then keep every d-th of all candidates)
FRAMES, MEL, NUM_CLASSES = 64, 128, 10


def _randomise_norms(model: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics and position embedding (fresh ones are identities/0)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
        model.pos_embed.copy_(0.1 * torch.randn(model.pos_embed.shape, generator=gen))


def _pair(name: str, **kwargs):
    torch.manual_seed(0)
    # the dense model implements the sin-cos term (the exact geometry), not the authors' table
    kwargs.setdefault("knn", {"relative_pos": "sincos"})
    model = create_model(name, num_classes=NUM_CLASSES, **kwargs).double()
    _randomise_norms(model)
    state = model.state_dict()
    overrides = {"drop_path_rate": kwargs["drop_path_rate"]} if "drop_path_rate" in kwargs else {}
    dense = dense_atgnn.DenseATGNN(dense_atgnn.DenseATGNNConfig.from_state_dict(state,
                                                                                **overrides))
    dense.load_state_dict(state, strict=True)
    return model, dense.double()


def _input(seed: int, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, FRAMES, MEL, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed))


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max())


@pytest.mark.parametrize("name", ["atgnn_pyr_t", "atgnn_pyr_t_nomlg"])
def test_dense_equals_project_in_eval(name):
    model, dense = _pair(name)
    x = _input(seed=2)
    with torch.no_grad():
        ref, out = model.eval()(x), dense.eval()(x)
    assert out.shape == (2, NUM_CLASSES)
    # float64 (the kNN search ranks float64 input in float64); measured ~1e-14
    assert _rel_err(ref, out) < 1e-12


@pytest.mark.parametrize("name", ["atgnn_pyr_s", "atgnn_pyr_s_nomlg"])
def test_dense_equals_project_pyr_s_float64(name):
    """The issue's statement at full width: atgnn_pyr_s with and without MLG equals the
    independent dense implementation in float64 (relative position on in both)."""
    model, dense = _pair(name)
    x = _input(seed=4)
    with torch.no_grad():
        ref, out = model.eval()(x), dense.eval()(x)
    assert _rel_err(ref, out) < 1e-12


def test_dense_equals_project_where_the_cpu_shortcuts_run():
    """At 512 frames the 256 keys of stages 1 and 2 go through the kNN search's two-step
    selection (``knn.smallest``) and the 8192 nodes of stage 1 through several CPU blocks
    of the max-relative reduction; the model still equals the dense one in float64."""
    from gnn_audio.graph.knn import _block_size
    from gnn_audio.nn.relative_max import _column_blocks

    assert _block_size(256, 9) == 4
    assert 2 * 32 * 128 > 2 * _column_blocks(48, 8)
    model, dense = _pair("atgnn_pyr_t", input_size=(512, MEL))
    x = torch.randn(2, 512, MEL, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref, out = model.eval()(x), dense.eval()(x)
    assert _rel_err(ref, out) < 1e-12


def test_dense_equals_project_in_training_with_gradients():
    model, dense = _pair("atgnn_pyr_t", drop_path_rate=0.0)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, FRAMES, MEL, dtype=torch.float64, generator=gen)
    y = (torch.rand(2, NUM_CLASSES, generator=gen) < 0.3).double()
    losses = []
    for net in (model.train(), dense.train()):
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        loss.backward()
        losses.append(loss.detach())
    assert abs(float(losses[0] - losses[1])) < 1e-12 * abs(float(losses[0]))
    ref = dict(model.named_parameters())
    names = [n for n, _ in dense.named_parameters()]
    g_ref = torch.cat([ref[n].grad.flatten() for n in names])
    g_out = torch.cat([p.grad.flatten() for _, p in dense.named_parameters()])
    assert float((g_ref - g_out).norm() / g_ref.norm()) < 1e-9  # measured ~3e-12
    running = [n for n in model.state_dict() if "running_" in n]
    sd_ref, sd_out = model.state_dict(), dense.state_dict()
    assert all(torch.allclose(sd_ref[n], sd_out[n], rtol=1e-10, atol=1e-12) for n in running)


def test_relative_position_term_changes_the_graph():
    """The equality above depends on the position term: without it the dense model differs."""
    model, _ = _pair("atgnn_pyr_t_nomlg")
    state = model.state_dict()
    cfg = dense_atgnn.DenseATGNNConfig.from_state_dict(state, relative_pos=False)
    dense = dense_atgnn.DenseATGNN(cfg).double()
    dense.load_state_dict(state)
    x = _input(seed=2)
    with torch.no_grad():
        assert _rel_err(model.eval()(x), dense.eval()(x)) > 1e-6


def test_config_from_state_dict():
    state = create_model("atgnn_pyr_t", num_classes=NUM_CLASSES).state_dict()
    cfg = dense_atgnn.DenseATGNNConfig.from_state_dict(state)
    assert cfg.channels == (48, 96, 240, 384) and cfg.blocks == (2, 2, 6, 2)
    assert cfg.mlg_blocks == (1, 1, 3, 1) and cfg.num_classes == NUM_CLASSES
    assert dense_atgnn.vig_dilations(12, 9) == [1] * 4 + [2] * 4 + [3] * 4
    with pytest.raises(ValueError, match="unknown DenseATGNNConfig fields"):
        dense_atgnn.DenseATGNNConfig.from_state_dict(state, kk=3)
    with pytest.raises(ValueError, match="not a pyramid ATGNN"):
        dense_atgnn.DenseATGNNConfig.from_state_dict({})
    with pytest.raises(ValueError, match="one entry per stage"):
        dense_atgnn.DenseATGNNConfig(channels=(48, 96), blocks=(2,), reduce_ratios=(4, 2))


@pytest.mark.slow  # 1-2 min on a shared 2-core CPU: two models, inference and a train step
def test_bench_model_runs_and_writes_json(tmp_path):
    bench = load_benchmark("bench_model")
    out = tmp_path / "bench.json"
    payload = bench.main(["--device", "cpu", "--model", "atgnn_pyr_t", "--num-classes", "10",
                          "--frames", "32", "--batch-infer", "1", "--batch-train", "2",
                          "--repeat", "1", "--warmup", "0", "--variants", "eager", "fp32",
                          "--json", str(out)])
    rows = json.loads(out.read_text())["results"]
    assert [(r["task"], r["mode"], r["precision"]) for r in rows] == [
        ("infer_b1", "eager", "fp32"), ("train_b2", "eager", "fp32")]
    assert all(r["ms"]["project"] > 0 and r["ms"]["dense"] > 0 and r["ratio"] > 0
               for r in rows)
    assert payload["acceptance"]["eager_fp32_train_b2_ratio"] == rows[1]["ratio"]
    with pytest.raises(SystemExit, match="unknown --variants"):
        bench.main(["--device", "cpu", "--variants", "fast"])
