"""ATGNN speed and memory (not a test).

Usage::

    .venv/bin/python benchmarks/bench_atgnn.py [--threads 1 2] [--batch 4] [--reps 5] [--no-profile]
        [--minutes 10] [--skip-knn] [--skip-throughput] [--compile] [--label after]
        [--device auto] [--impl path/to/atgnn.py] [--json results/benchmarks/atgnn.json]

1. **Throughput** of pyr-s (with MLG, 527 classes) at the paper input ``batch x 128 x 1056``: one
   training step = forward + ``sum().backward()`` in ``train()`` mode. FLOP convention (stated in
   the output): ``torch.utils.flop_counter.FlopCounterMode`` counts the forward at batch 1 in
   ``eval()`` mode with the position tables precomputed (:func:`count_atgnn`, convs, matmuls and
   k-NN distance GEMMs; BN / elementwise / top-k / gathers not counted) -> GMACs; FLOPs = MACs x 2;
   backward = 2 x forward, so a step is ``3 x 2 x GMACs x batch``. The same counter run over the
   real training step (forward + backward, meta device) is reported too (``counted_step_GFLOP``;
   smaller, because the k-NN search has no backward). The dense-matmul reference is ``torch.mm``
   of two 2048 x 2048 float32 matrices (2 n^3 flops each). Model steps and matmul runs alternate
   (one step, then ``--mm-reps`` products, repeated ``--reps`` times) so both see the same load on
   a shared machine; the reported share is the median of the per-repetition shares. Both run on
   ``--device`` (``auto``: CUDA when there is one, see ``audiorepro.training.pick_device``; the
   device is synchronised before each clock reading).
   Self-CPU-time shares by op group (torch.profiler) of one step are added (``--no-profile``:
   not); ``--compile`` runs are stored under the label ``compiled`` unless ``--label`` says otherwise.
   On the CPU the machine's nominal float32 peak (cores x clock x SIMD lanes x 2 x FMA units,
   :func:`nominal_peak_gflops`) is reported too; when the matmul reference reaches less than 60 %
   of it, or the matmul on all threads less than 60 % of threads x its one-thread speed, the
   machine is busy with other work, and the run says so (``loaded``) instead of reporting a
   share.
2. **k-NN memory** on a long clip (``--minutes``, default 10): the stage-1 pyramid graph of a
   128 x (minutes * 6000)-frame fbank (10 min: N = 32 x 15,000 = 480,000 query nodes,
   M = N / 16 = 30,000 pooled keys, C = 80, k = 9, relative-position term on): analytic peak
   bytes of a dense N x M distance matrix vs. the chunked search (:func:`knn_peak_memory`), and the
   measured peak-RSS increase and seconds of one chunked :func:`knn_graph` call (run in a fresh
   subprocess so the RSS peak is its own). This part measures host memory, so it runs on the host.

Results are merged into ``results/benchmarks/atgnn.json`` (see ``write_json`` for the format).
``--impl`` loads the model module from another file (e.g. an older ``atgnn.py``) to measure a
before/after pair under the same conditions.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile as tprofile
from torch.utils.flop_counter import FlopCounterMode

from audiorepro.fileio import atomic_write_text
from audiorepro.paths import results_dir
from audiorepro.training import pick_device

FLOP_CONVENTION = ("FlopCounterMode forward MACs (batch 1, eval, position tables precomputed; "
                   "convs + matmuls + k-NN distance GEMMs; BN/elementwise/top-k/gather not "
                   "counted) x 2 flops/MAC x 3 (backward = 2 x forward) x batch")
MM_N = 2048


def load_impl(path: str | None) -> Any:
    """The ATGNN model module: the library's, or one loaded from ``path``."""
    if path is None:
        from audiorepro.papers.atgnn import model as atgnn
        return atgnn
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--impl {file} does not exist")
    spec = importlib.util.spec_from_file_location("audiorepro.papers.atgnn._bench_impl", file)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------ k-NN memory
def rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_knn(minutes: float, chunk: int, impl: str | None) -> dict[str, Any]:
    """One chunked stage-1 k-NN search on a ``minutes``-long clip (call in a fresh process)."""
    mod = load_impl(impl)
    frames = int(round(minutes * 6000))                  # 10 ms hop
    h, w = 128 // 4, frames // 4
    n, c, r, k = h * w, 80, 4, 9
    m = (h // r) * (w // r)
    est = mod.knn_peak_memory(n, m, c, k, chunk)
    x = torch.randn(1, n, c)
    y = torch.nn.functional.avg_pool2d(x.transpose(1, 2).reshape(1, c, h, w), r).flatten(2).transpose(1, 2)
    y = y.contiguous()
    if hasattr(mod, "relative_pos_rows"):
        rel_fn = mod.relative_pos_rows(c, (h, w), r)
    else:
        def rel_fn(sl: slice) -> torch.Tensor:
            return mod.relative_pos_term(c, (h, w), r, rows=sl)
    # warm-up on a tiny graph: one-time allocations (BLAS workspaces, thread pools) are not
    # charged to the search
    mod.knn_graph(x[:, :256], y[:, :64], k, 1, rel_fn=lambda sl: torch.zeros(sl.stop - sl.start, 64))
    before = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    idx = mod.knn_graph(x, y, k, 1, rel_fn=rel_fn, chunk_elements=chunk)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"minutes": minutes, "frames": frames, "N": n, "M": m, "C": c, "k": k,
            "chunk_elements": chunk, "dense_estimate_MB": est["dense"] / 1e6,
            "chunked_estimate_MB": est["chunked"] / 1e6, "input_features_MB": (n + m) * c * 4 / 1e6,
            "measured_peak_rss_increase_MB": rss_mb() - before, "seconds_wall": wall,
            "seconds_cpu": cpu, "threads": torch.get_num_threads(), "edges_shape": list(idx.shape)}


