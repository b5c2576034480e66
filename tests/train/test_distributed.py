"""gnn_audio.train.distributed: the torchrun environment, device choice, clear errors, the
single-process wrappers, and the collectives in a real two-process Gloo group."""
import json
import os
import multiprocessing
import traceback

import pytest
import torch

from gnn_audio.train.distributed import (DistContext, all_gather_objects, all_reduce_mean,
                                         barrier, cleanup, init_distributed)

from .conftest import free_port, needs_fork

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_context_properties_and_validation():
    ctx = DistContext()
    assert ctx.is_main and not ctx.distributed and ctx.device == torch.device("cpu")
    ctx = DistContext(rank=2, world_size=3, local_rank=0, device="cpu", backend="gloo")
    assert not ctx.is_main and ctx.distributed and isinstance(ctx.device, torch.device)
    with pytest.raises(ValueError, match="rank < world_size"):
        DistContext(rank=3, world_size=3)
    with pytest.raises(ValueError, match="rank < world_size"):
        DistContext(rank=0, world_size=0)


def test_single_process_without_torchrun(no_torchrun):
    ctx = init_distributed()
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert ctx == DistContext(0, 1, 0, expected, None)
    assert not torch.distributed.is_initialized()
    cpu = init_distributed("cpu")
    assert cpu.device == torch.device("cpu") and cpu.backend is None
    # torchrun with one process: still no process group
    no_torchrun.setenv("WORLD_SIZE", "1")
    no_torchrun.setenv("RANK", "0")
    no_torchrun.setenv("LOCAL_RANK", "0")
    assert init_distributed("cpu") == DistContext(0, 1, 0, torch.device("cpu"), None)
    assert not torch.distributed.is_initialized()


def test_cuda_requested_without_cuda(no_torchrun):
    no_torchrun.setattr(torch.cuda, "is_available", lambda: False)
    assert init_distributed().device == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        init_distributed("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        init_distributed("gpu0")


def test_more_local_ranks_than_gpus(no_torchrun):
    no_torchrun.setattr(torch.cuda, "is_available", lambda: True)
    no_torchrun.setattr(torch.cuda, "device_count", lambda: 2)
    no_torchrun.setenv("LOCAL_RANK", "3")
    no_torchrun.setenv("RANK", "3")
    no_torchrun.setenv("WORLD_SIZE", "4")
    with pytest.raises(ValueError, match="local rank 3 needs GPU 3 but only 2"):
        init_distributed()
    with pytest.raises(ValueError, match="local rank 3 needs GPU 3 but only 2"):
        init_distributed("cuda")


@pytest.mark.parametrize("env, match", [
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}, "MASTER_ADDR and MASTER_PORT"),
    ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "inconsistent torchrun"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
])
def test_bad_environment(no_torchrun, env, match):
    for key, value in env.items():
        no_torchrun.setenv(key, value)
    with pytest.raises(ValueError, match=match):
        init_distributed("cpu")
    assert not torch.distributed.is_initialized()


def test_single_process_wrappers():
    ctx = DistContext()
    obj = {"a": [1, 2]}
    assert all_gather_objects(obj, ctx) == [obj]
    assert all_reduce_mean(3, ctx) == 3.0 and isinstance(all_reduce_mean(3, ctx), float)
    t = torch.tensor([1, 2])
    mean = all_reduce_mean(t, ctx)
    assert mean.dtype == torch.float64 and mean.tolist() == [1.0, 2.0]
    f = torch.tensor([1.5])
    out = all_reduce_mean(f, ctx)
    out += 1
    assert f.item() == 1.5  # a new tensor, the input unchanged
    barrier(ctx)
    cleanup()  # no process group: a no-op


def run_ranks(target, world_size: int, tmp_path, timeout: float = 60.0) -> list:
    """Run ``target(ctx_result_path)`` in ``world_size`` forked processes that see torchrun's
    environment (forked, not spawned: the children skip re-importing torch and gnn_audio).
    Each child writes ``target``'s JSON result; a failure's traceback fails the test."""
    ctx = multiprocessing.get_context("fork")
    port = free_port()

    def child(rank: int) -> None:
        torch.set_num_threads(1)  # as DataLoader workers do after a fork
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                          LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port))
        out = tmp_path / f"rank{rank}.json"
        try:
            out.write_text(json.dumps({"ok": target()}))
        except BaseException:  # noqa: BLE001 -- reported to the parent
            out.write_text(json.dumps({"error": traceback.format_exc()}))
            os._exit(1)
        os._exit(0)

    procs = [ctx.Process(target=child, args=(rank,)) for rank in range(world_size)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    results = []
    for rank, p in enumerate(procs):
        path = tmp_path / f"rank{rank}.json"
        assert path.exists(), f"rank {rank} exited with {p.exitcode} and wrote nothing"
        data = json.loads(path.read_text())
        assert "error" not in data, f"rank {rank} failed:\n{data['error']}"
        results.append(data["ok"])
    return results


def collectives():
    ctx = init_distributed("cpu")
    try:
        value = torch.tensor([ctx.rank, 10 * ctx.rank])
        mean = all_reduce_mean(value, ctx)
        out = {
            "ctx": [ctx.rank, ctx.world_size, ctx.local_rank, str(ctx.device), ctx.backend],
            "gathered": all_gather_objects(["rank", ctx.rank], ctx),
            "mean_float": all_reduce_mean(float(ctx.rank + 1), ctx),
            "mean_tensor": mean.tolist(),
            "input_kept": value.tolist() == [ctx.rank, 10 * ctx.rank],
        }
        barrier(ctx)
        return out
    finally:
        cleanup()


@needs_fork
def test_two_process_gloo_collectives(tmp_path):
    results = run_ranks(collectives, 2, tmp_path)
    for rank, r in enumerate(results):
        assert r["ctx"] == [rank, 2, rank, "cpu", "gloo"]
        assert r["gathered"] == [["rank", 0], ["rank", 1]]
        assert r["mean_float"] == 1.5
        assert r["mean_tensor"] == [0.5, 5.0]
        assert r["input_kept"]
    assert not torch.distributed.is_initialized()  # the parent never joined
