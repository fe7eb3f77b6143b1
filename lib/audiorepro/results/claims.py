"""Headline claims of the papers and this run's verdicts on them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd


from .papers import UNIT_FACTORS, _paper_yaml, paper_file, paper_names, paper_numbers
from .records import (RegistryError, _check_name, _provenance, _read_all, _write_atomic,
                      load_records, records_dir)

VERDICTS = ("reproduced", "not reproduced", "not yet measured")


def claims(paper: str) -> list[dict[str, Any]]:
    """The headline claims listed in a paper's YAML file."""
    data = _paper_yaml(paper)
    out = data["claims"] or []
    for c in out:
        for key in ("id", "text", "test"):
            if key not in c:
                raise RegistryError(f"{paper_file(paper)}: a claim lacks {key!r}: {c}")
    return out


def _claim(paper: str, claim_id: str) -> dict[str, Any]:
    for c in claims(paper):
        if c["id"] == claim_id:
            return c
    known = [c["id"] for c in claims(paper)]
    raise RegistryError(f"paper {paper!r} has no claim {claim_id!r} (claims: {known})")


def register_verdict(chapter: str, claim_id: str, verdict: str, evidence: str, dataset: str,
                     scale: str, profile: str, paper: str | None = None) -> Path:
    """Store a verdict on a paper claim (a ``claim`` record in the same registry).

    ``verdict`` is one of ``reproduced``, ``not reproduced``, ``not yet measured``; ``evidence``
    states what this run measured (numbers computed by the run).
    """
    paper = paper or chapter
    _claim(paper, claim_id)
    if verdict not in VERDICTS:
        raise RegistryError(f"verdict {verdict!r} for claim {claim_id!r} is not one of {VERDICTS}")
    for kind, value in (("evidence", evidence), ("dataset", dataset), ("scale", scale),
                        ("profile", profile)):
        _check_name(kind, value)
    payload = {"kind": "claim", "chapter": chapter, "paper": paper, "claim_id": claim_id,
               "verdict": verdict, "evidence": evidence, "dataset": dataset, "scale": scale,
               "profile": profile, **_provenance()}
    return _write_atomic(payload, records_dir())


@dataclass
class Verdict:
    """Outcome of :func:`evaluate_claim`; ``values`` holds the run's numbers used (record units)."""

    claim_id: str
    verdict: str
    evidence: str
    values: dict[str, float] = field(default_factory=dict)
    dataset: str = ""
    scale: str = ""
    profile: str = ""


def _latest_values(chapter: str, table: str, metric: str, rows: Iterable[str],
                   profile: str | None, dataset: str | None,
                   scale: str | None) -> tuple[dict[str, float], pd.DataFrame]:
    recs = load_records(chapter, table)
    if not recs.empty:
        recs = recs[recs["metric"] == metric]
        for name, value in (("profile", profile), ("dataset", dataset), ("scale", scale)):
            if value is not None:
                recs = recs[recs[name] == value]
        recs = recs[recs["row"].isin(list(rows))].drop_duplicates(subset=["row"], keep="last")
    values = {} if recs.empty else dict(zip(recs["row"], recs["value"].astype(float)))
    return values, recs


def evaluate_claim(chapter: str, claim_id: str, profile: str | None = None,
                   dataset: str | None = None, scale: str | None = None,
                   register: bool = False, paper: str | None = None) -> Verdict:
    """Decide a claim from the latest result records (optionally only of one profile/data/scale).

    Test kinds (the claim's ``test`` in the paper YAML, values in record units):
      * ``comparison``: ``better`` row > every ``worse`` row on ``metric``
        (``higher_is_better: false`` flips it; ``min_margin`` default 0);
      * ``close``: the run's ``row``/``metric`` within ``rel_tol`` of the paper's number;
      * ``threshold``: run value ``op`` (>, >=, <, <=) ``value``;
      * ``spread``: max - min over ``rows`` <= ``max_spread``;
      * ``manual``: only :func:`register_verdict` decides.
    A missing record gives ``not yet measured``. With ``register=True`` the verdict is stored.
    """
    paper = paper or chapter
    test = _claim(paper, claim_id)["test"]
    kind, table, metric = test.get("kind"), test.get("table"), test.get("metric")
    if kind == "manual":
        return Verdict(claim_id, "not yet measured", "manual claim: decided by the notebook")
    if kind == "comparison":
        worse = test["worse"] if isinstance(test["worse"], list) else [test["worse"]]
        needed = [test["better"], *worse]
    elif kind in ("close", "threshold"):
        needed = [test["row"]]
    elif kind == "spread":
        needed = list(test["rows"])
    else:
        raise RegistryError(f"claim {paper}/{claim_id}: unknown test kind {kind!r}")
    values, used = _latest_values(chapter, table, metric, needed, profile, dataset, scale)
    missing = [r for r in needed if r not in values]
    if missing:
        verdict = Verdict(claim_id, "not yet measured",
                          f"no record of {table}/{metric} for rows {missing}", values)
    else:
        ok, evidence = _decide(paper, kind, test, values)
        ran = {r: m for r, m in zip(used["row"], used["model"]) if isinstance(m, str) and m and m != r}
        if ran:   # a paper row measured with another model (e.g. a CPU stand-in): say which
            evidence += "; rows as run: " + "; ".join(f"{r} = {m}" for r, m in ran.items())
        verdict = Verdict(claim_id, "reproduced" if ok else "not reproduced", evidence, values,
                          ", ".join(sorted(set(used["dataset"]))),
                          ", ".join(sorted(set(used["scale"]))),
                          ", ".join(sorted(set(used["profile"]))))
    if register:
        if verdict.verdict == "not yet measured":
            register_verdict(chapter, claim_id, verdict.verdict, verdict.evidence,
                             dataset or "none", scale or "none", profile or "none", paper=paper)
        else:
            register_verdict(chapter, claim_id, verdict.verdict, verdict.evidence, verdict.dataset,
                             verdict.scale, verdict.profile, paper=paper)
    return verdict


