import pytest
import torch

from gnn_audio.models.cnn10_weights import PANNS_FRONT_END_KEYS, convert_panns_cnn10
from gnn_audio.zoo import create_model


def _panns_layout(model, iteration=True):
    """A PANNs ``Cnn10_mAP=0.380.pth``-layout dict of a gnn_audio CNN10: ``{"model": ...}``
    with PANNs' parameter names and torchlibrosa's front-end buffers."""
    state = {"spectrogram_extractor.stft.conv_real.weight": torch.randn(513, 1, 1024),
             "spectrogram_extractor.stft.conv_imag.weight": torch.randn(513, 1, 1024),
             "logmel_extractor.melW": torch.rand(513, 64)}
    for key, value in model.state_dict().items():
        state[key] = value.clone()
    out = {"model": state}
    if iteration:
        out["iteration"] = 660000
    return out


def _trained_cnn10(seed=0):
    torch.manual_seed(seed)
    model = create_model("cnn10", num_classes=527)
    with torch.no_grad():  # batch-norm statistics that are not the defaults
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                buf.fill_(1234)
        for name, p in model.named_parameters():
            if "bn" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
    return model.eval()


def test_a_panns_file_loads_strict_and_gives_the_same_logits():
    source = _trained_cnn10()
    ckpt = _panns_layout(source)
    state, dropped = convert_panns_cnn10(ckpt, "Cnn10_mAP=0.380.pth")
    assert dropped == list(PANNS_FRONT_END_KEYS)
    target = create_model("cnn10", num_classes=527).eval()
    target.load_state_dict(state, strict=True)
    x = torch.randn(2, 1001, 64) * 20 - 30
    with torch.no_grad():
        assert torch.equal(target(x), source(x))
    assert list(state) == list(target.state_dict())


def test_a_bare_state_dict_without_front_end_or_iteration_is_taken():
    source = _trained_cnn10(1)
    bare = dict(source.state_dict())
    state, dropped = convert_panns_cnn10(bare, "bare.pth")
    assert dropped == [] and set(state) == set(bare)


def _one_line_error(ckpt, path="weights/x.pth"):
    with pytest.raises(ValueError) as err:
        convert_panns_cnn10(ckpt, path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: not a PANNs CNN10 checkpoint")
    return message


def test_a_cnn14_like_file_is_refused_in_one_line():
    ckpt = _panns_layout(_trained_cnn10())
    state = ckpt["model"]
    for block, (cin, cout) in (("conv_block5", (512, 1024)), ("conv_block6", (1024, 2048))):
        state[f"{block}.conv1.weight"] = torch.zeros(cout, cin, 3, 3)
        state[f"{block}.conv2.weight"] = torch.zeros(cout, cout, 3, 3)
        for bn in ("bn1", "bn2"):
            for part in ("weight", "bias", "running_mean", "running_var"):
                state[f"{block}.{bn}.{part}"] = torch.zeros(cout)
            state[f"{block}.{bn}.num_batches_tracked"] = torch.tensor(0)
    state["fc1.weight"], state["fc1.bias"] = torch.zeros(2048, 2048), torch.zeros(2048)
    state["fc_audioset.weight"] = torch.zeros(527, 2048)
    message = _one_line_error(ckpt)
    assert "24 unexpected keys: conv_block5.conv1.weight" in message
    assert "fc1.weight is [2048, 2048], CNN10's is [512, 512]" in message


def test_a_truncated_file_and_another_class_count_are_refused_in_one_line():
    ckpt = _panns_layout(_trained_cnn10())
    state = ckpt["model"]
    for key in [k for k in state if k.startswith(("conv_block4.", "fc"))]:
        del state[key]
    message = _one_line_error(ckpt)
    assert "16 missing keys: conv_block4.conv1.weight" in message and "(+13 more)" in message

    ten = create_model("cnn10", num_classes=10)
    message = _one_line_error({"model": ten.state_dict()}, "Cnn10_10_classes.pth")
    assert "fc_audioset.weight is [10, 512], CNN10's is [527, 512]" in message
    assert "fc_audioset.bias is [10], CNN10's is [527]" in message


def test_not_a_state_dict_is_refused_in_one_line():
    assert "expected a dict, got list" in _one_line_error([1, 2])
    assert "'model' entry is a str" in _one_line_error({"model": "x"})
    state = dict(_trained_cnn10().state_dict())
    state["fc1.bias"] = [0.0] * 512
    assert "not tensors: fc1.bias" in _one_line_error(state)


def test_create_model_loads_the_panns_file_with_its_front_end(tmp_path):
    """``create_model("cnn10", pretrained="Cnn10_mAP=0.380.pth")``: the weights, AudioSet's
    527 names and PANNs' own log-mel front-end in the bundle; saved as a gnn_audio
    checkpoint, the model comes back with that front-end."""
    from gnn_audio.zoo import load_model, save_checkpoint

    source = _trained_cnn10()
    path = tmp_path / "Cnn10_mAP=0.380.pth"
    torch.save(_panns_layout(source), path)
    model = create_model("cnn10", pretrained=path).eval()
    x = torch.randn(2, 1001, 64) * 20 - 30
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
    fb = model.bundle.fbank
    assert fb.kind == "panns" and fb.sample_rate == 32000 and fb.num_mel_bins == 64
    assert model.bundle.names[0] == "Speech" and len(model.bundle.names) == 527
    save_checkpoint(model, tmp_path / "cnn10.pt")
    again = load_model(tmp_path / "cnn10.pt")
    assert again.bundle.fbank == fb
    with pytest.raises(ValueError, match="holds PANNs' CNN10 for 527 AudioSet classes") as info:
        create_model("cnn10", pretrained=path, num_classes=10)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_panns_model_tags_a_recording_longer_than_the_streaming_limit(tmp_path):
    """PANNs' centred frames cannot be streamed block by block: a recording longer than
    ``Tagger.whole_seconds`` is decoded whole for such a model, and tagged with AudioSet
    names."""
    from gnn_audio.data.synthetic.signals import noise_burst, write_wav
    from gnn_audio.inference import Tagger

    path = tmp_path / "Cnn10_mAP=0.380.pth"
    torch.save(_panns_layout(_trained_cnn10()), path)
    tagger = Tagger(create_model("cnn10", pretrained=path))
    tagger.whole_seconds = 5.0  # the limit, made short: this 12-s file would be streamed
    wav = tmp_path / "long.wav"
    write_wav(wav, noise_burst(12.0, 16000, seed=2), 16000)
    result = tagger.tag(wav, top_k=3)
    assert len(result.tags) == 3 and all(isinstance(n, str) for n, _ in result.tags)
