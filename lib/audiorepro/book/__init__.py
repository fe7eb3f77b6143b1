"""The book pipeline: parameters checked before anything runs, papermill execution with done
markers, a generated table of contents, the Jupyter Book build with local MathJax.

Command line (``python -m audiorepro.book COMMAND``; ``--root`` defaults to the checkout)::

    execute --profile book [--only PATTERN] [--force]   run notebooks into book/_executed/
    paper-check [--only PATTERN]                       the paper profile on official-format
                                                       miniatures (:mod:`.paper_check`)
    toc                                                write _toc.yml, generated from book/
    mathjax                                            copy the installed MathJax 3 into the book
    build [--allow-stale]                              Jupyter Book v1 HTML into _build/html
    screenshot                                         PNGs of the intro and summary pages
    check                                              notebook conventions (used by the tests)
    timings --profile book                             wall time of each notebook's last run

Set-up (installing MathJax with npm, Chromium with apt-get) is not done here but by
``tools/book_setup.py``, which ``make book`` runs: the library only finds and uses what is
installed.

Conventions
    Notebooks live at ``book/<chapter>/<stem>.ipynb``, are committed without outputs, use the
    ``python3`` kernel and have exactly one cell tagged ``parameters`` whose values are the smoke
    profile, followed by the parameter guard cell (:mod:`audiorepro.book.parameters`).
    ``book/<chapter>/params/<stem>.<profile>.yaml`` holds the parameters of a profile
    (``book``, ``paper``); ``<stem>.<profile>-<variant>.yaml`` adds a variant executed into its own
    copy ``<stem>-<variant>.ipynb`` (a sub-page of the notebook in the built book). A notebook
    without a file for the profile runs with its defaults. When a notebook declares a ``profile``
    parameter, the executor sets it to the profile (unless the parameter file does), so that the
    notebook's result records name the profile they were computed under. ``_toc.yml`` is
    generated from the folders (:mod:`audiorepro.book.toc`).

Execution
    Every parameter file is checked first (unknown names, types, the ranges of the notebook's
    guard cell: :func:`validate_parameters`); one bad file stops the run before any notebook
    starts. Each notebook then runs with papermill (kernel ``python3``, working directory = its
    folder) into ``book/_executed/<chapter>/<stem>.ipynb``. A done marker ``<copy>.done`` (JSON)
    holds the hash of the notebook source, the parameters, the profile and the library source
    (``lib/audiorepro``, :func:`audiorepro.caching.tree_digest`); an unchanged hash skips the
    run, a corrupt marker is reported and counts as missing. A failing notebook keeps its
    executed copy (with the traceback) but gets no done marker, the other notebooks still run,
    and the command exits non-zero naming every failure.

    In an executed copy that received parameters, the original ``parameters`` cell (smoke defaults)
    is tagged ``remove-cell`` and the cell papermill injected stays visible: the reader sees the
    exact values of this run, not defaults that were overridden.

Build
    A staging folder ``_build/source`` mirrors the repository's ``_config.yml``, ``_toc.yml``
    (regenerated first) and ``book/``, with every notebook replaced by its executed copy (variants
    added to the toc under their notebook). ``jupyter-book build -W --keep-going`` makes every
    Sphinx warning fatal (after reporting all of them): missing toc entries, unreadable notebooks
    or broken references fail the build. Before building, every toc notebook must have a done
    marker (a failed or missing execution fails the build) whose hash is current
    (``--allow-stale`` to downgrade). After the build no HTML page may load MathJax from an
    external URL.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import yaml

import audiorepro
from audiorepro import paths
from audiorepro.caching import stable_digest, tree_digest
from audiorepro.fileio import atomic_write_text

from .errors import BookError, ParameterError
from .parameters import (INJECTED_TAG, PARAMS_TAG, GuardSpec, check_parameters, guard_problems,
                         guard_source, guard_spec, notebook_defaults, parameter_problems,
                         read_notebook, validate_parameters)
from .toc import generate_toc, toc_is_current, toc_text, write_toc

__all__ = ["BookError", "ParameterError", "Layout", "Job", "Outcome", "check_parameters",
           "validate_parameters", "parameter_problems", "GuardSpec", "guard_source", "plan",
           "execute", "check", "guard_warnings", "generate_toc", "toc_text", "write_toc", "build",
           "copy_mathjax", "screenshot", "timings", "build_parser", "main", "page_problems",
           "machine_strings"]

KERNEL = "python3"
#: make ``check`` report notebooks without parameter guard cell as problems (else warnings)
REQUIRE_PARAMETER_GUARD = True
PROFILES = ("smoke", "book", "paper")
MATHJAX_FILE = "tex-mml-chtml.js"
MATHJAX_FONTS = Path("output") / "chtml" / "fonts" / "woff-v2"


# ------------------------------------------------------------------------------- layout
def default_root() -> Path:
    """The checkout holding ``book/`` (folder with ``pyproject.toml`` above the package), else cwd."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "book").is_dir():
            return parent
    return Path.cwd()


