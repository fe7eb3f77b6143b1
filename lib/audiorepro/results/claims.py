"""Headline claims of the papers and this run's verdicts on them.

One function, :func:`evaluate_claim`, decides every claim a paper file states as a test
(``lib/audiorepro/papers/<paper>/paper.yml``, ``claims: [{id, text, test}]``), from the records
of the latest run and their per-item outputs (:mod:`.items`), by a paired bootstrap over test
items combined with seeds (:mod:`.stats`). Four verdicts:

* **reproduced**: the 95 % interval lies on the paper's side of the claim's threshold;
* **not reproduced**: it lies on the other side;
* **inconclusive**: it straddles (or touches) the threshold, or there is no interval because
  the records hold no per-item outputs, or fewer than ``stats.MIN_ITEMS`` test items gave it;
  never a coin toss on point estimates; also every pair of a comparison in which a row is not
  measurably above chance (the lower end of its own interval at or below the chance level of
  its test items, :func:`~audiorepro.results.items.chance_level`), whichever side it is on: a
  method that learned nothing at this size is evidence neither for nor against the paper;
* **not yet measured**: a row the claim needs has no record.

Every verdict carries the compared rows' values and chance levels (``values``, ``chance``), shown
as their ratio (:func:`chance_text`) beside the effect.

Test kinds (values in record units: fractions, raw counts):

* ``comparison``: ``better`` row vs. each ``worse`` row on ``metric`` (``higher_is_better:
  false`` flips it). Per pair the interval of the difference better - worse; every pair must be
  reproduced for *reproduced*, any pair not reproduced gives *not reproduced*. ``paper_rows``
  (optional, ``{row: paper row}``) names the paper's row whose number stands for a row of this
  run when the names differ (layers this run chose on validation vs. the paper's fixed ones):
  only the paper's difference shown beside the verdict is read through it.
* ``close``: the interval of the run's ``row``/``metric`` against a band the paper itself sets
  around its number: ``band: printed`` (half a unit of the last printed digit, for exact counts)
  or ``band: {gap_to: <row>}`` (half the gap to the paper's number for another row, e.g. the
  lead the paper reads as its result); never a tolerance chosen here.
* ``threshold``: the interval of the run's value against ``value`` (``op`` >, >=, <, <=).
* ``spread``: the interval of max - min over ``rows`` against ``max_spread``.
* ``manual``: decided by a notebook through :func:`register_verdict`.

Metrics the paper counts in ``M``, ``GFLOPs`` or ``count`` (parameters, operations) are exact
properties of a model, with no sampling error: their interval is the value itself.

Which records: per claim, the records of the claim's table and rows (after the optional
profile / dataset / scale filters) of the newest *run group*: the records sharing the newest
record's ``params["run_group"]`` (:func:`new_run_group`), or, for records without one, the
records of the newest record's profile, dataset and scale, newest per (row, seed). A row
missing from that group is *not yet measured*: rows of an older grid never mix with a newer one.
Records a newer execution of their notebook superseded (:func:`~audiorepro.results.records.superseded`)
are left out before that choice.
"""
from __future__ import annotations

import html
import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import stats
from .items import ItemsMissing, chance_level, load_items
from .papers import UNIT_FACTORS, _paper_yaml, paper_file, paper_names, paper_numbers
from .records import (CorruptRecordWarning, RegistryError, _check_name, _provenance, _read_all,
                      _write_atomic, records_dir, superseded)

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not yet measured")
VERDICT_COLOURS = {"reproduced": "#2e7d32", "not reproduced": "#c62828",
                   "inconclusive": "#ef6c00", "not yet measured": "#757575"}
EXACT_UNITS = ("M", "GFLOPs", "count")     # paper columns counting model properties


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


def new_run_group() -> str:
    """A fresh id for ``params["run_group"]``: give every record of one execution of a table or
    grid the same one, so verdicts use that execution's rows only."""
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------ verdicts
@dataclass
class Verdict:
    """Outcome of :func:`evaluate_claim`.

    ``values``: row -> the run's value (mean over seeds, record units). ``effect``: the tested
    quantity: for a comparison better - worse of the deciding pair, signed so that positive is
    the paper's side; for close / threshold the run's value; for spread max - min.
    ``interval``: its 95 % bootstrap interval (None when there is none). ``reference``: the
    claim's threshold (0, the threshold's ``{"op", "value"}``, the close band ``[lo, hi]`` or
    ``max_spread``). ``pairs``: every pair of a comparison with its own numbers.
    ``resolution``: half the width of the interval, the smallest effect this test size
    resolves (an effect further from the threshold than that would be decided).
    ``paper_effect``: for a comparison, the paper's own difference of the deciding pair (same
    sign and units as ``effect``; None when the paper gives no number for a row).
    ``chance``: row -> what a predictor without information scores on the row's test items
    (:func:`~audiorepro.results.items.chance_level`; rows without a known level are absent).
    """

    claim_id: str
    verdict: str
    evidence: str
    values: dict[str, float] = field(default_factory=dict)
    dataset: str = ""
    scale: str = ""
    profile: str = ""
    effect: float | None = None
    interval: tuple[float, float] | None = None
    n_items: int | None = None
    n_seeds: int | None = None
    seed_spread: float | None = None
    kind: str = ""
    metric: str = ""
    reference: Any = None
    paired: bool | None = None
    n_boot: int | None = None
    pairs: list[dict[str, Any]] = field(default_factory=list)
    selection: str = ""
    paper_effect: float | None = None
    resolution: float | None = None
    chance: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise RegistryError(f"{name} must be a number or None, got {value!r}") from None
    return v if math.isfinite(v) else None


