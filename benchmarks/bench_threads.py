"""Training-step time of the book's small models at 1 and 2 torch threads, side by side.

The ATGNN and bag-of-codewords notebooks set ``num_threads``; this benchmark says which count
is faster on the machine at hand. Each model trains a few Adam steps on random inputs of the book
profile's shapes (ATGNN pyr-tiny-dilated, pyr-med-tiny-dilated and iso-tiny-dilated at 64 x 128,
batch 16; the five
Table I families at width 0.125 on 96 x 100 log-mel chunks, batch 64), first with one thread,
then with two, in the same process; the last column is the ratio of the two median step times.
Run it on an otherwise idle machine: the book executes one notebook at a time, so the count that
wins here is the count the book should use.

Usage::

    .venv/bin/python benchmarks/bench_threads.py [--steps 12] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from audiorepro.papers.atgnn import build_atgnn
from audiorepro.papers.bow import build_family


def step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Median wall time of one training step (forward, BCE, backward, Adam) after 3 warm-ups."""
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    model.train()
    times = []
    for i in range(steps + 3):
        t = time.perf_counter()
        out = model(x)
        out = out["logits"] if isinstance(out, dict) else out
        loss = F.binary_cross_entropy_with_logits(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def cases() -> list[tuple[str, Callable[[], nn.Module], tuple[int, ...]]]:
    """(label, builder, input shape) of the book profile's single-notebook training runs."""
    out: list[tuple[str, Callable[[], nn.Module], tuple[int, ...]]] = [
        (f"ATGNN {preset}, 64 x 128, batch 16",
         (lambda preset=preset: build_atgnn(preset, num_classes=44, input_size=(64, 128))), (16, 128, 64))
        for preset in ("pyr-tiny-dilated", "pyr-med-tiny-dilated", "iso-tiny-dilated")]
    for fam in ("CRNN", "VGG-like", "ResNet-18", "DenseNet-121", "Transformer"):
        out.append((f"BoW Table I {fam}, width 0.125, batch 64",
                    (lambda fam=fam: build_family(fam, 44, 0.125)), (64, 96, 100)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, nargs=2, default=(1, 2))
    args = ap.parse_args(argv)
    a, b = args.threads
    print(f"{'model':48s} {a} thread(s) ms  {b} thread(s) ms  speed-up")
    for label, build, shape in cases():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(*shape, generator=g)
        y = (torch.rand(shape[0], 44, generator=g) > 0.9).float()
        ms = {}
        for th in (a, b):
            torch.set_num_threads(th)
            torch.manual_seed(0)
            ms[th] = 1000 * step_seconds(build(), x, y, args.steps)
        print(f"{label:48s} {ms[a]:14.1f}  {ms[b]:14.1f}  {ms[a] / ms[b]:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