@dataclass(frozen=True)
class Layout:
    """Where a book's files live, relative to its root (the repository, or a test folder)."""

    root: Path

    @property
    def book(self) -> Path:
        return self.root / "book"

    @property
    def executed(self) -> Path:
        return self.book / "_executed"

    @property
    def config(self) -> Path:
        return self.root / "_config.yml"

    @property
    def toc(self) -> Path:
        return self.root / "_toc.yml"

    @property
    def build_dir(self) -> Path:
        return self.root / "_build"

    @property
    def staging(self) -> Path:
        return self.build_dir / "source"

    @property
    def html(self) -> Path:
        return self.build_dir / "html"

    @property
    def mathjax_dir(self) -> Path:
        return self.book / "_static" / "mathjax"


def _skipped(rel: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in rel.parts)


def toc_docnames(layout: Layout) -> list[str]:
    """Documents listed in ``_toc.yml`` (``jb-book`` format), in reading order, without suffix."""
    if not layout.toc.is_file():
        raise BookError(f"no table of contents {layout.toc}")
    data = yaml.safe_load(layout.toc.read_text(encoding="utf8")) or {}
    out: list[str] = []

    def walk(entries: Iterable[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                out.append(_strip_suffix(entry["file"]))
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    if "root" not in data:
        raise BookError(f"{layout.toc}: no 'root' entry")
    out.append(_strip_suffix(data["root"]))
    walk(data.get("parts", []))
    walk(data.get("chapters", []))
    return out


def _strip_suffix(name: str) -> str:
    for suffix in (".ipynb", ".md"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def find_notebooks(layout: Layout) -> list[Path]:
    """Source notebooks under ``book/`` (not ``_executed`` or hidden folders): toc order first."""
    found = sorted(p for p in layout.book.rglob("*.ipynb")
                   if not _skipped(p.relative_to(layout.book)))
    try:
        order = {name: i for i, name in enumerate(toc_docnames(layout))}
    except BookError:
        order = {}
    return sorted(found, key=lambda p: (order.get(_docname(layout, p), len(order)), str(p)))


def _docname(layout: Layout, path: Path) -> str:
    return path.relative_to(layout.root).with_suffix("").as_posix()


# ------------------------------------------------------------------------------- parameters
def notebook_parameters(path: Path) -> dict[str, Any]:
    """Parameters papermill finds in the notebook's ``parameters`` cell (papermill.inspect_notebook;
    the executor's checks use :func:`notebook_defaults`, which parses the cell with ``ast``)."""
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


def load_param_file(path: Path) -> dict[str, Any]:
    """A parameter file: a YAML mapping of name -> value (empty file = no parameters)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BookError(f"unreadable parameter file {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BookError(f"parameter file {path} must be a mapping name: value, got {type(data).__name__}")
    return data


@dataclass
class Job:
    """One execution: a notebook, optionally a variant, with its parameters and output copy."""

    notebook: Path
    profile: str
    variant: str | None
    params_file: Path | None
    parameters: dict[str, Any]
    output: Path

    @property
    def marker(self) -> Path:
        return self.output.with_name(self.output.name + ".done")

    @property
    def name(self) -> str:
        rel = self.notebook.with_suffix("").as_posix()
        return f"{rel}[{self.variant}]" if self.variant else rel


def param_files(notebook: Path, profile: str) -> list[tuple[str | None, Path | None]]:
    """``[(None, <stem>.<profile>.yaml or None), (variant, <stem>.<profile>-<variant>.yaml), ...]``."""
    folder = notebook.parent / "params"
    base = folder / f"{notebook.stem}.{profile}.yaml"
    out: list[tuple[str | None, Path | None]] = [(None, base if base.is_file() else None)]
    prefix = f"{notebook.stem}.{profile}-"
    if folder.is_dir():
        for path in sorted(folder.glob(f"{notebook.stem}.{profile}-*.yaml")):
            variant = path.name[len(prefix): -len(".yaml")]
            if not variant or "/" in variant:
                raise BookError(f"parameter file {path}: empty variant name")
            out.append((variant, path))
    return out


def plan(layout: Layout, profile: str, only: str | None = None) -> list[Job]:
    """The executions of a profile, in toc order. Every parameter file is validated (names, types,
    ranges) before any job is returned: :class:`ParameterError` names the file and parameter."""
    jobs = []
    for nb in find_notebooks(layout):
        rel = nb.relative_to(layout.book)
        if only and not (fnmatch.fnmatch(rel.as_posix(), only) or only in rel.as_posix()):
            continue
        content = read_notebook(nb)
        declared = notebook_defaults(content, str(nb))
        for variant, pfile in param_files(nb, profile):
            params = load_param_file(pfile) if pfile else {}
            validate_parameters(nb, params, pfile, content)
            if "profile" in declared and "profile" not in params and (pfile or profile != "smoke"):
                params["profile"] = profile
            stem = f"{nb.stem}-{variant}" if variant else nb.stem
            out = layout.executed / rel.parent / f"{stem}.ipynb"
            jobs.append(Job(nb, profile, variant, pfile, params, out))
    return jobs


# ------------------------------------------------------------------------------- hashing
def library_hash(pkg: Path | None = None) -> str:
    """Digest of the library's source files (``lib/audiorepro``: :func:`audiorepro.caching.tree_digest`)
    and version. Content-based rather than ``git rev-parse HEAD:lib``: uncommitted edits count."""
    pkg = pkg or Path(audiorepro.__file__).resolve().parent
    return stable_digest({"version": audiorepro.__version__, "source": tree_digest(pkg)}, 64)


def reads_registry(notebook: Path) -> bool:
    """Whether ``notebook`` only shows what other notebooks recorded (a chapter's ``verdicts``
    page, the ``summary`` chapter): its executed copy is current only for the registry it read."""
    return notebook.stem == "verdicts" or notebook.parent.name == "summary"


def registry_digest() -> str:
    """Digest of the results registry as it stands (name, size and modification time of every
    record file): changes whenever a notebook records a result or registers a verdict."""
    from audiorepro.results import records_dir

    folder = records_dir()
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return stable_digest([(f.name, st.st_size, st.st_mtime_ns)
                          for f in files for st in [f.stat()] if f.is_file()], 64)


def job_hash(job: Job, lib_hash: str | None = None) -> str:
    """Hash of (notebook source, parameters, profile, variant, library source) and, for a notebook
    that reads the registry (:func:`reads_registry`), the registry's state: a verdicts page or
    the summary is rerun when any record changed after it ran, never served stale."""
    payload = {"notebook": hashlib.sha256(job.notebook.read_bytes()).hexdigest(),
               "parameters": job.parameters, "profile": job.profile, "variant": job.variant,
               "library": lib_hash or library_hash()}
    if reads_registry(job.notebook):
        payload["registry"] = registry_digest()
    return stable_digest(payload, 64)


def load_marker(path: Path) -> dict[str, Any] | None:
    """A done marker's content (None when there is none); :class:`BookError` naming the file when
    it is not a JSON object."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BookError(f"corrupt done marker {path}: {exc}") from None
    if not isinstance(data, dict):
        raise BookError(f"corrupt done marker {path}: a JSON object expected, got {type(data).__name__}")
    return data


def read_marker(job: Job, log=print) -> dict[str, Any] | None:
    """The job's done marker; a corrupt one is logged and counts as missing (the job runs again)."""
    try:
        return load_marker(job.marker)
    except BookError as exc:
        log(f"warning: {exc}; treated as missing (the notebook runs again)")
        return None


# ------------------------------------------------------------------------------- execution
@dataclass
class Outcome:
    job: Job
    status: str  # "ran", "skipped", "failed"
    duration_s: float = 0.0
    error: str = ""


def _postprocess(path: Path, variant: str | None) -> None:
    """Tidy an executed copy for the book.

    With injected parameters, the original parameters cell (smoke defaults) gets ``remove-cell``;
    the injected cell stays visible. A variant's first ``# title`` gains ``(variant <name>)`` so
    that its page is told apart from the notebook's own in the navigation.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    tags_of = [c.get("metadata", {}).get("tags", []) for c in nb.cells]
    if any(INJECTED_TAG in t for t in tags_of):
        for cell, tags in zip(nb.cells, tags_of):
            if PARAMS_TAG in tags and "remove-cell" not in tags:
                cell.metadata["tags"] = [*tags, "remove-cell"]
    if variant:
        for cell in nb.cells:
            if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
                first, _, rest = cell.source.lstrip().partition("\n")
                cell.source = f"{first} (variant {variant})" + (f"\n{rest}" if rest else "")
                break
    nbformat.write(nb, str(path))


def _error_text(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    cell = getattr(exc, "exec_count", None)
    if ename:
        return f"{ename}: {evalue}" + (f" (cell [{cell}])" if cell is not None else "")
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def execution_env(job: Job) -> Iterator[dict[str, str]]:
    """Environment of one execution's kernel: the notebook (``chapter/stem [variant]``) and a fresh
    execution id (a :func:`audiorepro.results.new_run_group` id), which the records it writes
    carry, so that a later execution of the same notebook, once finished (:func:`run_job` marks
    it), supersedes them (:func:`audiorepro.results.records.superseded`). Yields the execution
    ``{"notebook", "id"}``; the environment is restored after."""
    from audiorepro.results import new_run_group
    from audiorepro.results.records import EXECUTION_ENV, NOTEBOOK_ENV

    label = f"{job.notebook.parent.name}/{job.notebook.stem}" + (f" [{job.variant}]" if job.variant else "")
    execution = {"notebook": label, "id": new_run_group()}
    values = {NOTEBOOK_ENV: execution["notebook"], EXECUTION_ENV: execution["id"]}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)             # the kernel papermill starts inherits the environment
    try:
        yield execution
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_job(job: Job, lib_hash: str | None = None) -> Outcome:
    """Execute one job with papermill; write the done marker only on success."""
    import papermill

    job.marker.unlink(missing_ok=True)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    digest = job_hash(job, lib_hash)
    t0 = time.perf_counter()
    try:
        with execution_env(job) as execution:
            papermill.execute_notebook(str(job.notebook), str(job.output), parameters=job.parameters,
                                       kernel_name=KERNEL, cwd=str(job.notebook.parent),
                                       progress_bar=False, log_output=False)
        from audiorepro.results.records import mark_execution_complete
        mark_execution_complete(execution)   # finished: its records may now supersede older ones
    except Exception as exc:  # noqa: BLE001 - every failure is reported, the others still run
        return Outcome(job, "failed", time.perf_counter() - t0, _error_text(exc))
    duration = time.perf_counter() - t0
    _postprocess(job.output, job.variant)
    marker = {"hash": digest, "profile": job.profile, "variant": job.variant,
              "params_file": str(job.params_file) if job.params_file else None,
              "parameters": job.parameters, "duration_s": round(duration, 3),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_text(job.marker, json.dumps(marker, indent=1, default=str))
    return Outcome(job, "ran", duration)


def execute(layout: Layout, profile: str = "book", only: str | None = None, force: bool = False,
            log=print) -> list[Outcome]:
    """Run every notebook of ``profile`` whose hash changed (all with ``force``).

    The pages that read the results registry (each chapter's verdicts, the summary:
    :func:`reads_registry`) run after every other notebook, in toc order among themselves: their
    done marker holds the registry's state, so a verdicts page run before a later chapter recorded
    its results would be stale at once, and the build would refuse the book."""
    jobs = plan(layout, profile, only)
    jobs = sorted(jobs, key=lambda j: reads_registry(j.notebook))   # stable: toc order kept
    if not jobs:
        log(f"no notebooks under {layout.book}" + (f" matching {only!r}" if only else ""))
    lib_hash = library_hash()
    outcomes = []
    for i, job in enumerate(jobs, 1):
        head = f"[{i}/{len(jobs)}] {job.notebook.relative_to(layout.book).as_posix()}" + (
            f" [{job.variant}]" if job.variant else "")
        marker = read_marker(job, log)
        if not force and marker and marker.get("hash") == job_hash(job, lib_hash) \
                and job.output.is_file():
            log(f"{head}: unchanged, skipped (done marker {job.marker.name})")
            outcomes.append(Outcome(job, "skipped"))
            continue
        source = job.params_file.name if job.params_file else "defaults"
        log(f"{head}: running (profile {profile}, parameters {source}) ...")
        out = run_job(job, lib_hash)
        if out.status == "failed":
            log(f"{head}: FAILED after {out.duration_s:.1f} s: {out.error}")
        else:
            log(f"{head}: ok in {out.duration_s:.1f} s")
        outcomes.append(out)
    return outcomes


# ------------------------------------------------------------------------------- timings
def timings(layout: Layout, profile: str = "book") -> "pd.DataFrame":
    """Wall time of each execution of ``profile`` as its done marker recorded it.

    Returns a DataFrame with ``notebook``, ``variant``, ``seconds`` (None when never run),
    ``status`` (``current`` | ``stale`` | ``not run``: stale = the notebook, its parameters or the
    library changed since) and ``finished``. A marker times the *last* run: after a rerun that found
    cached training runs it is shorter than a run from scratch (``AUDIOREPRO_HOME`` pointing at an
    empty folder times that).
    """
    import pandas as pd

    lib_hash = library_hash()
    rows = []
    for job in plan(layout, profile):
        marker = read_marker(job)
        if marker is None or marker.get("profile") != profile:
            status, seconds, finished = "not run", None, None
        else:
            status = "current" if marker.get("hash") == job_hash(job, lib_hash) else "stale"
            seconds, finished = float(marker.get("duration_s", 0.0)), marker.get("finished")
        rows.append({"notebook": job.notebook.relative_to(layout.book).as_posix(),
                     "variant": job.variant or "", "seconds": seconds, "status": status,
                     "finished": finished})
    return pd.DataFrame(rows, columns=["notebook", "variant", "seconds", "status", "finished"])


# ------------------------------------------------------------------------------- check
def check(layout: Layout) -> list[str]:
    """Problems with the book's notebooks, parameter files and toc (empty list = all good).

    Notebooks without a parameter guard cell are listed by :func:`guard_warnings` (problems only
    when :data:`REQUIRE_PARAMETER_GUARD` is set)."""
    problems, warnings = _check(layout)
    return problems + (warnings if REQUIRE_PARAMETER_GUARD else [])


def guard_warnings(layout: Layout) -> list[str]:
    """Notebooks without a parameter guard cell (``tools/add_parameter_guard.py`` adds it)."""
    return _check(layout)[1]


def _check(layout: Layout) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    try:
        toc = set(toc_docnames(layout))
    except BookError as exc:
        return [str(exc)], []
    try:
        if not toc_is_current(layout.root, layout.toc):
            problems.append(f"{layout.toc.name}: not the table of contents generated from the book/ "
                            "folders (run `python -m audiorepro.book toc`)")
    except BookError as exc:
        problems.append(str(exc))
    for nb_path in find_notebooks(layout):
        rel = nb_path.relative_to(layout.root)
        try:
            nb = read_notebook(nb_path)
        except BookError as exc:
            problems.append(str(exc))
            continue
        tagged = [i for i, c in enumerate(nb.get("cells", []))
                  if PARAMS_TAG in c.get("metadata", {}).get("tags", [])]
        if len(tagged) != 1:
            problems.append(f"{rel}: {len(tagged)} cells tagged '{PARAMS_TAG}' (want exactly 1)")
        kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
        if kernel != KERNEL:
            problems.append(f"{rel}: kernelspec name {kernel!r} (want {KERNEL!r})")
        dirty = [i for i, c in enumerate(nb.get("cells", [])) if c.get("cell_type") == "code"
                 and (c.get("outputs") or c.get("execution_count") is not None)]
        if dirty:
            problems.append(f"{rel}: outputs committed in cells {dirty} (clear them)")
        if _docname(layout, nb_path) not in toc:
            problems.append(f"{rel}: not listed in {layout.toc.name}")
        if len(tagged) != 1:
            continue
        try:
            declared = notebook_defaults(nb, str(rel))
        except BookError as exc:
            problems.append(str(exc))
            continue
        unparsed = sorted(set(declared) - set(notebook_parameters(nb_path)))
        if unparsed:
            problems.append(f"{rel}: papermill cannot parse parameter(s) {unparsed} (one "
                            "`name = value  # comment` per line, no quotes or '=' in comments)")
        guard_errors, guard_missing = guard_problems(nb, str(rel))
        problems += guard_errors
        warnings += guard_missing
        try:
            spec = guard_spec(nb, str(rel)) or GuardSpec()
        except BookError:  # reported by guard_problems
            spec = GuardSpec()
        for profile in PROFILES:
            for _variant, pfile in param_files(nb_path, profile):
                if pfile is None:
                    continue
                try:
                    params = load_param_file(pfile)
                except BookError as exc:
                    problems.append(str(exc))
                    continue
                prel = pfile.relative_to(layout.root)
                unknown = {k: v for k, v in params.items() if k not in declared}
                problems += [f"{prel}: {p} (notebook {rel})"
                             for p in parameter_problems(declared, unknown, spec)]
                # types and ranges: errors once the notebook has its guard cell (whose types=
                # tools/add_parameter_guard.py widens to what the parameter files use)
                typed = [f"{prel}: {p} (notebook {rel})" for p in parameter_problems(
                    declared, {k: v for k, v in params.items() if k in declared}, spec)]
                if guard_missing:
                    warnings += [f"{t}; tools/add_parameter_guard.py would allow it" for t in typed]
                else:
                    problems += typed
                # a file may say "smoke": the page has no protocol of that profile and runs at its
                # smoke defaults, recorded as smoke (never as a profile it did not run)
                if "profile" in declared and params.get("profile") not in (profile, "smoke"):
                    problems.append(f"{pfile.relative_to(layout.root)}: sets profile "
                                    f"{params.get('profile')!r}, want {profile!r} (records of a "
                                    "run by plain papermill -f would be mislabelled)")
    for name in sorted(toc):
        if not any((layout.root / f"{name}{s}").is_file() for s in (".md", ".ipynb")):
            problems.append(f"{layout.toc.name}: entry {name!r} has no file {name}.md / .ipynb")
    for pfile in sorted(layout.book.rglob("params/*.yaml")):
        if _skipped(pfile.relative_to(layout.book)):
            continue
        stem = pfile.name.split(".")[0]
        if not (pfile.parent.parent / f"{stem}.ipynb").is_file():
            problems.append(f"{pfile.relative_to(layout.root)}: no notebook {stem}.ipynb beside params/")
    return problems, warnings


# ------------------------------------------------------------------------------- mathjax
def mathjax_source(cache: Path | None = None) -> Path:
    """MathJax 3's ``es5`` folder as ``tools/book_setup.py mathjax`` installs it (npm package
    ``mathjax@3`` under ``cache/npm``); :class:`BookError` when it is not installed."""
    es5 = (cache or paths.cache_dir("npm")) / "node_modules" / "mathjax" / "es5"
    if not (es5 / MATHJAX_FILE).is_file():
        raise BookError(f"MathJax 3 is not installed ({es5 / MATHJAX_FILE} missing): "
                        "`make mathjax` (python tools/book_setup.py mathjax) installs it with npm")
    return es5


def copy_mathjax(layout: Layout, cache: Path | None = None) -> Path:
    """Copy the installed MathJax 3 (:func:`mathjax_source`) into ``book/_static/mathjax``.

    Copies ``es5/tex-mml-chtml.js`` and the CHTML web fonts it loads relative to its own location
    (``output/chtml/fonts/woff-v2``). Returns the copied script.
    """
    es5 = mathjax_source(cache)
    dest = layout.mathjax_dir
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(es5 / MATHJAX_FILE, dest / MATHJAX_FILE)
    fonts = es5 / MATHJAX_FONTS
    if fonts.is_dir():
        shutil.copytree(fonts, dest / MATHJAX_FONTS, dirs_exist_ok=True)
    return dest / MATHJAX_FILE


def machine_strings() -> tuple[str, ...]:
    """Strings that give away the machine a page was executed on: the project home, the Python
    environment, the user's home and temporary folders."""
    import os
    out = {str(paths.home()) + "/", sys.prefix + "/", tempfile.gettempdir() + "/",
           os.path.expanduser("~") + "/"}
    return tuple(sorted(x for x in out if len(x) > 2))


#: a Python warning as printed on stderr (``<file>:<line>: UserWarning: ...``) or a traceback
_WARNING_LINE = re.compile(r"\b\w*Warning: |^Traceback \(most recent call last\)", re.M)


def page_problems(notebooks: Iterable[Path], machine: Sequence[str] | None = None) -> list[str]:
    """What an executed page must not show: a Python warning or traceback on stderr (a
    progress-bar complaint, a library's warning), or a machine path (:func:`machine_strings`) in
    any output. The library's own log lines (which file was left out and why) may stay. One line
    per (notebook, cell)."""
    machine = machine_strings() if machine is None else tuple(machine)
    problems = []
    for path in notebooks:
        try:
            nb = json.loads(Path(path).read_text(encoding="utf8"))
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(f"{path}: cannot read ({exc})")
            continue
        for i, cell in enumerate(nb.get("cells", [])):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    text = "".join(out.get("text", ""))
                    hit = _WARNING_LINE.search(text)
                    if hit is not None:
                        line = text[text.rfind("\n", 0, hit.start()) + 1:].splitlines()[0]
                        problems.append(f"{Path(path).name} cell {i}: stderr: {line[:160]}")
                texts = [out.get("text", "")] + list((out.get("data") or {}).values())
                blob = "".join("".join(t) if isinstance(t, list) else str(t) for t in texts)
                # an absolute path: not the tail of a relative one (cache/debian/root/...)
                hit = next((m for m in machine
                            if re.search(r"(?<![\w.\-])" + re.escape(m), blob)), None)
                if hit is not None:
                    problems.append(f"{Path(path).name} cell {i}: shows the machine path {hit!r}")
    return problems


def external_mathjax(html_dir: Path) -> list[str]:
    """``file: url`` for every script tag in the built HTML that loads MathJax from a URL."""
    pattern = re.compile(r"<script[^>]*\bsrc=[\"']((?:https?:)?//[^\"']*mathjax[^\"']*)[\"']",
                         re.IGNORECASE)
    bad = []
    for page in sorted(html_dir.rglob("*.html")):
        for url in pattern.findall(page.read_text(encoding="utf8", errors="replace")):
            bad.append(f"{page.relative_to(html_dir)}: {url}")
    return bad


# ------------------------------------------------------------------------------- build
def build_status(layout: Layout, toc: set[str]) -> tuple[list[Job], list[str], list[str]]:
    """Jobs to stage and their problems: (jobs, errors, stale) for notebooks listed in the toc."""
    lib_hash = library_hash()
    jobs, errors, stale = [], [], []
    for nb in find_notebooks(layout):
        if _docname(layout, nb) not in toc:
            continue
        rel = nb.relative_to(layout.book)
        base = layout.executed / rel
        marker_path = base.with_name(base.name + ".done")
        if not base.is_file():
            errors.append(f"{rel}: not executed (run `python -m audiorepro.book execute`)")
            continue
        try:
            marker = load_marker(marker_path)
        except BookError as exc:
            errors.append(f"{rel}: {exc} (rerun `python -m audiorepro.book execute --only {rel}`)")
            continue
        if marker is None:
            errors.append(f"{rel}: executed copy has no done marker (its last run failed)")
            continue
        profile = marker.get("profile", "book")
        for job in plan(layout, profile, only=rel.as_posix()):
            if job.notebook != nb:
                continue
            label = f"{rel} [{job.variant}]" if job.variant else str(rel)
            try:
                m = load_marker(job.marker)
            except BookError as exc:
                errors.append(f"{label}: {exc} (rerun `python -m audiorepro.book execute`)")
                continue
            if m is None:
                errors.append(f"{label}: no successful run for profile {profile!r}")
                continue
            if m.get("hash") != job_hash(job, lib_hash):
                stale.append(f"{label}: executed copy is stale (notebook, parameters or library "
                             f"changed since its {profile!r} run)")
            jobs.append(job)
    return jobs, errors, stale


def stage(layout: Layout, jobs: Sequence[Job]) -> Path:
    """Write ``_build/source``: config, toc (+ variant pages) and book/ with executed notebooks."""
    src = layout.staging
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)

    ignore = shutil.ignore_patterns("_executed", ".ipynb_checkpoints", "__pycache__")
    shutil.copytree(layout.book, src / "book", ignore=ignore)
    variants: dict[str, list[str]] = {}
    for job in jobs:
        rel = job.output.relative_to(layout.executed)
        shutil.copy2(job.output, src / "book" / rel)
        if job.variant:
            base = _docname(layout, job.notebook)
            variants.setdefault(base, []).append(f"book/{rel.with_suffix('').as_posix()}")
    shutil.copy2(layout.config, src / "_config.yml")
    toc = yaml.safe_load(layout.toc.read_text(encoding="utf8"))

    def add(entries: list[dict]) -> None:
        for entry in entries or []:
            name = _strip_suffix(entry.get("file", ""))
            if name in variants:
                entry.setdefault("sections", []).extend({"file": v} for v in variants[name])
            for key in ("sections", "chapters"):
                add(entry.get(key, []))

    add(toc.get("parts", []))
    add(toc.get("chapters", []))
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf8")
    return src


def jupyter_book_command(source: Path, output_root: Path) -> list[str]:
    """``jupyter-book build`` with all Sphinx warnings fatal (reported together)."""
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
            "build", str(source), "--path-output", str(output_root), "--builder", "html",
            "--all", "-W", "--keep-going"]


