"""Every zoo model checks its input against its config before the forward pass."""
from functools import lru_cache

import numpy as np
import pytest
import torch

from gnn_audio.models.inputs import check_embedding_input, check_logmel_input
from gnn_audio.zoo import create_model, get_model_config, list_models

pytestmark = pytest.mark.filterwarnings("ignore:AT-GCN without")

# the ATGNN family shares one input check: its two small entries stand for it
LOGMEL = (list_models("atgnn_pyr_t*", family="atgnn") + list_models(family="cnn")
          + list_models(family="at_gcn"))
EMBEDDING = list_models(family="embedding")


@lru_cache(maxsize=None)
def _model(name):
    return create_model(name, num_classes=3).eval()


def _mel(name):
    return get_model_config(name).input_size[1]


def _raises(model, x, error, pattern):
    with pytest.raises(error, match=pattern) as excinfo, torch.no_grad():
        model(x)
    message = str(excinfo.value)
    assert "\n" not in message and model.bundle.name in message, message
    return message


def test_message_says_what_was_expected():
    x = torch.zeros(2, 1, 160000)
    with pytest.raises(ValueError) as excinfo:
        check_logmel_input(x, 128, "atgnn_pyr_s")
    assert str(excinfo.value) == (
        "atgnn_pyr_s expects log-mel [B, frames, 128] or [B, 1, 128, frames]; got "
        "[2, 1, 160000] (a raw waveform? compute features with gnn_audio.data.fbank)")


def test_accepted_layouts_are_views_in_frames_mel_order():
    x = torch.randn(2, 7, 16)
    assert check_logmel_input(x, 16, "m") is x
    image = x.transpose(1, 2).unsqueeze(1)                    # [B, 1, mel, frames]
    out = check_logmel_input(image, 16, "m")
    assert out.shape == (2, 7, 16) and torch.equal(out, x)
    assert out.data_ptr() == x.data_ptr()                     # no copy
    e = torch.randn(4, 10, 128)
    assert check_embedding_input(e, 10, 128, "fc1") is e


@pytest.mark.parametrize("name", LOGMEL)
def test_logmel_models_reject_inputs_that_do_not_fit(name):
    model, mel = _model(name), _mel(name)
    _raises(model, torch.randn(2, mel, 40), ValueError, r"transposed.*transpose\(1, 2\)")
    _raises(model, torch.randn(2, 1, 40, mel), ValueError, r"transposed.*transpose\(2, 3\)")
    _raises(model, torch.randn(2, 40, mel // 2), ValueError,
            f"{mel // 2} mel bins; this model was built for {mel}")
    _raises(model, torch.randn(2, 1, 16000), ValueError, "raw waveform")
    _raises(model, torch.randn(2, 16000), ValueError, "raw waveform")
    _raises(model, torch.randn(40, mel), ValueError, "unsqueeze")
    _raises(model, torch.randn(2, 3, mel, 40), ValueError, "3 channels")
    _raises(model, torch.randn(2, 0, mel), ValueError, "no frames")
    _raises(model, torch.randn(2, 1, mel, 0), ValueError, "no frames")
    _raises(model, torch.randn(0, 40, mel), ValueError, "empty batch")
    _raises(model, np.zeros((2, 40, mel), np.float32), TypeError, "numpy.*torch.from_numpy")
    _raises(model, torch.zeros(2, 40, mel, dtype=torch.long), TypeError, "torch.int64")
    x = torch.randn(2, 40, mel)
    x[1, 3, 5] = float("nan")
    x[0, 0, 0] = float("inf")
    _raises(model, x, ValueError, "2 NaN / inf values.*check_finite = False")


@pytest.mark.parametrize("name", EMBEDDING)
def test_embedding_models_reject_inputs_that_do_not_fit(name):
    model = _model(name)
    frames, dim = get_model_config(name).input_size
    _raises(model, torch.randn(2, dim, frames), ValueError, "transposed")
    _raises(model, torch.randn(2, frames + 3, dim), ValueError, "pad or cut")
    _raises(model, torch.randn(2, frames, dim // 2), ValueError, "dimensions per frame")
    _raises(model, torch.randn(2, 1, 16000), ValueError, r"got \[2, 1, 16000\]")
    _raises(model, torch.randn(frames, dim), ValueError, "unsqueeze")
    _raises(model, torch.randn(0, frames, dim), ValueError, "empty batch")
    _raises(model, np.zeros((2, frames, dim), np.float32), TypeError, "numpy")
    x = torch.randn(2, frames, dim)
    x[0, 1, 2] = float("nan")
    _raises(model, x, ValueError, "NaN / inf")


@pytest.mark.parametrize("name", ["atgnn_pyr_t_nomlg", "cnn10", "fc1"])
def test_good_input_runs_and_the_finite_check_can_be_switched_off(name):
    model = _model(name)
    cfg = get_model_config(name)
    frames = 32 if cfg.input == "logmel" else cfg.input_size[0]
    x = torch.randn(2, frames, cfg.input_size[1])
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()
        x[0] = float("nan")
        model.check_finite = False
        try:
            out = model(x)          # allowed: NaN in, NaN out for that clip
        finally:
            del model.check_finite
    assert torch.isnan(out[0]).any()
    with pytest.raises(ValueError, match="NaN"):
        check_logmel_input(x, cfg.input_size[1], model) if cfg.input == "logmel" else \
            check_embedding_input(x, *cfg.input_size, model)
    # an explicit argument wins over the model attribute
    if cfg.input == "logmel":
        assert check_logmel_input(x, cfg.input_size[1], model, allow_nonfinite=True) is x


def test_checks_compile_without_graph_breaks():
    def f(x):
        return check_logmel_input(x, 16, "m") * 2

    x = torch.randn(2, 5, 16)
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    for frames in (5, 7, 9):  # also once the shapes become dynamic
        x = torch.randn(2, frames, 16)
        assert torch.equal(compiled(x), x * 2)
    # a bad input under torch.compile: the frame falls back to eager and says why
    with pytest.raises(ValueError, match=r"got \[2, 16, 5\] \(transposed"):
        torch.compile(f, backend="eager")(torch.randn(2, 16, 5))
    # (fullgraph=True cannot fall back: torch reports our message inside its own error)
    with pytest.raises(Exception, match="expects log-mel"):
        compiled(torch.randn(2, 16, 5))


def test_finite_check_holds_no_host_sync_off_the_cpu():
    """On a device other than the CPU the NaN / inf check (a host sync) is skipped: the data
    is checked where it is made (dataset, inference). ``meta`` stands for the GPU here."""
    x = torch.randn(2, 7, 16, device="meta")
    assert check_logmel_input(x, 16, "m") is x
    e = torch.randn(2, 10, 128, device="meta")
    assert check_embedding_input(e, 10, 128, "fc1") is e
    model = create_model("cnn10", num_classes=3).eval().to("meta")
    with torch.no_grad():
        assert model(torch.randn(2, 40, 64, device="meta")).device.type == "meta"
    with pytest.raises(ValueError, match="transposed"):     # the shape checks still run
        check_logmel_input(torch.randn(2, 16, 7, device="meta"), 16, "m")