def _plain(value: Any) -> Any:
    """JSON value with NaN / inf as None and numpy scalars / tuples converted."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _notebook_name(notebook: str | None) -> str | None:
    """``book/atgnn/03_tables_2_3.ipynb`` (or any absolute path) -> ``atgnn/03_tables_2_3``."""
    if notebook is None or not str(notebook).strip():
        return None
    p = Path(str(notebook))
    stem = p.stem if p.suffix == ".ipynb" else p.name
    return f"{p.parent.name}/{stem}" if p.parent.name else stem


def register_verdict(chapter: str, claim_id: str, verdict: str, evidence: str, dataset: str,
                     scale: str, profile: str, paper: str | None = None, *,
                     effect: float | None = None, interval: Sequence[float] | None = None,
                     n_items: int | None = None, n_seeds: int | None = None,
                     seed_spread: float | None = None, notebook: str | None = None,
                     kind: str | None = None, metric: str | None = None, reference: Any = None,
                     paired: bool | None = None, n_boot: int | None = None,
                     pairs: Sequence[Mapping[str, Any]] | None = None,
                     paper_effect: float | None = None, resolution: float | None = None,
                     values: Mapping[str, float] | None = None,
                     chance: Mapping[str, float] | None = None) -> Path:
    """Store a verdict on a paper claim (a ``claim`` record in the same registry).

    ``verdict`` is one of :data:`VERDICTS`; ``evidence`` states what this run measured
    (numbers computed by the run). The keyword fields are stored as structured values
    (``effect``, ``interval`` (lo, hi), ``n_items``, ``n_seeds``, ``seed_spread``, the rows'
    ``values`` and their ``chance`` levels, ...);
    ``notebook`` names the notebook that decided it (``atgnn/03_tables_2_3``; a path is reduced
    to chapter/name, never stored whole).
    """
    paper = paper or chapter
    _claim(paper, claim_id)
    if verdict not in VERDICTS:
        raise RegistryError(f"verdict {verdict!r} for claim {claim_id!r} is not one of {VERDICTS}")
    for name, value in (("evidence", evidence), ("dataset", dataset), ("scale", scale),
                        ("profile", profile)):
        _check_name(name, value)
    lo = hi = None
    if interval is not None:
        if len(interval) != 2:
            raise RegistryError(f"claim {claim_id!r}: interval must be (lo, hi), got {interval!r}")
        lo, hi = (_finite_or_none(v, "interval") for v in interval)
        if lo is not None and hi is not None and lo > hi:
            raise RegistryError(f"claim {claim_id!r}: interval ({lo}, {hi}) has lo > hi")
    for name, value in (("n_items", n_items), ("n_seeds", n_seeds)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 0):
            raise RegistryError(f"claim {claim_id!r}: {name} must be a count, got {value!r}")
    payload = {"kind": "claim", "chapter": chapter, "paper": paper, "claim_id": claim_id,
               "verdict": verdict, "evidence": evidence, "dataset": dataset, "scale": scale,
               "profile": profile,
               "effect": _finite_or_none(effect, "effect"),
               "interval": None if lo is None or hi is None else [lo, hi],
               "n_items": None if n_items is None else int(n_items),
               "n_seeds": None if n_seeds is None else int(n_seeds),
               "seed_spread": _finite_or_none(seed_spread, "seed_spread"),
               "notebook": _notebook_name(notebook), "test_kind": kind, "metric": metric,
               "reference": _plain(reference), "paired": paired,
               "n_boot": None if n_boot is None else int(n_boot),
               "pairs": _plain(list(pairs or [])),
               "paper_effect": _finite_or_none(paper_effect, "paper_effect"),
               "resolution": _finite_or_none(resolution, "resolution"),
               "values": {str(k): _finite_or_none(x, "values") for k, x in (values or {}).items()},
               "chance": {str(k): _finite_or_none(x, "chance") for k, x in (chance or {}).items()},
               **_provenance()}
    return _write_atomic(payload, records_dir())


# ------------------------------------------------------------------------ record selection
def _row_of(rec: Mapping[str, Any]) -> str:
    return str(rec.get("params", {}).get("paper_row") or rec.get("model", ""))


def _seed_of(rec: Mapping[str, Any]) -> str | None:
    seed = rec.get("params", {}).get("seed")
    return None if seed is None else str(seed)


def select_records(chapter: str, table: str, metric: str, rows: Iterable[str],
                   profile: str | None = None, dataset: str | None = None,
                   scale: str | None = None) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Records a verdict uses: {row: [newest record per seed]} of the latest run group, and a
    description of the group (see the module docstring). Rows without a record are absent."""
    rows = set(rows)
    every = _read_all("result")
    gone = superseded([r for r in every if r["chapter"] == chapter and r["table"] == table])
    cands = [r for r in every
             if r["chapter"] == chapter and r["table"] == table and r["record_id"] not in gone
             and metric in r["metrics"] and _row_of(r) in rows
             and all(v is None or r[k] == v for k, v in
                     (("profile", profile), ("dataset", dataset), ("scale", scale)))]
    if not cands:
        return {}, ""
    cands.sort(key=lambda r: (r["timestamp"], r["record_id"]))
    newest = cands[-1]
    group = newest.get("params", {}).get("run_group")
    if group is not None:
        chosen = [r for r in cands if r.get("params", {}).get("run_group") == group]
        how = f"run group {group}"
    else:
        ctx = (newest["profile"], newest["dataset"], newest["scale"])
        chosen = [r for r in cands if r.get("params", {}).get("run_group") is None
                  and (r["profile"], r["dataset"], r["scale"]) == ctx]
        how = "newest record per row and seed"
    out: dict[str, dict[str | None, dict[str, Any]]] = {}
    for r in chosen:                                   # oldest first: newer ones replace
        out.setdefault(_row_of(r), {})[_seed_of(r)] = r
    return {row: list(by_seed.values()) for row, by_seed in out.items()}, how


def _runs(recs: list[dict[str, Any]], metric: str) -> tuple[list[stats.Run], str | None]:
    """Runs of one row with their items; the second value says why items are missing."""
    runs, missing = [], None
    for r in recs:
        items = None
        if metric in (r.get("items") or {}).get("metrics", {}):
            try:
                items = load_items(r["record_id"]).get(metric)
            except ItemsMissing:
                missing = "items file missing"
            except RegistryError as exc:
                import warnings
                warnings.warn(str(exc), CorruptRecordWarning, stacklevel=2)
                missing = "items file unreadable"
        else:
            missing = missing or "no per-item outputs"
        runs.append(stats.Run(_seed_of(r), float(r["metrics"][metric]), items, r["record_id"]))
    if any(run.items is None for run in runs):
        return runs, missing or "no per-item outputs"
    return runs, None


# ------------------------------------------------------------------------------ evaluation
def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    if abs(x) >= 1e4:
        return f"{x:+,.0f}" if signed else f"{x:,.0f}"
    return f"{x:+.3g}" if signed else f"{x:.3g}"


def _ci(lo: float | None, hi: float | None, signed: bool = False) -> str:
    return f"[{_fmt(lo, signed)}, {_fmt(hi, signed)}]"


def _unit_of(paper: str, table: str, metric: str) -> str | None:
    tab = _paper_yaml(paper)["tables"].get(table, {})
    return (tab.get("columns") or {}).get(metric, {}).get("unit")


