"""Bag-of-codewords stage costs (not a test): where the time of the chapter's sweeps goes.

Usage::

    .venv/bin/python benchmarks/bench_bow.py [--threads 1 2] [--vectors 10000] [--hidden 128]
        [--codebooks 16 64 256 1024] [--heads 256 512 4096] [--chunks 1400] [--device auto] [--json PATH]

Measures, on random data of the book profile's sizes, process CPU seconds and wall seconds of
1. one autoencoder epoch per patch family (``--vectors`` vectors, width ``--hidden``, F = 10);
2. k-means (scikit-learn on the CPU, the pipeline's :func:`audiorepro.papers.bow.model.fit_kmeans`
   settings) with D codewords on ``--vectors`` latents of each family's bottleneck size;
3. one head epoch (``--chunks`` count vectors of size 4 D) for each D x head width,
for each torch thread count; the autoencoders and heads run on ``--device`` (``auto``: a GPU if
there is one, see :func:`audiorepro.training.pick_device`). Results are printed and, with
``--json``, written as a list of rows.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audiorepro.fileio import atomic_write_text
from audiorepro.papers import bow
from audiorepro.training import pick_device


def _timed(fn, device: torch.device) -> tuple[float, float]:
    c, w = time.process_time(), time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.process_time() - c, time.perf_counter() - w


def _epoch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss, batch: int = 256) -> None:
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    for i in range(0, len(x), batch):
        opt.zero_grad()
        loss(model(x[i:i + batch]), y[i:i + batch]).backward()
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--vectors", type=int, default=10000)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--codebooks", type=int, nargs="+", default=[16, 64, 256, 1024])
    ap.add_argument("--heads", type=int, nargs="+", default=[256, 512, 4096])
    ap.add_argument("--chunks", type=int, default=1400)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    dev = pick_device(a.device)
    rng = np.random.default_rng(0)
    rows = []
    for nt in a.threads:
        torch.set_num_threads(nt)
        for fam, (_, dim) in bow.family_shapes().items():
            ae = bow.PatchAutoencoder(dim, 10, a.hidden).to(dev)
            x = torch.randn(a.vectors, dim, device=dev)
            cpu, wall = _timed(lambda: _epoch(ae, x, x, F.mse_loss), dev)
            rows.append({"stage": "autoencoder epoch", "family": fam, "threads": nt, "cpu_s": cpu, "wall_s": wall})
            lat = rng.normal(size=(a.vectors, ae.bottleneck)).astype(np.float32)
            for d in a.codebooks:
                cpu, wall = _timed(lambda: bow.fit_kmeans(lat, d, max_iter=bow.BowConfig().kmeans_max_iter), dev)
                rows.append({"stage": f"k-means D={d}", "family": fam, "threads": nt, "cpu_s": cpu, "wall_s": wall})
        for d in a.codebooks:
            counts = torch.from_numpy(rng.poisson(143 / (4 * d), size=(a.chunks, 4 * d)).astype(np.float32)).to(dev)
            y = (torch.rand(a.chunks, 44, device=dev) < 0.1).float()
            for h in a.heads:
                head = bow.BowTagger(d, 44, hidden=h).to(dev)
                cpu, wall = _timed(lambda: _epoch(head, counts, y, bow.huber_loss), dev)
                rows.append({"stage": f"head epoch D={d} hidden={h}", "family": "all", "threads": nt,
                             "cpu_s": cpu, "wall_s": wall})
        for r in rows:
            if r["threads"] == nt:
                print(f"threads {nt}  {r['stage']:<32} {r['family']:<5} cpu {r['cpu_s']:7.2f} s  wall {r['wall_s']:7.2f} s")
    if a.json:
        atomic_write_text(a.json, json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
