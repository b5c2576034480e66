"""What the checksum of a checkpoint costs: writing and reading a checkpoint of ``--mb`` MB
with and without :func:`gnn_audio.weights_io.payload_checksum`, side by side in one run
(alternating, median of ``--repeat``), and the digest alone.

    .venv/bin/python benchmarks/checkpoint_checksum.py [--mb 140] [--repeat 5] [--json OUT]

``plain``: ``torch.save`` / ``torch.load(weights_only=True)`` of the payload; ``checked``:
:func:`~gnn_audio.weights_io.save_weights_file` / :func:`~gnn_audio.weights_io.
load_weights_file` (atomic write, digest added on save and verified on load). The files go to
``--dir`` (default: a temporary folder), read back from the page cache.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from gnn_audio.weights_io import load_weights_file, payload_checksum, save_weights_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import median_ms, time_interleaved, write_json  # noqa: E402


def payload(megabytes: float) -> dict:
    """A state_dict-like payload: float32 tensors of a ViG's shapes, ``megabytes`` in all."""
    g = torch.Generator().manual_seed(0)
    tensors, total, i = {}, 0, 0
    while total < megabytes * 1e6:
        shape = [(640, 640, 1, 1), (2560, 640), (640,), (320, 320, 3, 3)][i % 4]
        t = torch.randn(shape, generator=g)
        tensors[f"blocks.{i}.weight"] = t
        total += t.numel() * 4
        i += 1
    return {"format": "bench", "state_dict": tensors, "extra": {"epoch": 3}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=140.0)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--dir", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    obj = payload(args.mb)
    size = sum(t.numel() * 4 for t in obj["state_dict"].values()) / 1e6
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        plain, checked = Path(tmp, "plain.pt"), Path(tmp, "checked.pt")
        times = time_interleaved({
            "save_plain": lambda: torch.save(obj, plain),
            "save_checked": lambda: save_weights_file(obj, checked),
            "load_plain": lambda: torch.load(plain, weights_only=True),
            "load_checked": lambda: load_weights_file(checked, "benchmark checkpoint"),
            "digest": lambda: payload_checksum(obj)}, args.repeat, torch.device("cpu"))
        med = {k: median_ms(v) / 1e3 for k, v in times.items()}
    print(f"payload {size:.0f} MB, median of {args.repeat}")
    print(f"  digest alone            {med['digest'] * 1e3:8.1f} ms "
          f"({size / 1e3 / med['digest']:.2f} GB/s)")
    for op in ("save", "load"):
        ratio = med[f"{op}_checked"] / med[f"{op}_plain"]
        print(f"  {op}: plain {med[f'{op}_plain'] * 1e3:8.1f} ms, with checksum "
              f"{med[f'{op}_checked'] * 1e3:8.1f} ms, ratio {ratio:.2f}")
    if args.json:
        write_json(args.json, {"megabytes": size, "repeat": args.repeat,
                               "median_seconds": med})
    return 0


if __name__ == "__main__":
    sys.exit(main())
