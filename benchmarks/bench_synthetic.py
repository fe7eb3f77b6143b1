"""Benchmark: generate a synthetic world (default 1000 ten-second clips) and report its speed.

Prints clips/s, wall time, the per-stage cost of one clip (spec, audio render, visual, captions,
FLAC write) and peak resident memory of the main process and of the worker processes.
Run: ``.venv/bin/python benchmarks/bench_synthetic.py [--n-clips 1000] [--workers 2] [--out DIR]``.
The world is written to a temporary folder (deleted afterwards) unless ``--out`` is given.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audiorepro.data import synthetic as S


def stage_costs(n: int = 40, seed: int = 0) -> dict[str, float]:
    """Mean milliseconds per clip of each generation stage, measured in this process."""
    out = {"spec": 0.0, "audio": 0.0, "visual": 0.0, "captions": 0.0, "flac": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            t0 = time.perf_counter()
            spec = S.clip_spec(seed, i)
            t1 = time.perf_counter()
            audio = S.render_clip(spec)
            t2 = time.perf_counter()
            S.render_visual(spec)
            t3 = time.perf_counter()
            S.clip_captions(spec)
            t4 = time.perf_counter()
            sf.write(os.path.join(tmp, "x.flac"), audio, 16000, subtype="PCM_16", format="FLAC")
            t5 = time.perf_counter()
            for k, dt in zip(out, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                out[k] += dt * 1000 / n
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-clips", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage measurement")
    args = ap.parse_args(argv)

    print(f"cpu_count={os.cpu_count()} load_average={os.getloadavg()}")
    if not args.no_stages:
        costs = stage_costs()
        print("per-clip stage cost (ms, 1 process): " + ", ".join(f"{k}={v:.1f}" for k, v in costs.items())
              + f", total={sum(costs.values()):.1f}")
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.mkdtemp(prefix="bench_synthetic_")
        out = Path(tmp) / "world"
    try:
        t0 = time.perf_counter()
        table = S.make_world(out, n_clips=args.n_clips, seed=args.seed, workers=args.workers, progress=True)
        wall = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2 ** 20
        self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"clips={len(table)} workers={args.workers} wall={wall:.1f} s "
              f"clips_per_s={len(table) / wall:.1f} "
              f"time_per_1000_clips={wall / len(table) * 1000:.1f} s")
        print(f"peak_rss_main={self_mb:.0f} MB peak_rss_largest_worker={child_mb:.0f} MB world_size={size_mb:.0f} MB")
        t0 = time.perf_counter()
        S.make_world(out, n_clips=args.n_clips, seed=args.seed, workers=args.workers, progress=False)
        print(f"cached reload: {time.perf_counter() - t0:.2f} s")
        labels = np.array([len(table.labels_of(i)) for i in range(len(table))])
        print(f"labels per clip: mean={labels.mean():.2f} max={labels.max()}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
