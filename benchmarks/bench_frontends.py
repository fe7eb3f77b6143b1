"""Front-end speed (seconds of audio per second) and feature-cache hit vs compute, with targets.

Run: ``.venv/bin/python benchmarks/bench_frontends.py [--batch 8] [--seconds 10] [--repeats 6]``.

For every preset the default implementation (``fast``: hand-written parts where they win) and
the library-only one (``library``: ``kaldi.fbank`` in a loop, ``torchaudio.transforms.MelSpectrogram``,
``torch.stft``, the official code's operations; same numbers) run side by side on the same random
waves, in alternating blocks of 3 timed calls (fast x 3, library x 3, fast x 3, ...; each block
opened by an untimed call) so that a change of load hits both alike while neither pays for what
the other left running (see :func:`interleaved`):

* ``--threads`` (2) threads, wall time: the target (``TARGET_X_REALTIME`` x real time on 2 cores);
* 1 thread, process CPU time: robust to other processes on the machine (a loaded machine
  stretches wall time, far less CPU time); ``x RT per CPU-s`` >= target means one core alone
  reaches the target;
* ``after a 2-thr op``: best wall time of a call made right after a matrix product on the same
  threads, the situation of a front end inside a training loop (the product's OpenMP team keeps
  spinning for a while and competes with the front end's threads). Informative; not the target.

The feature cache part compares, per 10-s clip, decoding + computing + writing (a miss) with a
hit of :class:`~audiorepro.frontends.CachedFeatureDataset` for each ``FeatureCache.READ_MODES``
(``read``: the default hand-written reader; ``np.load``: the library; ``mmap``), alone and
followed by the batch collation that copies the features (where a mapped hit pays its page
faults).

Beside each preset, the FFTs alone of the same frames (``FFT alone``): the best of three library
routines (``torch.fft.rfft`` in the front ends' chunks, split over the threads as they are;
``torch.fft.rfft`` of the whole (frames, n_fft) batch; ``scipy.fft.rfft`` with ``workers``),
on ``--threads`` threads (wall) and on 1 thread (CPU time). No front end can be faster than its
FFTs, so when they alone stay below the target the table says so.

A target is ``met`` when the wall time reaches it, or ``met (1 thread, CPU time)`` when one
core's CPU time does; otherwise ``missed`` (``missed - FFT alone ...`` when the FFTs alone
already miss it) - unless the load average exceeded the number of cores during the run, then
``not assessable (load ...)``: the table never reports a miss that other processes may have
caused. Every number is measured by this run (best and median of ``--repeats``).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import scipy.fft
import torch
from torch.utils.data import default_collate

from audiorepro.augment import SpecAugment, mixup
from audiorepro.benchmarking import timeit
from audiorepro.data.audio import save_audio
from audiorepro.data.cliptable import ClipTable
from audiorepro.data.dataset import ClipDataset
from audiorepro import frontends
from audiorepro.frontends import (PRESETS, CachedFeatureDataset, FeatureCache, make_frontend,
                                  vggish_examples)

TARGET_X_REALTIME = 4500.0      # every front end, batched 10-s clips, 2 cores
TARGET_HIT_X_REALTIME = 50000.0  # a cache hit of a 10-s clip: <= 0.2 ms


def load_average() -> float:
    return os.getloadavg()[0]


class LoadWatch:
    """Highest 1-minute load average seen at the calls of :meth:`seen` (and at creation)."""

    def __init__(self) -> None:
        self.max = load_average()

    def seen(self) -> float:
        self.max = max(self.max, load_average())
        return self.max


def interleaved(fns: dict[str, Callable[[], object]], repeats: int,
                sync: Callable[[], None], block: int = 1) -> dict[str, tuple[float, float, float]]:
    """(best wall, median wall, best process CPU) seconds of each function over ``repeats``
    timed calls; one warm-up call each, then rounds in which every function runs ``block``
    times in a row.

    ``block`` > 1: one more, untimed call opens each block. What a function leaves behind is then
    billed to itself, not to the next one: an operation on 2 threads leaves libgomp's team
    spinning for milliseconds after it returns, which took half the speed of the next front end
    on the 2-core machine (see :func:`after_threaded_op` for that cost, measured on its own).
    """
    for fn in fns.values():
        fn()
    sync()
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(-(-repeats // block)):
        for k, fn in fns.items():
            if block > 1:
                fn()
                sync()
            for _ in range(block):
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                sync()
                walls[k].append(time.perf_counter() - t0)
                cpus[k].append(time.process_time() - c0)
    return {k: (min(walls[k]), statistics.median(walls[k]), min(cpus[k])) for k in fns}


def after_threaded_op(fn: Callable[[], object], repeats: int) -> float:
    """Best wall seconds of ``fn`` called right after a matrix product on the current threads
    (as in a training loop that calls a front end between other operations): includes the time
    lost to the product's OpenMP team still spinning on the cores."""
    a = torch.randn(256, 256)
    best = math.inf
    for _ in range(repeats):
        a @ a
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def verdict(x_wall: float, x_cpu: float | None, target: float, load: float, cores: int,
            fft_alone: tuple[float, float | None] | None = None) -> str:
    """``fft_alone``: (wall, 1-thread CPU) x real time of the FFTs alone (see :func:`fft_alone`)."""
    if x_wall >= target:
        return "met"
    if x_cpu is not None and x_cpu >= target:
        return "met (1 thread, CPU time)"
    if load > cores:
        return f"not assessable (load {load:.1f} > {cores} cores)"
    if fft_alone is not None and max(v for v in fft_alone if v is not None) < target:
        return (f"missed - FFT alone {max(v for v in fft_alone if v is not None):.0f}x < target: "
                "impossible on this CPU")
    return "missed"


