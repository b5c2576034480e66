"""Pyramid / isotropic ViG ImageNet checkpoints (layout from Efficient-AI-Backbones' vig_pytorch)
cannot be downloaded here: these tests write files with exactly that key layout and shapes."""
import pytest
import torch

from gnn_audio.models import load_vig_imagenet
from gnn_audio.zoo import atgnn_iso, atgnn_pyr_med, atgnn_pyr_s


def _conv_bn(sd, prefix, cin, cout, k=1, groups=1, conv_idx=0, bn_idx=1):
    fan_in = cin // groups * k * k  # trained-like magnitudes, so a forward pass stays finite
    sd[f"{prefix}.{conv_idx}.weight"] = torch.randn(cout, cin // groups, k, k) / fan_in ** 0.5
    sd[f"{prefix}.{conv_idx}.bias"] = 0.1 * torch.randn(cout)
    sd[f"{prefix}.{bn_idx}.weight"] = torch.rand(cout) + 0.5
    sd[f"{prefix}.{bn_idx}.bias"] = 0.1 * torch.randn(cout)
    sd[f"{prefix}.{bn_idx}.running_mean"] = 0.1 * torch.randn(cout)
    sd[f"{prefix}.{bn_idx}.running_var"] = torch.rand(cout) + 0.5
    sd[f"{prefix}.{bn_idx}.num_batches_tracked"] = torch.tensor(1000)


def vig_imagenet_state_dict(channels, blocks, pyramid=True):
    """A pvig_{s,m}_*.pth.tar / vig_s_*.pth layout: raw state_dict, ImageNet shapes."""
    sd = {}
    c0 = channels[0]
    widths = [c0 // 2, c0] if pyramid else [c0 // 8, c0 // 4, c0 // 2, c0]
    prev = 3
    for i, w in enumerate(widths):
        _conv_bn(sd, "stem.convs", prev, w, 3, conv_idx=3 * i, bn_idx=3 * i + 1)
        prev = w
    _conv_bn(sd, "stem.convs", prev, c0, 3, conv_idx=3 * len(widths), bn_idx=3 * len(widths) + 1)
    grid = 56 if pyramid else 14
    sd["pos_embed"] = torch.randn(1, c0, grid, grid)
    idx, hw = 0, grid * grid
    for s, (c, n) in enumerate(zip(channels, blocks)):
        if s > 0:
            _conv_bn(sd, f"backbone.{idx}.conv", channels[s - 1], c, 3)
            idx += 1
            hw //= 4
        r = [4, 2, 1, 1][s] if pyramid else 1
        for _ in range(n):
            g = f"backbone.{idx}.0"
            _conv_bn(sd, f"{g}.fc1", c, c)
            _conv_bn(sd, f"{g}.graph_conv.gconv.nn", 2 * c, 2 * c, groups=4)
            _conv_bn(sd, f"{g}.fc2", 2 * c, c)
            if pyramid:
                sd[f"{g}.relative_pos"] = torch.randn(1, hw, hw // (r * r))
            _conv_bn(sd, f"backbone.{idx}.1.fc1", c, 4 * c)
            _conv_bn(sd, f"backbone.{idx}.1.fc2", 4 * c, c)
            idx += 1
    _conv_bn(sd, "prediction", channels[-1], 1024, conv_idx=0, bn_idx=1)
    sd["prediction.4.weight"] = torch.randn(1000, 1024, 1, 1)
    sd["prediction.4.bias"] = torch.randn(1000)
    return sd


LABEL_BRANCH = ("label_embed", "label_proj.", "mlg_stages.", "label_readout", "prediction.")


@pytest.mark.parametrize("entry,channels,blocks,pyramid,downsample_keys", [
    (atgnn_pyr_s, [80, 160, 400, 640], [2, 2, 6, 2], True, ["backbone.2", "backbone.5",
                                                            "backbone.12"]),
    (atgnn_pyr_med, [96, 192, 384, 768], [2, 2, 16, 2], True, ["backbone.2", "backbone.5",
                                                               "backbone.22"]),
    (atgnn_iso, [320], [16], False, []),
])
def test_loads_imagenet_layout(tmp_path, entry, channels, blocks, pyramid, downsample_keys):
    torch.manual_seed(0)
    sd = vig_imagenet_state_dict(channels, blocks, pyramid)
    for key in downsample_keys:
        assert f"{key}.conv.0.weight" in sd
    path = tmp_path / "vig.pth.tar"
    torch.save(sd, path)
    model = entry(num_classes=200)
    missing, unexpected = load_vig_imagenet(model, path)
    assert unexpected == []
    assert missing and all(k.startswith(LABEL_BRANCH) for k in missing), \
        [k for k in missing if not k.startswith(LABEL_BRANCH)]
    state = model.state_dict()
    # stem: RGB filters averaged to one channel
    torch.testing.assert_close(state["stem.convs.0.weight"],
                               sd["stem.convs.0.weight"].mean(1, keepdim=True))
    # a block's weights are the file's (grouped 1x1 conv reshaped)
    i = 4 if pyramid else 7
    torch.testing.assert_close(state[f"backbone.{i}.0.fc1.0.weight"],
                               sd[f"backbone.{i}.0.fc1.0.weight"])
    torch.testing.assert_close(state[f"backbone.{i}.0.graph_conv.nn.0.weight"],
                               sd[f"backbone.{i}.0.graph_conv.gconv.nn.0.weight"].flatten(1))
    torch.testing.assert_close(state[f"backbone.{i}.1.fc2.1.running_var"],
                               sd[f"backbone.{i}.1.fc2.1.running_var"])
    # position embedding resized to the spectrogram grid
    assert state["pos_embed"].shape == model.pos_embed.shape
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 1024, 128))).all()


