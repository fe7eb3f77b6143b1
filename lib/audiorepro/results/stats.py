"""Paired bootstrap over test items, combined with seeds: the statistics behind every verdict.

A *run* is one record of one table row (one seed) with its per-item outputs
(:mod:`audiorepro.results.items`). For every distinct test set (the same item ids) one matrix
of resample counts (B, N) is drawn, within ``groups`` when the items carry them; every run on
that test set is evaluated on the same resamples, so two rows tested on the same items are
paired item by item, and so are their seeds. Per row the resampled metric is averaged over its
seeds; differences, spreads and intervals are taken on those (B,) vectors. The 95 % interval is
the percentile interval of the resampled statistic. The seed spread is reported beside it, not
folded in: the standard deviation over seeds of the per-seed difference.

The random generator is seeded (``seed=0``), so a verdict depends only on the stored outputs,
never on the machine that computes it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .items import ItemSet, evaluate, metric_function

N_BOOT = 1000
#: fewest test items a bootstrap interval may decide a verdict from: below it the percentile
#: interval of a handful of items is degenerate (one item: zero width), so the verdict is
#: inconclusive whatever the interval says
MIN_ITEMS = 10
LEVEL = 0.95


@dataclass
class Run:
    """One record of one row: the seed, the value the run recorded, its items (or None)."""

    seed: str | None
    value: float
    items: ItemSet | None = None
    record_id: str = ""


@dataclass
class Resampled:
    """Bootstrap of several rows (see :func:`bootstrap_rows`).

    Attributes:
        rows: row -> (B,) metric on each resample, averaged over the row's seeds.
        per_seed: row -> {seed: (B,)}.
        point: row -> mean over seeds of the recorded values.
        n_items: smallest number of test items of any run.
        n_seeds: row -> number of seeds.
        paired: every run was tested on the same items (one test set).
        n_boot: number of resamples.
        recorded: row -> {seed: recorded value}.  test_sets: row -> digests of its test sets.
    """

    rows: dict[str, np.ndarray]
    per_seed: dict[str, dict[str | None, np.ndarray]]
    point: dict[str, float]
    n_items: int
    n_seeds: dict[str, int]
    paired: bool
    n_boot: int
    recorded: dict[str, dict[str | None, float]] = field(default_factory=dict)
    test_sets: dict[str, set[str]] = field(default_factory=dict)

    def paired_rows(self, a: str, b: str) -> bool:
        """Rows a and b were tested on one and the same set of items."""
        return len(self.test_sets[a]) == 1 and self.test_sets[a] == self.test_sets[b]


def resample_counts(n: int, n_boot: int, rng: np.random.Generator,
                    groups: np.ndarray | None = None) -> np.ndarray:
    """(n_boot, n) float32 counts: how often each of n items is drawn in each resample.

    Each resample draws n items with replacement; with ``groups`` (n,), each group's items are
    drawn within the group (as many as it holds), so every group keeps its size.
    """
    if n < 1 or n_boot < 1:
        raise ValueError(f"resample_counts: need n >= 1 and n_boot >= 1, got {n}, {n_boot}")
    counts = np.zeros((n_boot, n), dtype=np.float32)
    offsets = (np.arange(n_boot) * n)[:, None]
    parts = [np.arange(n)] if groups is None else [np.flatnonzero(groups == g)
                                                      for g in np.unique(groups)]
    for idx in parts:
        draw = idx[rng.integers(0, idx.size, size=(n_boot, idx.size))]
        draw += offsets
        counts += np.bincount(draw.ravel(), minlength=n_boot * n).reshape(n_boot, n)
    return counts


def _test_set_key(items: ItemSet) -> str:
    h = hashlib.sha256()
    order = np.argsort(items.ids, kind="stable")
    h.update("\n".join(items.ids[order].tolist()).encode())
    if items.groups is not None:
        h.update(b"\0groups\0" + "\n".join(items.groups[order].tolist()).encode())
    return h.hexdigest()


def bootstrap_rows(rows: Mapping[str, Sequence[Run]], n_boot: int = N_BOOT,
                   seed: int = 0) -> Resampled:
    """Resample the items of every run (every run must have items) and average over seeds.

    Runs on the same test set (same ids, same groups) share one counts matrix; items are aligned
    by id, so the order in which a run stored them does not matter.
    """
    rng = np.random.default_rng(seed)
    counts: dict[str, np.ndarray] = {}
    per_seed: dict[str, dict[str | None, np.ndarray]] = {}
    recorded: dict[str, dict[str | None, float]] = {}
    test_sets: dict[str, set[str]] = {}
    n_items = None
    for row, runs in rows.items():
        if not runs:
            raise ValueError(f"bootstrap_rows: row {row!r} has no runs")
        per_seed[row], recorded[row], test_sets[row] = {}, {}, set()
        for run in runs:
            if run.items is None:
                raise ValueError(f"bootstrap_rows: row {row!r} seed {run.seed} has no items")
            order = np.argsort(run.items.ids, kind="stable")
            items = run.items.take(order)                     # canonical order: sorted ids
            key = _test_set_key(items)
            test_sets[row].add(key)
            if key not in counts:
                counts[key] = resample_counts(items.n, n_boot, rng, items.groups)
            fn = metric_function(items.metric or "mean")
            per_seed[row][run.seed] = evaluate(fn, items, counts[key])
            recorded[row][run.seed] = float(run.value)
            n_items = items.n if n_items is None else min(n_items, items.n)
    return Resampled(rows={r: np.mean(list(v.values()), axis=0) for r, v in per_seed.items()},
                     per_seed=per_seed,
                     point={r: float(np.mean(list(v.values()))) for r, v in recorded.items()},
                     n_items=int(n_items or 0), n_seeds={r: len(v) for r, v in per_seed.items()},
                     paired=len(counts) == 1, n_boot=n_boot, recorded=recorded,
                     test_sets=test_sets)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap samples (NaN samples, from resamples where the metric
    is undefined, are left out)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(x, [a, 1.0 - a])
    return float(lo), float(hi)


def seed_spread(a: Mapping[str | None, float], b: Mapping[str | None, float] | None = None
                ) -> float | None:
    """Standard deviation (ddof 1) over seeds of the per-seed difference a - b (or of a when
    ``b`` is None), over the seeds both rows ran; None with fewer than two."""
    seeds = [s for s in a if b is None or s in b]
    if len(seeds) < 2:
        return None
    d = np.array([a[s] - (0.0 if b is None else b[s]) for s in seeds], dtype=np.float64)
    return float(np.std(d, ddof=1))


# --------------------------------------------------------------------------------- decisions
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


def side_of(lo: float, hi: float, threshold: float, claim_above: bool = True) -> str:
    """Verdict for a claim that a quantity lies above (``claim_above``) or below ``threshold``,
    from its interval [lo, hi]: on the claim's side -> reproduced, on the other side -> not
    reproduced, touching or straddling the threshold -> inconclusive."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if claim_above:
        return REPRODUCED if lo > threshold else NOT_REPRODUCED if hi < threshold else INCONCLUSIVE
    return REPRODUCED if hi < threshold else NOT_REPRODUCED if lo > threshold else INCONCLUSIVE


def in_band(lo: float, hi: float, band_lo: float, band_hi: float) -> str:
    """Verdict for a claim that a quantity lies in [band_lo, band_hi]: interval inside ->
    reproduced, wholly outside -> not reproduced, else inconclusive."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if band_lo <= lo and hi <= band_hi:
        return REPRODUCED
    if hi < band_lo or lo > band_hi:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """Several pairwise verdicts of one claim: all reproduced -> reproduced; any not
    reproduced -> not reproduced; else inconclusive."""
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if any(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    return INCONCLUSIVE
