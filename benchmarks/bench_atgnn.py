"""ATGNN speed and memory (not a test): ``.venv/bin/python benchmarks/bench_atgnn.py [--quick]``.

1. k-NN graph memory on a 10-minute clip: stage-1 pyramid graph of a 128 x 60,000-frame fbank
   (N = 32 x 15,000 = 480,000 query nodes, M = N / 16 = 30,000 keys, C = 80, k = 9): analytic peak
   bytes of the dense distance matrix vs. the chunked search, and the measured peak RSS increase of
   one chunked search (``knn_graph``) with the relative-position term computed per chunk.
2. Forward + backward throughput of pyr-s at the paper input (batch 2 x 128 x 1056, 527 classes) and its
   achieved GFLOP/s (FlopCounterMode MACs x 2 x 3 for forward + backward) as a share of the dense
   matmul GFLOP/s measured by this script on this machine (target in the issue: >= 50 %).
"""
from __future__ import annotations

import argparse
import resource
import time

import torch

from audiorepro.models.atgnn import build_atgnn, count_atgnn, knn_graph, knn_peak_memory, relative_pos_term
from audiorepro.benchmarking import matmul_gflops


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_knn(frames: int, chunk: int) -> dict:
    h, w = 128 // 4, frames // 4
    n, c, r = h * w, 80, 4
    m = (h // r) * (w // r)
    est = knn_peak_memory(n, m, c, 9, chunk)
    x = torch.randn(1, n, c)
    y = torch.nn.functional.avg_pool2d(x.transpose(1, 2).reshape(1, c, h, w), r).flatten(2).transpose(1, 2)
    before = rss_mb()
    t0 = time.time()
    idx = knn_graph(x, y, 9, 1, rel_fn=lambda sl: relative_pos_term(c, (h, w), r, rows=sl),
                    chunk_elements=chunk)
    dt = time.time() - t0
    return {"frames": frames, "N": n, "M": m, "dense_GB": est["dense"] / 1e9,
            "chunked_est_MB": est["chunked"] / 1e6, "rss_increase_MB": rss_mb() - before,
            "seconds": dt, "edges": tuple(idx.shape)}


def bench_throughput(reps: int) -> dict:
    model = build_atgnn("pyr-s", num_classes=527, input_size=(128, 1056))
    gmacs = count_atgnn(model)["gmacs"]
    model.cache_position_tables()
    batch = 2                                                   # BN needs > 1 value in training
    x = torch.randn(batch, 1056, 128)
    model(x).sum().backward()                                   # warm-up
    t0 = time.time()
    for _ in range(reps):
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
    dt = (time.time() - t0) / reps / batch
    achieved = 3 * 2 * gmacs / dt                               # backward ~ 2x forward
    peak = matmul_gflops()
    return {"s_per_clip": dt, "clips_per_s": 1 / dt, "achieved_GFLOPs": achieved,
            "matmul_GFLOPs": peak, "share": achieved / peak}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1-minute clip and one repetition")
    ap.add_argument("--chunk", type=int, default=1 << 22)
    a = ap.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    print(bench_knn(6000 if a.quick else 60000, a.chunk))
    print(bench_throughput(1 if a.quick else 3))
