"""Timing helpers shared by the scripts in benchmarks/ (never used by tests)."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def timeit(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """(best wall, median wall, best process CPU) seconds of ``repeats`` calls after a warm-up.

    CPU seconds (``time.process_time``, all threads of this process) are less sensitive to
    other processes competing for the cores than wall time.
    """
    fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), statistics.median(walls), min(cpus)


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """GFLOP/s of ``torch.mm`` on two (n, n) float32 matrices (2 n^3 flops per product, median
    of ``reps``): the dense-matmul reference every benchmark compares its models with."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch.inference_mode():
        _, median, _ = timeit(lambda: torch.mm(a, b), reps)
    return 2 * n ** 3 / median / 1e9
