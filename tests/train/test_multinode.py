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


def _two_nodes(train_args, action="none", at=0, timeout=500):
    """Both agents of one job (node ranks assigned at the rendezvous); their outputs."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
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
    assert "torchrun restart 1: resuming from the last saved state" in log
    assert "within epoch 2, after its step 1 of 3 (step 4 of the run)" in log
    a = torch.load(reference / "last.pt", weights_only=True)
    b = torch.load(run / "last.pt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert json.loads((run / "results.json").read_text())["eval"] == results["eval"]
