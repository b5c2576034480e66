"""Runs stopped within an epoch: killed after a ``--save-every-steps`` state, stopped by SIGTERM
or Ctrl-C, a full disk while saving; each resumed run ends bit for bit where a run that was
never stopped ends."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gnn_audio.train.preemption import EXIT_STOPPED

from .conftest import TINY_MODEL, tiny_args

CHILD = Path(__file__).with_name("interrupted_run.py")
#: drop-path draws from the global random stream: a resume that did not restore it would
#: not end where the uninterrupted run ends
MODEL = ["--model-kwargs", json.dumps({**TINY_MODEL, "drop_path_rate": 0.2})]


def _args(data, run, *extra):
    return [*tiny_args(data, run), *MODEL, *extra]


def _run(*args, action="none", at=0, timeout=300) -> subprocess.CompletedProcess:
    """``gnn-audio train ARGS`` in a fresh process (a fixed thread count: the runs compared
    bit for bit must all use the same), ``action`` done at its step ``at``."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, str(CHILD), action, str(at), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=timeout)


def _state(run: Path) -> dict:
    return torch.load(run / "last.pt", weights_only=True)


def _assert_same_run(a: Path, b: Path) -> None:
    sa, sb = _state(a), _state(b)
    assert sa["epoch"] == sb["epoch"] and sa["global_step"] == sb["global_step"]
    assert sa["in_epoch"] is None and sb["in_epoch"] is None
    for key, value in sa["model"].items():
        assert torch.equal(value, sb["model"][key]), key
    for ka, kb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(ka["exp_avg"], kb["exp_avg"])
        assert torch.equal(ka["exp_avg_sq"], kb["exp_avg_sq"])
    assert sa["scheduler"] == sb["scheduler"]
    assert [h["train_loss"] for h in sa["history"]] == [h["train_loss"] for h in sb["history"]]
    assert [h["val"] for h in sa["history"]] == [h["val"] for h in sb["history"]]
    ra = json.loads((a / "results.json").read_text())["eval"]
    rb = json.loads((b / "results.json").read_text())["eval"]
    assert ra == rb


@pytest.fixture(scope="module")
def uninterrupted(tiny_fsd50k, tmp_path_factory) -> Path:
    """Two epochs of 3 steps, never stopped (saving every 2 steps changes nothing of it)."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    proc = _run(*_args(tiny_fsd50k, run), "--save-every-steps", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def test_kill_within_an_epoch_resumes_from_the_step_state_bit_exact(uninterrupted, tiny_fsd50k,
                                                                    tmp_path):
    run = tmp_path / "killed"
    # steps 2 and 4 save a state; SIGKILL at the start of step 5 (epoch 2, its second step)
    proc = _run(*_args(tiny_fsd50k, run), "--save-every-steps", "2", action="kill", at=5)
    assert proc.returncode == -9, proc.stderr[-2000:]
    state = _state(run)
    assert state["global_step"] == 4 and state["epoch"] == 1
    assert state["in_epoch"]["steps"] == 1 and state["in_epoch"]["taken"] == 1
    resumed = _run("--resume", run, "--device", "cpu", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "within epoch 2, after its step 1 of 3 (step 4 of the run)" in resumed.stderr
    _assert_same_run(uninterrupted, run)


@pytest.mark.parametrize("action, name, at", [("term", "SIGTERM", 2), ("int", "SIGINT", 2),
                                             ("term", "SIGTERM", 3)])
def test_a_signal_saves_at_the_next_step_and_stops(uninterrupted, tiny_fsd50k, tmp_path,
                                                   action, name, at):
    """At step 2, and at step 3, the last of epoch 1: the run stops before that epoch's
    validation, and the resumed run validates it."""
    run = tmp_path / f"{action}{at}"
    proc = _run(*_args(tiny_fsd50k, run), action=action, at=at)  # no --save-every-steps
    assert proc.returncode == EXIT_STOPPED, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (f"gnn-audio train: {name}: stopped at epoch 1 step {at} (step {at} of the "
                    f"run), state saved to {run / 'last.pt'}; continue with --resume {run}"), last
    assert f"{name}: stopping at the next step boundary" in proc.stderr
    state = _state(run)
    assert state["global_step"] == at and state["in_epoch"]["steps"] == at
    assert state["history"] == [] and "epoch 1/2:" not in proc.stderr  # not validated yet
    resumed = _run("--resume", run, "--device", "cpu", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(uninterrupted, run)


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tiny_fsd50k, tmp_path):
    run = tmp_path / "int2"
    proc = _run(*_args(tiny_fsd50k, run), action="int2", at=2)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "gnn-audio train: interrupted, nothing saved since the last save")
    assert not (run / "last.pt").exists()


def test_a_full_disk_while_saving_names_the_file_and_keeps_the_last_state(tiny_fsd50k,
                                                                           tmp_path):
    run = tmp_path / "full"
    # step 2 saves a state; from step 3 on the disk is full: the end of epoch 1 (step 3)
    # cannot write best.pt
    proc = _run(*_args(tiny_fsd50k, run), "--save-every-steps", "2", action="enospc", at=3)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"gnn-audio train: {run / 'best.pt'}: cannot write it (No space left on device)")
    assert _state(run)["global_step"] == 2  # the earlier state, whole
    assert sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp")) == []


def test_a_disk_that_really_fills_up_while_saving(tiny_fsd50k, tmp_path, small_tmpfs):
    """The run directory on a real 100 MiB disk (a tmpfs), room for the run's checkpoints
    when it starts; at step 3 another file takes all the space left: the state of step 4
    cannot be written."""
    run = small_tmpfs(100 * 2 ** 20) / "run"
    proc = _run(*_args(tiny_fsd50k, run), "--save-every-steps", "2", action="fill", at=3)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("gnn-audio train: ") and "No space left on device" in last, last
    assert str(run / "best.pt") in last or str(run / "last.pt") in last, last
    assert _state(run)["global_step"] == 2  # the earlier state, whole and verified
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []
