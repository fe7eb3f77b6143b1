"""Build time of the Debian real-recordings clip tables (audiorepro.data.debian).

Usage: ``python benchmarks/bench_debian_data.py [--only NAME ...] [--keep]``

For each source: fetch time (download + extraction; near zero when cached), a fresh build into
a temporary data root (conversion of every clip to 16 kHz FLAC), and the second, cached call
(done marker: reads the table only). A source whose packages cannot be fetched here is reported
as unavailable. Numbers are measured by this run; nothing is hard-coded.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from audiorepro.data.debian import SOURCES, DebianSourceUnavailable, build_source
from audiorepro.data.debian.fetch import fetch_packages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="+", choices=sorted(SOURCES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data root")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-debian-"))
    print(f"{'source':<10} {'fetch_s':>8} {'build_s':>8} {'clips':>6} {'ms/clip':>8} {'cached_s':>9}")
    total_build = 0.0
    try:
        for name in args.only or list(SOURCES):
            try:
                t0 = time.perf_counter()
                fetch_packages(SOURCES[name].packages)
                t_fetch = time.perf_counter() - t0
                t0 = time.perf_counter()
                table = build_source(name, root=root, workers=args.workers)
                t_build = time.perf_counter() - t0
                t0 = time.perf_counter()
                build_source(name, root=root)
                t_cached = time.perf_counter() - t0
            except DebianSourceUnavailable as exc:
                print(f"{name:<10} unavailable: {exc}")
                continue
            total_build += t_build
            print(f"{name:<10} {t_fetch:8.2f} {t_build:8.2f} {len(table):6d} "
                  f"{1000 * t_build / max(len(table), 1):8.2f} {t_cached:9.3f}", flush=True)
        print(f"total fresh build: {total_build:.1f} s")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
