"""Install what building the book needs besides Python packages; says what it installs.

Usage (``make book`` runs both)::

    python tools/book_setup.py mathjax    # MathJax 3 (npm package mathjax@3) under cache/npm
    python tools/book_setup.py chromium   # Chromium (Debian package) for the screenshots

``mathjax``: the book serves MathJax itself (no CDN). Needs npm; without it, as root with apt-get,
the Debian package ``npm`` is installed first; otherwise the command fails naming what to install.
``chromium``: only for the screenshot check. Without root or apt-get, or when the package cannot be
installed, it says so in one line and exits 0: ``python -m audiorepro.book screenshot`` then skips.
The library (``audiorepro.book``) only finds and uses what these steps installed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from audiorepro import paths
from audiorepro.book import MATHJAX_FILE, find_chromium

MATHJAX_PACKAGE = "mathjax@3"


def can_apt_install() -> bool:
    """Root on a system with apt-get (a Debian or Ubuntu machine or container)."""
    return os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(package: str, reason: str) -> bool:
    """``apt-get install -y package`` (then ``apt-get update`` and once more); True on success."""
    print(f"installing {package} (Debian package) {reason}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", package], ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", package]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode == 0 and cmd[1] == "install":
            return True
    print(f"apt-get install {package} failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
    return False


def setup_mathjax() -> int:
    cache = paths.cache_dir("npm")
    script = cache / "node_modules" / "mathjax" / "es5" / MATHJAX_FILE
    if script.is_file():
        print(f"MathJax 3 already installed: {script}")
        return 0
    npm = shutil.which("npm")
    if npm is None and can_apt_install() and apt_install("npm", "to fetch MathJax 3"):
        npm = shutil.which("npm")
    if npm is None:
        print("error: npm not found: install Node.js and npm (Debian: sudo apt-get install npm), "
              "then rerun `make book`; the book serves MathJax 3 itself", file=sys.stderr)
        return 1
    print(f"installing MathJax 3 (npm package {MATHJAX_PACKAGE}) into {cache} for the book's formulas",
          flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", MATHJAX_PACKAGE, "--prefix", str(cache), "--no-audit", "--no-fund",
           "--loglevel=error"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not script.is_file():
        print(f"error: `{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()}",
              file=sys.stderr)
        return 1
    return 0


def setup_chromium() -> int:
    found = find_chromium()
    if found:
        print(f"chromium for screenshots: {found}")
        return 0
    if not can_apt_install():
        print("screenshots will be skipped: chromium is not installed and installing it needs root "
              "and apt-get (Debian: sudo apt-get install chromium)")
        return 0
    if not apt_install("chromium", "for screenshots of the built book") or not find_chromium():
        print("screenshots will be skipped: chromium could not be installed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="+", choices=("mathjax", "chromium"))
    args = parser.parse_args(argv)
    steps = {"mathjax": setup_mathjax, "chromium": setup_chromium}
    return max(steps[w]() for w in args.what)


if __name__ == "__main__":
    sys.exit(main())
