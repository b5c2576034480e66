"""MaxRelativeConv (PyG, gnn_audio) against a dense gather+max of the same operation.

At ATGNN pyr-s sizes with batch 24:
  stage 1: 32 x 256 = 8192 nodes, C = 80, keys pooled r = 4 (512 keys), dilation 1
  stage 3:  8 x 64  =  512 nodes, C = 400, r = 1, dilation 2
both with Pyramid ViG's relative-position term and k = 9, and the Pyramid ViG update
(grouped 1x1 2C -> 2C, groups 4, BatchNorm, GELU) shared by both implementations.

Prints, per device: kNN graph building per backend (forward, no grad), and forward+backward of
the convolution alone for (a) MaxRelativeConv on the builder's EdgeIndex (fused gather-max),
(b) MaxRelativeConv on a plain edge_index tensor (PyG's scatter path) and (c) the dense
gather+max reference, with the ratios (a)/(c) and (b)/(c). Run:

    .venv/bin/python benchmarks/bench_layers.py [--repeat 5] [--batch 24] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from gnn_audio.graph import grid_knn_graph
from gnn_audio.nn import MaxRelativeConv

STAGES = {
    "stage1": dict(grid=(32, 256), channels=80, reduce_ratio=4, dilation=1),
    "stage3": dict(grid=(8, 64), channels=400, reduce_ratio=1, dilation=2),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timeit(fn, device, repeat):
    fn()  # warm-up (and lazy caches)
    fn()
    times = []
    for _ in range(repeat):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def dense_max_relative(conv, x_nodes, x_keys, nbr, batch, n, m):
    """The ViG way: gather [B, N, k, C] neighbours, subtract x_i, max over k, interleave,
    then the same update module as ``conv``."""
    c = x_nodes.size(1)
    keys = x_keys.view(batch, m, c)
    idx = nbr.view(batch, n * nbr.size(1))  # local key index per (node, neighbour)
    x_j = torch.gather(keys, 1, idx.unsqueeze(-1).expand(-1, -1, c)).view(batch, n, -1, c)
    rel = (x_j - x_nodes.view(batch, n, 1, c)).max(dim=2).values
    h_in = torch.stack([x_nodes.view(batch, n, c), rel], dim=-1).reshape(batch * n, 2 * c)
    return conv.nn(h_in)


def run(device, batch, repeat):
    print(f"\n== {device} (threads: {torch.get_num_threads()}), batch {batch} ==")
    header = (f"{'stage':7} {'nodes':>6} {'C':>4} {'keys':>5} | {'knn dense':>10} "
              f"{'knn cluster':>11} | {'Neighbor':>10} {'EdgeIndex':>10} {'edge_index':>10} "
              f"{'dense ref':>10} "
              f"| {'ratio fused/dense':>17} {'ratio scatter/dense':>19}")
    print(header)
    print("-" * len(header))
    results = {}
    for name, cfg in STAGES.items():
        torch.manual_seed(0)
        h, w = cfg["grid"]
        c = cfg["channels"]
        x = torch.randn(batch, c, h, w, device=device)
        kw = dict(dilation=cfg["dilation"], reduce_ratio=cfg["reduce_ratio"], relative_pos=True)
        t_dense = timeit(lambda: grid_knn_graph(x, 9, backend="dense", **kw), device, repeat)
        t_clus = timeit(lambda: grid_knn_graph(x, 9, backend="cluster", **kw), device,
                        max(1, repeat // 2))
        nodes, keys, neighbors = grid_knn_graph(x, 9, backend="dense", **kw)
        edge_index = neighbors.to_edge_index()
        edge_index.get_indptr()
        plain = edge_index.as_tensor()
        n, m = h * w, keys.size(0) // batch
        nbr_local = (plain[0] - (plain[1] // n) * m).view(batch * n, 9)
        conv = MaxRelativeConv(c, 2 * c, groups=4, norm="batch", act="gelu",
                               concat="interleave").to(device)
        x_nodes = nodes.detach().clone().requires_grad_()
        x_keys = x_nodes if keys is nodes else keys.detach().clone().requires_grad_()
        pair = x_nodes if keys is nodes else (x_keys, x_nodes)
        grad = torch.randn(batch * n, 2 * c, device=device)

        def fused():
            conv(pair, neighbors).backward(grad)

        def fused_csr():
            conv(pair, edge_index).backward(grad)

        def scatter():
            conv(pair, plain).backward(grad)

        def dense():
            dense_max_relative(conv, x_nodes, x_keys, nbr_local, batch, n, m).backward(grad)

        with torch.no_grad():  # all three compute the same thing
            a, b = conv(pair, neighbors), dense_max_relative(conv, x_nodes, x_keys, nbr_local,
                                                             batch, n, m)
            assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
            assert torch.allclose(conv(pair, edge_index), b, atol=1e-4)
        t_fused = timeit(fused, device, repeat)
        t_csr = timeit(fused_csr, device, repeat)
        t_scatter = timeit(scatter, device, max(1, repeat // 2))
        t_ref = timeit(dense, device, repeat)
        results[name] = t_fused / t_ref
        print(f"{name:7} {n:>6} {c:>4} {m:>5} | {t_dense * 1e3:>8.1f}ms {t_clus * 1e3:>9.1f}ms | "
              f"{t_fused * 1e3:>8.1f}ms {t_csr * 1e3:>8.1f}ms {t_scatter * 1e3:>8.1f}ms "
              f"{t_ref * 1e3:>8.1f}ms | "
              f"{t_fused / t_ref:>17.2f} {t_scatter / t_ref:>19.2f}")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", action="append",
                        help="cpu and/or cuda (default: cpu, plus cuda when available)")
    args = parser.parse_args()
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print("MaxRelativeConv forward+backward vs dense gather+max (times: median of "
          f"{args.repeat}); kNN graph build reported separately (k=9, relative position)")
    for dev in devices:
        run(torch.device(dev), args.batch, args.repeat)


if __name__ == "__main__":
    main()