def evaluate_claim(chapter: str, claim_id: str, profile: str | None = None,
                   dataset: str | None = None, scale: str | None = None,
                   register: bool = False, paper: str | None = None, *,
                   notebook: str | None = None, n_boot: int = stats.N_BOOT,
                   level: float = stats.LEVEL, seed: int = 0,
                   caveats: Sequence[str] = ()) -> Verdict:
    """Decide a claim from the records of the latest run group (optionally only of one
    profile / dataset / scale) by a paired bootstrap over their per-item outputs.

    See the module docstring for the test kinds and the four verdicts. ``n_boot`` resamples,
    ``level`` of the percentile interval, ``seed`` of the resampling (fixed: the verdict does
    not depend on the machine). With ``register=True`` the verdict is stored with its
    structured fields and ``notebook`` (the notebook deciding it). ``caveats``: reasons the
    data cannot bear the claim (e.g. a shortcut found in the task); any of them makes a
    *reproduced* or *not reproduced* verdict *inconclusive*, and each is added to the evidence.
    """
    paper = paper or chapter
    test = _claim(paper, claim_id)["test"]
    kind, table, metric = test.get("kind"), test.get("table"), test.get("metric")
    if kind == "manual":
        return Verdict(claim_id, "not yet measured", "manual claim: decided by the notebook",
                       kind=kind)
    if kind == "comparison":
        worse = test["worse"] if isinstance(test["worse"], list) else [test["worse"]]
        needed = [test["better"], *worse]
    elif kind in ("close", "threshold"):
        needed = [test["row"]]
    elif kind == "spread":
        needed = list(test["rows"])
    else:
        raise RegistryError(f"claim {paper}/{claim_id}: unknown test kind {kind!r}")
    selected, how = select_records(chapter, table, metric, needed, profile, dataset, scale)
    missing = [r for r in needed if r not in selected]
    if missing:
        v = Verdict(claim_id, "not yet measured",
                    f"no record of {table}/{metric} for rows {missing}"
                    + (f" in the latest run ({how})" if selected else ""),
                    {r: float(np.mean([x["metrics"][metric] for x in recs]))
                     for r, recs in selected.items()}, kind=kind, metric=metric, selection=how)
    else:
        v = _decide(paper, claim_id, kind, test, selected, n_boot, level, seed)
        v.selection = how
        used = [r for recs in selected.values() for r in recs]
        ran = {_row_of(r): r.get("model", "") for r in used}
        ran = {row: m for row, m in ran.items() if isinstance(m, str) and m and m != row}
        if ran:   # a paper row measured with another model (e.g. a CPU stand-in): say which
            v.evidence += "; rows as run: " + "; ".join(f"{r} = {m}" for r, m in ran.items())
        v.verdict, v.evidence = with_caveats(v.verdict, v.evidence, caveats)
        v.dataset = ", ".join(sorted({r["dataset"] for r in used}))
        v.scale = ", ".join(sorted({r["scale"] for r in used}))
        v.profile = ", ".join(sorted({r["profile"] for r in used}))
    if register:
        register_verdict(chapter, claim_id, v.verdict, v.evidence, v.dataset or dataset or "none",
                         v.scale or scale or "none", v.profile or profile or "none", paper=paper,
                         effect=v.effect, interval=v.interval, n_items=v.n_items,
                         n_seeds=v.n_seeds, seed_spread=v.seed_spread, notebook=notebook,
                         kind=kind, metric=metric, reference=v.reference, paired=v.paired,
                         n_boot=v.n_boot, pairs=v.pairs, paper_effect=v.paper_effect,
                         resolution=v.resolution, values=v.values, chance=v.chance)
    return v


def with_caveats(verdict: str, evidence: str, caveats: Sequence[str]) -> tuple[str, str]:
    """``(verdict, evidence)`` after ``caveats`` (reasons the data cannot bear the claim): a
    *reproduced* or *not reproduced* verdict becomes *inconclusive*, and every caveat is added to
    the evidence."""
    if not caveats:
        return verdict, evidence
    if verdict in (stats.REPRODUCED, stats.NOT_REPRODUCED):
        evidence += f"; inconclusive rather than {verdict}"
        verdict = stats.INCONCLUSIVE
    return verdict, evidence + "; " + "; ".join(caveats)


def _decide(paper: str, claim_id: str, kind: str, test: dict[str, Any],
            selected: dict[str, list[dict[str, Any]]], n_boot: int, level: float,
            seed: int) -> Verdict:
    v = _decide_kind(paper, claim_id, kind, test, selected, n_boot, level, seed)
    if v.interval is None:          # nothing was resampled for the deciding pair / row
        v.n_items = v.paired = v.n_boot = None
    elif v.n_items is not None and v.n_items < stats.MIN_ITEMS:
        if v.verdict in (stats.REPRODUCED, stats.NOT_REPRODUCED):
            v.evidence += (f"; only {v.n_items} test item{'s' * (v.n_items != 1)}: too few for "
                           f"a bootstrap interval to decide (at least {stats.MIN_ITEMS}), so "
                           f"inconclusive rather than {v.verdict}")
            v.verdict = stats.INCONCLUSIVE
    elif v.n_items is not None:     # an estimate (not an exact count): what this size resolves
        v.resolution = (v.interval[1] - v.interval[0]) / 2
        if v.paper_effect is not None:
            size = "resolvable" if abs(v.paper_effect) > v.resolution else "below the resolution"
            v.evidence += (f"; the paper's difference {_fmt(v.paper_effect, True)} is {size} of "
                           f"this test (half-width of its interval {_fmt(v.resolution)})")
    return v


def _chance_levels(runs: Mapping[str, Sequence[stats.Run]]) -> dict[str, float]:
    """Row -> chance level of its test items (the mean over its seeds' item sets; rows whose
    metric has no known chance level are left out)."""
    out = {}
    for row, rs in runs.items():
        levels = [chance_level(r.items) for r in rs if r.items is not None]
        if levels and all(c is not None for c in levels):
            out[row] = float(np.mean(levels))
    return out


def _not_above_chance(samples: Mapping[str, np.ndarray], chance: Mapping[str, float],
                      level: float) -> dict[str, tuple[float, float]]:
    """Rows (with their own interval) whose metric is not measurably above chance: the lower end
    of the row's 95 % interval at or below its chance level (higher-is-better metrics)."""
    out = {}
    for row, c in chance.items():
        if row in samples:
            lo, hi = stats.percentile_interval(samples[row], level)
            if np.isfinite(lo) and lo <= c:
                out[row] = (lo, hi)
    return out


