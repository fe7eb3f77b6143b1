"""GPU check: paper-size training steps per chapter on CUDA, with the paper's optimiser and
learning-rate schedule, and their throughput.

Run on a machine with a GPU (``python benchmarks/gpu_check.py [--amp] [--steps 3]``): for each
chapter it builds the paper-size model and the optimiser and schedule its paper profile uses
(``audiorepro.training.build_optimizer_and_scheduler`` on the chapter's TrainConfig, the
scheduler stepped after every optimiser step as in the training loop), runs ``--steps``
optimiser steps at the paper's batch size and input shape (after one warm-up step) and prints
samples per second, seconds per step, peak GPU memory and the learning rate of the last step
next to what the schedule gives for that iteration (a check that the schedule runs unchanged on
the device). ``--schedule-at N`` starts the scheduler at iteration N (e.g. past the warm-up:
``--schedule-at 1000``). On a machine without CUDA it prints one line and exits 0 (nothing is
measured, nothing is faked).

What each line measures (paper sizes; random inputs of the paper's shapes - this checks that the
code runs on the device and how fast, not what it learns):
  atgnn      ATGNN pyr-s with MLG, AudioSet input 1 x 128 x 1056, 527 classes, batch 24, BCE;
             Adam 5e-4, 1,000 warm-up iterations, halved every 5 epochs after epoch 35
             (section III-B, AudioSet).
  fusion     AST base384 (stride 10) forward with layer taps, 1024 x 128 input, batch 16 (the
             fusion paper only extracts embeddings: no backward, no optimiser).
  retrieval  PaSST-S (stride 10) fine-tuned with a 1024-d projection, 10 s input, batch 64, and the
             NT-Xent loss against random text embeddings (the text encoder is not in this line);
             AdamW at the chapter's default recipe.
  thgcl      THGCL at the paper's graph size (101 audio, 40 video nodes, hidden 512, 4 layers, 33
             classes), batch 64, focal + 0.1 x NT-Xent; Adam 0.005 with 1,000 warm-up iterations
             (the THGCL repository's config).
  bow        the bag-of-codewords head (2 x 512, dropout 0.4) on 4 x 256 count vectors of 200
             classes, batch 256, Huber loss; Adam 1e-3.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


#: (model, loss of one step, batch size, the TrainConfig keys of its optimiser and schedule or
#: None for a forward-only line, iterations per epoch of the paper's data at that batch size)
Step = tuple[nn.Module, Callable[[], torch.Tensor], int, dict | None, int]


def _atgnn(device: torch.device, batch: int = 24) -> Step:
    from audiorepro.papers import atgnn

    model = atgnn.build_atgnn("pyr-s", num_classes=527, input_size=(128, 1056)).to(device)
    x = torch.randn(batch, 1, 128, 1056, device=device)
    y = (torch.rand(batch, 527, device=device) < 0.02).float()
    recipe = atgnn.RecipeConfig(batch_size=batch, halve_after_epoch=35)   # AudioSet (section III-B)
    return (model, lambda: F.binary_cross_entropy_with_logits(model(x), y), batch,
            recipe.train_config(), 20_000 // batch)                      # balanced AudioSet ~20 k clips


def _fusion(device: torch.device, batch: int = 16) -> Step:
    from audiorepro.backbones import build_backbone

    model = build_backbone("ast_base384_f10_t10_527").to(device).eval()
    x = torch.randn(batch, 1024, 128, device=device)

    def step() -> torch.Tensor:
        with torch.no_grad():
            feats = model.forward_features(x, taps=None)
        return next(iter(feats.values())).float().mean() if isinstance(feats, dict) else feats.float().mean()
    return model, step, batch, None, 1


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
    return model, step, batch, {"optimizer": "adamw", "lr": 1e-5}, 3_839 // batch   # Clotho dev


def _thgcl(device: torch.device, batch: int = 64) -> Step:
    from audiorepro.papers import thgcl

    model = thgcl.build_variant("THGCL", 33, 101, 40).to(device)
    batch_fn = thgcl.make_batch_fn("focal+cl")
    data = {"audio": torch.randn(batch, 101, 128, device=device),
            "video": torch.randn(batch, 40, 1024, device=device),
            "target": torch.eye(33, device=device)[torch.randint(0, 33, (batch,), device=device)]}
    config = thgcl.train_config(1000, batch, 0.005, 5, max_iters=5000, warmup_iters=1000,
                                eval_every_iters=250)
    return model, lambda: batch_fn(model, data)[0], batch, config, int(82_410 * 0.7) // batch


def _bow(device: torch.device, batch: int = 256) -> Step:
    from audiorepro.papers import bow

    head = bow.HeadConfig()
    model = bow.BowTagger(256, 200, head.hidden, head.dropout, head.layers).to(device)
    counts = torch.poisson(torch.full((batch, 4 * 256), 0.15, device=device))
    y = (torch.rand(batch, 200, device=device) < 0.02).float()
    config = {"optimizer": "adam", "lr": head.lr, "epochs": head.epochs, "batch_size": batch}
    return model, lambda: bow.huber_loss(model(counts), y), batch, config, 40_966 // batch   # FSD50K dev


CHAPTERS: dict[str, Callable[..., Step]] = {
    "atgnn": _atgnn, "fusion": _fusion, "retrieval": _retrieval, "thgcl": _thgcl, "bow": _bow,
}


def measure(name: str, device: torch.device, steps: int, amp: bool, schedule_at: int = 0) -> str:
    from audiorepro.training.schedules import build_optimizer_and_scheduler, lr_at

    model, loss_fn, batch, config, iters_per_epoch = CHAPTERS[name](device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = sched = None
    if config is not None:
        opt, sched = build_optimizer_and_scheduler(params, config, iters_per_epoch)
        for _ in range(schedule_at):                           # jump ahead on the schedule only
            sched.step()
    torch.cuda.reset_peak_memory_stats(device)
    times, lr = [], float("nan")
    for i in range(steps + 1):                                  # step 0: warm-up, not timed
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = loss_fn()
        if opt is not None and loss.requires_grad:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
        torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    line = (f"{name:10s} batch {batch:4d}  median step {step_s:7.3f} s  "
            f"{batch / step_s:8.1f} samples/s  peak memory {peak:5.2f} GiB  loss {float(loss):.3g}")
    if config is not None:
        expected = lr_at(config, schedule_at + steps, iters_per_epoch)
        line += f"  lr {lr:.3g} (schedule at iteration {schedule_at + steps}: {expected:.3g})"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="float16 autocast")
    parser.add_argument("--schedule-at", type=int, default=0,
                        help="start each chapter's LR schedule at this iteration (e.g. 1000: past the warm-up)")
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
            print(measure(name, device, args.steps, args.amp, args.schedule_at), flush=True)
        except Exception as exc:                                 # report every chapter, then fail
            failed.append(name)
            print(f"{name:10s} FAILED: {type(exc).__name__}: {exc}", flush=True)
        finally:
            torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