def _decide(paper: str, kind: str, test: dict[str, Any], values: dict[str, float]) -> tuple[bool, str]:
    metric = test["metric"]
    if kind == "comparison":
        sign = 1.0 if test.get("higher_is_better", True) else -1.0
        margin = float(test.get("min_margin", 0.0))
        best = values[test["better"]]
        worse = test["worse"] if isinstance(test["worse"], list) else [test["worse"]]
        ok = all(sign * (best - values[w]) > margin for w in worse)
        parts = ", ".join(f"{w} {values[w]:.4g}" for w in worse)
        rel = ">" if sign > 0 else "<"
        return ok, f"this run {metric}: {test['better']} {best:.4g} vs. {parts} (claim: {rel} each)"
    if kind == "close":
        pn = paper_numbers(paper)
        hit = pn[(pn["table"] == test["table"]) & (pn["row"] == test["row"]) & (pn["column"] == metric)]
        if hit.empty:
            raise RegistryError(f"claim test of {paper}: no paper number for "
                                f"{test['table']}/{test['row']}/{metric}")
        paper_value, unit = float(hit["value"].iloc[0]), hit["unit"].iloc[0]
        run = values[test["row"]] * UNIT_FACTORS[unit]
        rel = abs(run - paper_value) / abs(paper_value)
        ok = rel <= float(test["rel_tol"])
        return ok, (f"this run {metric} {run:.4g} {unit} vs. paper {paper_value:g} {unit}: "
                    f"relative difference {rel:.1%} (tolerance {float(test['rel_tol']):.0%})")
    if kind == "threshold":
        ops = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
        op = test["op"]
        if op not in ops:
            raise RegistryError(f"claim test of {paper}: unknown op {op!r}")
        run = values[test["row"]]
        ok = bool(ops[op](run, float(test["value"])))
        return ok, f"this run {metric} {run:.4g} (claim: {op} {test['value']})"
    spread = max(values.values()) - min(values.values())
    ok = spread <= float(test["max_spread"])
    return ok, (f"this run {metric} from {min(values.values()):.4g} to {max(values.values()):.4g}: "
                f"spread {spread:.4g} (claim: <= {test['max_spread']})")


def load_claim_records() -> pd.DataFrame:
    """Every stored verdict, oldest first."""
    cols = ["record_id", "timestamp", "chapter", "paper", "claim_id", "verdict", "evidence",
            "dataset", "scale", "profile"]
    recs = [{c: r.get(c) for c in cols} for r in _read_all("claim")]
    df = pd.DataFrame(recs, columns=cols)
    return df.sort_values(["timestamp", "record_id"], kind="stable").reset_index(drop=True)


def claims_table(papers: Iterable[str] | None = None, profile: str | None = None) -> pd.DataFrame:
    """Every claim of every paper with its latest verdict (or ``not yet measured``).

    Columns: ``paper, claim_id, claim, test, verdict, evidence, dataset, scale, profile, timestamp``.
    ``profile`` keeps only verdicts registered under that profile.
    """
    papers = paper_names() if papers is None else papers
    stored = load_claim_records()
    if profile is not None and not stored.empty:
        stored = stored[stored["profile"] == profile]
    latest = {} if stored.empty else {
        (r.paper, r.claim_id): r for r in stored.drop_duplicates(["paper", "claim_id"], keep="last").itertuples()}
    rows = []
    for paper in papers:
        for c in claims(paper):
            hit = latest.get((paper, c["id"]))
            test = c["test"]
            desc = ", ".join(f"{k}={v}" for k, v in test.items())
            row = {"paper": paper, "claim_id": c["id"], "claim": c["text"], "test": desc,
                   "verdict": "not yet measured", "evidence": "", "dataset": "", "scale": "",
                   "profile": "", "timestamp": ""}
            if hit is not None:
                row.update(verdict=hit.verdict, evidence=hit.evidence, dataset=hit.dataset,
                           scale=hit.scale, profile=hit.profile, timestamp=hit.timestamp)
            rows.append(row)
    return pd.DataFrame(rows, columns=["paper", "claim_id", "claim", "test", "verdict", "evidence",
                                       "dataset", "scale", "profile", "timestamp"])


VERDICT_COLOURS = {"reproduced": "#2e7d32", "not reproduced": "#c62828", "not yet measured": "#9e9e9e"}


def chapter_verdicts(paper: str, profile: str | None = None) -> "pd.io.formats.style.Styler":
    """The claims of one paper with the latest verdict registered by this run (``profile``:
    only verdicts of that profile), as a styled table indexed by claim id with the verdict coloured.

    Nothing in it is typed by hand: claim texts (with the paper's numbers) come from
    ``papers/<paper>.yml``, verdicts and evidence (this run's numbers) from the registry.
    """
    if paper not in paper_names():
        raise KeyError(f"unknown paper {paper!r}; known: {list(paper_names())}")
    table = claims_table([paper], profile=profile)
    shown = table[["claim_id", "claim", "verdict", "evidence", "dataset", "scale", "profile"]]

    def colour(value: str) -> str:
        return f"color: {VERDICT_COLOURS[value]}; font-weight: bold" if value in VERDICT_COLOURS else ""

    return (shown.set_index("claim_id").style.map(colour, subset=["verdict"])
            .set_properties(**{"text-align": "left"}))