def _paper_entry(paper: str, table: str, row: str, metric: str) -> pd.Series | None:
    """The paper file's line for ``table`` / ``row`` / ``metric`` (:func:`paper_numbers`:
    value, unit, decimals, ...), None when the paper file has none."""
    pn = paper_numbers(paper)
    hit = pn[(pn["table"] == table) & (pn["row"] == row) & (pn["column"] == metric)]
    return None if hit.empty else hit.iloc[0]


def _paper_number(paper: str, table: str, row: str, metric: str) -> tuple[float, str] | None:
    """The paper's number for ``table`` / ``row`` / ``metric`` as printed, with its unit (None
    when the paper file has none)."""
    entry = _paper_entry(paper, table, row, metric)
    return None if entry is None else (float(entry["value"]), str(entry["unit"]))


def _close_half_width(paper: str, test: Mapping[str, Any], row: str, metric: str,
                      paper_value: float) -> tuple[float, str]:
    """Half-width of a ``close`` claim's band in the paper's unit, and how the paper sets it.

    ``band: printed``: half a unit of the last digit the paper prints (the column's
    ``decimals`` in the paper file: 27.3 M -> +- 0.05 M), for exact properties (parameters,
    operations) that a run counts without sampling error. ``band: {gap_to: <row>}``: half the
    gap between the number and the paper's own number for ``<row>`` on the same table and
    metric (the lead the paper reads as its result): a run inside the band is closer to the
    paper's number than to that row's. A tolerance the paper does not set (the former
    ``rel_tol``) is refused."""
    band = test.get("band")
    if band == "printed":
        d = int(_paper_entry(paper, test["table"], row, metric)["decimals"])
        return 0.5 * 10.0 ** -d, f"the printed precision ({d} decimal{'s' if d != 1 else ''})"
    if isinstance(band, Mapping) and "gap_to" in band:
        other = str(band["gap_to"])
        number = _paper_number(paper, test["table"], other, metric)
        if number is None:
            raise RegistryError(f"claim test of {paper}: band gap_to {other!r} has no paper number "
                                f"in {test['table']}/{metric}")
        gap = abs(paper_value - number[0])
        if gap == 0:
            raise RegistryError(f"claim test of {paper}: band gap_to {other!r} is zero")
        return gap / 2, (f"half the paper's lead over {other} ({gap:g} {number[1]}): closer to "
                         f"the paper's number than to {other}'s")
    raise RegistryError(f"claim test of {paper} ({row}/{metric}): a close claim needs band: printed "
                        f"or band: {{gap_to: <row>}} (a size the paper states), got {band!r}")


def _paper_difference(paper: str, test: Mapping[str, Any], better: str, worse: str,
                      sign: float) -> float | None:
    """``sign * (paper[better] - paper[worse])`` on the claim's table and metric, in record units
    (None when the paper file has no number for one of the rows); a row is looked up under its
    name in the test's ``paper_rows`` when it has one there."""
    vals = {}
    names = test.get("paper_rows") or {}
    for row in (better, worse):
        number = _paper_number(paper, test["table"], names.get(row, row), test["metric"])
        if number is None:
            return None
        vals[row] = number[0] / UNIT_FACTORS[number[1]]
    return sign * (vals[better] - vals[worse])


