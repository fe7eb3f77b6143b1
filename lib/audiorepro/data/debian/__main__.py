"""``python -m audiorepro.data.debian build [--only NAME ...] [--force] [--workers N]`` and
``python -m audiorepro.data.debian tasks [--only TASK ...]`` (prints clip counts per split)."""
from __future__ import annotations

import argparse
import logging
import sys
import time

from .build import build_all, write_manifest_rows
from .fetch import DebianSourceUnavailable
from .sources import SOURCES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m audiorepro.data.debian", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="fetch the packages and build the source clip tables")
    b.add_argument("--only", nargs="+", choices=sorted(SOURCES), help="build only these sources")
    b.add_argument("--force", action="store_true", help="rebuild even if done")
    b.add_argument("--workers", type=int, default=2, help="conversion threads (default 2)")
    t = sub.add_parser("tasks", help="build the derived task tables and print their sizes")
    t.add_argument("--only", nargs="+", help="only these task names")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.cmd == "build":
        t0 = time.perf_counter()
        res = build_all(args.only, force=args.force, workers=args.workers)
        failed = 0
        for name, r in res.items():
            if isinstance(r, DebianSourceUnavailable):
                failed += 1
                print(f"{name}: UNAVAILABLE ({r})")
            else:
                counts = r.frame["split"].value_counts().to_dict()
                print(f"{name}: {len(r)} clips, {r.num_classes} labels, splits {counts}")
        path = write_manifest_rows()
        print(f"manifest rows: {path}")
        print(f"total {time.perf_counter() - t0:.1f} s")
        return 1 if failed else 0
    from .tasks import TASKS, build_task
    for name in args.only or TASKS:
        try:
            table = build_task(name)
        except DebianSourceUnavailable as exc:
            print(f"{name}: UNAVAILABLE ({exc})")
            continue
        counts = table.frame["split"].value_counts().to_dict()
        print(f"{name}: {len(table)} clips, {table.num_classes} classes, splits {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
