"""Tiny multi-label training used by tests/test_ddp.py.

Run as ``torchrun --standalone --nproc_per_node=2 train_tiny.py OUTDIR`` (DDP, per-rank batch 8)
or call :func:`train` in one process with ``batch_size=16`` (the same global batches).
Writes ``OUTDIR/<tag>_rank<r>.pt`` with the final weights, history rows and best metrics.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from audiorepro.training import dist_info, fit


def data() -> tuple[TensorDataset, TensorDataset]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(94, 5, generator=g)
    y = (x @ torch.randn(5, 3, generator=g) > 0).float()
    return TensorDataset(x[:64], y[:64]), TensorDataset(x[64:], y[64:])  # 30 valid: not divisible by 4


def train(outdir: str | Path, batch_size: int, tag: str) -> None:
    torch.set_num_threads(1)
    train_set, valid_set = data()
    torch.manual_seed(1)
    model = nn.Linear(5, 3)
    res = fit(model, DataLoader(train_set, batch_size=batch_size, shuffle=False),
              DataLoader(valid_set, batch_size=4), nn.BCEWithLogitsLoss(),
              {"epochs": 4, "optimizer": "sgd", "lr": 0.5, "momentum": 0.9, "monitor": "mAP",
               "mode": "max", "restore_best": False, "progress": False},
              task="tagging", run_dir=Path(outdir) / f"run_{tag}", device="cpu")
    rank = dist_info().rank
    torch.save({"state": res.model.state_dict(), "rows": res.history.to_dict("records"),
                "best": res.best_metrics, "iterations": res.iterations},
               Path(outdir) / f"{tag}_rank{rank}.pt")


if __name__ == "__main__":
    train(sys.argv[1], batch_size=8, tag="ddp")
    torch.distributed.destroy_process_group()
