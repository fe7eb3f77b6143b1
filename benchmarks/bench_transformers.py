"""Throughput of the AST / PaSST forward pass relative to a dense matmul on the same threads.

Usage::

    python benchmarks/bench_transformers.py [--threads 2] [--repeats 3] [--batch 1]
        [--models ast_base384_f10_t10_527 passt_s_swa_p16_s10_128_998_527 ...]

For each model: MACs from ``audiorepro.backbones.counting.count_flops`` on the meta device (conv,
linear and attention matmuls), eval-mode forward time under ``torch.inference_mode`` (median of
``repeats`` after one warm-up), achieved GFLOP/s (2 flops per MAC) and the ratio to the GFLOP/s
of a float32 2048 x 2048 matmul measured just before and after the model (mean; on a shared
machine the load changes between measurements). Prints one line per model and
writes nothing; every number printed is measured by this run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from audiorepro.backbones.ast import AST_PRESETS, build_ast
from audiorepro.backbones.passt import PASST_PRESETS, build_passt
from audiorepro.backbones.counting import count_flops
from audiorepro.benchmarking import matmul_gflops


def _timeit(fn, repeats: int) -> float:
    fn()                                                    # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build(name: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return (build_ast(name) if name in AST_PRESETS else build_passt(name)).eval()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=[
        "ast_base384_f10_t10_527", "passt_s_swa_p16_s10_128_998_527",
        "passt_s_p16_s16_128_1000_527", "passt_l_kd_p16_s10_128_998_527"])
    args = ap.parse_args(argv)
    bad = [m for m in args.models if m not in AST_PRESETS and m not in PASST_PRESETS]
    if bad:
        ap.error(f"unknown model(s) {bad}; known: {sorted(AST_PRESETS) + sorted(PASST_PRESETS)}")
    torch.set_num_threads(args.threads)
    peak = matmul_gflops()
    print(f"threads={args.threads} torch={torch.__version__} dense matmul 2048^3 fp32: "
          f"{peak:.1f} GFLOP/s")
    for name in args.models:
        meta = build(name, "meta")
        x_meta = meta.example_input(args.batch)                 # on the meta device
        gmacs = count_flops(meta, x_meta)
        model = build(name)
        x = torch.randn(x_meta.shape)
        before = matmul_gflops()
        with torch.inference_mode():
            t = _timeit(lambda: model(x), args.repeats)
        local_peak = (before + matmul_gflops()) / 2        # matmul measured around this model
        gflops = 2 * gmacs / t
        print(f"{name:36s} input {tuple(x.shape)} {gmacs:8.2f} GMAC  {t * 1000:8.0f} ms  "
              f"{gflops:7.1f} GFLOP/s  matmul {local_peak:6.1f} GFLOP/s  "
              f"{100 * gflops / local_peak:5.1f} % of matmul")


if __name__ == "__main__":
    main()