def build(layout: Layout, allow_stale: bool = False, log=print) -> Path:
    """Regenerate ``_toc.yml``, stage executed notebooks and build the HTML book into
    ``_build/html``; return its folder."""
    if write_toc(layout.root, layout.toc):
        log(f"{layout.toc.name} regenerated from the book/ folders")
    problems = check(layout)
    if problems:
        raise BookError("book check failed:\n  " + "\n  ".join(problems))
    toc = set(toc_docnames(layout))
    jobs, errors, stale = build_status(layout, toc)
    if stale and not allow_stale:
        errors += stale
    for msg in stale if allow_stale else []:
        log(f"warning: {msg}")
    if errors:
        raise BookError("cannot build the book:\n  " + "\n  ".join(errors))
    dirty = page_problems(j.output for j in jobs)
    if dirty:
        raise BookError("executed pages show warnings or machine paths (fix the code that prints "
                        "them):\n  " + "\n  ".join(dirty[:60]))
    if not (layout.mathjax_dir / MATHJAX_FILE).is_file():
        raise BookError(f"no local MathJax at {layout.mathjax_dir / MATHJAX_FILE}: run "
                        "`make mathjax` first")
    src = stage(layout, jobs)
    cmd = jupyter_book_command(src, layout.root)
    log("$ jupyter-book " + " ".join(cmd[3:]))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=layout.root)
    log_path = layout.build_dir / "build.log"
    log_path.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr, encoding="utf8")
    if proc.returncode != 0:
        warnings = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                    if "WARNING" in ln or "ERROR" in ln or "Error" in ln]
        raise BookError(f"jupyter-book build failed ({proc.returncode}); full log {log_path}:\n  "
                        + "\n  ".join(warnings[-40:] or proc.stderr.splitlines()[-40:]))
    bad = external_mathjax(layout.html)
    if bad:
        raise BookError("built HTML loads MathJax from an external URL:\n  " + "\n  ".join(bad))
    if not (layout.html / "_static" / "mathjax" / MATHJAX_FILE).is_file():
        raise BookError(f"MathJax missing from the built static files {layout.html / '_static'}")
    log(f"built {layout.html / 'index.html'} ({len(list(layout.html.rglob('*.html')))} pages)")
    return layout.html


