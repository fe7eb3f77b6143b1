"""benchmarks/gpu_check.py: every chapter line it documents exists, and its lines step the
chapter's own optimiser and LR schedule (run here on the CPU with the two cheap lines)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

_SPEC = importlib.util.spec_from_file_location(
    "gpu_check", Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gpu_check)


def test_every_documented_line_is_implemented():
    documented = set(re.findall(r"^  (\w+)\s{2,}", gpu_check.__doc__, flags=re.M))
    assert documented == set(gpu_check.CHAPTERS) == {"atgnn", "fusion", "retrieval", "thgcl", "bow"}


@pytest.mark.parametrize("name", ["thgcl", "bow"])
def test_a_line_steps_the_chapters_schedule(name):
    from audiorepro.training.schedules import build_optimizer_and_scheduler, lr_at
    model, loss_fn, batch, config, iters_per_epoch = gpu_check.CHAPTERS[name](torch.device("cpu"))
    opt, sched = build_optimizer_and_scheduler([p for p in model.parameters() if p.requires_grad],
                                               config, iters_per_epoch)
    for it in range(2):
        assert opt.param_groups[0]["lr"] == pytest.approx(lr_at(config, it, iters_per_epoch))
        loss = loss_fn()
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    if name == "thgcl":   # Adam 0.005 with 1,000 warm-up iterations: iteration 1 runs at 2 / 1000 of it
        assert lr_at(config, 1, iters_per_epoch) == pytest.approx(0.005 * 2 / 1000)
