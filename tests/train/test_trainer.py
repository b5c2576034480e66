"""End-to-end training runs of a tiny ATGNN on a tiny generated FSD50K-layout data set."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gnn_audio.cli import main as gnn_audio_main
from gnn_audio.cli.train import main
from gnn_audio.train.step import TrainStep

from .conftest import free_port, split_size, tiny_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference_run(tiny_fsd50k, tmp_path_factory):
    """An uninterrupted two-epoch run."""
    run = tmp_path_factory.mktemp("reference") / "run"
    assert main(tiny_args(tiny_fsd50k, run)) == 0
    return run


def test_run_directory_holds_everything(reference_run, tiny_fsd50k):
    run = reference_run
    for name in ("config.json", "train.log", "last.pt", "best.pt", "history.json",
                 "results.json", "curves.png"):
        assert (run / name).is_file(), name
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    results = json.loads((run / "results.json").read_text())
    assert set(results["eval"]) == {"crop", "windows"}
    for mode in ("crop", "windows"):
        assert results["eval"][mode]["num_clips"] == split_size(tiny_fsd50k, "eval")
        assert 0.0 <= results["eval"][mode]["mAP"] <= 1.0
    assert 0.0 < results["label_frequency_baseline_mAP"] < 1.0
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]  # counted from 1, as in the log
    config = json.loads((run / "config.json").read_text())
    # the resolved front-end carries the training split's statistics, not the recipe's
    assert config["recipe"]["data"]["norm_stats"] == "recipe"
    assert config["recipe"]["data"]["fbank"]["norm_mean"] != -4.6476
    assert config["recipe"]["optim"]["epochs"] == 2 and config["data_paths"]["data_dir"] == str(
        tiny_fsd50k)
    log = (run / "train.log").read_text()
    assert "label-frequency baseline" in log and "eval (windows" in log


def test_gnn_audio_eval_reproduces_the_results(reference_run, tiny_fsd50k, tmp_path):
    out = tmp_path / "eval.json"
    assert gnn_audio_main(["eval", "--checkpoint", str(reference_run / "best.pt"),
                           "--data-dir", str(tiny_fsd50k), "--out", str(out), "--quiet",
                           "--batch-size", "8"]) == 0
    got = json.loads(out.read_text())["metrics"]
    want = json.loads((reference_run / "results.json").read_text())["eval"]
    for mode in ("crop", "windows"):
        assert got[mode]["mAP"] == pytest.approx(want[mode]["mAP"], abs=1e-6)


def _train_process(*args) -> subprocess.Popen:
    """``gnn-audio train ARGS`` in a fresh process with a fixed thread count (float results
    depend on it: the runs compared bit for bit must all use the same)."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.Popen([sys.executable, "-m", "gnn_audio.cli", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_resume_after_a_kill_is_bit_exact(tiny_fsd50k, tmp_path):
    reference = _train_process(*tiny_args(tiny_fsd50k, tmp_path / "uninterrupted"))
    run = tmp_path / "killed"
    proc = _train_process(*tiny_args(tiny_fsd50k, run))
    deadline = time.time() + 240
    try:
        while proc.poll() is None and time.time() < deadline:
            history = run / "history.json"
            if history.is_file() and len(json.loads(history.read_text())) == 1:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    resumed = _train_process("--resume", str(run), "--device", "cpu", "--no-progress")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()[-2000:]
    assert reference.wait(timeout=240) == 0, reference.stderr.read()[-2000:]
    a = torch.load(tmp_path / "uninterrupted" / "last.pt", weights_only=True)
    b = torch.load(run / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
    assert a["history"][1]["train_loss"] == b["history"][1]["train_loss"]


#: the recipe's fields before it had sections (config.json of older run directories):
#: flat name -> (section, field)
OLD_FLAT_RECIPE = {
    "model": ("model", "name"), "model_kwargs": ("model", "kwargs"),
    **{k: ("model", k) for k in ("label_graph", "tau", "p", "glove", "pretrained_vig",
                                 "init_from", "freeze_backbone_epochs")},
    "data": ("data", "source"),
    **{k: ("data", k) for k in ("fbank", "norm_stats", "augment", "sampler", "num_workers")},
    **{k: ("optim", k) for k in ("epochs", "max_steps", "batch_size", "lr", "betas",
                                 "weight_decay", "warmup_steps", "lr_decay_start",
                                 "lr_decay_every", "lr_decay", "clip_grad_norm", "precision",
                                 "channels_last", "compile", "sync_bn")},
    "eval_modes": ("eval", "modes"), "window_hop": ("eval", "window_hop"),
    "eval_batch_size": ("eval", "batch_size"), "average_from": ("eval", "average_from")}
OLD_DATA_PATHS = ("data_dir", "store_dir", "audio_dir", "class_csv", "train_csv", "val_csv",
                  "eval_csv", "train_datafile", "val_datafile", "eval_datafile",
                  "train_records", "val_records", "eval_records", "skip_bad", "store_workers")


def test_resume_a_run_whose_config_is_in_the_old_flat_form(reference_run, tiny_fsd50k,
                                                            tmp_path, capsys):
    """A run directory written before the recipe had sections still resumes, and ends where
    an uninterrupted run ends."""
    run = tmp_path / "old"
    assert main(tiny_args(tiny_fsd50k, run, epochs=1)) == 0  # stopped after epoch 1 of 2
    config = json.loads((run / "config.json").read_text())
    recipe = config["recipe"]
    flat = {"name": recipe["name"], "seed": recipe["seed"], "log_every": recipe["log_every"]}
    flat.update({old: recipe[section][field]
                 for old, (section, field) in OLD_FLAT_RECIPE.items()})
    flat["epochs"] = 2
    assert len(flat) == 37
    paths = config["data_paths"]
    config["recipe"] = flat
    config["data_paths"] = {k: paths.get(k) for k in OLD_DATA_PATHS}
    (run / "config.json").write_text(json.dumps(config, indent=2))
    # and a training state of then, whose history and best epoch counted from 0
    state = torch.load(run / "last.pt", weights_only=True)
    del state["epochs_from"], state["payload_checksum"]  # nor checksums then
    state["history"] = [{**h, "epoch": h["epoch"] - 1} for h in state["history"]]
    state["best"]["epoch"] -= 1
    torch.save(state, run / "last.pt")
    capsys.readouterr()
    assert main(["--resume", str(run), "--device", "cpu", "--no-progress"]) == 0
    assert "resumed" in capsys.readouterr().err
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]  # one numbering after the resume too
    results = json.loads((run / "results.json").read_text())
    assert results["best_epoch"] in (1, 2)
    a = torch.load(reference_run / "last.pt", weights_only=True)
    b = torch.load(run / "last.pt", weights_only=True)
    assert a["global_step"] == b["global_step"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_non_finite_loss_stops_with_the_last_good_checkpoint(tiny_fsd50k, tmp_path,
                                                             monkeypatch, capsys):
    calls = {"n": 0}
    loss = TrainStep.loss

    def poisoned(self, x, y):
        calls["n"] += 1
        out = loss(self, x, y)
        return out * float("nan") if calls["n"] == 5 else out  # epoch 2, step 2

    monkeypatch.setattr(TrainStep, "loss", poisoned)
    run = tmp_path / "nan"
    assert main(tiny_args(tiny_fsd50k, run)) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "epoch 2 step 2: loss is nan" in err and "last.pt (end of epoch 1)" in err
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1


def test_unwritable_run_dir_and_full_disk_are_reported_before_training(
        tiny_fsd50k, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(tiny_args(tiny_fsd50k, blocker / "run")) == 1
    err = capsys.readouterr().err
    assert "not writable" in err and "epoch 1" not in err

    import shutil as shutil_module
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: usage(10**9, 10**9 - 2**20, 2**20))
    assert main(tiny_args(tiny_fsd50k, tmp_path / "full")) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "MiB free" in err and "epoch 1" not in err


def test_corrupt_audio_file_is_one_line_naming_it(tiny_fsd50k, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_fsd50k, data, ignore=shutil.ignore_patterns("gnn_audio_stores"))
    victim = sorted((data / "FSD50K.dev_audio").glob("*.wav"))[3]
    victim.write_bytes(b"RIFF\x00\x00garbage")
    assert main(tiny_args(data, tmp_path / "run")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert victim.name in err[-1] and "Traceback" not in "\n".join(err)


def test_fine_tuning_with_a_frozen_backbone(reference_run, tiny_fsd50k, tmp_path):
    run = tmp_path / "finetune"
    best = reference_run / "best.pt"
    assert main(tiny_args(tiny_fsd50k, run, "--init-from", str(best),
                          "--freeze-backbone-epochs", "1", epochs=1)) == 0
    before = torch.load(best, weights_only=True)["state_dict"]
    after = torch.load(run / "last.pt", weights_only=True)["model"]
    assert torch.equal(before["stem.convs.0.weight"], after["stem.convs.0.weight"])
    assert not torch.equal(before["label_readout"], after["label_readout"])
    assert "init-from" in (run / "train.log").read_text()


def test_torchrun_two_cpu_ranks(tiny_fsd50k, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           str(ROOT / "examples" / "train_fsd50k.py"), *tiny_args(tiny_fsd50k, run, epochs=1)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["world_size"] == 2
    n_eval = split_size(tiny_fsd50k, "eval")
    assert n_eval % 2 == 1
    # every evaluation clip counted exactly once, and the gathered scores are those of a
    # single process scoring the same checkpoint
    out = tmp_path / "single.json"
    assert gnn_audio_main(["eval", "--checkpoint", str(run / "best.pt"), "--data-dir",
                           str(tiny_fsd50k), "--out", str(out), "--quiet",
                           "--batch-size", "8"]) == 0
    single = json.loads(out.read_text())
    assert single["clips"] == n_eval
    for mode in ("crop", "windows"):
        assert results["eval"][mode]["num_clips"] == n_eval
        assert results["eval"][mode]["mAP"] == pytest.approx(single["metrics"][mode]["mAP"],
                                                             abs=1e-6)


def test_imagenet_vig_initialisation(tiny_fsd50k, tmp_path, capsys):
    from ..models.test_vig_weights import vig_imagenet_state_dict

    vig = tmp_path / "pvig_tiny.pth.tar"
    torch.save(vig_imagenet_state_dict([8, 16, 24, 32], [2, 2, 6, 2]), vig)
    run = tmp_path / "run"
    assert main(tiny_args(tiny_fsd50k, run, "--pretrained-vig", str(vig), epochs=1)) == 0
    log = (run / "train.log").read_text()
    assert f"ImageNet ViG weights from {vig}" in log and ", 0 unused" in log
    out = capsys.readouterr().out.strip().splitlines()  # the result alone goes to stdout
    assert len(out) == 1 and out[0].startswith("eval mAP (9 clips") and "baseline" in out[0]


def test_weight_averaging_of_the_last_epochs(tiny_fsd50k, tmp_path, monkeypatch):
    from gnn_audio.train.trainer import Trainer

    seen = []
    accumulate = Trainer._accumulate_average

    def record(self):
        seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        accumulate(self)

    monkeypatch.setattr(Trainer, "_accumulate_average", record)
    run = tmp_path / "run"
    assert main(tiny_args(tiny_fsd50k, run, "--average-from", "1", "--channels-last",
                          epochs=3)) == 0
    assert len(seen) == 2  # epochs 2 and 3 (0-based 1 and 2)
    averaged = torch.load(run / "averaged.pt", weights_only=True)["state_dict"]
    for key in ("stem.convs.0.weight", "label_readout", "prediction.1.running_mean"):
        assert torch.allclose(averaged[key], (seen[0][key] + seen[1][key]) / 2, atol=1e-7)
    results = json.loads((run / "results.json").read_text())
    assert results["averaged"]["count"] == 2 and set(results["averaged"]["eval"]) == {
        "crop", "windows"}


def test_an_undefined_validation_map_does_not_block_the_best_checkpoint(
        tiny_fsd50k, tmp_path, monkeypatch):
    from gnn_audio.train.trainer import Trainer

    evaluate = Trainer._evaluate
    calls = {"n": 0}

    def first_undefined(self, model, dataset):
        metrics = evaluate(self, model, dataset)
        calls["n"] += 1
        if calls["n"] == 1:  # epoch 1's validation: e.g. a split without positive labels
            metrics["crop"]["mAP"] = float("nan")
        return metrics

    monkeypatch.setattr(Trainer, "_evaluate", first_undefined)
    run = tmp_path / "run"
    assert main(tiny_args(tiny_fsd50k, run)) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["best_epoch"] == 2  # epoch 2 replaced the undefined epoch 1
    assert torch.load(run / "best.pt", weights_only=True)["extra"]["epoch"] == 2
