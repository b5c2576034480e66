import pickle

import pytest
import torch

from gnn_audio.zoo import (CheckpointMismatch, atgnn_pyr_s, atgnn_pyr_t, create_model,
                           get_model_config, list_models, load_checkpoint, register_model,
                           save_checkpoint)
from gnn_audio.zoo.registry import ModelConfig


def test_list_models_patterns():
    assert list_models("atgnn_pyr_*_nomlg") == ["atgnn_pyr_med_nomlg", "atgnn_pyr_s_nomlg",
                                                "atgnn_pyr_t_nomlg"]
    assert {"atgnn_iso", "atgnn_pyr_t", "atgnn_pyr_s", "atgnn_pyr_med"} <= set(list_models())
    assert all(n.startswith("atgnn") for n in list_models(family="atgnn"))


def test_entry_point_equals_create_model():
    torch.manual_seed(0)
    a = atgnn_pyr_s()
    torch.manual_seed(0)
    b = create_model("atgnn_pyr_s")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                 b.state_dict().values()))
    assert create_model("atgnn_pyr_s_nomlg").mlg is False


def test_configs_describe_inputs():
    cfg = get_model_config("atgnn_pyr_s")
    assert cfg.input_size == (1024, 128) and cfg.sample_rate == 16000
    assert cfg.fbank.num_mel_bins == 128 and cfg.fbank.target_length == 1024
    assert cfg.label_set == "fsd50k" and cfg.k == 9
    assert cfg.paper["gflops"] == 14.72 and cfg.reference_params == 35_427_112
    with pytest.raises(ValueError, match="unknown model"):
        get_model_config("resnet50")
    with pytest.raises(ValueError, match="already registered"):
        register_model(ModelConfig(name="atgnn_pyr_s", family="x"))(atgnn_pyr_s)


def test_checkpoint_for_another_architecture_names_the_mismatch(tmp_path):
    path = tmp_path / "t.pt"
    save_checkpoint(atgnn_pyr_t(), path)
    with pytest.raises(CheckpointMismatch, match=r"atgnn_pyr_t.*atgnn_pyr_s.*channels"):
        atgnn_pyr_s(pretrained=str(path))
    with pytest.raises(CheckpointMismatch, match="num_classes=200"):
        atgnn_pyr_t(num_classes=527, pretrained=str(path))
    with pytest.raises(CheckpointMismatch, match="mlg"):
        create_model("atgnn_pyr_t_nomlg", pretrained=str(path))
    ckpt = load_checkpoint(path)
    assert ckpt["model_name"] == "atgnn_pyr_t" and len(ckpt["label_names"]) == 200


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_checkpoints_never_unpickle_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "gnn_audio.checkpoint", "payload": _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a gnn_audio checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