# ------------------------------------------------------------------------------- screenshot
SCREENSHOT_PAGES = {"index": "book/index.html", "data": "book/intro/data.html",
                    "summary": "book/summary/claims.html"}
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--window-size=1280,2000")


def find_chromium() -> str | None:
    """Path of an installed Chromium / Chrome (``tools/book_setup.py chromium`` installs one)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(layout: Layout, pages: dict[str, str] | None = None, log=print) -> list[Path]:
    """PNG screenshots of built pages into ``_build/screenshots/``; [] (one line said) when no
    Chromium is installed."""
    pages = pages or SCREENSHOT_PAGES
    browser = find_chromium()
    if browser is None:
        log("screenshot skipped: no chromium browser installed (`make chromium` installs the Debian "
            "package when run as root). This is a check, not a build failure.")
        return []
    out_dir = layout.build_dir / "screenshots"
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    for name, rel in pages.items():
        page = layout.html / rel
        if not page.is_file():
            raise BookError(f"screenshot: no built page {page} (run `python -m audiorepro.book build`)")
        png = out_dir / f"{name}.png"
        png.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile_dir:
            cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}",
                   "--virtual-time-budget=5000", f"--screenshot={png}", page.resolve().as_uri()]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
            except subprocess.TimeoutExpired as exc:
                raise BookError(f"screenshot of {page} timed out") from exc
        if not png.is_file() or png.stat().st_size == 0:
            raise BookError(f"chromium made no screenshot of {page} ({proc.returncode}): "
                            f"{proc.stderr.strip()[-2000:]}")
        log(f"screenshot {png} ({png.stat().st_size // 1024} KiB)")
        shots.append(png)
    return shots


# ------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m audiorepro.book``."""
    parser = argparse.ArgumentParser(prog="python -m audiorepro.book", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="book root (default: the checkout)")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="run notebooks with papermill into book/_executed/")
    ex.add_argument("--profile", default="book", choices=PROFILES)
    ex.add_argument("--only", default=None, help="glob or substring of book/<chapter>/<stem>.ipynb")
    ex.add_argument("--force", action="store_true", help="ignore done markers")
    pc = sub.add_parser("paper-check", help="the paper profile on official-format miniatures with "
                        "shrunken budgets (params/<stem>.papercheck.yaml)")
    pc.add_argument("--only", default=None, help="glob or substring of <chapter>/<stem>.ipynb "
                    "(atgnn/ runs one chapter)")
    sub.add_parser("toc", help="write _toc.yml, generated from the book/ folders")
    sub.add_parser("mathjax", help="copy the installed MathJax 3 (make mathjax) into book/_static/mathjax")
    bd = sub.add_parser("build", help="build the HTML book from the executed copies")
    bd.add_argument("--allow-stale", action="store_true", help="warn instead of failing on stale copies")
    sub.add_parser("screenshot", help="PNG of the intro and summary pages (needs chromium)")
    sub.add_parser("check", help="check notebook conventions and the toc")
    tm = sub.add_parser("timings", help="wall time of each notebook of a profile (from done markers)")
    tm.add_argument("--profile", default="book", choices=PROFILES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    layout = Layout((args.root or default_root()).resolve())
    try:
        if args.command == "execute":
            t0 = time.perf_counter()
            outcomes = execute(layout, args.profile, args.only, args.force)
            failed = [o for o in outcomes if o.status == "failed"]
            ran = sum(o.status == "ran" for o in outcomes)
            skipped = sum(o.status == "skipped" for o in outcomes)
            print(f"execute: {ran} ran, {skipped} skipped, {len(failed)} failed "
                  f"in {time.perf_counter() - t0:.1f} s")
            if failed:
                print("FAILED notebooks:", file=sys.stderr)
                for o in failed:
                    print(f"  {o.job.notebook}{f' [{o.job.variant}]' if o.job.variant else ''}: "
                          f"{o.error} (executed copy with traceback: {o.job.output})", file=sys.stderr)
                return 1
        elif args.command == "paper-check":
            from .paper_check import run as paper_check

            t0 = time.perf_counter()
            checked = paper_check(layout, args.only)
            failed = [c for c in checked if c.problems]
            print(f"paper-check: {len(checked) - len(failed)} passed, {len(failed)} failed "
                  f"in {time.perf_counter() - t0:.1f} s")
            if failed:
                print("FAILED:", file=sys.stderr)
                for c in failed:
                    print(f"  {c.notebook}:" + "".join(f"\n    - {p}" for p in c.problems),
                          file=sys.stderr)
                return 1
        elif args.command == "toc":
            changed = write_toc(layout.root, layout.toc)
            print(f"{layout.toc}: {'written' if changed else 'unchanged'}")
        elif args.command == "mathjax":
            print(f"MathJax: {copy_mathjax(layout)}")
        elif args.command == "build":
            build(layout, allow_stale=args.allow_stale)
        elif args.command == "screenshot":
            screenshot(layout)
        elif args.command == "check":
            problems, warnings = _check(layout)
            if REQUIRE_PARAMETER_GUARD:
                problems, warnings = problems + warnings, []
            for p in problems:
                print(f"  - {p}")
            for w in warnings:
                print(f"  warning: {w}")
            print(f"check: {len(problems)} problem(s), {len(warnings)} warning(s)")
            return 1 if problems else 0
        elif args.command == "timings":
            table = timings(layout, args.profile)
            print(table.to_string(index=False, na_rep="-"))
            done = table["seconds"].notna()
            print(f"timings ({args.profile}): {table.loc[done, 'seconds'].sum() / 60:.1f} min over "
                  f"{int(done.sum())} of {len(table)} executions "
                  f"({int((table['status'] == 'stale').sum())} stale)")
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