def _decide_kind(paper: str, claim_id: str, kind: str, test: dict[str, Any],
                 selected: dict[str, list[dict[str, Any]]], n_boot: int, level: float,
                 seed: int) -> Verdict:
    metric = test["metric"]
    exact = _unit_of(paper, test["table"], metric) in EXACT_UNITS
    runs, why = {}, {}
    for row, recs in selected.items():
        runs[row], reason = _runs(recs, metric)
        if reason is not None and not exact:
            why[row] = reason
    values = {row: float(np.mean([r.value for r in rs])) for row, rs in runs.items()}
    recorded = {row: {r.seed: r.value for r in rs} for row, rs in runs.items()}
    n_seeds = min(len(rs) for rs in runs.values())
    with_items = {row: rs for row, rs in runs.items() if row not in why}
    boot = None
    if exact:
        # a count of the model, not an estimate: every resample gives the same value
        samples = {row: np.full(1, values[row]) for row in runs}
        n_items, paired, nb = None, None, None
    elif with_items:
        boot = stats.bootstrap_rows(with_items, n_boot=n_boot, seed=seed)
        samples = boot.rows
        n_items, paired, nb = boot.n_items, boot.paired, n_boot
    else:
        samples, n_items, paired, nb = {}, None, None, None
    chance = {} if exact else _chance_levels(with_items)
    how = (f"{n_items} items, {n_seeds} seed{'s' * (n_seeds != 1)}, "
           f"{'paired' if paired else 'unpaired'} bootstrap of {nb} resamples"
           if n_items is not None else f"exact counts, {n_seeds} seed{'s' * (n_seeds != 1)}"
           if exact else "")
    how = f"; {how}" if how else ""
    base = dict(values=values, n_items=n_items, n_seeds=n_seeds, kind=kind, metric=metric,
                paired=paired, n_boot=nb, chance=chance)
    no_items = ("no per-item outputs for rows " + ", ".join(
        f"{row} ({reason})" if reason != "no per-item outputs" else row
        for row, reason in why.items()) + ": no interval") if why else ""

    if kind == "comparison":
        sign = 1.0 if test.get("higher_is_better", True) else -1.0
        better = test["better"]
        worse = test["worse"] if isinstance(test["worse"], list) else [test["worse"]]
        flat = _not_above_chance(samples, chance, level) if sign > 0 else {}
        pairs = []
        for w in worse:
            eff = sign * (values[better] - values[w])
            spread = stats.seed_spread(recorded[better], recorded[w])
            if better in samples and w in samples:
                lo, hi = stats.percentile_interval(sign * (samples[better] - samples[w]), level)
                verdict = stats.side_of(lo, hi, 0.0, claim_above=True)
                if better in flat or w in flat:
                    verdict = stats.INCONCLUSIVE      # a row that learned nothing decides nothing
            else:
                lo = hi = None
                verdict = stats.INCONCLUSIVE
            pairs.append({"better": better, "worse": w, "effect": eff, "interval": [lo, hi], "verdict": verdict,
                          "seed_spread": spread,
                          "paper_effect": _paper_difference(paper, test, better, w, sign),
                          "paired": boot.paired_rows(better, w) if boot is not None
                          and better in boot.rows and w in boot.rows else None})
        verdict = stats.combine([p["verdict"] for p in pairs])
        key = {"reproduced": lambda p: p["interval"][0],
               "not reproduced": lambda p: (p["verdict"] != "not reproduced", p["interval"][1] or 0),
               "inconclusive": lambda p: (p["verdict"] != "inconclusive",
                                          -np.inf if p["interval"][0] is None else p["interval"][0])}
        decisive = min(pairs, key=key[verdict])
        rel = ">" if sign > 0 else "<"
        parts = "; ".join(f"vs. {p['worse']} {values[p['worse']]:.4g}: diff {_fmt(p['effect'], True)}"
                          + (f" {_ci(*p['interval'], signed=True)}" if p["interval"][0] is not None
                             else "") for p in pairs)
        evidence = (f"this run {metric}: {better} {values[better]:.4g} {parts} "
                    f"(claim: {rel} each{'; 95% interval of the difference' if how else ''}{how})")
        if no_items:
            evidence += f"; {no_items}"
        at_chance = [r for r in (better, *worse) if r in flat]
        if at_chance:
            evidence += ("; not measurably above chance: " + ", ".join(
                f"{r} {_ci(*flat[r])} against {_fmt(chance[r])}" for r in at_chance)
                + ": a row that learned nothing at this size is evidence neither for nor "
                "against the paper, so its pairs are inconclusive")
        iv = decisive["interval"]
        return Verdict(claim_id, verdict, evidence, effect=decisive["effect"],
                       interval=None if iv[0] is None else (iv[0], iv[1]),
                       seed_spread=decisive["seed_spread"], reference=0.0, pairs=pairs,
                       paper_effect=decisive["paper_effect"], **base)

    if kind in ("close", "threshold"):
        row = test["row"]
        run_value = values[row]
        spread = stats.seed_spread(recorded[row])
        lo = hi = None
        if row in samples:
            lo, hi = stats.percentile_interval(samples[row], level)
        if kind == "close":
            number = _paper_number(paper, test["table"], row, metric)
            if number is None:
                raise RegistryError(f"claim test of {paper}: no paper number for "
                                    f"{test['table']}/{row}/{metric}")
            paper_value, unit = number
            f = UNIT_FACTORS[unit]
            target = paper_value / f
            half, why = _close_half_width(paper, test, row, metric, paper_value)
            band = [target - half / f, target + half / f]
            verdict = stats.in_band(lo, hi, *band) if lo is not None else stats.INCONCLUSIVE
            evidence = (f"this run {metric} {_fmt(run_value * f)} {unit}"
                        + (f" {_ci(lo * f, hi * f)}" if lo is not None else "")
                        + f" vs. paper {paper_value:g} {unit}: relative difference "
                        f"{(run_value - target) / target:+.1%} (claim: within {why}, band "
                        f"{_ci(band[0] * f, band[1] * f)}{how})")
            reference: Any = band
        else:
            ops = {">": True, ">=": True, "<": False, "<=": False}
            op = test["op"]
            if op not in ops:
                raise RegistryError(f"claim test of {paper}: unknown op {op!r}")
            value = float(test["value"])
            verdict = (stats.side_of(lo, hi, value, claim_above=ops[op]) if lo is not None
                       else stats.INCONCLUSIVE)
            evidence = (f"this run {metric} {_fmt(run_value)}"
                        + (f" {_ci(lo, hi)}" if lo is not None else "")
                        + f" (claim: {op} {test['value']}{how})")
            reference = {"op": op, "value": value}
        if no_items:
            evidence += f"; {no_items}"
        return Verdict(claim_id, verdict, evidence, effect=run_value,
                       interval=None if lo is None else (lo, hi), seed_spread=spread,
                       reference=reference, **base)

    # spread
    rows = list(test["rows"])
    point = max(values[r] for r in rows) - min(values[r] for r in rows)
    seeds = set.intersection(*(set(recorded[r]) for r in rows))
    per_seed = {s: max(recorded[r][s] for r in rows) - min(recorded[r][s] for r in rows)
                for s in seeds}
    lo = hi = noise = None
    if all(r in samples for r in rows):
        stacked = np.stack([np.broadcast_to(samples[r], samples[rows[0]].shape) for r in rows])
        lo, hi = stats.percentile_interval(stacked.max(axis=0) - stacked.min(axis=0), level)
        # max - min of noisy rows is biased upward: the spread that rows equal in truth would show
        # at this test size (each row's resamples centred on zero) is the test's noise floor
        centred = stacked - stacked.mean(axis=1, keepdims=True)
        noise = float(np.quantile(centred.max(axis=0) - centred.min(axis=0), level))
    max_spread = float(test["max_spread"])
    verdict = (stats.side_of(lo, hi, max_spread, claim_above=False) if lo is not None
               else stats.INCONCLUSIVE)
    if noise is not None and verdict == stats.NOT_REPRODUCED and point - noise <= max_spread:
        verdict = stats.INCONCLUSIVE          # noise alone could lift the spread above the bound
    evidence = (f"this run {metric} from {min(values[r] for r in rows):.4g} to "
                f"{max(values[r] for r in rows):.4g}: spread {point:.4g}"
                + (f" {_ci(lo, hi)}" if lo is not None else "")
                + f" (claim: <= {test['max_spread']}{how})"
                + (f"; noise floor {noise:.4g} (the spread of equal rows at this test size)"
                   if noise is not None else ""))
    if no_items:
        evidence += f"; {no_items}"
    return Verdict(claim_id, verdict, evidence, effect=point,
                   interval=None if lo is None else (lo, hi),
                   seed_spread=stats.seed_spread(per_seed), reference=max_spread, **base)


# ------------------------------------------------------------------------------ tables
CLAIM_COLUMNS = ["record_id", "timestamp", "chapter", "paper", "claim_id", "verdict", "evidence",
                 "dataset", "scale", "profile", "effect", "lo", "hi", "n_items", "n_seeds",
                 "seed_spread", "notebook", "test_kind", "metric", "reference", "paired", "n_boot",
                 "paper_effect", "resolution", "values", "chance"]