def fft_alone(n_frames: int, n_fft: int, repeats: int, threads: int,
              device: str) -> dict[str, tuple[float, str]]:
    """Seconds of the FFTs alone of ``n_frames`` real ``n_fft``-point frames, best library
    routine: ``{"wall": (best wall on threads, routine), "cpu": (best 1-thread CPU, routine)}``."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    x = torch.randn(n_frames, n_fft, device=device)
    rows = max(1, frontends.CHUNK_FLOATS // n_fft) if device == "cpu" else n_frames
    outs = [torch.empty(rows, n_fft // 2 + 1, dtype=torch.complex64, device=device)
            for _ in range(max(1, threads))]

    def chunked() -> None:
        starts = list(range(0, n_frames, rows))
        parts = min(torch.get_num_threads(), len(starts)) if device == "cpu" else 1
        step = -(-len(starts) // parts)

        def run(todo: list[int], out: torch.Tensor) -> None:
            for c0 in todo:
                n = min(n_frames, c0 + rows) - c0
                torch.fft.rfft(x[c0:c0 + n], out=out[:n])
        if parts == 1:
            run(starts, outs[0])
        else:  # the front ends' split of the chunks over threads
            frontends._in_threads([lambda i=i: run(starts[i * step:(i + 1) * step], outs[i])
                                   for i in range(parts)])

    routines = {"torch.fft.rfft in chunks": chunked,
                "torch.fft.rfft whole batch": lambda: torch.fft.rfft(x)}
    if device == "cpu":
        xn = x.numpy()
        routines["scipy.fft.rfft"] = lambda: scipy.fft.rfft(xn, workers=torch.get_num_threads())
    best: dict[str, tuple[float, str]] = {}
    for label, n in (("wall", threads), ("cpu", 1)):
        if label == "cpu" and device != "cpu":
            continue
        torch.set_num_threads(n)
        t = interleaved(routines, repeats, sync)
        k = 0 if label == "wall" else 2
        name = min(t, key=lambda r: t[r][k])
        best[label] = (t[name][k], name)
    torch.set_num_threads(threads)
    return best


@torch.no_grad()
def bench_presets(batch: int, seconds: float, repeats: int, threads: int, device: str,
                  watch: LoadWatch) -> pd.DataFrame:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    cores = os.cpu_count() or 1
    cases: list[tuple[str, int, dict[str, Callable[[torch.Tensor], torch.Tensor]]]] = []
    for name in PRESETS:
        fes = {v: make_frontend(name, device=device, library=v == "library") for v in ("fast", "library")}
        cases.append((name, fes["fast"].sample_rate, dict(fes)))
    vgg = {v: make_frontend("vggish", device=device, library=v == "library") for v in ("fast", "library")}
    cases.append(("vggish_examples", 16000,
                  {v: (lambda x, fe=fe: vggish_examples(x, frontend=fe)) for v, fe in vgg.items()}))
    rows = []
    audio_s = batch * seconds
    ffts: dict[tuple[int, int], dict[str, tuple[float, str]]] = {}
    for name, sr, fns in cases:
        x = 0.1 * torch.randn(batch, int(seconds * sr), device=device)
        shape = tuple(fns["fast"](x[:1]).shape[1:])
        fe = make_frontend("vggish" if name == "vggish_examples" else name)
        frames = fe.raw_frames(x.shape[-1]) if hasattr(fe, "raw_frames") else fe.num_frames(x.shape[-1])
        key = (batch * frames, fe.fft_size)
        if key not in ffts:
            ffts[key] = fft_alone(*key, repeats, threads, device)
        fft = ffts[key]
        fft_x = (audio_s / fft["wall"][0], audio_s / fft["cpu"][0] if "cpu" in fft else None)
        torch.set_num_threads(threads)
        calls = {v: (lambda f=f: f(x)) for v, f in fns.items()}
        multi = interleaved(calls, repeats, sync, block=3)
        after_op = {v: after_threaded_op(c, repeats) for v, c in calls.items()} if device == "cpu" else {}
        single = None
        if device == "cpu":
            torch.set_num_threads(1)
            single = interleaved(calls, repeats, sync, block=3)
            torch.set_num_threads(threads)
        load = watch.seen()
        for v in fns:
            best, median, _ = multi[v]
            x_cpu = audio_s / single[v][2] if single else None
            speedup = single["library"][2] / single[v][2] if single else multi["library"][0] / best
            rows.append({"front end": name, "variant": v, "out shape": shape,
                         f"x RT {threads} thr wall best": round(audio_s / best),
                         f"x RT {threads} thr wall median": round(audio_s / median),
                         f"x RT after a {threads}-thr op": round(audio_s / after_op[v]) if after_op else None,
                         "x RT per CPU-s (1 thr)": round(x_cpu) if x_cpu else None,
                         "speed vs library": round(speedup, 2),
                         f"FFT alone x RT {threads} thr wall": round(fft_x[0]),
                         "FFT alone x RT per CPU-s": round(fft_x[1]) if fft_x[1] else None,
                         f"target {TARGET_X_REALTIME:.0f}x": verdict(audio_s / best, x_cpu,
                                                                    TARGET_X_REALTIME, load, cores,
                                                                    fft_x)})
    print("FFT alone, fastest routine: " + "; ".join(
        f"{n} x {n_fft}-point: " + ", ".join(f"{'wall' if k == 'wall' else '1-thread CPU'} {v[1]}"
                                             for k, v in fft.items())
        for (n, n_fft), fft in sorted(ffts.items())))
    return pd.DataFrame(rows)


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


def bench_cache(n_clips: int, seconds: float, repeats: int, watch: LoadWatch) -> pd.DataFrame:
    """Per clip: decode only, miss (decode + front end + atomic write), hit, hit + collation."""
    cores = os.cpu_count() or 1
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
            cache = FeatureCache(root / "cache")
            sets = {m: CachedFeatureDataset(ds, make_frontend(name), cache, read_mode=m)
                    for m in FeatureCache.READ_MODES}
            cds = sets["read"]

            def miss() -> None:
                cache.clear(cds.key_config)
                for i in range(len(cds)):
                    cds[i]

            def hits(d: CachedFeatureDataset, batch: int = 0) -> Callable[[], None]:
                def run() -> None:
                    if batch:  # what a DataLoader does: items, then one copy into the batch
                        for s in range(0, len(d), batch):
                            default_collate([d[i] for i in range(s, min(s + batch, len(d)))])
                    else:
                        for i in range(len(d)):
                            d[i]
                return run

            t_decode = interleaved({"decode": lambda: [ds[i] for i in range(len(ds))]},
                                   max(1, repeats // 2), lambda: None)["decode"]
            t_miss = interleaved({"miss": miss}, max(1, repeats // 2), lambda: None)["miss"]
            t_hit = interleaved({("hit", m, b): hits(d, b) for m, d in sets.items() for b in (0, 8)},
                                repeats, lambda: None)
            load = watch.seen()
            for m in FeatureCache.READ_MODES:
                for b in (0, 8):
                    best, _, cpu = t_hit[("hit", m, b)]
                    per, per_cpu = best / n_clips, cpu / n_clips
                    x_wall, x_cpu = seconds / per, seconds / per_cpu
                    out.append({"front end": name, "hit read": m,
                                "hit measured": "item + collate (8)" if b else "item",
                                "ms/clip decode only": round(1000 * t_decode[0] / n_clips, 2),
                                "ms/clip miss": round(1000 * t_miss[0] / n_clips, 2),
                                "ms/clip hit (wall best)": round(1000 * per, 3),
                                "ms/clip hit (CPU)": round(1000 * per_cpu, 3),
                                "x RT hit (wall)": round(x_wall),
                                "miss / hit": round(t_miss[0] / best, 1),
                                f"target {TARGET_HIT_X_REALTIME:.0f}x": verdict(
                                    x_wall, x_cpu, TARGET_HIT_X_REALTIME, load, cores)})
        return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-clips", type=int, default=24)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    cores = os.cpu_count() or 1
    watch = LoadWatch()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"batch {args.batch} x {args.seconds} s, best/median of {args.repeats}; "
          f"load average {load_average():.2f} on {cores} CPUs")
    print(f"\n== front ends: x real time (seconds of audio per second); target "
          f"{TARGET_X_REALTIME:.0f}x on {args.threads} threads ==")
    print(bench_presets(args.batch, args.seconds, args.repeats, args.threads, args.device,
                        watch).to_string(index=False))
    print("\n== augmentation ==")
    print(bench_augment(args.batch, args.repeats).to_string(index=False))
    print(f"\n== feature cache: per-clip cost of a miss vs a hit; target {TARGET_HIT_X_REALTIME:.0f}x "
          f"(<= {1000 * args.seconds / TARGET_HIT_X_REALTIME:.2f} ms per {args.seconds:g}-s clip) ==")
    print(bench_cache(args.cache_clips, args.seconds, args.repeats, watch).to_string(index=False))
    end = load_average()
    note = (f" - LOADED: above {cores} cores, wall times include waiting for other processes"
            if watch.seen() > cores else "")
    print(f"\nload average at the end: {end:.2f}, highest seen: {watch.max:.2f} on {cores} CPUs{note}")


if __name__ == "__main__":
    main()
