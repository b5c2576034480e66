"""Checkpoints of the ATGNN authors' Lightning code into gnn_audio's ATGNN.

The files are made here from gnn_audio models with the inverse of the documented mapping
(written from the layout of the authors' ``TaggingModule.net``: ``graph_conv.gconv.nn``,
4-D grouped 1x1 conv weights, ``mlg_stages.s.b.adj``, a frozen ``relative_pos`` table per
Grapher), so the round trip must give the same logits.
"""
from __future__ import annotations

import re

import pytest
import torch

from gnn_audio.models.atgnn_reference_weights import convert_reference_checkpoint
from gnn_audio.zoo import create_model

FRAMES, MEL = 128, 64  # small input; "reference" needs grids divisible by the key pooling
RATIOS = (4, 2, 1, 1)
PATH = "/ckpts/atgnn_fsd50k_epoch=12.ckpt"


def build(name="atgnn_pyr_s", num_classes=10, input_size=(FRAMES, MEL), seed=1):
    torch.manual_seed(seed)
    return create_model(name, num_classes=num_classes, input_size=input_size,
                        knn={"relative_pos": "reference"})


def randomize(model):
    """Non-trivial batch-norm statistics and counters, so that every buffer matters."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            m.num_batches_tracked.fill_(1234)
    for name, p in model.named_parameters():
        if name in ("pos_embed", "label_embed"):
            p.data.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def to_reference_layout(model, frames=FRAMES, mel=MEL):
    """The state dict of the authors' ``ATGNN`` that ``model`` corresponds to (no prefix)."""
    sd = {}
    for key, value in model.state_dict().items():
        value = value.clone()
        new = re.sub(r"^(backbone\.\d+\.0\.graph_conv\.)nn\.", r"\1gconv.nn.", key)
        new = re.sub(r"^(mlg_stages\.\d+\.\d+\.)llg\.weight$", r"\1adj", new)
        if re.match(r"^(backbone\.\d+\.0\.graph_conv|mlg_stages\.\d+\.\d+\.plg)\.nn\.0\.weight$",
                    key):
            value = value[:, :, None, None]  # [out, in/groups] -> Conv2d [out, in/groups, 1, 1]
        sd[new] = value
    # one frozen relative_pos table per Grapher: [1, n, n // r^2], n = stage nodes
    idx = 0
    for stage, n_blocks in enumerate((2, 2, 6, 2)):
        if stage:
            idx += 1  # Downsample
        n = (mel // 4) * (frames // 4) // 4 ** stage
        r = RATIOS[stage]
        for _ in range(n_blocks):
            sd[f"backbone.{idx}.0.relative_pos"] = -torch.rand(1, n, n // (r * r))
            idx += 1
    return sd


def lightning_file(model, **kw):
    net = {f"net.{k}": v for k, v in to_reference_layout(model, **kw).items()}
    return {"epoch": 12, "global_step": 14508, "pytorch-lightning_version": "2.1.0",
            "state_dict": net, "hyper_parameters": {"loss": "bcelogit"},
            "optimizer_states": [], "lr_schedulers": [], "loops": {}, "callbacks": {}}


@pytest.fixture(scope="module")
def sources():
    return {name: randomize(build(name, seed=0)).eval()
            for name in ("atgnn_pyr_s", "atgnn_pyr_s_nomlg")}


def logits(model, x):
    with torch.no_grad():
        return model.double().eval()(x)


@pytest.mark.parametrize("name,n_tables", [("atgnn_pyr_s", 12), ("atgnn_pyr_s_nomlg", 12)])
def test_round_trip_same_logits(sources, name, n_tables):
    src = sources[name]
    ckpt = lightning_file(src)
    fresh = build(name)
    sd, report = convert_reference_checkpoint(ckpt, fresh, PATH)
    fresh.load_state_dict(sd, strict=True)
    mlg = name == "atgnn_pyr_s"
    assert report["source"] == "lightning" and report["epoch"] == 12
    assert report["dropped"] == n_tables
    assert all(n.endswith(".relative_pos") for n in report["dropped_names"])
    assert report["mapped"] == len(src.state_dict())
    # 12 graph convs (+ 6 PLG) grouped weights reshaped; their nn.{0,1}.* (+ adj) renamed
    assert report["reshaped"] == 12 + (6 if mlg else 0)
    assert report["renamed"] == 12 * 7 + (6 if mlg else 0)
    x = torch.randn(2, FRAMES, MEL, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    ref = logits(src.double(), x)
    out = logits(fresh, x)
    src.float()
    assert out.shape == (2, 10)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_bare_state_dicts_with_and_without_prefix(sources):
    src = sources["atgnn_pyr_s_nomlg"]
    bare = to_reference_layout(src)
    target = build("atgnn_pyr_s_nomlg")
    a, rep_a = convert_reference_checkpoint(bare, target, "wa.pth.tar")
    b, _ = convert_reference_checkpoint({f"net.{k}": v for k, v in bare.items()}, target, "x")
    c, _ = convert_reference_checkpoint(  # trained with compile: true
        {"state_dict": {f"net._orig_mod.{k}": v for k, v in bare.items()}}, target, "y")
    assert rep_a["source"] == "state_dict" and "epoch" not in rep_a
    assert a.keys() == b.keys() == c.keys() == target.state_dict().keys()
    for k in a:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k])
    # checkpoint averaging stores averaged (float) batch counters
    avg = {k: (v.double() + 0.4 if k.endswith("num_batches_tracked") else v)
           for k, v in bare.items()}
    d, _ = convert_reference_checkpoint(avg, target, "wa.pth.tar")
    assert d["stem.convs.1.num_batches_tracked"].dtype == torch.int64
    target.load_state_dict(d, strict=True)


def refused(ckpt, model, *words):
    with pytest.raises(ValueError) as info:
        convert_reference_checkpoint(ckpt, model, PATH)
    msg = str(info.value)
    assert "\n" not in msg and PATH in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_mlg_file_into_nomlg_model_refused(sources):
    refused(lightning_file(sources["atgnn_pyr_s"]), build("atgnn_pyr_s_nomlg"),
            "with MLG", "build atgnn_pyr_s instead of atgnn_pyr_s_nomlg")


def test_nomlg_file_into_mlg_model_refused(sources):
    refused(lightning_file(sources["atgnn_pyr_s_nomlg"]), build("atgnn_pyr_s"),
            "without MLG", "build atgnn_pyr_s_nomlg instead of atgnn_pyr_s")


def test_other_class_count_refused(sources):
    refused(lightning_file(sources["atgnn_pyr_s"]), build("atgnn_pyr_s", num_classes=200),
            "10 classes", "num_classes=10")


def test_other_size_refused():
    tiny = build("atgnn_pyr_t")
    refused(lightning_file(tiny), build("atgnn_pyr_s"), "[48, 96, 240, 384]",
            "build atgnn_pyr_t instead")


def test_other_input_size_refused(sources):
    # pos_embed of the design input differs
    refused(lightning_file(sources["atgnn_pyr_s_nomlg"]),
            build("atgnn_pyr_s_nomlg", input_size=(256, MEL)), "128-frame x 64-mel-bin")
    # relative_pos tables made for another input (pos_embed alone would fit)
    ckpt = lightning_file(sources["atgnn_pyr_s_nomlg"])
    ckpt["state_dict"]["net.backbone.0.0.relative_pos"] = torch.zeros(1, 1024, 64)
    refused(ckpt, build("atgnn_pyr_s_nomlg"), "another input size", "relative_pos")


def test_damaged_file_refused(sources):
    ckpt = lightning_file(sources["atgnn_pyr_s"])
    del ckpt["state_dict"]["net.backbone.6.0.fc2.1.running_var"]
    refused(ckpt, build("atgnn_pyr_s"), "missing", "backbone.6.0.fc2.1.running_var")
    ckpt = lightning_file(sources["atgnn_pyr_s"])
    del ckpt["state_dict"]["net.backbone.13.0.relative_pos"]
    refused(ckpt, build("atgnn_pyr_s"), "missing", "relative_pos")
    ckpt = lightning_file(sources["atgnn_pyr_s"])
    ckpt["state_dict"]["net.backbone.0.0.graph_conv.gconv.nn.0.weight"] = torch.zeros(160, 80, 1, 1)
    refused(ckpt, build("atgnn_pyr_s"), "graph_conv.gconv.nn.0.weight", "(160, 80)")
    ckpt = lightning_file(sources["atgnn_pyr_s"])
    ckpt["state_dict"]["net.backbone.0.0.extra"] = torch.zeros(3)
    refused(ckpt, build("atgnn_pyr_s"), "no place")
    refused({"state_dict": {"net.x": "not a tensor"}}, build("atgnn_pyr_s"), "not named tensors")
    refused([1, 2], build("atgnn_pyr_s"), "not an ATGNN checkpoint")


def test_bounded_llg_model_refused(sources):
    model = create_model("atgnn_pyr_s", num_classes=10, input_size=(FRAMES, MEL),
                         knn={"relative_pos": "reference"}, llg_adjacency="softmax")
    refused(lightning_file(sources["atgnn_pyr_s"]), model, "llg_adjacency")


class _Partial:
    """Stands for what Lightning's save_hyperparameters pickles (optimizer factories)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this with pickle would run a shell command
        import os
        return (os.system, (f"touch {self.marker}",))


def test_create_model_loads_a_lightning_file_without_running_its_objects(
        sources, tmp_path, caplog):
    """A real ``.ckpt`` holds pickled objects in ``hyper_parameters`` (the ``net`` module,
    ``functools.partial`` optimizers), which ``weights_only`` refuses. ``create_model(...,
    pretrained=)`` reads only its tensors: the objects become inert stand-ins (the shell
    command of the planted one never runs), and one log line says what was mapped."""
    import logging

    src = sources["atgnn_pyr_s"]
    marker = tmp_path / "ran"
    ckpt = lightning_file(src)
    ckpt["hyper_parameters"] = {"net": torch.nn.Linear(2, 2), "optimizer": _Partial(marker),
                                "compile": False}
    path = tmp_path / "epoch_012.ckpt"
    torch.save(ckpt, path)
    with caplog.at_level(logging.INFO, logger="gnn_audio.zoo"):
        model = create_model("atgnn_pyr_s", pretrained=path, num_classes=10,
                             input_size=(FRAMES, MEL))
    assert not marker.exists()
    assert model.knn_config.relative_pos == "reference"  # the default: the authors' graphs
    line = [r.getMessage() for r in caplog.records if r.name == "gnn_audio.zoo"]
    mapped = len(src.state_dict())
    assert len(line) == 1 and line[0].startswith(f"{path}: {mapped} tensors mapped onto "
                                                 "atgnn_pyr_s, 90 renamed, 18 reshaped, "
                                                 "12 dropped"), line
    assert "2 non-tensor objects" in line[0], line[0]  # the Linear and the planted call
    x = torch.randn(2, FRAMES, MEL, generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64)
    torch.testing.assert_close(logits(model, x), logits(src.double(), x), rtol=0, atol=1e-6)
    src.float()
    # a model without MLG refuses the file in one line naming it
    with pytest.raises(ValueError, match=f"{path} holds an ATGNN with MLG"):
        create_model("atgnn_pyr_s_nomlg", pretrained=path, num_classes=10,
                     input_size=(FRAMES, MEL))
    # another entry's foreign layout (PANNs' CNN10) refuses it in one line naming it
    with pytest.raises(ValueError, match="not a PANNs CNN10 checkpoint") as info:
        create_model("cnn10", pretrained=path, num_classes=10)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    # an entry without a foreign layout keeps the plain refusal
    with pytest.raises(Exception, match="not a gnn_audio checkpoint|weights_only"):
        create_model("fc1", pretrained=path)
