"""Checkpoints written before the kNN-config / input-order change (format 1) still load and
give the same logits. The fixture was written by gnn_audio at commit 232fb30 with
``atgnn_pyr_t(num_classes=3, channels=[8, 16, 32, 64], knn_backend="auto", k=5,
input_size=(128, 64), head_hidden=16, ...)`` (old input order: mel, frames), together with an
input and that code's eval-mode logits."""
from pathlib import Path

import torch

from gnn_audio.zoo import create_model, load_checkpoint

DATA = Path(__file__).parent / "data"


def test_format1_checkpoint_loads_and_reproduces_logits():
    ckpt = load_checkpoint(DATA / "atgnn_pyr_t_tiny_format1.pt")
    io = torch.load(DATA / "atgnn_pyr_t_tiny_format1_io.pt", weights_only=True)
    model = create_model("atgnn_pyr_t", pretrained=str(DATA / "atgnn_pyr_t_tiny_format1.pt"),
                         **ckpt["build_kwargs"]).eval()
    assert model.input_size == (64, 128)                  # translated to (frames, mel)
    assert model.knn_config.k == 5 and model.knn_config.backend == "dense"
    assert model.knn_config.relative_pos == "sincos"
    assert model.bundle.label_names == ("a", "b", "c")
    with torch.no_grad():
        torch.testing.assert_close(model(io["x"]), io["logits"], rtol=1e-4, atol=1e-3)
