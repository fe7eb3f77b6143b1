"""Front-end speed (seconds of audio per second of wall time) and feature-cache hit vs compute.

Run: ``.venv/bin/python benchmarks/bench_frontends.py [--batch 8] [--seconds 10] [--repeats 3]``.
Uses 2 CPU threads (``torch.set_num_threads(2)``) on random waves; prints a table. Numbers are
measured by this run only. On a shared machine they are noisy: the table gives the best of the
repeats (the code's speed with the least interference) and the median, and the load average.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from audiorepro.augment import SpecAugment, mixup
from audiorepro.data.audio import save_audio
from audiorepro.data.cliptable import ClipTable
from audiorepro.data.dataset import ClipDataset
from audiorepro.benchmarking import timeit
from audiorepro.frontends import (PRESETS, CachedFeatureDataset, FeatureCache, make_frontend,
                                  vggish_examples)

TARGET_X_REALTIME = 1000.0


@torch.no_grad()
def bench_presets(batch: int, seconds: float, repeats: int, device: str) -> pd.DataFrame:
    rows = []
    variants = [(name, {}) for name in PRESETS]
    variants.insert(1, ("kaldi_fbank_128", {"vectorized": False}))
    for name, kw in variants:
        fe = make_frontend(name, device=device, **kw)
        x = 0.1 * torch.randn(batch, int(seconds * fe.sample_rate), device=device)
        label = name + ("" if not kw else " (loop over kaldi.fbank)")
        rows.append(_row(label, fe.sample_rate, tuple(fe(x[:1]).shape[1:]),
                         timeit(lambda: fe(x), repeats), batch * seconds))
    x = 0.1 * torch.randn(batch, int(seconds * 16000), device=device)
    rows.append(_row("vggish_examples", 16000, tuple(vggish_examples(x[:1]).shape[1:]),
                     timeit(lambda: vggish_examples(x), repeats), batch * seconds))
    return pd.DataFrame(rows)


def _row(label: str, sr: int, shape: tuple, times: tuple[float, float, float], audio_s: float) -> dict:
    best, median, cpu = times
    return {"front end": label, "sr": sr, "out shape": shape, "best wall s": round(best, 4),
            "x RT wall best": round(audio_s / best), "x RT wall median": round(audio_s / median),
            "x RT per CPU-s": round(audio_s / cpu),
            f"wall >= {TARGET_X_REALTIME:.0f}x": audio_s / best >= TARGET_X_REALTIME}


def bench_augment(batch: int, repeats: int) -> pd.DataFrame:
    feats = torch.randn(batch, 128, 1024)
    aug = SpecAugment(48, 192).train()
    y = torch.rand(batch, 527)
    g = torch.Generator().manual_seed(0)
    rows = [{"op": "SpecAugment 48/192 on (B,128,1024)",
             "ms per batch (best)": 1000 * timeit(lambda: aug(feats), repeats)[0]},
            {"op": "mixup on (B,128,1024)",
             "ms per batch (best)": 1000 * timeit(lambda: mixup(feats, y, 10.0, g), repeats)[0]}]
    return pd.DataFrame(rows).round(3)


def bench_cache(n_clips: int, seconds: float) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        for i in range(n_clips):
            save_audio(root / "audio" / f"c{i}.flac", 0.1 * torch.randn(int(seconds * 16000)), 16000)
            rows.append({"clip_id": f"c{i}", "path": f"audio/c{i}.flac", "split": "train", "labels": "x"})
        table = ClipTable(pd.DataFrame(rows), root, name="bench")
        ds = ClipDataset(table, 16000, clip_seconds=seconds)
        out = []
        for name in ("kaldi_fbank_128", "logmel_64"):
            cds = CachedFeatureDataset(ds, make_frontend(name), FeatureCache(root / "cache"))
            t0 = time.perf_counter()
            for i in range(len(cds)):
                cds[i]
            miss = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(len(cds)):
                cds[i]
            hit = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(len(ds)):
                ds[i]
            decode = time.perf_counter() - t0
            out.append({"front end": name, "clips": n_clips, "clip s": seconds,
                        "ms/clip decode only": round(1000 * decode / n_clips, 2),
                        "ms/clip miss (decode+compute+write)": round(1000 * miss / n_clips, 2),
                        "ms/clip hit": round(1000 * hit / n_clips, 2),
                        "miss / hit": round(miss / hit, 1)})
        return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-clips", type=int, default=24)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pd.set_option("display.width", 200)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"batch {args.batch} x {args.seconds} s, load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print("\n== front ends (seconds of audio per second of wall time) ==")
    print(bench_presets(args.batch, args.seconds, args.repeats, args.device).to_string(index=False))
    print("\n== augmentation ==")
    print(bench_augment(args.batch, args.repeats).to_string(index=False))
    print("\n== feature cache: per-clip cost on a miss vs a hit ==")
    print(bench_cache(args.cache_clips, args.seconds).to_string(index=False))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
