"""The papers' own numbers and claims (``lib/audiorepro/papers/<paper>/paper.yml``), discovered
from the folders, and the paper-vs-run tables."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


from .base import PAPER_DIR, RegistryError, paper_file, paper_names
from .records import load_records

# Factor from the record's unit (fraction / raw count) to the paper column's unit.
UNIT_FACTORS = {"fraction": 1.0, "%": 100.0, "M": 1e-6, "GFLOPs": 1e-9, "count": 1.0, "s": 1.0,
                "as recorded": 1.0}
RESULT_COLUMNS = ("paper", "this run", "dataset", "scale", "profile", "model")


# --------------------------------------------------------------------------------- paper numbers
@lru_cache(maxsize=None)
def _paper_yaml(paper: str) -> dict[str, Any]:
    path = paper_file(paper)
    if not path.is_file():
        known = list(paper_names())
        raise RegistryError(f"no paper file {path} (known papers: {known})")
    data = yaml.safe_load(path.read_text(encoding="utf8"))
    for key in ("paper", "title", "tables", "claims"):
        if key not in data:
            raise RegistryError(f"{path}: missing top-level key {key!r}")
    for tid, tab in data["tables"].items():
        for key in ("caption", "dataset", "columns", "rows"):
            if key not in tab:
                raise RegistryError(f"{path}: table {tid!r} lacks {key!r}")
        for col, spec in tab["columns"].items():
            if spec.get("unit") not in UNIT_FACTORS:
                raise RegistryError(f"{path}: table {tid!r} column {col!r} has unit "
                                    f"{spec.get('unit')!r}; known units {sorted(UNIT_FACTORS)}")
        for row, values in (tab["rows"] or {}).items():
            for col, value in values.items():
                if col not in tab["columns"]:
                    raise RegistryError(f"{path}: table {tid!r} row {row!r} has unknown column {col!r}")
                if not isinstance(value, (int, float)):
                    raise RegistryError(f"{path}: table {tid!r} row {row!r} column {col!r} "
                                        f"is not a number: {value!r}")
    return data


def paper_info(paper: str) -> dict[str, Any]:
    """Title, authors, reference and source file of a paper (from its YAML file)."""
    data = _paper_yaml(paper)
    return {k: data.get(k, "") for k in ("paper", "chapter", "title", "authors", "reference", "source")}


def paper_numbers(paper: str) -> pd.DataFrame:
    """Every number the paper prints in its tables, one row per number.

    Columns: ``paper, table, row, column, label, value, unit, decimals, dataset, caption``.
    """
    data = _paper_yaml(paper)
    rows = []
    for tid, tab in data["tables"].items():
        for row, values in (tab["rows"] or {}).items():
            for col, value in values.items():
                spec = tab["columns"][col]
                rows.append({"paper": paper, "table": tid, "row": row, "column": col,
                             "label": spec.get("label", col), "value": float(value),
                             "unit": spec["unit"], "decimals": int(spec.get("decimals", 3)),
                             "dataset": tab["dataset"], "caption": tab["caption"]})
    return pd.DataFrame(rows, columns=["paper", "table", "row", "column", "label", "value", "unit",
                                       "decimals", "dataset", "caption"])


def _fmt(value: float, decimals: int) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.{decimals}f}"


def paper_vs_run(chapter: str, table: str, paper: str | None = None, profile: str | None = None,
                 dataset: str | None = None, scale: str | None = None,
                 formatted: bool = True) -> pd.DataFrame:
    """The paper's table next to this run's numbers.

    Rows are matched by (row, metric): the record's ``paper_row`` / ``model`` against the paper's
    row name, the record's metric against the paper's column key. ``this run`` is the mean over
    the seeds of the row's latest run (:func:`latest_run_means`), ``seeds`` their number;
    records a newer execution of their notebook superseded never appear (a row the notebook no
    longer produces is gone, not shown from an older grid).
    Returns columns ``row, metric, unit, paper, this run, seeds, dataset, scale, profile, model``;
    ``this run`` is empty where no record exists (not measured), ``paper`` is empty where the
    paper prints no number. With ``formatted=True`` numbers are strings with the column's
    stated number of decimals (the paper's own precision) in the paper's unit; otherwise floats.
    ``df.attrs["caption"]`` names the paper table, the profile, the model(s) and the data.
    """
    paper = paper or chapter
    data = _paper_yaml(paper)
    tab = data["tables"].get(table)
    if tab is None:
        raise RegistryError(f"paper {paper!r} has no table {table!r} (tables: {list(data['tables'])})")
    pn = paper_numbers(paper)
    pn = pn[pn["table"] == table]
    recs = load_records(chapter, table, current=True)
    for name, value in (("profile", profile), ("dataset", dataset), ("scale", scale)):
        if value is not None and not recs.empty:
            recs = recs[recs[name] == value]
    recs = latest_run_means(recs)
    columns = tab["columns"]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in pn.itertuples():
        out[(r.row, r.column)] = {"row": r.row, "metric": r.column, "unit": r.unit,
                                  "paper": r.value, "this run": np.nan, "seeds": 0, "dataset": "",
                                  "scale": "", "profile": "", "model": ""}
    for r in recs.itertuples():
        spec = columns.get(r.metric, {"unit": "as recorded"})
        unit = spec["unit"]
        entry = out.setdefault((r.row, r.metric), {"row": r.row, "metric": r.metric, "unit": unit,
                                                   "paper": np.nan})
        entry.update({"this run": r.value * UNIT_FACTORS[unit], "seeds": int(r.seeds), "dataset": r.dataset,
                      "scale": r.scale, "profile": r.profile, "model": r.model})
    row_order = {name: i for i, name in enumerate(tab["rows"] or {})}
    col_order = {name: i for i, name in enumerate(columns)}
    items = sorted(out.values(), key=lambda e: (row_order.get(e["row"], len(row_order)), e["row"],
                                                col_order.get(e["metric"], len(col_order)),
                                                e["metric"]))
    df = pd.DataFrame(items, columns=["row", "metric", "unit", "paper", "this run", "seeds", "dataset",
                                      "scale", "profile", "model"])
    if formatted and not df.empty:
        dec = [int(columns.get(m, {}).get("decimals", 3)) for m in df["metric"]]
        df["paper"] = [_fmt(v, d) for v, d in zip(df["paper"], dec)]
        df["this run"] = [_fmt(v, d) for v, d in zip(df["this run"], dec)]
    measured = recs if not recs.empty else None
    if measured is None:
        run_part = "this run: not measured yet (no records)"
    else:
        run_part = ("this run: profile " + ", ".join(sorted(set(measured["profile"])))
                    + "; model " + ", ".join(sorted(set(measured["model"])))
                    + "; data " + ", ".join(sorted(set(measured["dataset"])))
                    + " (scale " + ", ".join(sorted(set(measured["scale"]))) + ")")
    df.attrs["caption"] = (f"{data['title']}. Paper: {tab['caption']}, {tab['dataset']}. "
                           f"{run_part}. Numbers in the paper's units with the paper's precision; "
                           "empty 'this run' = not measured.")
    return df


def latest_run_means(recs: pd.DataFrame) -> pd.DataFrame:
    """One line per (row, metric) of :func:`~audiorepro.results.records.load_records` output: the
    mean over seeds of the row's latest run, with ``seeds`` (how many were averaged).

    The latest run of a row is the run group (``params["run_group"]``) of its newest record; a row
    whose newest record has no run group takes the newest record per seed among the records without
    one of the same profile, dataset and scale. Records of superseded runs never enter the mean.
    The other columns are those of the newest record.
    """
    if recs.empty:
        return recs.assign(seeds=pd.Series(dtype=int))
    group_col = "param.run_group" if "param.run_group" in recs else None
    seed_col = "param.seed" if "param.seed" in recs else None
    out = []
    for _, part in recs.groupby(["row", "metric"], sort=False):
        newest = part.iloc[-1]                     # load_records sorts by time
        if group_col and isinstance(newest[group_col], str):
            run = part[part[group_col] == newest[group_col]]
        else:
            run = part[(part[group_col].isna() if group_col else True)
                       & (part["profile"] == newest["profile"]) & (part["dataset"] == newest["dataset"])
                       & (part["scale"] == newest["scale"])]
        if seed_col:
            run = run.assign(_seed=run[seed_col].astype(str)).drop_duplicates("_seed", keep="last")
        else:
            run = run.iloc[[-1]]
        line = newest.copy()
        line["value"] = float(run["value"].mean())
        line["seeds"] = len(run)
        out.append(line)
    return pd.DataFrame(out).reset_index(drop=True)


def show_paper_vs_run(chapter: str, table: str, **kwargs: Any) -> "pd.io.formats.style.Styler":
    """:func:`paper_vs_run` as a captioned table for a notebook (index hidden)."""
    df = paper_vs_run(chapter, table, **kwargs)
    return df.style.hide(axis="index").set_caption(df.attrs["caption"])

# --------------------------------------------------------------------------------- claims