def decide_claims(chapter: str, profile: str | None, notebook: str,
                  by_notebook: Mapping[str, Sequence[str]] | None = None,
                  claim_ids: Sequence[str] | None = None, *, register: bool = True,
                  dataset: Mapping[str, str] | None = None,
                  custom: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Decide the claims one notebook of ``chapter`` is responsible for, register them, and
    return one line per claim.

    ``claim_ids`` (default: ``by_notebook[<notebook stem>]``) are decided by
    :func:`evaluate_claim` on the records of ``profile`` (paired bootstrap over the test items
    of the latest run group, seeds combined); ``dataset`` restricts a claim to one dataset's
    records (claim id -> dataset); ``custom`` maps a claim id to a callable ``() -> Verdict |
    None`` for claims decided by chapter code (a manual claim, a layer-wise trend), ``None``
    meaning "not decided by this run" (the claim is left out). Columns: ``claim, verdict,
    effect, lo, hi, interval width, items, seeds, seed spread, evidence``.
    """
    name = Path(str(notebook)).stem
    if claim_ids is None:
        known = dict(by_notebook or {})
        if name not in known:
            raise KeyError(f"decide_claims: notebook {notebook!r} decides no claim of "
                           f"{chapter!r}; notebooks that do: {sorted(known)} (or pass claim_ids)")
        claim_ids = known[name]
    where = f"{chapter}/{name}"
    lines = []
    for cid in claim_ids:
        if custom and cid in custom:
            v = custom[cid]()
            if v is None:
                continue
        else:
            v = evaluate_claim(chapter, cid, profile=profile, register=register, notebook=where,
                               dataset=(dataset or {}).get(cid))
        lo, hi = v.interval if v.interval is not None else (np.nan, np.nan)
        lines.append({"claim": cid, "verdict": v.verdict, "effect": v.effect, "lo": lo, "hi": hi,
                      "interval width": hi - lo, "items": v.n_items, "seeds": v.n_seeds,
                      "seed spread": v.seed_spread, "evidence": v.evidence})
    return pd.DataFrame(lines, columns=["claim", "verdict", "effect", "lo", "hi", "interval width",
                                        "items", "seeds", "seed spread", "evidence"])


def load_claim_records() -> pd.DataFrame:
    """Every stored verdict, oldest first (fields a verdict did not store are None)."""
    recs = []
    for r in _read_all("claim"):
        iv = r.get("interval") or [None, None]
        recs.append({**{c: r.get(c) for c in CLAIM_COLUMNS}, "lo": iv[0], "hi": iv[1]})
    df = pd.DataFrame(recs, columns=CLAIM_COLUMNS)
    return df.sort_values(["timestamp", "record_id"], kind="stable").reset_index(drop=True)


TABLE_COLUMNS = ["paper", "claim_id", "claim", "test", "verdict", "effect", "lo", "hi", "n_items",
                 "n_seeds", "seed_spread", "paper_effect", "resolution", "values", "chance",
                 "test_kind", "metric",
                 "reference", "notebook", "evidence", "dataset", "scale", "profile", "timestamp"]


def claims_table(papers: Iterable[str] | None = None, profile: str | None = None) -> pd.DataFrame:
    """Every claim of every paper with its latest verdict (or ``not yet measured``).

    Columns: ``paper, claim_id, claim, test, verdict, effect, lo, hi, n_items, n_seeds,
    seed_spread, paper_effect, resolution, values, chance, test_kind, metric, reference, notebook, evidence,
    dataset, scale, profile, timestamp``. ``profile`` keeps only verdicts registered under that profile.
    """
    papers = paper_names() if papers is None else papers
    stored = load_claim_records()
    if profile is not None and not stored.empty:
        stored = stored[stored["profile"] == profile]
    latest = {} if stored.empty else {
        (r["paper"], r["claim_id"]): r
        for r in stored.drop_duplicates(["paper", "claim_id"], keep="last").to_dict("records")}
    rows = []
    for paper in papers:
        for c in claims(paper):
            test = c["test"]
            row = {col: None for col in TABLE_COLUMNS}
            row.update(paper=paper, claim_id=c["id"], claim=c["text"],
                       test=", ".join(f"{k}={v}" for k, v in test.items()),
                       verdict="not yet measured", evidence="", dataset="", scale="",
                       profile="", timestamp="", test_kind=test.get("kind"),
                       metric=test.get("metric"))
            hit = latest.get((paper, c["id"]))
            if hit is not None:
                row.update({k: hit[k] for k in TABLE_COLUMNS if k in hit and k not in
                            ("paper", "claim_id") and not (k in ("test_kind", "metric")
                                                           and hit[k] is None)})
            rows.append(row)
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for col in ("effect", "lo", "hi", "n_items", "n_seeds", "seed_spread", "paper_effect",
                "resolution"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)    # missing -> NaN
    return df


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def effect_text(row: Mapping[str, Any]) -> str:
    """``Δ mAP +0.041 [+0.012, +0.070]`` (or the kind's own wording) of a claims-table row."""
    effect, lo, hi = _num(row.get("effect")), _num(row.get("lo")), _num(row.get("hi"))
    if effect is None:
        return ""
    kind, metric, ref = row.get("test_kind"), row.get("metric") or "", row.get("reference")
    ci = "" if lo is None or hi is None else " " + _ci(lo, hi, signed=kind == "comparison")
    if kind == "comparison":
        return f"Δ {metric} {_fmt(effect, True)}{ci}"
    if kind == "close" and isinstance(ref, (list, tuple)) and len(ref) == 2:
        return f"{metric} {_fmt(effect)}{ci} vs. band {_ci(*ref)}"
    if kind == "threshold" and isinstance(ref, Mapping):
        return f"{metric} {_fmt(effect)}{ci} vs. {ref.get('op')} {_fmt(_num(ref.get('value')))}"
    if kind == "spread":
        return f"spread {_fmt(effect)}{ci} vs. ≤ {_fmt(_num(ref))}"
    return f"{_fmt(effect)}{ci}"


def resolution_text(row: Mapping[str, Any]) -> str:
    """``±0.031; paper +0.012: too small`` - the half-width of a verdict's interval (the
    smallest effect this test size resolves) and, for a comparison, whether the paper's own
    difference would be resolvable at this size (empty without an interval)."""
    res = _num(row.get("resolution"))
    if res is None:
        return ""
    text = f"±{_fmt(res)}"
    paper = _num(row.get("paper_effect"))
    if paper is not None:
        text += f"; paper {_fmt(paper, True)}: " + ("resolvable" if abs(paper) > res else "too small")
    return text


def chance_text(row: Mapping[str, Any]) -> str:
    """``×1.4 vs. ×1.2–3.8``: the compared rows' values divided by their chance levels (a
    comparison: the paper's better row, then the range over the rows it should beat; otherwise
    the range over the claim's rows); empty when no chance level is known."""
    values, chance = row.get("values"), row.get("chance")
    if not isinstance(values, Mapping) or not isinstance(chance, Mapping):
        return ""
    ratio = {r: values[r] / chance[r] for r in chance
             if _num(values.get(r)) is not None and _num(chance[r])}

    def span(rows: Sequence[str]) -> str:
        got = [ratio[r] for r in rows if r in ratio]
        if not got:
            return ""
        lo, hi = min(got), max(got)
        return f"×{lo:.1f}" if f"{lo:.1f}" == f"{hi:.1f}" else f"×{lo:.1f}–{hi:.1f}"
    pairs = [p for p in (row.get("pairs") or []) if isinstance(p, Mapping) and "better" in p]
    if pairs:                  # the roles as this verdict compared them
        better, worse = pairs[0]["better"], [p["worse"] for p in pairs]
    else:                      # a verdict stored before pairs named their better row
        test = {}
        if row.get("paper") and row.get("claim_id"):
            try:
                test = _claim(str(row["paper"]), str(row["claim_id"]))["test"]
            except RegistryError:
                test = {}
        better = test.get("better") if test.get("kind") == "comparison" else None
        worse = test.get("worse") if isinstance(test.get("worse"), list) else [test.get("worse")]
    if better in ratio:
        rest = span(worse)
        return span([better]) + (f" vs. {rest}" if rest else "")
    return span(list(ratio))


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _notebook_link(name: Any, link_base: str) -> str:
    if not name:
        return ""
    name = str(name)
    label = html.escape(name.split("/")[-1])
    if "/" not in name:
        return label
    return f"<a href='{html.escape(link_base + name)}.html'>{label}</a>"


CLAIM_CHARS = 90        # claim text shown on a line; the rest and the evidence on demand


def _claim_cell(claim: str, evidence: str, run: str, claim_id: str = "") -> str:
    """HTML: the claim cut to CLAIM_CHARS characters; on demand the rest of it, this run's
    evidence, the run (profile, data, scale) that gave it and the claim's id (the label of its
    plot row)."""
    full = " ".join(str(claim or "").split())
    more = [html.escape(full)] if len(full) > CLAIM_CHARS else []
    if str(evidence or "").strip():
        more.append(f"<b>evidence:</b> {html.escape(' '.join(str(evidence).split()))}")
    if run:
        more.append(f"<i>run: {html.escape(run)}</i>")
    if claim_id:
        more.append(f"<i>claim id: {html.escape(claim_id)}</i>")
    if not more:
        return html.escape(full)
    return (f"<details><summary>{html.escape(_short(full, CLAIM_CHARS))}</summary>"
            f"<div style='font-size:90%'>{'<br>'.join(more)}</div></details>")


def chapter_verdicts(paper: str | Sequence[str] | None, profile: str | None = None,
                     link_base: str = "../") -> "pd.io.formats.style.Styler":
    """One line per claim with its latest verdict (``profile``: only verdicts of that
    profile): claim, verdict (coloured), effect with its 95 % interval, n items, n seeds, the
    effect size the test resolves (:func:`resolution_text`), the compared rows' values over
    chance (:func:`chance_text`) and the notebook that decided it (a link, relative to ``link_base``). The claim is cut to
    :data:`CLAIM_CHARS` characters; its whole text, this run's evidence and the data / scale /
    profile open on demand (``<details>``).

    ``paper``: one paper (rows indexed by claim id), or several / ``None`` for every paper
    (rows indexed by paper and claim id, the paper shown once per group).

    ``.data`` holds the plain values (full claim and evidence); nothing in it is typed by hand:
    claim texts come from the paper file, verdicts and numbers from the registry.
    """
    single = isinstance(paper, str)
    papers = [paper] if single else list(paper_names() if paper is None else paper)
    unknown = [p for p in papers if p not in paper_names()]
    if unknown:
        raise KeyError(f"unknown paper {unknown[0]!r}; known: {list(paper_names())}")
    table = claims_table(papers, profile=profile)
    shown = pd.DataFrame({
        "paper": table["paper"], "claim_id": table["claim_id"], "claim": table["claim"],
        "verdict": table["verdict"],
        "effect [95% interval]": [effect_text(r) for r in table.to_dict("records")],
        "n items": [("" if _num(x) is None else int(x)) for x in table["n_items"]],
        "n seeds": [("" if _num(x) is None else int(x)) for x in table["n_seeds"]],
        "resolves": [resolution_text(r) for r in table.to_dict("records")],
        "÷ chance": [chance_text(r) for r in table.to_dict("records")],
        "notebook": table["notebook"].fillna(""), "evidence": table["evidence"],
        "dataset": table["dataset"], "scale": table["scale"], "profile": table["profile"],
    })
    shown = (shown.drop(columns="paper").set_index("claim_id") if single
             else shown.set_index(["paper", "claim_id"]))
    shown.index.names = [None] * shown.index.nlevels

    def colour(value: str) -> str:
        return (f"color: {VERDICT_COLOURS[value]}; font-weight: bold"
                if value in VERDICT_COLOURS else "")

    # a book page's column is ~700 px at a 1280 px window: the claim id (long, unbreakable)
    # goes into the claim's details; only the paper (once per group) is a row heading
    styler = (shown.style.map(colour, subset=["verdict"])
              .format(lambda n: _notebook_link(n, link_base), subset=["notebook"])
              .hide(["evidence", "dataset", "scale", "profile"], axis="columns")
              .set_properties(**{"text-align": "left", "vertical-align": "top",
                                 "white-space": "normal", "padding": "3px 5px"})
              .set_properties(subset=["claim"], **{"min-width": "13em",
                                                   "overflow-wrap": "anywhere"})
              .set_properties(subset=["notebook"], **{"overflow-wrap": "anywhere"})
              .set_properties(subset=["effect [95% interval]"], **{"min-width": "8em"})
              .set_properties(subset=["n items", "n seeds"], **{"text-align": "right"})
              .set_table_styles([
                  {"selector": "", "props": "table-layout: auto; width: 100%; max-width: 100%; "
                                            "font-size: 85%; border-collapse: collapse;"},
                  {"selector": "th", "props": "text-align: left; vertical-align: top; "
                                              "padding: 3px 5px;"},
                  {"selector": "tbody tr", "props": "border-top: 1px solid #dddddd;"}]))
    styler = (styler.hide(axis="index") if single
              else styler.hide(level=1, axis="index"))
    for key, r in shown.iterrows():
        run = ", ".join(f"{k} {r[k]}" for k in ("profile", "dataset", "scale") if r[k])
        cid = key if single else key[1]
        styler = styler.format(
            lambda text, ev=r["evidence"], run=run, cid=cid: _claim_cell(text, ev, run, cid),
            subset=pd.IndexSlice[[key], ["claim"]])
    return styler


def _margin(row: Mapping[str, Any]) -> tuple[float | None, float | None, float | None, str]:
    """(point, lo, hi) of a verdict as a margin toward the claim (positive = paper's side), and
    the unit label: comparison: the difference; threshold: value - threshold (flipped for < / <=);
    spread: max_spread - spread; close: band half-width - |relative difference| (relative)."""
    effect, lo, hi = _num(row.get("effect")), _num(row.get("lo")), _num(row.get("hi"))
    kind, ref, metric = row.get("test_kind"), row.get("reference"), row.get("metric") or ""
    if effect is None:
        return None, None, None, ""
    if kind == "comparison":
        return effect, lo, hi, f"Δ {metric}"
    if kind == "threshold" and isinstance(ref, Mapping):
        s = 1.0 if ref.get("op") in (">", ">=") else -1.0
        v = float(ref["value"])
        ends = None if lo is None else sorted((s * (lo - v), s * (hi - v)))
        return s * (effect - v), *(ends or (None, None)), f"{metric} vs. threshold"
    if kind == "spread":
        m = float(ref)
        return m - effect, None if hi is None else m - hi, None if lo is None else m - lo, \
            f"{metric} spread margin"
    if kind == "close" and isinstance(ref, (list, tuple)) and len(ref) == 2:
        target = (ref[0] + ref[1]) / 2
        tol = (ref[1] - ref[0]) / 2 / abs(target)

        def dev(x: float) -> float:
            return (x - target) / abs(target)
        point = tol - abs(dev(effect))
        if lo is None:
            return point, None, None, "relative to paper"
        a, b = dev(lo), dev(hi)
        nearest = 0.0 if a <= 0 <= b else min(abs(a), abs(b))
        return point, tol - max(abs(a), abs(b)), tol - nearest, "relative to paper"
    return effect, lo, hi, metric


def verdict_plot(paper: str, profile: str | None = None, ax: Any = None) -> Any:
    """Effects of ``paper``'s claims with their 95 % intervals against zero, one row per claim
    (matplotlib Figure). Each effect is a margin toward the claim, so right of zero is the
    paper's side: a comparison's difference, a threshold's distance, max_spread - spread, and
    for closeness the band's relative half-width - |relative difference| (the paper's band is zero and right of it).
    Colours are the verdicts'; claims without a number are named at the zero line. A grey ``x``
    marks the paper's own difference of a comparison (so a reader sees whether an interval this
    wide could have resolved it).

    Without ``ax``, margins in the metric's units and relative ones (closeness to a printed
    number) get two panels side by side sharing the rows, so a large relative miss does not
    squash the metric differences; the first panel carries the row labels. With ``ax``, one
    panel holds everything."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table = claims_table([paper], profile=profile)
    n = len(table)
    rows = [(n - 1 - i, r, *_margin(r)) for i, r in enumerate(table.to_dict("records"))]
    relative = any(unit == "relative to paper" and point is not None
                   for _, _, point, _, _, unit in rows)
    split = ax is None and relative and any(
        unit != "relative to paper" and point is not None for _, _, point, _, _, unit in rows)
    if ax is None:
        fig, axes = plt.subplots(1, 2 if split else 1, sharey=True, squeeze=False,
                                 figsize=(6.6, 0.3 * n + 1.6),    # fits a 676 px page column
                                 gridspec_kw={"width_ratios": [3, 1.3]} if split else None)
        axes = list(axes[0])
    else:
        fig, axes = ax.figure, [ax]
    main, rel = axes[0], axes[-1]
    for y, r, point, lo, hi, unit in rows:
        a = rel if split and unit == "relative to paper" else main
        colour = VERDICT_COLOURS.get(r["verdict"], "#000000")
        if point is None:
            main.annotate(r["verdict"], (0.01, y), xycoords=main.get_yaxis_transform(),
                          va="center", ha="left", fontsize=7, color=colour)
            continue
        if lo is not None and hi is not None:
            a.plot([lo, hi], [y, y], color=colour, lw=2.5, solid_capstyle="butt")
        a.plot([point], [y], "o", color=colour, ms=5, mfc=colour if lo is not None else "white")
        paper_effect = _num(r.get("paper_effect"))
        if r.get("test_kind") == "comparison" and paper_effect is not None:
            a.plot([paper_effect], [y], "x", color="#555555", ms=5, mew=1.2)
    for a in axes:
        a.axvline(0.0, color="#444444", lw=0.8)
        a.grid(axis="y", color="#eeeeee", lw=0.6)
        a.set_axisbelow(True)
        a.tick_params(axis="x", labelsize=8)
    main.set_yticks([y for y, *_ in rows], [r["claim_id"] for _, r, *_ in rows], fontsize=7.5)
    main.set_ylim(-0.7, n - 0.3)
    if split:
        main.set_xlabel("margin toward the claim (metric units)  →", fontsize=8)
        rel.set_xlabel("closeness (relative)  →", fontsize=8)
        rel.xaxis.set_major_locator(plt.MaxNLocator(3))
    else:
        units = "metric units; closeness: relative" if relative else "metric units"
        main.set_xlabel(f"margin toward the claim ({units})  →  paper's side", fontsize=8)
    handles = [Line2D([], [], color=c, marker="o", lw=2.5, label=v)
               for v, c in VERDICT_COLOURS.items()]
    if any(r.get("test_kind") == "comparison" and _num(r.get("paper_effect")) is not None
           for _, r, *_ in rows):
        handles.append(Line2D([], [], color="#555555", marker="x", lw=0, label="paper's difference"))
    # title and legend above the panels, in the figure's top band (tight_layout keeps it free)
    h = fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / h))
    fig.text(0.01, 1 - 0.04 / h, f"{paper}: effects with 95% intervals", fontsize=10, ha="left",
             va="top")
    fig.legend(handles=handles, fontsize=7, frameon=False, ncol=len(handles), loc="upper left",
               bbox_to_anchor=(0.01, 1 - 0.26 / h), borderaxespad=0.0, handlelength=1.5,
               columnspacing=1.0)
    return fig
