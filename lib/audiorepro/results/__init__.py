"""Results registry: every score the book computes is appended to one table (in the spirit of EVAR).

Records
    One JSON file per record under ``audiorepro.paths.results_dir("records")``, written atomically
    (temporary file in the same folder + ``os.replace``) with a unique name made of the UTC time
    and a uuid, so concurrent writers (notebooks, DDP ranks, test processes) never corrupt each
    other and never need a lock. A *result* record holds the metrics of one run of one table
    row; a *claim* record holds a verdict on one of a paper's headline claims. Both carry the
    provenance of the run: git revision and dirty flag, package versions, hostname-free machine
    information and a timestamp.

Units
    Records store what the run computed in plain units: mAP / AUC / accuracy / R@k / mAP@10 as
    fractions in [0, 1], parameter counts and FLOPs as raw counts. The paper files
    (``lib/audiorepro/papers/<paper>/paper.yml``) declare the unit of each printed column (``fraction``,
    ``%``, ``M``, ``GFLOPs``); :func:`paper_vs_run` converts the run's value into that unit for
    display next to the paper's number.

Matching a run to a paper row
    A record matches the paper table row named by ``params["paper_row"]`` when given, else by
    ``model``; its metric names are the paper table's column keys (e.g. ``mAP``, ``R@1``, ``ESC-50``).
    So a notebook that trains a scaled-down model records ``model="ATGNN-pyr-s (C/4, 3 blocks)"``
    and ``params={"paper_row": "ATGNN-pyr-s", ...}``: the table shows which model really ran.

Paper numbers are read from the YAML files only and are never written into records:
:func:`record` refuses metric names starting with ``paper``.

Modules: :mod:`.records` (writing and reading records), :mod:`.papers` (paper numbers,
discovered from ``lib/audiorepro/papers/*/paper.yml``; paper-vs-run tables), :mod:`.claims`
(claims and verdicts).
"""
from __future__ import annotations

from .records import (SCHEMA_VERSION, META_COLUMNS, RegistryError, git_info, load_records,
                      machine_info, package_versions, record, records_dir)
from .papers import (PAPER_DIR, RESULT_COLUMNS, UNIT_FACTORS, _paper_yaml, paper_file, paper_info,
                     paper_names, paper_numbers, paper_vs_run, show_paper_vs_run)
from .claims import (VERDICT_COLOURS, VERDICTS, Verdict, chapter_verdicts, claims, claims_table,
                     evaluate_claim, load_claim_records, register_verdict)


def __getattr__(name: str):
    if name == "PAPERS":      # discovered, not listed: see paper_names()
        return paper_names()
    raise AttributeError(f"module 'audiorepro.results' has no attribute {name!r}")
