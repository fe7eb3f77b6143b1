"""``paper-check``: the paper profile, executed on official-format miniatures with shrunken budgets.

The paper profile (``book/<chapter>/params/<stem>.paper.yaml``) is what a researcher with the
official datasets, checkpoints and a GPU runs. It cannot run here at full size, so ``paper-check``
proves the same code path: for every notebook that has ``params/<stem>.papercheck.yaml`` (or
``<stem>.papercheck-<variant>.yaml`` for the paper variant ``<stem>.paper-<variant>.yaml``), it runs
the notebook with the paper parameters updated by that file. The override may only

* shrink budgets (epochs, iterations, clips per split, seeds, repeats), and
* point the data and checkpoint parameters at the miniatures (``data/miniatures/<dataset>``, built
  by :mod:`audiorepro.data.miniatures` in the official layout; ``data/miniature_tables/<dataset>.csv``
  is the clip table the dataset's adapter makes of it, as a user makes one of the real dataset) and
  at official-format checkpoint files written from random weights (``checkpoints/<official file
  name>``, by :mod:`audiorepro.backbones.official`);

protocol, front end and model sizes stay the paper's wherever one CPU step allows. Everything runs
in a private ``AUDIOREPRO_HOME`` (``_paper_check/`` in the checkout unless the variable is set), so
no paper-check record ever reaches the book's registry.

It fails when a notebook raises, when a claim of ``paper.yml`` whose table the run recorded lacks a
record for one of its rows (e.g. a row recorded under another name), when a record written by
a notebook does not name the miniature or clip table it was pointed at (``dataset`` or ``params``),
or when a notebook expected to record wrote no paper-profile record.

Two keys of an override are read by the runner and removed before the notebook sees the
parameters (:data:`RUNNER_KEYS`):

* ``expect_records: false`` - the notebook writes no result record on its paper path (e.g. the
  shared backbones page, which loads and summarises the official checkpoints); it passes when it
  runs without error;
* ``reads_records: true`` - the notebook only reads what the other notebooks of the check wrote
  (the summary of every claim's verdict): it runs after every other selected notebook, is not
  expected to write a record, and its line in the summary says how many paper-profile records
  and verdicts the private home held.

Only the miniatures the selected parameters point at (``data/miniatures/<name>`` or
``data/miniature_tables/<name>.csv``; the whole ``data/miniatures`` folder: all of them) and the
checkpoint files they name (``checkpoints/<file>``) are prepared, so ``--only <chapter>/`` builds
only what that chapter reads. The run ends with one table: notebook, status, wall seconds, the
kernel's CPU seconds (what the machine's load does not inflate: :class:`KernelCPU`) and the
number of records written.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import BookError

SUFFIX = "papercheck"   # not <stem>.paper-<variant>.yaml: that would be a variant of the paper profile
DATA_KEYS = ("data_root", "clip_table", "tmac_file", "features_file")
#: override keys the runner reads (and removes before execution) -> their default
RUNNER_KEYS: dict[str, bool] = {"expect_records": True, "reads_records": False}
#: the kernel CPU time one notebook may take (25 s of wall time on two idle cores, kernel start
#: included); a longer one is flagged in the summary, not failed (loaded machines differ)
CPU_BUDGET_S = 35.0
_MINIATURE = re.compile(r"data/miniature(?:s|_tables)(?:/([A-Za-z0-9_]+))?")


@dataclass
class CheckResult:
    """Outcome of one notebook: ``problems`` empty means it passed."""

    notebook: str
    status: str
    duration_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    cpu_s: float | None = None      #: CPU seconds of the kernel (None where not measurable)
    records: int = 0                #: paper-profile result records the notebook wrote
    note: str = ""


@dataclass
class Options:
    """The runner's keys of one override (:data:`RUNNER_KEYS`)."""

    expect_records: bool = True
    reads_records: bool = False


def split_override(data: dict[str, Any], source: Path) -> tuple[dict[str, Any], Options]:
    """(notebook parameters, runner options) of an override's mapping; :class:`BookError` naming
    the file when a runner key is not a boolean."""
    params, found = dict(data), {}
    for key, default in RUNNER_KEYS.items():
        value = params.pop(key, default)
        if not isinstance(value, bool):
            raise BookError(f"{source}: {key} must be true or false, got {value!r}")
        found[key] = value
    opts = Options(**found)
    if opts.reads_records:
        opts.expect_records = False
    return params, opts


