import pickle
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch

from gnn_audio.zoo import (CheckpointMismatch, ModelConfig, atgnn_pyr_s, atgnn_pyr_t,
                           atgnn_pyr_t_nomlg, create_model, get_model_config, list_models,
                           load_checkpoint, register_model, save_checkpoint)
from gnn_audio.zoo import _registry
from gnn_audio.zoo._builder import build_model


def test_list_models_patterns():
    assert list_models("atgnn_pyr_*_nomlg") == ["atgnn_pyr_med_nomlg", "atgnn_pyr_s_nomlg",
                                                "atgnn_pyr_t_nomlg"]
    assert {"atgnn_iso", "atgnn_pyr_t", "atgnn_pyr_s", "atgnn_pyr_med"} <= set(list_models())
    assert all(n.startswith("atgnn") for n in list_models(family="atgnn"))


def test_registry_has_no_import_cycle_and_is_filled_by_any_zoo_import():
    # a fresh interpreter that imports only the registry module still sees every entry
    code = ("import gnn_audio.zoo._registry as r, sys; "
            "assert 'gnn_audio.zoo.atgnn' in sys.modules; print(len(r.list_models()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(list_models()) >= 14
    source = open(_registry.__file__).read()
    assert "import gnn_audio.zoo" not in source and "from gnn_audio.zoo" not in source


def test_entry_point_equals_create_model():
    torch.manual_seed(0)
    a = atgnn_pyr_s()
    torch.manual_seed(0)
    b = create_model("atgnn_pyr_s")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                 b.state_dict().values()))
    assert create_model("atgnn_pyr_s_nomlg").mlg is False


def test_entry_points_never_rename_and_refuse_mlg():
    with pytest.raises(TypeError, match="atgnn_pyr_t_nomlg"):
        create_model("atgnn_pyr_t", mlg=False)
    with pytest.raises(TypeError, match=r"atgnn_pyr_t\(\)"):
        atgnn_pyr_t_nomlg(mlg=True)
    with pytest.raises(TypeError, match="mlg_blocks"):
        atgnn_pyr_t_nomlg(mlg_blocks=[1, 1, 1, 1])
    with pytest.raises(TypeError, match="hidden"):
        create_model("fc1", hidden=[64])
    model = atgnn_pyr_t_nomlg(num_classes=5)
    assert model.bundle.name == "atgnn_pyr_t_nomlg" and model.mlg is False
    # build_kwargs are the entry point's arguments: they rebuild the model; the graphs'
    # relative-position term is always written down (its default changed once)
    assert model.bundle.build_kwargs == {"num_classes": 5, "knn": {"relative_pos": "reference"}}
    assert model.bundle.arch["mlg"] is False and "mlg_blocks" not in model.bundle.arch
    again = create_model(model.bundle.name, **model.bundle.build_kwargs)
    assert again.bundle.arch == model.bundle.arch


def test_configs_describe_inputs():
    cfg = get_model_config("atgnn_pyr_s")
    assert cfg.input_size == (1024, 128) and cfg.sample_rate == 16000
    assert cfg.fbank.num_mel_bins == 128 and cfg.fbank.target_length == 1024
    assert cfg.label_set == "fsd50k" and cfg.k == 9
    assert cfg.paper["gflops"] == 14.72 and cfg.reference_params == 35_427_112
    assert {"channels", "blocks", "input_size"} <= set(cfg.arch_args)
    # (frames, bins) everywhere: the fbank config and the log-mel / embedding models agree
    for name in list_models():
        c = get_model_config(name)
        if c.fbank is not None:
            assert c.input_size == (c.fbank.target_length, c.fbank.num_mel_bins), name
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
    with pytest.raises(CheckpointMismatch, match="head_hidden: checkpoint 1024 vs model 512"):
        atgnn_pyr_t(head_hidden=512, pretrained=str(path))
    ckpt = load_checkpoint(path)
    assert ckpt["model_name"] == "atgnn_pyr_t" and len(ckpt["label_names"]) == 200
    assert ckpt["format_version"] == 3 and ckpt["arch"]["channels"] == [48, 96, 240, 384]


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_checkpoints_never_unpickle_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "gnn_audio.checkpoint", "payload": _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError, match="evil.pt"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a gnn_audio checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def _one_line_error(excinfo, path):
    message = str(excinfo.value)
    assert "\n" not in message and str(path) in message, message


