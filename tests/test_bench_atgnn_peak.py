"""The nominal-peak rule of benchmarks/bench_atgnn.py: computed by hand from a cpuinfo text."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_atgnn", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_atgnn.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

CPUINFO = "processor\t: 0\ncpu MHz\t\t: 2400.000\nflags\t\t: fpu sse2 avx2 fma avx512f\n" \
          "processor\t: 1\ncpu MHz\t\t: 2500.000\nflags\t\t: fpu sse2 avx2 fma avx512f\n"


def test_nominal_peak_by_hand():
    peak, how = bench.nominal_peak_gflops(2, cpuinfo=CPUINFO)
    assert peak == pytest.approx(2 * 2.5 * 16 * 2 * 2)          # cores x GHz x lanes x FMA x units
    assert "16 float32 lanes" in how
    avx2, _ = bench.nominal_peak_gflops(1, fma_units=2, cpuinfo=CPUINFO.replace(" avx512f", ""))
    assert avx2 == pytest.approx(2.5 * 8 * 2 * 2)
    assert bench.nominal_peak_gflops(2, cpuinfo="flags: avx2\n")[0] is None


def test_a_matmul_far_below_the_nominal_peak_means_a_loaded_machine():
    assert bench.load_verdict(300.0, 320.0) is None
    assert bench.load_verdict(200.0, 320.0) is None                # at least 60 %: fair
    # about half of the nominal peak: one of two cores taken (the 178 of 332 GFLOP/s)
    loaded = bench.load_verdict(178.0, 332.0)
    assert loaded.startswith("machine loaded") and "no share" in loaded and "60%" in loaded
    assert bench.load_verdict(1.0, None) is None                   # nothing to compare with
    # two threads that do not scale over one: cores busy, even with no nominal peak known
    busy = bench.load_verdict(190.0, None, threads=2, single_thread_gflops=180.0)
    assert busy.startswith("machine loaded") and "2 x its one-thread 180" in busy
    assert bench.load_verdict(340.0, None, threads=2, single_thread_gflops=180.0) is None
    assert bench.load_verdict(190.0, None, threads=1, single_thread_gflops=180.0) is None