def check_home(root: Path) -> Path:
    """The private home of the check (``$AUDIOREPRO_HOME`` if set, else ``<root>/_paper_check``)."""
    env = os.environ.get("AUDIOREPRO_HOME")
    return Path(env).resolve() if env else (root / "_paper_check").resolve()


def miniatures_named(parameters: dict[str, Any], source: Path | str) -> set[str] | None:
    """Miniatures a notebook's parameters point at (``data/miniatures/<name>``,
    ``data/miniature_tables/<name>.csv``); ``None`` when one points at the whole folder.
    :class:`BookError` naming ``source`` for an unknown miniature."""
    from audiorepro.data.miniatures import MINIATURES

    names: set[str] = set()
    for value in _strings(parameters):
        for m in _MINIATURE.finditer(value):
            if m.group(1) is None:
                return None
            if m.group(1) not in MINIATURES:
                raise BookError(f"{source}: {value!r} points at no miniature {m.group(1)!r}; "
                                f"known: {sorted(MINIATURES)}")
            names.add(m.group(1))
    return names


def prepare(home: Path, checkpoints: set[str] | None = None, miniatures: set[str] | None = None,
            log: Callable[[str], None] = print) -> float:
    """Build the miniatures named in ``miniatures`` (manifest keys; ``None``: all) with their
    adapter's clip tables and write the official-format checkpoint files named in
    ``checkpoints`` (official file names; ``None``: all) into ``home``; returns the seconds."""
    from audiorepro.backbones.official import (OFFICIAL_CHECKPOINTS, write_official_checkpoint,
                                               write_vggish_pca_params)
    from audiorepro.data import miniatures as mini
    from audiorepro.data.adapters import adapt

    t0 = time.perf_counter()
    if miniatures is not None and not miniatures:
        roots = {}
    else:
        roots = mini.build_all(home / "data" / "miniatures",
                               only=sorted(miniatures) if miniatures is not None else None)
    tables = home / "data" / "miniature_tables"
    for name, root in roots.items():
        out = tables / f"{name}.csv"
        if not out.is_file() or out.stat().st_mtime < (root / "MINIATURE.txt").stat().st_mtime:
            adapt(mini.get_spec(name).adapter, root, out_csv=out,
                  **mini.adapter_options(name, root))
    ckpt = home / "checkpoints"
    for name, spec in OFFICIAL_CHECKPOINTS.items():
        if checkpoints is None or spec.file_name in checkpoints:
            write_official_checkpoint(name, ckpt)
    if checkpoints is None or "vggish_pca_params-970ea276.pth" in checkpoints:
        write_vggish_pca_params(ckpt)
    seconds = time.perf_counter() - t0
    log(f"paper-check: {len(roots)} miniature(s) in {home / 'data' / 'miniatures'}"
        + (f" ({', '.join(sorted(roots))})" if roots else "")
        + f", {'all' if checkpoints is None else len(checkpoints)} official-format checkpoint "
          f"file(s) in {ckpt} ({seconds:.1f} s)")
    return seconds


def _result_records() -> list[dict[str, Any]]:
    from audiorepro.results.records import _read_all

    return _read_all("result")


def _home_holds(profile: str = "paper") -> str:
    """What a reader found: the home's result records and stored verdicts of ``profile``."""
    from audiorepro.results.records import _read_all

    n_res = sum(r.get("profile") == profile for r in _read_all("result"))
    n_claims = sum(r.get("profile") == profile for r in _read_all("claim"))
    return f"read {n_res} {profile}-profile record(s) and {n_claims} verdict(s) of the home"


def _children_cpu() -> float | None:
    """CPU seconds of this process's finished and reaped children, None where unknown."""
    try:
        import resource
    except ImportError:        # not on Windows
        return None
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


