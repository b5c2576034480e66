"""``python interrupted_run.py ACTION STEP TRAIN_ARGS...``: ``gnn-audio train TRAIN_ARGS`` in
this process, with ACTION done to it at the start of its optimiser step number STEP (counted
from 1 in this process): ``kill`` (SIGKILL: nothing is saved), ``term`` (SIGTERM), ``int``
(one Ctrl-C, SIGINT), ``int2`` (two Ctrl-C), ``enospc`` (every file torch saves from then on
fails with a full disk), ``fill`` (a file fills the disk of the run directory), ``none``. ``ACTION@R`` does it once in a ``torchrun`` job: in the
first process of rank ``R`` that reaches step STEP (a file ``interrupted_run.done`` in the
run directory marks it done; the ranks of a restarted job may sit on other nodes). The tests
of stopped and resumed runs start it as a subprocess."""
import errno
import os
import signal
import sys


def main() -> int:
    action, at, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    action, _, rank = action.partition("@")
    marker = None
    if rank:
        marker = os.path.join(args[args.index("--run-dir") + 1], "interrupted_run.done")
        if os.environ.get("RANK") != rank or os.path.exists(marker):
            action = "none"
    import torch

    from gnn_audio.cli.train import main as train
    from gnn_audio.train.step import TrainStep

    calls = {"n": 0}
    step = TrainStep.__call__

    def full_disk(obj, f, *args, **kwargs):  # a kilobyte is written, then the disk is full
        f.write(b"\0" * 1024)
        raise OSError(errno.ENOSPC, "No space left on device")

    def patched(self, x, y):
        calls["n"] += 1
        if calls["n"] == at:
            if marker is not None and action != "none":
                open(marker, "w").close()
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif action == "term":
                os.kill(os.getpid(), signal.SIGTERM)
            elif action == "int":
                os.kill(os.getpid(), signal.SIGINT)
            elif action == "int2":
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
            elif action == "enospc":
                torch.save = full_disk
            elif action == "fill":  # another program fills the run directory's disk
                with open(os.path.join(args[args.index("--run-dir") + 1], "..", "filler"),
                          "wb") as f:
                    try:
                        while True:
                            f.write(b"\0" * 65536)
                            f.flush()
                    except OSError:
                        pass
        return step(self, x, y)

    TrainStep.__call__ = patched
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