def run_knn_subprocess(minutes: float, chunk: int, impl: str | None, threads: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--knn-child", "--minutes", str(minutes), "--chunk", str(chunk),
           "--threads", str(threads)] + (["--impl", impl] if impl else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ throughput
def counted_step_gflop(mod: Any, batch: int) -> float:
    """FlopCounterMode GFLOP of one real training step (forward + backward) on the meta device."""
    model = mod.build_atgnn("pyr-s", num_classes=527, input_size=(128, 1056)).to("meta").train()
    model.cache_position_tables(device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(batch, 1056, 128, device="meta")).sum().backward()
    return counter.get_total_flops() / 1e9


OP_GROUPS = {
    "GEMM (conv, mm, bmm)": ("conv", "mm", "bmm", "addmm", "baddbmm", "linear", "matmul"),
    "top-k": ("topk",),
    "gather / scatter / max-pool": ("index", "gather", "scatter", "max_pool", "take"),
    "batch norm": ("batch_norm",),
    "GELU": ("gelu",),
}


def op_shares(prof: Any) -> dict[str, float]:
    """Self-CPU-time share of each op group in a torch.profiler run (aten ops only)."""
    tot: dict[str, float] = {}
    for e in prof.key_averages():
        if not e.key.startswith("aten::"):
            continue
        name = e.key[len("aten::"):]
        group = next((g for g, keys in OP_GROUPS.items() if any(k in name for k in keys)),
                     "elementwise / copies / other")
        tot[group] = tot.get(group, 0.0) + e.self_cpu_time_total
    s = sum(tot.values()) or 1.0
    return {g: v / s for g, v in sorted(tot.items(), key=lambda kv: -kv[1])}


#: the matmul reference below this share of the nominal peak: the machine is busy with something else
#: (an idle 2-core AMD EPYC of this project reached 1.07x its nominal peak, the same machine with
#: one core taken by another process about 0.54x - which the earlier threshold of 0.5 let pass)
LOADED_BELOW = 0.6
#: the matmul on all threads below this share of threads x its one-thread speed: cores are not free
SCALING_BELOW = 0.6


def nominal_peak_gflops(threads: int, fma_units: int = 2, cpuinfo: str | None = None
                        ) -> tuple[float | None, str]:
    """The CPU's nominal float32 peak on ``threads`` cores: cores x clock x SIMD lanes x 2 (an FMA
    is two flops) x ``fma_units`` (FMA pipes per core; 2 on current x86 server cores), from
    ``/proc/cpuinfo`` (the highest ``cpu MHz``; 16 lanes with ``avx512f``, 8 with ``avx2``/``fma``,
    4 otherwise). Returns (GFLOP/s or None when /proc/cpuinfo says nothing, how it was computed)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None, "no /proc/cpuinfo"
    mhz = [float(line.split(":")[1]) for line in cpuinfo.splitlines() if line.startswith("cpu MHz")]
    flags = next((line.split(":")[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    if not mhz:
        return None, "no clock in /proc/cpuinfo"
    lanes = 16 if "avx512f" in flags else 8 if ("avx2" in flags or "fma" in flags) else 4
    ghz = max(mhz) / 1000
    peak = threads * ghz * lanes * 2 * fma_units
    return peak, (f"{threads} cores x {ghz:.2f} GHz x {lanes} float32 lanes x 2 (FMA) x {fma_units} "
                  f"FMA units = {peak:.0f} GFLOP/s")


def load_verdict(matmul_gflops: float, nominal: float | None, threads: int = 1,
                 single_thread_gflops: float | None = None) -> str | None:
    """``None`` when the matmul reference is a fair yardstick, else a sentence saying the machine
    is loaded: the reference ran below :data:`LOADED_BELOW` of the nominal peak, or, on
    ``threads`` > 1, below :data:`SCALING_BELOW` of ``threads`` x the one-thread matmul speed
    (another process holds cores; this catches a partial load even where the nominal peak read
    from /proc/cpuinfo is off). A share of such a reference would describe the load, not the
    model."""
    if nominal is not None and matmul_gflops < LOADED_BELOW * nominal:
        return (f"machine loaded: the matmul reference reached {matmul_gflops:.0f} GFLOP/s, under "
                f"{LOADED_BELOW:.0%} of the nominal {nominal:.0f} GFLOP/s; no share is reported - "
                "rerun on an idle machine")
    if threads > 1 and single_thread_gflops and \
            matmul_gflops < SCALING_BELOW * threads * single_thread_gflops:
        return (f"machine loaded: the matmul reference on {threads} threads reached "
                f"{matmul_gflops:.0f} GFLOP/s, under {SCALING_BELOW:.0%} of {threads} x its "
                f"one-thread {single_thread_gflops:.0f} GFLOP/s (cores are busy with another "
                "process); no share is reported - rerun on an idle machine")
    return None


def _sync(device: torch.device) -> None:
    """Wait for queued kernels (CUDA runs asynchronously) so that a clock reading is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_throughput(mod: Any, batch: int, reps: int, mm_reps: int, threads: int,
                     profile: bool = False, compile_model: bool = False,
                     device: str = "auto") -> dict[str, Any]:
    """Interleaved model-step / matmul timing at ``threads`` threads on ``device`` (see the
    module docstring)."""
    dev = pick_device(device)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = mod.build_atgnn("pyr-s", num_classes=527, input_size=(128, 1056))
    gmacs = mod.count_atgnn(model)["gmacs"]
    step_gflop = 3 * 2 * gmacs * batch
    counted = counted_step_gflop(mod, batch)
    model.to(dev)
    model.cache_position_tables(device=dev)
    model.train()
    if compile_model:
        # torch 2.11's AOTAutograd replays view chains of aliased outputs (our node-major
        # token <-> channels-last image views) with the wrong base and fails with
        # "permute(sparse_coo): number of dimensions ... does not match"; regenerating the
        # aliases with as_strided instead is exact (same storage, sizes and strides)
        import torch._functorch.config as functorch_config
        functorch_config.view_replay_for_aliased_outputs = False
    run = torch.compile(model) if compile_model else model
    x = torch.randn(batch, 1056, 128, device=dev)
    a, b = torch.randn(MM_N, MM_N, device=dev), torch.randn(MM_N, MM_N, device=dev)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        run(x).sum().backward()
        _sync(dev)

    def mm() -> None:
        with torch.inference_mode():
            for _ in range(mm_reps):
                torch.mm(a, b)
        _sync(dev)

    step(), mm()                                                 # warm-up
    rows = []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        t_step, c_step = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        mm()
        t_mm = time.perf_counter() - t0
        achieved = step_gflop / t_step
        mm_gflops = 2 * MM_N ** 3 * mm_reps / t_mm / 1e9
        rows.append({"step_s": t_step, "step_cpu_s": c_step, "achieved_GFLOPs": achieved,
                     "matmul_GFLOPs": mm_gflops, "share": achieved / mm_gflops,
                     "share_counted": counted / t_step / mm_gflops})
    med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    out = {"device": str(dev), "threads": threads, "batch": batch, "reps": reps, "compiled": compile_model,
           "gmacs_forward_batch1": gmacs, "step_GFLOP": step_gflop, "counted_step_GFLOP": counted,
           "median_step_s": med["step_s"], "median_step_cpu_s": med["step_cpu_s"],
           "clips_per_s": batch / med["step_s"], "median_achieved_GFLOPs": med["achieved_GFLOPs"],
           "median_matmul_GFLOPs": med["matmul_GFLOPs"], "median_share": med["share"],
           "median_share_counted": med["share_counted"], "per_rep": rows,
           "loadavg": list(os.getloadavg())}
    if dev.type == "cpu":
        nominal, how = nominal_peak_gflops(threads)
        out["nominal_GFLOPs"], out["nominal_from"] = nominal, how
        single = None
        if threads > 1:          # the same matmul on one thread: do the cores scale?
            torch.set_num_threads(1)
            t0 = time.perf_counter()
            mm()
            single = 2 * MM_N ** 3 * mm_reps / (time.perf_counter() - t0) / 1e9
            torch.set_num_threads(threads)
        out["matmul_GFLOPs_one_thread"] = single
        loaded = load_verdict(med["matmul_GFLOPs"], nominal, threads, single)
        if loaded:   # the share would measure the other processes: withheld
            out["loaded"] = loaded
            out["median_share"] = out["median_share_counted"] = None
    if profile:
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        out["op_shares"] = op_shares(prof)
    return out


# ------------------------------------------------------------------------------ output
def write_json(path: Path, label: str, throughput: list[dict], knn: dict | None) -> None:
    """Merge into ``path``: ``{"flop_convention": str, "machine": {...},
    "throughput": {label: [one dict per thread count]}, "knn_memory": {...}}``; the entries of
    other labels (e.g. ``before``) are kept."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["flop_convention"] = FLOP_CONVENTION
    data["matmul_reference"] = f"torch.mm float32 {MM_N}x{MM_N}, 2 n^3 flops, interleaved with model steps"
    data["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                       "torch": torch.__version__}
    if throughput:
        data.setdefault("throughput", {})[label] = throughput
        data.setdefault("measured_at", {})[label] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if knn is not None:
        data["knn_memory"] = knn
    atomic_write_text(path, json.dumps(data, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--mm-reps", type=int, default=4, help="2048^3 products per matmul measurement")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                    help="op-group time shares of one step (default on; --no-profile skips it)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (optional)")
    ap.add_argument("--device", default="auto", help="device of the throughput run (auto, cuda, cpu ...)")
    ap.add_argument("--minutes", type=float, default=10.0, help="clip length of the k-NN memory run")
    ap.add_argument("--chunk", type=int, default=1 << 22, help="k-NN chunk_elements")
    ap.add_argument("--skip-knn", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--impl", default=None, help="load the ATGNN module from this file")
    ap.add_argument("--label", default=None,
                    help="key of this run in the JSON file (default: current, or compiled with --compile)")
    ap.add_argument("--json", default=str(results_dir("benchmarks", "atgnn.json")))
    ap.add_argument("--knn-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.label = a.label or ("compiled" if a.compile else "current")   # never overwrite the eager rows
    if a.knn_child:
        torch.set_num_threads(a.threads[0])
        print(json.dumps(bench_knn(a.minutes, a.chunk, a.impl)))
        return
    mod = load_impl(a.impl)
    print(f"ATGNN module: {mod.__file__}")
    print(f"FLOP convention: {FLOP_CONVENTION}")
    knn = None
    if not a.skip_knn:
        knn = run_knn_subprocess(a.minutes, a.chunk, a.impl, a.threads[-1])
        print("k-NN memory:", json.dumps(knn))
    results = []
    if not a.skip_throughput:
        for th in a.threads:
            r = bench_throughput(mod, a.batch, a.reps, a.mm_reps, th, a.profile, a.compile, a.device)
            results.append(r)
            short = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k != "per_rep"}
            print("throughput:", json.dumps(short))
    write_json(Path(a.json), a.label, results, knn)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