class KernelCPU:
    """CPU seconds of the processes a job starts (the kernel): the larger of the reaped children's
    CPU time (``getrusage``, exact once the kernel was waited for, which a loaded machine can
    delay past the job) and the last CPU time sampled every ``every`` s from each descendant
    (``psutil``; misses at most the last interval). ``seconds`` is None when neither is available."""

    def __init__(self, every: float = 0.2):
        import threading

        self.every, self.seconds = every, None
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.wait(self.every):
            for child in me.children(recursive=True):
                try:
                    t = child.cpu_times()
                    self._last[child.pid] = t.user + t.system
                except psutil.Error:        # ended between listing and reading
                    pass

    def __enter__(self) -> "KernelCPU":
        self._reaped = _children_cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        after = _children_cpu()
        found = [sum(self._last.values())] if self._last else []
        if after is not None and self._reaped is not None:
            found.append(after - self._reaped)
        self.seconds = max(found) if found else None


def _names_data(rec: dict[str, Any], pointers: list[str]) -> bool:
    text = " ".join([str(rec.get("dataset", "")), *map(str, rec.get("params", {}).values())])
    return any(p in text or Path(p).name in text for p in pointers)


def _strings(value: Any) -> list[str]:
    """Every string inside a parameter value (dicts and lists walked)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def missing_claim_rows(records: list[dict[str, Any]]) -> list[str]:
    """Claims whose table has records in ``records`` but not one of the rows the claim compares."""
    from audiorepro.results import claims, paper_names

    problems = []
    for paper in paper_names():
        recs = [r for r in records if r["chapter"] == paper]
        for claim in claims(paper):
            test = claim["test"]
            table = test.get("table")
            in_table = [r for r in recs if r["table"] == table]
            if not in_table or test.get("kind") == "manual":
                continue
            if test["kind"] == "comparison":
                worse = test["worse"] if isinstance(test["worse"], list) else [test["worse"]]
                needed = [test["better"], *worse]
            elif test["kind"] == "spread":
                needed = list(test["rows"])
            else:
                needed = [test["row"]]
            have = {str(r.get("params", {}).get("paper_row") or r.get("model", ""))
                    for r in in_table if test.get("metric") in r.get("metrics", {})}
            ran = {str(r.get("params", {}).get("paper_row") or r.get("model", "")) for r in in_table}
            if test.get("rows_of_this_run") and not ran & set(needed):
                continue    # rows of the book's own setups (stand-ins), which this run did not run
            lost = [row for row in needed if row not in have]
            if lost:
                problems.append(f"{paper} claim {claim['id']}: table {table} has records, but none "
                                f"of {test.get('metric')} for rows {lost} (recorded rows: {sorted(have)})")
    return problems


def summary_table(results: list[CheckResult], prepare_s: float = 0.0) -> str:
    """The table the run ends with: one line per notebook (status, wall and kernel CPU seconds,
    records written, note), the preparation, and the totals."""
    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    rows = [(r.notebook, "ok" if not r.problems else "FAILED", num(r.duration_s), num(r.cpu_s),
             str(r.records), r.note) for r in results]
    rows.append(("(preparation: miniatures, checkpoints)", "", num(prepare_s), "", "", ""))
    cpus = [r.cpu_s for r in results if r.cpu_s is not None]
    failed = sum(bool(r.problems) for r in results)
    rows.append((f"total: {len(results) - failed} ok, {failed} failed", "",
                 num(prepare_s + sum(r.duration_s for r in results)),
                 num(sum(cpus)) if cpus else "-", str(sum(r.records for r in results)), ""))
    head = ("notebook", "status", "wall s", "cpu s", "records", "note")
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head) - 1)]
    lines = []
    for j, row in enumerate((head, *rows)):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
        if j == 0 or j == len(rows) - 1:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _check_job(name: str, job: Any, opts: Options, outcome: Any, known: set[str]
               ) -> tuple[CheckResult, list[dict[str, Any]]]:
    """The result of one executed job (``name``: as the summary shows it) and the paper-profile
    records it wrote (those whose id is not in ``known``, the ids before it ran)."""
    res = CheckResult(name, outcome.status, outcome.duration_s)
    if outcome.status == "failed":
        res.problems.append(f"raised: {outcome.error} (executed copy: {job.output})")
        return res, []
    new = [r for r in _result_records()
           if r.get("record_id") not in known and r.get("profile") == "paper"]
    res.records = len(new)
    pointers = [str(v) for k, v in job.parameters.items() if k in DATA_KEYS and v]
    for rec in new:
        if pointers and not _names_data(rec, pointers):
            res.problems.append(f"record {rec.get('record_id')} ({rec['chapter']}/{rec['table']}) "
                                f"names dataset {rec.get('dataset')!r}, not the data it was "
                                f"pointed at ({', '.join(pointers)})")
    if opts.reads_records:
        res.note = _home_holds("paper")
    elif not new and opts.expect_records:
        res.problems.append(f"wrote no paper-profile record (an override key expect_records: "
                            f"false declares a notebook that records nothing: {job.params_file})")
    elif not new:
        res.note = "records nothing (expect_records: false)"
    return res, new


def run(layout: Any, only: str | None = None, log: Callable[[str], None] = print) -> list[CheckResult]:
    """Execute every paper job (variants too) that has a ``<stem>.papercheck[-<variant>].yaml``
    and check its records; readers (``reads_records: true``) run last. ``only``: a glob or a
    substring of ``<chapter>/<stem>.ipynb`` (``atgnn/`` selects a chapter)."""
    from . import Job, load_param_file, plan, run_job, validate_parameters
    from .parameters import read_notebook

    home = check_home(layout.root)
    os.environ["AUDIOREPRO_HOME"] = str(home)     # the kernels inherit it
    home.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Any, Options]] = []
    for job in plan(layout, "paper", only):
        tail = f"-{job.variant}" if job.variant else ""
        override = job.notebook.parent / "params" / f"{job.notebook.stem}.{SUFFIX}{tail}.yaml"
        if not override.is_file():
            continue
        given, opts = split_override(load_param_file(override), override)
        params = {**job.parameters, **given}
        if "profile" in params:          # declared by the notebook (plan sets it): always paper
            params["profile"] = "paper"
        validate_parameters(job.notebook, params, override, read_notebook(job.notebook))
        out = (layout.root / "_build" / "paper_check" / job.notebook.relative_to(layout.book).parent
               / f"{job.notebook.stem}{tail}.ipynb")
        jobs.append((Job(job.notebook, "paper", job.variant, override, params, out), opts))
    if not jobs:
        raise BookError(f"no notebook under {layout.book} has a params/<stem>.{SUFFIX}.yaml"
                        + (f" matching {only!r}" if only else ""))
    jobs.sort(key=lambda pair: pair[1].reads_records)        # stable: readers after the rest
    named = {Path(v).name for job, _ in jobs for v in _strings(job.parameters)
             if v.startswith("checkpoints/")}
    wanted: set[str] | None = set()
    for job, _ in jobs:
        found = miniatures_named(job.parameters, job.params_file)
        wanted = None if found is None or wanted is None else wanted | found
    prepare_s = prepare(home, named, wanted, log)
    results, all_new = [], []
    for i, (job, opts) in enumerate(jobs, 1):
        name = job.notebook.relative_to(layout.book).as_posix() + (
            f" [{job.variant}]" if job.variant else "")
        log(f"[{i}/{len(jobs)}] {name}: paper profile + {job.params_file.name} ...")
        known = {r.get("record_id") for r in _result_records()}
        with KernelCPU() as cpu:
            outcome = run_job(job)
        res, new = _check_job(name, job, opts, outcome, known)
        res.cpu_s = cpu.seconds
        all_new += new
        log(f"    {'ok' if not res.problems else 'FAILED'} in {res.duration_s:.1f} s"
            + (f" (kernel CPU {res.cpu_s:.1f} s)" if res.cpu_s is not None else "")
            + (f"; {res.note}" if res.note else "")
            + "".join(f"\n      - {p}" for p in res.problems))
        results.append(res)
    for problem in missing_claim_rows(all_new):
        results.append(CheckResult("claims", "failed", 0.0, [problem]))
        log(f"  - {problem}")
    for r in results:
        if r.cpu_s is not None and r.cpu_s > CPU_BUDGET_S and not r.note.startswith("over"):
            r.note = f"over the {CPU_BUDGET_S:.0f} s CPU budget" + (f"; {r.note}" if r.note else "")
    log(summary_table(results, prepare_s))
    return results
