"""Overhead of audiorepro.training.fit against a bare PyTorch loop, checkpoint cost, and the
optimiser step with and without the multi-tensor (foreach) update (build_optimizer keeps torch's
CPU default, the for-loop: foreach measured slower on this CPU).

Prints measured wall times only (CPU, small MLP; the optimiser step on the CPU-sized PaSST, whose
many small tensors are where the per-tensor Python loop costs most).
Run: ``.venv/bin/python benchmarks/bench_training.py [--optimizer-only]``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from audiorepro.training import fit
from audiorepro.training.checkpoint import atomic_save


def make(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(128, 512), nn.ReLU(), nn.Linear(512, 527))


def data(n: int = 6400) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 128, generator=g), (torch.rand(n, 527, generator=g) < 0.02).float())


def bare_loop(ds: TensorDataset, epochs: int) -> float:
    model = make()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = DataLoader(ds, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def fit_loop(ds: TensorDataset, epochs: int, run_dir: Path | None) -> float:
    t0 = time.perf_counter()
    fit(make(), DataLoader(ds, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        None, nn.BCEWithLogitsLoss(), {"epochs": epochs, "lr": 1e-3, "schedule": "step",
                                        "warmup_iters": 50, "progress": False}, run_dir=run_dir)
    return time.perf_counter() - t0


def optimizer_step(reps: int = 20) -> None:
    """Median seconds of one AdamW step, foreach on vs off, interleaved (same load on both)."""
    from statistics import median

    from audiorepro.backbones import build_backbone

    model = build_backbone("passt_s_swa_p16_s10_128_998_527", scale="cpu")
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    opts = {flag: torch.optim.AdamW(params, lr=1e-4, foreach=flag) for flag in (False, True)}
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(reps):
        for flag, opt in opts.items():
            t0 = time.perf_counter()
            opt.step()
            times[flag].append(time.perf_counter() - t0)
    n = sum(p.numel() for p in params)
    t_loop, t_each = median(times[False][2:]), median(times[True][2:])
    print(f"AdamW step, CPU-sized PaSST ({len(params)} tensors, {n / 1e6:.2f}M params), "
          f"{torch.get_num_threads()} threads, median of {reps - 2}")
    print(f"  for-loop (torch's CPU default, build_optimizer): {1e3 * t_loop:7.2f} ms")
    print(f"  foreach (multi-tensor)                         : {1e3 * t_each:7.2f} ms "
          f"(for-loop / foreach = {t_loop / t_each:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizer-only", action="store_true", help="only the optimiser-step benchmark")
    args = parser.parse_args()
    optimizer_step()
    if args.optimizer_only:
        return
    torch.set_num_threads(1)
    ds, epochs = data(), 3
    iters = epochs * len(ds) // 64
    bare_loop(ds, 1)  # warm-up (lazy imports of the first optimiser step)
    fit_loop(ds, 1, None)
    # best of 3: the CPU is shared, so the minimum is the least disturbed measurement
    # (interleaved, so that load from other processes hits all variants alike)
    times: dict[str, list[float]] = {"bare": [], "fit": [], "ckpt": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(3):
            times["bare"].append(bare_loop(ds, epochs))
            times["fit"].append(fit_loop(ds, epochs, None))
            times["ckpt"].append(fit_loop(ds, epochs, Path(tmp) / f"run{i}"))
        t_bare, t_fit, t_ckpt = (min(times[k]) for k in ("bare", "fit", "ckpt"))
        model = make()
        n_params = sum(p.numel() for p in model.parameters())
        t0 = time.perf_counter()
        for _ in range(5):
            atomic_save({"model": model.state_dict()}, Path(tmp) / "w.pt")
        t_save = (time.perf_counter() - t0) / 5
    print(f"{iters} iterations, batch 64, MLP 128-512-527 ({n_params / 1e6:.2f}M params), 1 CPU thread, best of 3")
    print(f"bare PyTorch loop          : {t_bare:6.2f} s ({1e3 * t_bare / iters:.2f} ms/it)")
    print(f"fit (no run_dir)           : {t_fit:6.2f} s ({1e3 * t_fit / iters:.2f} ms/it, "
          f"{100 * (t_fit / t_bare - 1):+.1f} %)")
    print(f"fit (checkpoint per epoch) : {t_ckpt:6.2f} s ({1e3 * t_ckpt / iters:.2f} ms/it, "
          f"{100 * (t_ckpt / t_bare - 1):+.1f} %)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (timings are noisy on a shared CPU)")
    print(f"atomic_save of the weights : {1e3 * t_save:6.1f} ms")


if __name__ == "__main__":
    main()
