"""Model folders (model.safetensors + config.json): the round trip keeps logits, front-end and
labels; reading one unpickles nothing; damage is one line naming the file; a hub id resolves
through huggingface_hub's local cache, offline; ``gnn-audio export-weights`` writes one that
``gnn-audio tag`` reads."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gnn_audio.cli import main as cli
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.synthetic.signals import noise_burst, write_wav
from gnn_audio.zoo import (create_model, from_pretrained, load_model, save_checkpoint,
                           save_pretrained)
from gnn_audio.zoo.hub import HUB_PREFIX

ROOT = Path(__file__).resolve().parents[2]
FB = FbankConfig(num_mel_bins=32, target_length=64, norm_mean=-3.1, norm_std=3.7)
NAMES = ["Tone", "Chirp", "Noise bursts", "Silence"]
IDS = ["/m/t", "/m/c", "/m/n", "/m/s"]


def _model():
    torch.manual_seed(0)
    model = create_model("atgnn_pyr_t", num_classes=4, label_names=NAMES, label_ids=IDS,
                         channels=[8, 16, 24, 32], input_size=(64, 32), drop_path_rate=0.0,
                         fbank=FB,
                         knn={"relative_pos": "sincos", "k": 5})
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial batch-norm statistics: every buffer matters
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretrained") / "atgnn-tiny"
    save_pretrained(_model(), path)
    return path


def _x():
    return torch.randn(2, 64, 32, generator=torch.Generator().manual_seed(2))


def test_round_trip_keeps_logits_front_end_labels_and_graphs(folder):
    src = _model()
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]
    for model in (from_pretrained(folder), load_model(folder)):
        model.eval()
        assert model.bundle.fbank == FB
        assert model.bundle.label_names == tuple(NAMES) and model.bundle.label_ids == tuple(IDS)
        assert model.knn_config.relative_pos == "sincos" and model.knn_config.k == 5
        with torch.no_grad():
            assert torch.equal(model(_x()), src(_x()))


def test_reading_a_folder_unpickles_nothing(folder, monkeypatch):
    """Every way to unpickle is made to fail while the folder is read: torch.load and
    pickle's load, loads and Unpickler. The model still loads, so none of them ran."""
    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    class Refused:
        def __init__(self, *args, **kwargs):
            refuse()

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", Refused)
    model = from_pretrained(folder).eval()
    with torch.no_grad():
        assert torch.equal(model(_x()), _model()(_x()))
    with pytest.raises(AssertionError, match="unpickled"):  # the trap works
        torch.load(folder / "model.safetensors")


def _copy(folder, tmp_path):
    dst = tmp_path / "copy"
    dst.mkdir()
    for name in os.listdir(folder):
        (dst / name).write_bytes((folder / name).read_bytes())
    return dst


@pytest.mark.parametrize("damage,words", [
    ("flip", "model.safetensors: damaged gnn_audio model folder: its content does not match"),
    ("cut", "model.safetensors: damaged gnn_audio model folder: its content does not match"),
    ("no_weights", "model.safetensors: damaged gnn_audio model folder: missing"),
    ("config_text", "config.json: damaged gnn_audio model folder: not JSON"),
    ("other_format", "config.json: not a gnn_audio model config"),
    ("no_config", "is a directory, not a gnn_audio model folder (no config.json"),
    ("escape", "weights must be a file in the folder"),
])
def test_damage_is_one_line_naming_the_file(folder, tmp_path, damage, words):
    d = _copy(folder, tmp_path)
    weights, config = d / "model.safetensors", d / "config.json"
    if damage == "flip":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0x10
        weights.write_bytes(bytes(data))
    elif damage == "cut":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "no_weights":
        weights.unlink()
    elif damage == "config_text":
        config.write_text("{not json")
    elif damage == "other_format":
        config.write_text(json.dumps({"format": "transformers"}))
    elif damage == "no_config":
        config.unlink()
    elif damage == "escape":
        cfg = json.loads(config.read_text())
        config.write_text(json.dumps(dict(cfg, weights="../model.safetensors")))
    with pytest.raises(ValueError) as info:
        load_model(d)
    msg = str(info.value)
    assert words in msg and "\n" not in msg, msg
    assert str(d) in msg


def _hf_cache(root: Path, folder: Path, repo: str = "gnn-audio/atgnn-tiny") -> str:
    """huggingface_hub's cache layout for ``repo`` holding ``folder``'s files at one
    revision: models--ORG--NAME/{refs/main, snapshots/HASH/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = root / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in os.listdir(folder):
        (snap / name).write_bytes((folder / name).read_bytes())
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)
    return repo


def _offline(code: str, cache: Path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache),
               HF_HOME=str(cache.parent / "hf_home"))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_a_hub_id_loads_from_the_local_cache_offline(folder, tmp_path):
    pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hub"
    repo = _hf_cache(cache, folder)
    # the same thread count as here: the convolutions' rounding depends on it
    code = (f"import torch; torch.set_num_threads({torch.get_num_threads()}); "
            "from gnn_audio.zoo import load_model; "
            f"m = load_model('{HUB_PREFIX}{repo}').eval(); "
            "x = torch.randn(2, 64, 32, generator=torch.Generator().manual_seed(2)); "
            "print(m.bundle.label_names); torch.save(m(x).detach(), 'HERE')")
    out_file = tmp_path / "logits.pt"
    done = _offline(code.replace("HERE", str(out_file)), cache)
    assert done.returncode == 0, done.stderr
    assert "'Noise bursts'" in done.stdout
    with torch.no_grad():
        assert torch.equal(torch.load(out_file, weights_only=True), _model()(_x()))
    missing = _offline(f"from gnn_audio.zoo import load_model; "
                       f"load_model('{HUB_PREFIX}gnn-audio/not-there')", cache)
    last = missing.stderr.strip().splitlines()[-1]
    assert missing.returncode == 1 and f"{HUB_PREFIX}gnn-audio/not-there: not available" in last


def test_importing_gnn_audio_does_not_import_huggingface_hub():
    done = subprocess.run([sys.executable, "-c", "import sys, gnn_audio.zoo, gnn_audio.inference;"
                           " print('huggingface_hub' in sys.modules)"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.strip() == "False", done.stderr


def test_export_weights_then_tag_the_folder(tmp_path, capsys):
    ckpt = tmp_path / "best.pt"
    save_checkpoint(_model(), ckpt)
    out = tmp_path / "shared"
    assert cli(["export-weights", str(ckpt), str(out)]) == 0
    assert "atgnn_pyr_t, 4 classes" in capsys.readouterr().out
    wav = tmp_path / "a.wav"
    write_wav(wav, noise_burst(1.0, 16000, seed=3), 16000)
    assert cli(["tag", "-c", str(out), str(wav), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["tags"] and {t["label"] for t in rows[0]["tags"]} <= set(NAMES)
    assert cli(["export-weights", str(tmp_path / "nope.pt"), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.pt: no such checkpoint file" in err