def test_unreadable_files_give_one_line_errors_naming_the_file(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(atgnn_pyr_t_nomlg(num_classes=3), good)
    data = good.read_bytes()
    files = {"notes.txt": b"epoch 3, loss 0.12\nnot a checkpoint\n", "empty.pt": b"",
             "truncated.pt": data[: len(data) // 2]}
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a gnn_audio checkpoint") as excinfo:
            load_checkpoint(path)
        _one_line_error(excinfo, path)
        with pytest.raises(ValueError):
            atgnn_pyr_t_nomlg(num_classes=3, pretrained=path)
    with pytest.raises(FileNotFoundError) as excinfo:
        load_checkpoint(tmp_path / "missing.pt")
    _one_line_error(excinfo, tmp_path / "missing.pt")
    torch.save({"format": "gnn_audio.checkpoint", "format_version": 2}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="damaged.*model_name"):
        load_checkpoint(tmp_path / "bare.pt")
    torch.save({"format": "gnn_audio.checkpoint", "format_version": 4}, tmp_path / "new.pt")
    with pytest.raises(ValueError, match="format version 4"):
        load_checkpoint(tmp_path / "new.pt")


def _v1_payload(model, build_kwargs):
    """What save_checkpoint wrote in format 1 (gnn_audio before issue 8)."""
    return {"format": "gnn_audio.checkpoint", "format_version": 1,
            "gnn_audio_version": "0.1.0", "model_name": model.bundle.name,
            "build_kwargs": build_kwargs, "num_classes": model.num_classes,
            "label_names": list(model.bundle.label_names or []) or None, "extra": {"epoch": 1},
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}}


V1_ARCH_T = dict(arch="pyramid", channels=[48, 96, 240, 384], blocks=[2, 2, 6, 2],
                 mlg_blocks=[1, 1, 3, 1], mlg=True)


def test_format_1_build_kwargs_are_translated(tmp_path):
    model = atgnn_pyr_t(num_classes=4)
    kwargs = dict(num_classes=4, **V1_ARCH_T, knn_backend="auto", k=9, stochastic=True,
                  epsilon=0.3, relative_pos=False, input_size=[128, 64])
    torch.save(_v1_payload(model, kwargs), tmp_path / "v1.pt")
    ckpt = load_checkpoint(tmp_path / "v1.pt")
    assert ckpt["format_version"] == 3 and ckpt["source_format_version"] == 1
    assert ckpt["build_kwargs"] == dict(
        num_classes=4, arch="pyramid", channels=[48, 96, 240, 384], blocks=[2, 2, 6, 2],
        mlg_blocks=[1, 1, 3, 1], input_size=[64, 128],
        knn=dict(k=9, stochastic=True, epsilon=0.3, relative_pos=None, backend="dense"))
    # other families keep their build_kwargs
    cnn = create_model("cnn10", num_classes=4)
    torch.save(_v1_payload(cnn, dict(num_classes=4, mel_bins=64, k=3)), tmp_path / "c1.pt")
    assert load_checkpoint(tmp_path / "c1.pt")["build_kwargs"] == dict(num_classes=4,
                                                                        mel_bins=64, k=3)


def test_format_1_checkpoint_loads_into_the_same_model(tmp_path):
    torch.manual_seed(0)
    model = atgnn_pyr_t(num_classes=4)
    path = tmp_path / "v1.pt"
    torch.save(_v1_payload(model, dict(num_classes=4, **V1_ARCH_T, k=9, knn_backend="cluster")),
               path)
    torch.manual_seed(1)
    loaded = atgnn_pyr_t(num_classes=4, pretrained=path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    assert loaded.bundle.label_names == model.bundle.label_names
    # architecture arguments of format-1 files are still compared
    bad = dict(V1_ARCH_T, channels=[48, 96, 240, 400])
    torch.save(_v1_payload(model, dict(num_classes=4, **bad)), tmp_path / "bad.pt")
    with pytest.raises(CheckpointMismatch, match="channels"):
        atgnn_pyr_t(num_classes=4, pretrained=tmp_path / "bad.pt")


# -- a model registered by a test: new entries need no change in the checkpoint code ---------

@dataclass(frozen=True)
class _ActConfig:
    slope: float = 0.1

    def to_dict(self):
        return {"slope": self.slope}


class _Tiny(torch.nn.Module):
    def __init__(self, num_classes: int = 3, width: int = 4, act=None, data=None) -> None:
        super().__init__()
        self.num_classes = num_classes
        act = _ActConfig(**act) if isinstance(act, dict) else (act or _ActConfig())
        self.slope = act.slope
        self.net = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Linear(width,
                                                                                  num_classes))

    def forward(self, x):
        return torch.nn.functional.leaky_relu(self.net(x), self.slope)


@pytest.fixture
def tiny_entry():
    @register_model(ModelConfig(name="tiny_test_model", family="test", input="embedding",
                                input_size=(1, 2), fbank=None, label_set=None, num_classes=3,
                                arch_args=("width",)))
    def tiny_test_model(pretrained=None, num_classes=3, **kwargs):
        return build_model("tiny_test_model", _Tiny, pretrained, num_classes, **kwargs)
    yield tiny_test_model
    _registry.unregister_model("tiny_test_model")


def test_new_entry_declares_its_architecture_and_config_dataclasses_round_trip(tiny_entry,
                                                                               tmp_path):
    model = create_model("tiny_test_model", width=6, act=_ActConfig(slope=0.3),
                         data=torch.eye(2))
    assert model.bundle.arch == {"width": 6}
    # the dataclass is stored as its dict, the tensor (data) is left out
    assert model.bundle.build_kwargs == {"num_classes": 3, "width": 6, "act": {"slope": 0.3}}
    path = tmp_path / "tiny.pt"
    save_checkpoint(model, path)
    ckpt = load_checkpoint(path)
    rebuilt = create_model(ckpt["model_name"], pretrained=path, **ckpt["build_kwargs"])
    x = torch.randn(5, 2)
    assert rebuilt.slope == 0.3 and torch.equal(rebuilt(x), model(x))
    with pytest.raises(CheckpointMismatch, match="width: checkpoint 6 vs model 4"):
        create_model("tiny_test_model", pretrained=path)


def test_knn_config_round_trips_through_a_checkpoint(tmp_path):
    graph = pytest.importorskip("gnn_audio.graph")
    if not hasattr(graph, "KnnConfig"):
        pytest.skip("gnn_audio.graph.KnnConfig not there yet")
    knn = graph.KnnConfig(k=12)
    model = create_model("atgnn_pyr_t_nomlg", num_classes=3, knn=knn)
    assert model.bundle.build_kwargs["knn"] == knn.to_dict()
    path = tmp_path / "knn.pt"
    save_checkpoint(model, path)
    ckpt = load_checkpoint(path)
    rebuilt = create_model(ckpt["model_name"], pretrained=path, **ckpt["build_kwargs"])
    assert rebuilt.bundle.build_kwargs == model.bundle.build_kwargs
    assert all(torch.equal(v, rebuilt.state_dict()[k]) for k, v in model.state_dict().items())
