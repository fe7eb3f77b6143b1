"""Results registry: every score the book computes is appended to one table (in the spirit of EVAR).

Records
    One JSON file per record under ``audiorepro.paths.results_dir("records")``, written atomically
    (temporary file in the same folder + ``os.replace``) with a unique name made of the UTC time
    and a uuid, so concurrent writers (notebooks, DDP ranks, test processes) never corrupt each
    other and never need a lock. A *result* record holds the metrics of one run of one table
    row; a *claim* record holds a verdict on one of a paper's headline claims. Both carry the
    provenance of the run: git revision and dirty flag, package versions, hostname-free machine
    information and a timestamp. Records written by the book executor also name the notebook
    execution that wrote them (:func:`~.records.execution_info`): once a newer execution of the
    same notebook and profile has finished, it supersedes the older executions' records
    (:func:`superseded`), so a row dropped from a notebook's grid disappears from tables and
    verdicts instead of lingering. Records written outside the executor, or before records
    carried their execution, are never superseded this way (a registry started before then
    keeps such rows until it is rebuilt).

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

Per-item outputs and verdicts
    ``record(..., items=...)`` stores the outputs per test item that computed the metrics
    (scores and targets per clip, per-query ranks, ...) beside the record, and
    :func:`evaluate_claim` decides every claim from a paired bootstrap over them, combined with
    seeds: *reproduced*, *not reproduced*, *inconclusive* or *not yet measured*, each with its
    effect, 95 % interval, number of items and seeds. A corrupt record file is skipped with a
    warning naming it (:func:`corrupt_records` lists them), never blocking the other records.

Modules: :mod:`.records` (writing and reading records), :mod:`.items` (per-item outputs and
the metric functions that recompute a metric from them), :mod:`.stats` (bootstrap and
decisions), :mod:`.papers` (paper numbers, discovered from
``lib/audiorepro/papers/*/paper.yml``; paper-vs-run tables), :mod:`.claims` (claims, verdicts
and their display).
"""
from __future__ import annotations

from .records import (BOOK_CHAPTERS, PROFILES, SCHEMA_VERSION, META_COLUMNS, CorruptRecordWarning,
                      RegistryError, corrupt_records, git_info, load_records, machine_info,
                      package_versions, record, records_dir, superseded)
from .items import (METRIC_FUNCTIONS, ItemSet, ItemsMissing, chance_level, classification_items,
                    load_items, metric_function, retrieval_items, tagging_items, value_items)
from .papers import (PAPER_DIR, RESULT_COLUMNS, UNIT_FACTORS, _paper_yaml, paper_file, paper_info,
                     paper_names, paper_numbers, paper_vs_run, show_paper_vs_run)
from .claims import (VERDICT_COLOURS, VERDICTS, Verdict, chance_text, chapter_verdicts, claims,
                     claims_table, decide_claims, effect_text, evaluate_claim, load_claim_records, new_run_group,
                     register_verdict, resolution_text, select_records, verdict_plot, with_caveats)


def __getattr__(name: str):
    if name == "PAPERS":      # discovered, not listed: see paper_names()
        return paper_names()
    raise AttributeError(f"module 'audiorepro.results' has no attribute {name!r}")
