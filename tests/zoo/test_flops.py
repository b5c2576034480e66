"""FLOPs per clip (gnn_audio.zoo.summary.count_flops): hand-counted tiny models, per-clip
independence of the batch, the model left as it was, and the count cache."""
import json

import pytest
import torch

from gnn_audio.zoo import create_model
from gnn_audio.zoo import summary
from gnn_audio.zoo.summary import count_flops, count_macs


def test_one_linear_layer_by_hand():
    # forward: addmm of (2 x 4) @ (4 x 3) = 2 * 2*4*3 FLOPs for the batch, 2*4*3 = 24 per clip.
    # training step: the input does not require a gradient, so the backward is the weight
    # gradient only, (3 x 2) @ (2 x 4) = 48 FLOPs for the batch (the bias gradient is a sum,
    # not counted): 24 per clip, the training step 24 + 24 = 48 = 2 x forward.
    flops = count_flops(torch.nn.Linear(4, 3), torch.randn(2, 4), train_step=True)
    assert flops["clips"] == 2
    assert flops["forward"] == 2 * 4 * 3 == 24
    assert flops["train_step"] == 2 * 24 == 48
    assert flops["forward_families"] == {"convolution": 0, "matmul": 24, "other": 0}
    assert flops["train_step_families"] == {"convolution": 0, "matmul": 48, "other": 0}
    assert count_flops(torch.nn.Linear(4, 3), torch.randn(2, 4))["train_step"] is None


def test_two_linear_layers_by_hand():
    # forward per clip: 2*4*3 + 2*3*2 = 36. Backward per clip: layer 2 weight grad (12) and
    # input grad (12), layer 1 weight grad only (24): 48, so the training step is 84.
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    flops = count_flops(net, torch.randn(5, 4), train_step=True)
    assert flops["forward"] == 36 and flops["train_step"] == 36 + 48


def test_a_convolution_is_its_own_family():
    # Conv1d(2 -> 3, kernel 3) on 8 samples: 6 outputs x 3 channels x 2*3 MACs = 108 MACs
    net = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.Flatten(), torch.nn.Linear(18, 1))
    flops = count_flops(net, torch.randn(3, 2, 8), train_step=True)
    assert flops["forward_families"] == {"convolution": 2 * 108, "matmul": 2 * 18, "other": 0}
    # backward: conv weight grad only (216); linear weight and input grads (36 + 36)
    assert flops["train_step_families"] == {"convolution": 2 * 216, "matmul": 3 * 36,
                                            "other": 0}


def test_counts_are_per_clip_and_leave_the_model_as_it_was():
    torch.manual_seed(0)
    model = create_model("atgnn_pyr_t", num_classes=200).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one = count_flops(model, torch.randn(1, 256, 128), train_step=True)  # batch 1: repeated to 2
    two = count_flops(model, torch.randn(2, 256, 128), train_step=True)
    assert one["clips"] == 1 and two["clips"] == 2
    for key in ("forward", "forward_families", "train_step", "train_step_families"):
        assert one[key] == two[key], key
    assert one["forward"] == 2 * count_macs(model, torch.randn(1, 256, 128)) > 0
    assert one["train_step"] > 2 * one["forward"]  # backward: weight and most input grads
    assert one["forward_families"]["convolution"] > one["forward_families"]["matmul"] > 0
    assert sum(one["forward_families"].values()) == one["forward"]
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_zoo_rows_cache_flops_under_a_new_key(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    [row] = summary.zoo_rows(["fc1"])
    model = create_model("fc1", num_classes=527)
    flops = count_flops(model, torch.randn(1, 10, 128), train_step=True)
    assert row["flops"] == flops["forward"] == 2 * row["macs"]
    assert row["train_flops"] == flops["train_step"] > row["flops"]
    assert row["flops_conv"] == flops["forward_families"]["convolution"]
    cache = json.loads(summary.count_cache_file().read_text())
    [key] = cache
    assert key.endswith("|" + summary.COUNTS_LAYOUT)
    # a cache written before the FLOPs (old key, no "flops"): not read, counted again
    old_key = key[: -len("|" + summary.COUNTS_LAYOUT)]
    summary.count_cache_file().write_text(json.dumps({old_key: {"params": 1, "macs": 2}}))
    [row] = summary.zoo_rows(["fc1"])
    assert row["params"] > 1 and row["flops"] == flops["forward"]
    # the new key is read: nothing is run
    monkeypatch.setattr(summary, "count_flops", lambda *a, **k: pytest.fail("recomputed"))
    assert summary.zoo_rows(["fc1"])[0]["train_flops"] == flops["train_step"]
    table = summary.zoo_table(summary.zoo_rows(["fc1"])).splitlines()
    assert "GFLOP/clip" in table[0] and "train GFLOP/clip" in table[0]
