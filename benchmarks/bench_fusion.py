"""Multilayer fusion: per-layer embedding throughput (clips/s) and linear-probe cost.

Run: ``.venv/bin/python benchmarks/bench_fusion.py [--clips 16] [--seconds 1] [--repeats 3]
[--device auto]``.
Random waves through :class:`audiorepro.papers.fusion.LayerEmbedder` (all layers) for CREPE-tiny
(hop 0.1 s) and the CPU-sized CNN14, VGGish and AST of the book profile (random weights: speed
only; the synthetic-pretrained stand-ins have the same architecture), and one linear probe
(200 epochs, no early stopping) on a random (160, D) embedding. Prints best/median wall and best
process-CPU seconds plus the load average; numbers are measured by this run only and are noisy
on a shared machine.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd
import torch

from audiorepro.backbones import build_backbone
from audiorepro.benchmarking import timeit
from audiorepro.papers.fusion import LayerEmbedder, linear_eval
from audiorepro.training import pick_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto", help="torch device (auto: cuda, then mps, then cpu)")
    args = ap.parse_args()
    device = pick_device(args.device)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    waves = 0.1 * torch.randn(args.clips, int(args.seconds * 16000))
    models = {   # the book profile's backbones at their book sizes (AST: 2 s input, as pre-trained)
        "crepe_tiny (hop 0.1 s)": build_backbone("crepe_tiny", hop_length=1600),
        "panns_cnn14_16k cpu": build_backbone("panns_cnn14_16k", scale="cpu", spec_augment=False),
        "vggish_harritaylor_core cpu": build_backbone("vggish_harritaylor_core", scale="cpu"),
        "ast_base384_f10_t10_527 cpu": build_backbone("ast_base384_f10_t10_527", scale="cpu",
                                                      input_tdim=200),
    }
    rows = []
    for name, model in models.items():
        emb = LayerEmbedder(model, device=device)
        best, med, cpu = timeit(lambda: emb.batch_embeddings(waves), args.repeats)
        rows.append({"what": f"embed all layers, {name}", "best_s": best, "median_s": med,
                     "cpu_s": cpu, "clips_per_s": args.clips / best})
    rng = np.random.default_rng(0)
    for d in (256, 4096):
        x = rng.normal(size=(304, d)).astype(np.float32)
        y = rng.integers(0, 10, 304)
        best, med, cpu = timeit(lambda: linear_eval(x[:160], y[:160], x[160:208], y[160:208],
                                                    x[208:], y[208:], 10, lrs=(1e-3,), seeds=(0,),
                                                    epochs=200, patience=1000, device=device),
                             args.repeats)
        rows.append({"what": f"linear probe, D={d}, 200 epochs", "best_s": best, "median_s": med,
                     "cpu_s": cpu, "clips_per_s": float("nan")})
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    print(f"device {device}, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
