"""weights_io.load_tensors_only: another program's file read for its tensors; every object
of a class weights_only loading refuses becomes an inert stand-in, and nothing runs."""
import os
import pickle

import pytest
import torch

from gnn_audio.weights_io import ForeignObject, load_tensors_only, save_weights_file


class _Shell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Config(dict):
    """A dict subclass with attributes, like Lightning's AttributeDict."""


def test_tensors_survive_objects_are_inert_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    cfg = _Config(lr=0.1)
    cfg.extra = [1, 2]
    payload = {"state_dict": {"w": torch.arange(6.0).view(2, 3)},
               "hyper_parameters": {"net": torch.nn.Linear(2, 2), "opt": _Shell(marker),
                                    "cfg": cfg, "ids": {3, 4}}}
    torch.save(payload, tmp_path / "f.ckpt")
    with pytest.raises(pickle.UnpicklingError):  # what torch's weights_only loader does
        torch.load(tmp_path / "f.ckpt", weights_only=True)
    obj, replaced = load_tensors_only(tmp_path / "f.ckpt", "weights file")
    assert not marker.exists()
    assert torch.equal(obj["state_dict"]["w"], torch.arange(6.0).view(2, 3))
    hp = obj["hyper_parameters"]
    assert all(isinstance(hp[k], ForeignObject) for k in ("net", "opt", "cfg"))
    assert hp["ids"] == {3, 4} and hp["cfg"].items == {"lr": 0.1}
    assert type(hp["opt"]).__qualname__ == "posix.system"
    assert set(replaced) == {"posix.system", "torch.nn.modules.linear.Linear",
                             f"{__name__}._Config"}


def test_checksums_still_verified_and_bad_files_one_line(tmp_path):
    save_weights_file({"w": torch.ones(3)}, tmp_path / "ok.pt")
    obj, replaced = load_tensors_only(tmp_path / "ok.pt", "weights file")
    assert replaced == [] and torch.equal(obj["w"], torch.ones(3)) and len(obj) == 1
    (tmp_path / "text.ckpt").write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match=r"text.ckpt is not a weights file") as info:
        load_tensors_only(tmp_path / "text.ckpt", "weights file")
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_tensors_only(tmp_path / "missing.ckpt", "weights file")
