"""What ``--resume`` accepts: the options a run may change (with a line in the log), the data
moved to another folder; what it refuses in one line: any other option, a data set whose clips
or labels changed, a damaged state; and the free-space check, before any audio is decoded,
counting the run's own checkpoints as its space."""
import csv
import json
import shutil
from collections import namedtuple

import pytest
import torch

from gnn_audio.cli import main as gnn_audio_main
from gnn_audio.cli.train import main

from .conftest import tiny_args


def _one_epoch(data, run, *extra):
    return tiny_args(data, run, *extra, epochs=1)


@pytest.fixture()
def data(tiny_fsd50k, tmp_path):
    """A copy of the tiny data set, without its stores, that a test may change."""
    root = tmp_path / "data"
    shutil.copytree(tiny_fsd50k, root, ignore=shutil.ignore_patterns("gnn_audio_stores"))
    return root


@pytest.fixture()
def one_epoch_run(data, tmp_path):
    run = tmp_path / "run"
    assert main(_one_epoch(data, run)) == 0
    return run


def _resume(run, *extra):
    return main(["--resume", str(run), "--device", "cpu", "--no-progress", *extra])


def test_resume_may_end_later_and_says_so(one_epoch_run, capsys):
    capsys.readouterr()
    assert _resume(one_epoch_run, "--epochs", "2", "--eval-batch-size", "4") == 0
    log = (one_epoch_run / "train.log").read_text()
    assert "--resume with --epochs 2 (the run had 1)" in log
    assert "--resume with --eval-batch-size 4 (the run had 8)" in log
    assert torch.load(one_epoch_run / "last.pt", weights_only=True)["epoch"] == 2
    config = json.loads((one_epoch_run / "config.json").read_text())
    assert config["recipe"]["optim"]["epochs"] == 2  # a later --resume keeps the new end


def test_resume_refuses_options_that_make_another_run(one_epoch_run, capsys):
    before = (one_epoch_run / "last.pt").read_bytes()
    capsys.readouterr()
    assert _resume(one_epoch_run, "--epochs", "2", "--lr", "0.1", "--model", "cnn10",
                   "--fbank.num-mel-bins", "64") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert ("--resume continues a run with its own settings: --fbank.num-mel-bins, --lr, "
            "--model cannot change (start a new run for that)") in err
    assert (one_epoch_run / "last.pt").read_bytes() == before
    # the run's own values given again are no change
    config = json.loads((one_epoch_run / "config.json").read_text())
    assert _resume(one_epoch_run, "--lr", str(config["recipe"]["optim"]["lr"]),
                   "--recipe", "example") == 0


def _relabel_one_train_clip(root):
    listing = root / "FSD50K.ground_truth" / "dev.csv"
    rows = list(csv.reader(open(listing, newline="")))
    vocabulary = list(csv.reader(open(root / "FSD50K.ground_truth" / "vocabulary.csv",
                                      newline="")))
    for row in rows[1:]:
        if row[3] == "train":
            other = next(v for v in vocabulary if v[1] not in row[1].split(","))
            row[1], row[2] = other[1], other[2]
            break
    with open(listing, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_resume_on_changed_labels_is_refused(data, one_epoch_run, capsys):
    _relabel_one_train_clip(data)
    capsys.readouterr()
    assert _resume(one_epoch_run, "--epochs", "2") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"gnn-audio train: {one_epoch_run / 'last.pt'}: the run was trained "
                       "on other data: the train split's clips or labels are not those the "
                       "state was saved with; resume on the same data set, or start a new run "
                       "on this one")
    assert torch.load(one_epoch_run / "last.pt", weights_only=True)["epoch"] == 1


def test_resume_from_data_moved_elsewhere(data, one_epoch_run, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.move(data, moved)
    assert _resume(one_epoch_run, "--epochs", "2") == 1  # the old folder is gone
    assert str(data) in capsys.readouterr().err
    assert _resume(one_epoch_run, "--epochs", "2", "--data-dir", str(moved),
                   "--store-dir", str(tmp_path / "stores")) == 0
    log = (one_epoch_run / "train.log").read_text()
    assert f"--resume with --data-dir {moved} (the run had {data})" in log


def test_a_bit_flipped_training_state_or_checkpoint_is_refused(one_epoch_run, data, capsys):
    for name in ("last.pt", "best.pt"):
        path = one_epoch_run / name
        good = path.read_bytes()
        weights = torch.load(path, weights_only=True)
        tensor = (weights["model"] if name == "last.pt" else weights["state_dict"])[
            "stem.convs.0.weight"]
        at = good.find(tensor.numpy().tobytes())
        assert at > 0
        bad = bytearray(good)
        bad[at:at + 64] = bytes(b ^ 0xFF for b in bad[at:at + 64])
        path.write_bytes(bytes(bad))
        torch.load(path, weights_only=True)  # torch itself reads it without complaint
        capsys.readouterr()
        if name == "last.pt":
            assert _resume(one_epoch_run, "--epochs", "2") == 1
        else:
            assert gnn_audio_main(["eval", "--checkpoint", str(path), "--data-dir", str(data),
                                   "--quiet"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].endswith(f"{path}: damaged gnn_audio "
                                f"{'training state' if name == 'last.pt' else 'checkpoint'}: "
                                "its content does not match the checksum written with it "
                                "(changed on disk or in a copy); use another copy"), err
        path.write_bytes(good)


_usage = namedtuple("usage", "total used free")


def test_free_space_is_checked_before_decoding_and_counts_the_runs_checkpoints(
        data, tmp_path, monkeypatch, capsys):
    import shutil as shutil_module

    from gnn_audio.train import trainer

    run = tmp_path / "run"
    assert main(_one_epoch(data, run, "--max-steps", "1")) == 0
    kept = sum((run / n).stat().st_size for n in ("last.pt", "best.pt"))
    # the checkpoints need the space the run's own take, and 2 MiB more; 4 MiB are free
    monkeypatch.setattr(trainer, "state_size_estimate", lambda model: kept + 2 ** 21)
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: _usage(2 ** 40, 0, 2 ** 22))
    assert _resume(run, "--max-steps", "2") == 0
    assert "MiB of the run's own checkpoints" in (run / "train.log").read_text()
    # a new run on that disk does not fit, and is refused before a store is built
    shutil.rmtree(data / "gnn_audio_stores")
    capsys.readouterr()
    assert main(_one_epoch(data, tmp_path / "new")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"gnn-audio train: {tmp_path / 'new'}: 4 MiB free on its disk, "
                              "the run's checkpoints need about"), err
    assert not (data / "gnn_audio_stores").exists()


def test_resume_builds_the_graphs_the_run_was_trained_with(one_epoch_run, capsys):
    """config.json records the model's graph settings (here the default, the authors'
    relative-position table); a run directory written before they were recorded resumes
    with the default of then, the sin-cos term."""
    config_file = one_epoch_run / "config.json"
    config = json.loads(config_file.read_text())
    assert config["model_carried_args"] == {"knn": {"relative_pos": "reference"}}
    assert _resume(one_epoch_run, "--epochs", "2") == 0
    assert json.loads(config_file.read_text())["model_carried_args"] == config[
        "model_carried_args"]
    del config["model_carried_args"]  # as gnn_audio wrote it before
    config_file.write_text(json.dumps(config))
    assert _resume(one_epoch_run, "--epochs", "3") == 0
    again = json.loads(config_file.read_text())
    assert again["model_carried_args"]["knn"]["relative_pos"] == "sincos"
    assert again["recipe"]["model"]["kwargs"]["knn"]["relative_pos"] == "sincos"
