"""Retrieval speed on this machine (prints measured numbers only).

1. Ranking throughput: text queries (already embedded, 1024-d, unit norm) against N stored audio
   embeddings (default 100,000), top-10 by cosine similarity: queries per second for query
   batches of 1 and 64.
2. Embedding throughput of full-size PaSST-S (stride 10, 86M parameters, random weights: speed does
   not depend on the values) on 10 s clips in eval mode: clips per second, batch 4.
3. The same for the CPU-sized PaSST-S stand-in the book's notebooks embed with
   (``build_backbone("passt_s_swa_p16_s10_128_998_527", scale="cpu")``), batch 8.

Everything runs on ``--device`` (default ``auto``: a GPU when present, see
:func:`audiorepro.training.pick_device`); the device is printed.

Run: ``.venv/bin/python benchmarks/bench_retrieval.py [--n-audio 100000] [--threads 2] [--device auto]``.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from audiorepro.backbones import build_backbone
from audiorepro.papers import retrieval
from audiorepro.training import pick_device


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work so that wall-clock timings are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ranking_qps(n_audio: int, device: torch.device, dim: int = 1024, batch: int = 1, k: int = 10,
                repeats: int = 20) -> float:
    g = torch.Generator().manual_seed(0)
    audio = F.normalize(torch.randn(n_audio, dim, generator=g), dim=1).to(device)
    q = F.normalize(torch.randn(batch, dim, generator=g), dim=1).to(device)
    (q @ audio.t()).topk(k, dim=1)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        (q @ audio.t()).topk(k, dim=1)
    _sync(device)
    return batch * repeats / (time.perf_counter() - t0)


def clips_per_second(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Clips per second of ``model`` in eval mode on the batch ``x`` (after one warm-up call)."""
    with torch.no_grad():
        model(x)  # warm-up
        _sync(x.device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
        _sync(x.device)
    return x.shape[0] * repeats / (time.perf_counter() - t0)


def passt_clips_per_second(device: torch.device, batch: int = 4, repeats: int = 2) -> tuple[float, int]:
    enc = retrieval.build_audio_encoder("PaSST-S", scale="base").eval().to(device)
    x = torch.randn(batch, 1, 128, 1000, device=device)  # 10 s PaSST log-mel (100 frames/s)
    return clips_per_second(enc, x, repeats), sum(p.numel() for p in enc.parameters())


def stand_in_clips_per_second(device: torch.device, batch: int = 8, repeats: int = 3) -> tuple[float, int]:
    m = build_backbone("passt_s_swa_p16_s10_128_998_527", scale="cpu").eval().to(device)
    x = torch.randn(batch, 1, 128, 998, device=device)
    return clips_per_second(m, x, repeats), sum(p.numel() for p in m.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-audio", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-passt", action="store_true")
    ap.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, mps")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    for b in (1, 64):
        print(f"ranking, {a.n_audio} stored 1024-d embeddings, query batch {b}: "
              f"{ranking_qps(a.n_audio, device, batch=b):.1f} queries/s")
    if not a.skip_passt:
        cps, n = passt_clips_per_second(device)
        print(f"PaSST-S ({n / 1e6:.1f}M parameters) embedding 10 s clips, batch 4: {cps:.2f} clips/s")
    cps, n = stand_in_clips_per_second(device)
    print(f"PaSST-S CPU stand-in ({n / 1e6:.2f}M parameters) embedding 10 s clips, batch 8: {cps:.2f} clips/s")


if __name__ == "__main__":
    main()
