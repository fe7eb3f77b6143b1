"""Throughput of every registered backbone on CPU, against the machine's dense-matmul speed.

For each backbone in ``list_backbones(available_only=True)`` and each width scale (default 0.25
and 1.0) this measures

* forward (``eval()``, ``no_grad``) and forward+backward (``train()``, sum of the embedding as the
  loss) wall time per batch (median of ``--reps`` after one warm-up),
* FLOPs counted with ``torch.utils.flop_counter.FlopCounterMode`` (2 flops per multiply-add) for
  the same forward and forward+backward, on the ``meta`` device when the model builds there,
* achieved GFLOP/s = counted FLOPs / time, and its ratio (``%mm``) to the GFLOP/s of a dense
  float32 ``torch.mm`` of 2048 x 2048 matrices measured by this script on the same threads, once
  at the start and again right after each row (``mm GFLOP/s``; on a shared machine the load
  changes between rows).

Inputs are ``model.example_input(batch, seconds)`` (10 s clips by default). When a forward pass
would exceed ``--max-gmacs`` the clip length is shortened (the ``input`` column shows the tensor
actually used; models with a fixed input length, such as AST, ignore the length).

Usage::

    .venv/bin/python benchmarks/bench_backbones.py [--threads 2] [--batch 1] [--reps 3]
        [--scales 0.25 1.0] [--names panns_cnn14_16k vggish_tcvrick ...] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from audiorepro.backbones import build_backbone, list_backbones
from audiorepro.benchmarking import matmul_gflops


def _loss(out: dict[str, torch.Tensor]) -> torch.Tensor:
    key = "embedding" if "embedding" in out else "logits"
    return out[key].float().sum()


def count_step_flops(name: str, scale: float, batch: int, seconds: float, kw: dict) -> tuple[float, float]:
    """(forward flops, forward+backward flops) counted by FlopCounterMode, on meta if possible."""
    try:
        with torch.device("meta"):
            model = build_backbone(name, scale=scale, **kw)
        x = model.example_input(batch, seconds)
    except Exception:  # some builders need real tensors
        model = build_backbone(name, scale=scale, **kw)
        x = model.example_input(batch, seconds)
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    fwd = fc.get_total_flops()
    model.train()
    try:
        with FlopCounterMode(display=False) as fc2:
            _loss(model(x)).backward()
        both = fc2.get_total_flops()
    except Exception:
        both = float("nan")
    return float(fwd), float(both)


def time_it(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_one(name: str, scale: float, batch: int, seconds: float, reps: int,
              max_gmacs: float) -> dict[str, Any]:
    kw = {"pretrained": False} if name.startswith("crepe") else {}
    fwd_flops, both_flops = count_step_flops(name, scale, batch, seconds, kw)
    if fwd_flops / 2e9 > max_gmacs:  # shorten the clip to stay within budget
        seconds = seconds * max_gmacs / (fwd_flops / 2e9)
        fwd_flops, both_flops = count_step_flops(name, scale, batch, seconds, kw)
    model = build_backbone(name, scale=scale, **kw)
    x = model.example_input(batch, seconds)
    n_params = sum(p.numel() for p in model.parameters())

    def fwd() -> None:
        with torch.no_grad():
            model(x)

    def fwd_bwd() -> None:
        model.zero_grad(set_to_none=True)
        _loss(model(x)).backward()

    model.eval()
    t_fwd = time_it(fwd, reps)
    model.train()
    t_both = time_it(fwd_bwd, reps)
    peak = matmul_gflops()  # measured next to this row: the machine is shared
    return dict(mm_gflops_per_s=peak, name=name, scale=scale, batch=batch, seconds=round(seconds, 3), params=n_params,
                input=list(x.shape), fwd_gflop=fwd_flops / 1e9, fwdbwd_gflop=both_flops / 1e9,
                fwd_s=t_fwd, fwdbwd_s=t_both,
                fwd_clips_per_s=batch / t_fwd, fwdbwd_clips_per_s=batch / t_both,
                fwd_gflops_per_s=fwd_flops / 1e9 / t_fwd,
                fwdbwd_gflops_per_s=both_flops / 1e9 / t_both)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--scales", type=float, nargs="+", default=[0.25, 1.0])
    p.add_argument("--names", nargs="*", default=None, help="default: all available backbones")
    p.add_argument("--max-gmacs", type=float, default=60.0,
                   help="shorten the clip when one forward exceeds this many GMACs")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    names = args.names or list_backbones(available_only=True)
    peak = matmul_gflops()
    print(f"torch {torch.__version__}, {args.threads} threads; dense torch.mm 2048x2048 float32: "
          f"{peak:.1f} GFLOP/s (2 flops per multiply-add)")
    rows = []
    header = (f"{'backbone':34s} {'scale':>5s} {'input':>18s} {'Mparams':>8s} {'fwd GFLOP':>9s} "
              f"{'fwd s':>7s} {'clip/s':>7s} {'GFLOP/s':>8s} {'%mm':>5s} | {'f+b GFLOP':>9s} "
              f"{'f+b s':>7s} {'clip/s':>7s} {'GFLOP/s':>8s} {'%mm':>5s} {'mm GFLOP/s':>10s}")
    print(header)
    print("-" * len(header))
    for name in names:
        for scale in args.scales:
            try:
                r = bench_one(name, scale, args.batch, args.seconds, args.reps, args.max_gmacs)
            except Exception as exc:  # report and continue with the next model
                print(f"{name:34s} {scale:5.2f}  FAILED: {type(exc).__name__}: {exc}"[:200])
                continue
            rows.append(r)
            mm = r["mm_gflops_per_s"]
            shape = "x".join(map(str, r["input"]))
            print(f"{name:34s} {scale:5.2f} {shape:>18s} {r['params'] / 1e6:8.2f} "
                  f"{r['fwd_gflop']:9.2f} {r['fwd_s']:7.3f} {r['fwd_clips_per_s']:7.2f} "
                  f"{r['fwd_gflops_per_s']:8.1f} {100 * r['fwd_gflops_per_s'] / mm:5.1f} | "
                  f"{r['fwdbwd_gflop']:9.2f} {r['fwdbwd_s']:7.3f} {r['fwdbwd_clips_per_s']:7.2f} "
                  f"{r['fwdbwd_gflops_per_s']:8.1f} {100 * r['fwdbwd_gflops_per_s'] / mm:5.1f} "
                  f"{mm:10.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_gflops_per_s": peak, "threads": args.threads, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
