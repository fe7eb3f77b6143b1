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

``--pretrain-budget PROFILE`` measures instead what the stand-in pre-training of that profile
(:mod:`audiorepro.backbones.pretrain`) costs: for each of its backbones, the wall and process-CPU
time of one training step at the profile's batch size and crop (random features of the right
shape, SpecAugment, forward, BCE, backward, AdamW step) and of scoring one batch of whole 10 s
clips as the validation does, extrapolated to the profile's steps per epoch, epochs and
validation split (clip counts of the profile's world: 70 / 10 / 20 % train / valid / test). The
features are not computed here (they are cached once per clip; see bench_frontends.py).

Usage::

    .venv/bin/python benchmarks/bench_backbones.py [--threads 2] [--batch 1] [--reps 3]
        [--scales 0.25 1.0] [--names panns_cnn14_16k vggish_tcvrick ...] [--json out.json]
    .venv/bin/python benchmarks/bench_backbones.py --pretrain-budget book [--threads 2]
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


def pretrain_budget(profile: str, reps: int) -> list[dict[str, Any]]:
    """Measured cost of the stand-in pre-training of ``profile`` (see the module docstring)."""
    import torch.nn.functional as F

    from audiorepro.augment import SpecAugment
    from audiorepro.backbones import pretrain as P

    prof = P.PROFILES[profile]
    n_train, n_valid = int(round(0.7 * prof["n_clips"])), int(round(0.1 * prof["n_clips"]))
    rows = []
    for name in P.CPU_BACKBONES:
        cfg = P.pretrain_config(name, "cpu", profile)
        fam, crop, bs = cfg["family"], int(cfg["crop_frames"]), int(cfg["batch_size"])
        mels = 128 if fam in ("ast", "passt") else 64
        model = P._build(cfg, 44, seed=0).train()
        opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]))
        spec = SpecAugment(int(round(cfg["freq_mask_frac"] * mels)),
                           int(round(cfg["time_mask_frac"] * crop))).train()
        x, y = torch.randn(bs, mels, crop), (torch.rand(bs, 44) < 0.05).float()
        clips = torch.randn(bs, mels, 1000)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            F.binary_cross_entropy_with_logits(P._logits(model, fam, spec(x)), y).backward()
            opt.step()

        def score() -> None:
            with torch.no_grad():
                P.clip_logits(model, fam, clips, crop, 998, cfg["clip_pooling"])

        c0 = time.process_time()
        t_step = time_it(step, reps)
        model.eval()
        t_eval = time_it(score, reps)
        cpu = (time.process_time() - c0) / (2 * (reps + 1))
        steps = -(-n_train // bs) * int(cfg["epochs"])
        evals = -(-n_valid // bs) * int(cfg["epochs"])
        rows.append(dict(name=name, epochs=int(cfg["epochs"]), crop_frames=crop, batch=bs,
                         step_s=t_step, eval_batch_s=t_eval, cpu_s_per_call=cpu,
                         train_s=steps * t_step, valid_s=evals * t_eval,
                         total_s=steps * t_step + evals * t_eval))
    return rows


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
    p.add_argument("--pretrain-budget", default=None, metavar="PROFILE",
                   help="measure the stand-in pre-training of this profile instead")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.pretrain_budget:
        peak = matmul_gflops()
        print(f"torch {torch.__version__}, {args.threads} threads; dense torch.mm: {peak:.1f} GFLOP/s "
              f"(a loaded machine shows a lower number)")
        rows = pretrain_budget(args.pretrain_budget, args.reps)
        for r in rows:
            print(f"{r['name']:34s} {r['epochs']:3d} epochs, crop {r['crop_frames']:4d} frames, batch "
                  f"{r['batch']}: step {r['step_s']:.3f} s, valid batch {r['eval_batch_s']:.3f} s -> "
                  f"train {r['train_s']:6.0f} s + valid {r['valid_s']:4.0f} s = {r['total_s']:6.0f} s",
                  flush=True)
        print(f"all {len(rows)}: {sum(r['total_s'] for r in rows):.0f} s "
              f"({sum(r['total_s'] for r in rows) / 60:.1f} min) of training and validation, plus "
              f"world generation, feature caching and the one test scoring per backbone; "
              f"mm now {matmul_gflops():.1f} GFLOP/s")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"matmul_gflops_per_s": peak, "threads": args.threads, "rows": rows}, f, indent=1)
        return 0
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
