"""Two ``torchrun`` agents as two nodes of one job on the loopback interface (c10d rendezvous
on 127.0.0.1, ``--nnodes 2``, one CPU process each): a run counts every evaluation clip once,
and with ``--max-restarts 1`` a rank killed within an epoch restarts the job, which resumes
from the last step state and ends bit for bit where the job that was never stopped ends."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import free_port, split_size, tiny_args

CHILD = Path(__file__).with_name("interrupted_run.py")

pytestmark = pytest.mark.slow


def _two_nodes(train_args, action="none", at=0, timeout=500, shared_store=False):
    """Both agents of one job (node ranks assigned at the rendezvous); their exit codes and
    stderr. ``shared_store``: torchrun's default, the workers use the agent's store."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "0" if shared_store else "1"}
    agents = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
         "--nproc_per_node", "1", "--rdzv_backend", "c10d",
         "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", f"job{port}",
         "--max-restarts", "1", "--monitor-interval", "0.5",
         str(CHILD), action, str(at), *map(str, train_args)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)]
    out = [agent.communicate(timeout=timeout) for agent in agents]
    return [agent.returncode for agent in agents], [o[1] for o in out]


def _args(data, run):
    return [*tiny_args(data, run), "--save-every-steps", "2"]


def test_two_nodes_and_a_rank_killed_within_an_epoch(tiny_fsd50k, tmp_path):
    reference = tmp_path / "reference"
    codes, errs = _two_nodes(_args(tiny_fsd50k, reference))
    assert codes == [0, 0], errs[0][-3000:] + errs[1][-3000:]
    results = json.loads((reference / "results.json").read_text())
    assert results["world_size"] == 2
    n_eval = split_size(tiny_fsd50k, "eval")
    assert all(m["num_clips"] == n_eval for m in results["eval"].values())

    run = tmp_path / "killed"
    # rank 1 dies at the start of its step 5 (epoch 2 step 2); the state of step 4 is saved
    codes, errs = _two_nodes(_args(tiny_fsd50k, run), action="kill@1", at=5)
    assert codes == [0, 0], errs[0][-3000:] + errs[1][-3000:]
    log = (run / "train.log").read_text()
    assert "warning: torchrun may restart" not in log
    assert "torchrun restarted the job: resuming from the last saved state" in log
    assert "within epoch 2, after its step 1 of 3 (step 4 of the run)" in log
    a = torch.load(reference / "last.pt", weights_only=True)
    b = torch.load(run / "last.pt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert json.loads((run / "results.json").read_text())["eval"] == results["eval"]


def test_the_shared_store_of_torchrun_is_warned_about(tiny_fsd50k, tmp_path):
    """With torchrun's default store sharing a restart across nodes cannot connect its
    workers (torch 2.11): the run says so in its log, before anything can fail."""
    run = tmp_path / "shared"
    codes, errs = _two_nodes([*tiny_args(tiny_fsd50k, run, epochs=1), "--max-steps", "1"],
                             shared_store=True)
    assert codes == [0, 0], errs[0][-3000:] + errs[1][-3000:]
    assert ("warning: torchrun may restart this job of several nodes (--max-restarts), and a "
            "restart fails to connect its workers unless torchrun runs with "
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1") in (run / "train.log").read_text()
