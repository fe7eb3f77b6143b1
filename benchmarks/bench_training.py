"""Overhead of audiorepro.training.fit against a bare PyTorch loop, and checkpoint cost.

Prints measured wall times only (CPU, small MLP). Run: ``.venv/bin/python benchmarks/bench_training.py``.
"""
from __future__ import annotations

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


def main() -> None:
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
