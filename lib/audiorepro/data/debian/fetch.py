"""Fetch Debian packages without installing them: ``apt-get download`` + ``dpkg-deb -x``.

Layout under ``cache_dir("debian")`` (or ``cache`` given explicitly)::

    debs/<pkg>_<version>_<arch>.deb      the downloaded package
    root/<pkg>/                          its extracted file tree (usr/share/...)
    root/<pkg>/.fetched.json             done marker: name, version, sha256 of the .deb, licences

A second fetch of the same package reads the done marker and touches nothing. When
``apt-cache policy PKG`` shows no candidate (fresh machine without package lists), ``apt-get
update`` runs once (``-o DPkg::Lock::Timeout=300``: another process may hold the apt lock).
Any failure (no apt-get/dpkg-deb, no network to the mirror, unknown package) raises
:class:`DebianSourceUnavailable` naming the package, so callers can fall back to synthetic data.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ... import paths
from .sources import FLUIDSYNTH_PACKAGES

log = logging.getLogger(__name__)

APT_LOCK = ["-o", "DPkg::Lock::Timeout=300"]
_updated = False


class DebianSourceUnavailable(RuntimeError):
    """A Debian package cannot be fetched or used here; the message names the package."""

    def __init__(self, package: str, reason: str) -> None:
        super().__init__(f"Debian package {package!r} is unavailable: {reason}")
        self.package = package
        self.reason = reason


@dataclass
class FetchedPackage:
    """A downloaded and extracted package.

    Attributes:
        name, version: Debian package name and the fetched version.
        deb: path of the ``.deb`` file; sha256: its SHA-256 (hex).
        root: folder the package was extracted into (``root / "usr/share/..."``).
        licences: distinct ``License:`` fields of its copyright file (empty if not DEP-5).
    """

    name: str
    version: str
    deb: Path
    sha256: str
    root: Path
    licences: list[str]

    def to_json(self) -> dict:
        d = asdict(self)
        d["deb"], d["root"] = str(self.deb), str(self.root)
        return d


def debian_cache(cache: str | os.PathLike | None = None) -> Path:
    """The cache folder (``cache_dir("debian")`` unless given)."""
    return Path(cache) if cache is not None else paths.cache_dir("debian")


def _run(cmd: Sequence[str], package: str, cwd: Path | None = None,
         timeout: float = 1800) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C"})
    except FileNotFoundError as exc:
        raise DebianSourceUnavailable(package, f"program {cmd[0]!r} not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise DebianSourceUnavailable(package, f"{' '.join(cmd)} timed out after {timeout} s") from exc
    return proc


def _require_tools(package: str) -> None:
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DebianSourceUnavailable(
                package, f"{tool!r} is not on PATH (not a Debian/Ubuntu machine?); "
                         "use the synthetic data instead")


def candidate_version(package: str) -> str | None:
    """Candidate version of ``package`` from ``apt-cache policy`` (``None`` if there is none)."""
    proc = _run(["apt-cache", "policy", package], package)
    m = re.search(r"^\s*Candidate:\s*(\S+)", proc.stdout, re.M)
    if not m or m.group(1) == "(none)":
        return None
    return m.group(1)


def _apt_update(package: str) -> None:
    global _updated
    if _updated:
        return
    log.warning("apt-cache has no candidate for %s: running apt-get update", package)
    proc = _run(["apt-get", *APT_LOCK, "update"], package, timeout=900)
    _updated = True
    if proc.returncode != 0:
        raise DebianSourceUnavailable(
            package, f"apt-get update failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def copyright_licences(root: Path, package: str) -> list[str]:
    """Distinct ``License:`` short names in ``usr/share/doc/<package>/copyright`` under ``root``."""
    f = Path(root) / "usr" / "share" / "doc" / package / "copyright"
    if not f.is_file():
        return []
    names: list[str] = []
    for m in re.finditer(r"^License:[ \t]*(\S.*)$", f.read_text(errors="replace"), re.M):
        name = m.group(1).strip()
        if name not in names:
            names.append(name)
    return names


def _deb_field(deb: Path, field: str, package: str) -> str:
    proc = _run(["dpkg-deb", "-f", str(deb), field], package)
    if proc.returncode != 0:
        raise DebianSourceUnavailable(package, f"dpkg-deb -f {deb} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def fetch_package(package: str, cache: str | os.PathLike | None = None) -> FetchedPackage:
    """Download ``package`` (if needed) and extract it under ``<cache>/root/<package>``.

    Returns the :class:`FetchedPackage`; cached after the first call (done marker).
    Raises:
        DebianSourceUnavailable: apt/dpkg missing, no candidate even after ``apt-get update``,
            download or extraction failed.
    """
    base = debian_cache(cache)
    root = base / "root" / package
    marker = root / ".fetched.json"
    if marker.is_file():
        d = json.loads(marker.read_text())
        return FetchedPackage(d["name"], d["version"], Path(d["deb"]), d["sha256"], Path(d["root"]),
                              list(d.get("licences", [])))
    _require_tools(package)
    debs = base / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    version = candidate_version(package)
    if version is None:
        _apt_update(package)
        version = candidate_version(package)
    if version is None:
        raise DebianSourceUnavailable(package, "no installation candidate in the apt package "
                                               "lists (even after apt-get update)")
    deb = _find_deb(debs, package, version)
    if deb is None:
        log.info("apt-get download %s=%s", package, version)
        proc = _run(["apt-get", *APT_LOCK, "download", f"{package}={version}"], package, cwd=debs)
        if proc.returncode != 0:
            raise DebianSourceUnavailable(
                package, f"apt-get download failed (exit {proc.returncode}; no network to the "
                         f"Debian mirror?): {proc.stderr.strip()[-500:]}")
        deb = _find_deb(debs, package, version)
        if deb is None:
            raise DebianSourceUnavailable(package, f"apt-get download left no .deb in {debs}")
    got_version = _deb_field(deb, "Version", package)
    tmp = Path(tempfile.mkdtemp(dir=_mk(base / "root"), prefix=f".{package}."))
    try:
        proc = _run(["dpkg-deb", "-x", str(deb), str(tmp)], package)
        if proc.returncode != 0:
            raise DebianSourceUnavailable(package, f"dpkg-deb -x {deb} failed: {proc.stderr.strip()}")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fetched = FetchedPackage(package, got_version, deb, sha256_of(deb), root,
                             copyright_licences(root, package))
    marker.write_text(json.dumps(fetched.to_json(), indent=1))
    return fetched


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _find_deb(debs: Path, package: str, version: str) -> Path | None:
    """The ``.deb`` of ``package`` at ``version`` in ``debs`` (epoch ``:`` is ``%3a`` in names)."""
    v = version.split(":", 1)[-1]
    for f in sorted(debs.glob(f"{package}_*.deb")):
        fv = f.name[len(package) + 1:].rsplit("_", 1)[0].replace("%3a", ":")
        if fv == version or fv.split(":", 1)[-1] == v:
            return f
    return None


def fetch_packages(packages: Iterable[str], cache: str | os.PathLike | None = None
                   ) -> dict[str, FetchedPackage]:
    """:func:`fetch_package` for each name; returns ``{name: FetchedPackage}``."""
    return {p: fetch_package(p, cache) for p in packages}


def _installed(package: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                          text=True)
    return proc.returncode == 0 and "install ok installed" in proc.stdout


@dataclass
class Fluidsynth:
    """A runnable fluidsynth: ``argv0`` and the environment to run it with."""

    argv0: str
    env: dict[str, str]
    version: str
    packages: list[FetchedPackage]


def fluidsynth(cache: str | os.PathLike | None = None) -> Fluidsynth:
    """fluidsynth extracted from its Debian packages (libraries via ``LD_LIBRARY_PATH``).

    A system-wide ``fluidsynth`` on PATH is used when there is one. Raises
    :class:`DebianSourceUnavailable` ("fluidsynth") when it can be neither found nor extracted
    and run (then ``apt-get install fluidsynth`` is the fallback).
    """
    system = shutil.which("fluidsynth")
    if system:
        ver = _fluidsynth_version(system, dict(os.environ))
        return Fluidsynth(system, dict(os.environ), ver, [])
    fetched = [fetch_package(p, cache) for p in FLUIDSYNTH_PACKAGES
               if p == "fluidsynth" or not _installed(p)]
    libdirs = sorted({str(d) for f in fetched for d in (f.root / "usr" / "lib").glob("*-linux-gnu")
                      if d.is_dir()})
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libdirs + [env["LD_LIBRARY_PATH"]]
                                             if env.get("LD_LIBRARY_PATH") else libdirs)
    exe = fetched[0].root / "usr" / "bin" / "fluidsynth"
    if not exe.is_file():
        raise DebianSourceUnavailable("fluidsynth", f"no usr/bin/fluidsynth in {fetched[0].root}")
    ver = _fluidsynth_version(str(exe), env)
    return Fluidsynth(str(exe), env, ver, fetched)


def _fluidsynth_version(exe: str, env: dict[str, str]) -> str:
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env, timeout=60)
    except OSError as exc:
        raise DebianSourceUnavailable("fluidsynth", f"cannot run {exe}: {exc}") from exc
    if proc.returncode != 0:
        raise DebianSourceUnavailable(
            "fluidsynth", f"{exe} does not run (missing shared libraries? install it with "
                          f"'apt-get install fluidsynth'): {proc.stderr.strip()[-400:]}")
    m = re.search(r"version\s+(\S+)", proc.stdout)
    return m.group(1) if m else "unknown"
