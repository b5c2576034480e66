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


TINY = dict(channels=[8, 16, 24, 32], input_size=(64, 32), drop_path_rate=0.0, head_hidden=16)


def _as_format2(src, dst):
    """A checkpoint as gnn_audio wrote it before the pyramid default became the authors'
    table: format 2, and no relative-position term in its build arguments."""
    from gnn_audio.weights_io import CHECKSUM_KEY, load_weights_file, save_weights_file

    ckpt = load_weights_file(src, "test")
    ckpt.pop(CHECKSUM_KEY, None)
    kwargs = dict(ckpt["build_kwargs"])
    kwargs["knn"] = {k: v for k, v in kwargs["knn"].items() if k != "relative_pos"}
    if not kwargs["knn"]:
        del kwargs["knn"]
    save_weights_file(dict(ckpt, format_version=2, build_kwargs=kwargs), dst)


def test_format2_checkpoints_keep_the_sincos_graphs_they_were_trained_with(tmp_path):
    from gnn_audio.zoo import load_model, save_checkpoint

    torch.manual_seed(0)
    old = create_model("atgnn_pyr_t", num_classes=3, knn={"relative_pos": "sincos"},
                       **TINY).eval()
    save_checkpoint(old, tmp_path / "new.pt")
    _as_format2(tmp_path / "new.pt", tmp_path / "old.pt")
    x = torch.randn(2, 64, 32)
    with torch.no_grad():
        want = old(x)
        for model in (load_model(tmp_path / "old.pt"),
                      create_model("atgnn_pyr_t", pretrained=tmp_path / "old.pt", num_classes=3,
                                   **TINY)):
            assert model.knn_config.relative_pos == "sincos"
            assert model.bundle.build_kwargs["knn"]["relative_pos"] == "sincos"
            torch.testing.assert_close(model.eval()(x), want, rtol=0, atol=0)
        # asked for explicitly, the authors' table is used (other graphs, other logits)
        ref = create_model("atgnn_pyr_t", pretrained=tmp_path / "old.pt", num_classes=3,
                           knn={"relative_pos": "reference"}, **TINY).eval()
        assert ref.knn_config.relative_pos == "reference"
        assert not torch.allclose(ref(x), want)
    assert load_checkpoint(tmp_path / "old.pt")["source_format_version"] == 2


def test_new_checkpoints_record_the_default_graph_mode(tmp_path):
    from gnn_audio.zoo import load_model, save_checkpoint

    model = create_model("atgnn_pyr_t", num_classes=3, **TINY)
    assert model.knn_config.relative_pos == "reference"
    save_checkpoint(model, tmp_path / "m.pt")
    assert load_checkpoint(tmp_path / "m.pt")["build_kwargs"]["knn"] == {
        "relative_pos": "reference"}
    assert load_model(tmp_path / "m.pt").knn_config.relative_pos == "reference"
    iso = create_model("atgnn_iso_nomlg", num_classes=3, channels=[32], blocks=[2],
                       input_size=(64, 32))
    assert iso.knn_config.relative_pos is None