def test_wrong_size_raises_and_wrapped_files_load(tmp_path):
    sd = vig_imagenet_state_dict([96, 192, 384, 768], [2, 2, 16, 2])
    torch.save(sd, tmp_path / "m.pth")
    with pytest.raises(ValueError, match="another ViG size"):
        load_vig_imagenet(atgnn_pyr_s(), tmp_path / "m.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "w.pth")
    missing, unexpected = load_vig_imagenet(atgnn_pyr_med(), tmp_path / "w.pth")
    assert unexpected == [] and all(k.startswith(LABEL_BRANCH) for k in missing)


def test_files_that_are_not_vig_checkpoints_raise_and_leave_the_model_alone(tmp_path):
    from gnn_audio.zoo import atgnn_pyr_t

    model = atgnn_pyr_t()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # a checkpoint of something else: a few tensors, none of them a ViG backbone's
    torch.save({"encoder.weight": torch.randn(4, 4), "pos_embed": torch.randn(1, 48, 2, 2)},
               tmp_path / "other.pth")
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save({"model": {"a": "b"}}, tmp_path / "strings.pth")
    for name, pattern in [("other.pth", r"1 of its \d+ backbone tensors found"),
                          ("notes.pth", "torch.load cannot read it"),
                          ("empty.pth", "torch.load cannot read it"),
                          ("strings.pth", "no state_dict of tensors")]:
        with pytest.raises(ValueError, match=pattern) as excinfo:
            load_vig_imagenet(model, tmp_path / name)
        assert str(tmp_path / name) in str(excinfo.value) and "\n" not in str(excinfo.value)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_vig_imagenet(model, tmp_path / "missing.pth")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_a_partial_vig_file_below_half_of_the_backbone_raises(tmp_path):
    sd = vig_imagenet_state_dict([80, 160, 400, 640], [2, 2, 6, 2])
    stem_only = {k: v for k, v in sd.items() if k.startswith(("stem.", "pos_embed"))}
    torch.save(stem_only, tmp_path / "stem.pth")
    with pytest.raises(ValueError, match="not a Vision GNN checkpoint for this model"):
        load_vig_imagenet(atgnn_pyr_s(), tmp_path / "stem.pth")
