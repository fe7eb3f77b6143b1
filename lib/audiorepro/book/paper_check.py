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
record for one of its rows (e.g. a row recorded under another name), or when a record written by
a notebook does not name the miniature or clip table it was pointed at (``dataset`` or ``params``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import BookError

SUFFIX = "papercheck"   # not <stem>.paper-<variant>.yaml: that would be a variant of the paper profile
DATA_KEYS = ("data_root", "clip_table", "tmac_file", "features_file")


@dataclass
class CheckResult:
    """Outcome of one notebook: ``problems`` empty means it passed."""

    notebook: str
    status: str
    duration_s: float = 0.0
    problems: list[str] = field(default_factory=list)


def check_home(root: Path) -> Path:
    """The private home of the check (``$AUDIOREPRO_HOME`` if set, else ``<root>/_paper_check``)."""
    env = os.environ.get("AUDIOREPRO_HOME")
    return Path(env).resolve() if env else (root / "_paper_check").resolve()


def prepare(home: Path, checkpoints: set[str] | None = None, log: Callable[[str], None] = print) -> None:
    """Build every miniature (and its adapter's clip table) and write the official-format
    checkpoint files named in ``checkpoints`` (official file names; ``None``: all) into ``home``."""
    from audiorepro.backbones.official import (OFFICIAL_CHECKPOINTS, write_official_checkpoint,
                                               write_vggish_pca_params)
    from audiorepro.data import miniatures

    from audiorepro.data.adapters import adapt

    t0 = time.perf_counter()
    roots = miniatures.build_all()
    tables = home / "data" / "miniature_tables"
    for name, root in roots.items():
        out = tables / f"{name}.csv"
        if not out.is_file() or out.stat().st_mtime < (root / "MINIATURE.txt").stat().st_mtime:
            adapt(miniatures.get_spec(name).adapter, root, out_csv=out,
                  **miniatures.adapter_options(name, root))
    ckpt = home / "checkpoints"
    for name, spec in OFFICIAL_CHECKPOINTS.items():
        if checkpoints is None or spec.file_name in checkpoints:
            write_official_checkpoint(name, ckpt)
    if checkpoints is None or "vggish_pca_params-970ea276.pth" in checkpoints:
        write_vggish_pca_params(ckpt)
    log(f"paper-check: miniatures in {home / 'data' / 'miniatures'}, official-format checkpoints in "
        f"{ckpt} ({time.perf_counter() - t0:.1f} s)")


def _new_records(since: float) -> list[dict[str, Any]]:
    from audiorepro.results.records import _read_all

    return [r for r in _read_all("result") if _epoch(r.get("timestamp", "")) >= since]


def _epoch(stamp: str) -> float:
    from datetime import datetime
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


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
            lost = [row for row in needed if row not in have]
            if lost:
                problems.append(f"{paper} claim {claim['id']}: table {table} has records, but none "
                                f"of {test.get('metric')} for rows {lost} (recorded rows: {sorted(have)})")
    return problems


def run(layout: Any, only: str | None = None, log: Callable[[str], None] = print) -> list[CheckResult]:
    """Execute every paper job (variants too) that has a ``<stem>.papercheck[-<variant>].yaml``
    and check its records."""
    from . import Job, load_param_file, param_files, plan, run_job, validate_parameters
    from .parameters import read_notebook

    home = check_home(layout.root)
    os.environ["AUDIOREPRO_HOME"] = str(home)     # the kernels inherit it
    home.mkdir(parents=True, exist_ok=True)
    jobs = []
    for job in plan(layout, "paper", only):
        tail = f"-{job.variant}" if job.variant else ""
        override = job.notebook.parent / "params" / f"{job.notebook.stem}.{SUFFIX}{tail}.yaml"
        if not override.is_file():
            continue
        params = {**job.parameters, **load_param_file(override), "profile": "paper"}
        validate_parameters(job.notebook, params, override, read_notebook(job.notebook))
        out = (layout.root / "_build" / "paper_check" / job.notebook.relative_to(layout.book).parent
               / f"{job.notebook.stem}{tail}.ipynb")
        jobs.append(Job(job.notebook, "paper", job.variant, override, params, out))
    if not jobs:
        raise BookError(f"no notebook under {layout.book} has a params/<stem>.{SUFFIX}.yaml"
                        + (f" matching {only!r}" if only else ""))
    named = {Path(v).name for job in jobs for v in _strings(job.parameters)
             if v.startswith("checkpoints/")}
    prepare(home, named, log)
    results, all_new = [], []
    for i, job in enumerate(jobs, 1):
        name = job.notebook.relative_to(layout.book).as_posix()
        log(f"[{i}/{len(jobs)}] {name}: paper profile + {job.params_file.name} ...")
        since = time.time() - 1.0
        outcome = run_job(job)
        res = CheckResult(name, outcome.status, outcome.duration_s)
        if outcome.status == "failed":
            res.problems.append(f"raised: {outcome.error} (executed copy: {job.output})")
        else:
            new = [r for r in _new_records(since) if r.get("profile") == "paper"]
            all_new += new
            pointers = [str(v) for k, v in job.parameters.items() if k in DATA_KEYS and v]
            for rec in new:
                if pointers and not _names_data(rec, pointers):
                    res.problems.append(f"record {rec.get('record_id')} ({rec['chapter']}/{rec['table']}) "
                                        f"names dataset {rec.get('dataset')!r}, not the data it was "
                                        f"pointed at ({', '.join(pointers)})")
            if not new:
                res.problems.append("wrote no paper-profile record")
        log(f"    {'ok' if not res.problems else 'FAILED'} in {res.duration_s:.1f} s"
            + "".join(f"\n      - {p}" for p in res.problems))
        results.append(res)
    for problem in missing_claim_rows(all_new):
        results.append(CheckResult("claims", "failed", 0.0, [problem]))
        log(f"  - {problem}")
    return results
