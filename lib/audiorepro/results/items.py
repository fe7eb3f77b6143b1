"""Per-item outputs stored beside a result record, so its metric can be recomputed on resamples.

A verdict on a comparative claim needs to know how much a metric would move on another draw of
test items; that needs the outputs per test item, not only the mean. :func:`record` accepts them
as ``items=`` and stores them in ``<record_id>.items.npz`` next to the record's JSON file.

Item sets (build them with the constructors; every set names its items by ``ids``, unique
strings such as clip ids, so that two rows are paired item by item):

* :func:`tagging_items` ``(ids, scores (N, C), targets (N, C) 0/1)`` -> ``mAP``, ``AUC``;
* :func:`classification_items` ``(ids, scores (N, C), labels (N,))`` -> ``accuracy``;
* :func:`retrieval_items` ``(ids, ranks (Q,))``, the 1-based rank of each query's relevant item
  -> ``mAP@10`` (``mAP@k``), ``R@1`` / ``R@5`` / ``R@10`` (``R@k``); optionally ``gallery``
  (Q,), how many candidates each query ranked (its chance level needs it);
* :func:`value_items` ``(ids, values (N,))``, any per-item contribution whose mean is the
  metric -> ``mean``.

Every constructor takes ``groups=`` (N,) labels: the metric is then the mean over groups of the
metric within each group, and resamples are drawn within each group (e.g. the fusion paper's
``Avg``: mean accuracy over tasks, ``value_items(ids, correct, groups=task)``), and ``metric=``
(a name of :data:`METRIC_FUNCTIONS`) when the recorded metric's own name is not one of them.

``items`` given to :func:`record` is either one set, used for every recorded metric whose name
(or the set's ``metric``) is a registered function that the set can compute, or a dict
``{recorded metric name: set}``. At write time the items must reproduce the recorded value
(within 1e-4): they are the outputs that computed it, not a stand-in. Scores are stored as
float16 when that changes no recomputed metric by more than 1e-4, else float32 (float64 if
needed).
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from audiorepro import metrics as M
from audiorepro.fileio import atomic_write

from .base import RegistryError, records_dir

ITEMS_SUFFIX = ".items.npz"
TOLERANCE = 1e-4            # items must reproduce the recorded value to this (absolute)
_ARRAY_FIELDS = ("ids", "scores", "targets", "labels", "ranks", "values", "groups", "gallery")


class ItemsMissing(RegistryError, FileNotFoundError):
    """A record has no per-item outputs (old record, or the items file is gone)."""


@dataclass
class ItemSet:
    """Per-item outputs of one evaluation (see the module docstring for the kinds).

    Attributes: ``ids`` (N,) str; ``scores`` (N, C) float; ``targets`` (N, C) 0/1;
    ``labels`` (N,) int; ``ranks`` (N,) int >= 1; ``values`` (N,) float; ``groups`` (N,) str;
    ``gallery`` (N,) int >= rank: candidates each retrieval query ranked;
    ``metric``: registry name to use (default: the recorded metric's name).
    """

    ids: np.ndarray
    scores: np.ndarray | None = None
    targets: np.ndarray | None = None
    labels: np.ndarray | None = None
    ranks: np.ndarray | None = None
    values: np.ndarray | None = None
    groups: np.ndarray | None = None
    gallery: np.ndarray | None = None
    metric: str | None = None

    @property
    def n(self) -> int:
        return int(len(self.ids))

    def take(self, index: np.ndarray) -> "ItemSet":
        """The items at ``index`` (same fields, reordered / subset)."""
        return replace(self, **{f: (None if getattr(self, f) is None else getattr(self, f)[index])
                                for f in _ARRAY_FIELDS})

    def present(self) -> set[str]:
        return {f for f in _ARRAY_FIELDS if getattr(self, f) is not None}


def _as_ids(ids: Any, where: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.size == 0:
        raise RegistryError(f"{where}: ids must be a non-empty 1-D list, got shape {arr.shape}")
    out = np.array([str(x) for x in arr.tolist()])
    if any(not s.strip() for s in out.tolist()):
        raise RegistryError(f"{where}: an item id is empty (position "
                            f"{[i for i, s in enumerate(out.tolist()) if not s.strip()][0]})")
    uniq, counts = np.unique(out, return_counts=True)
    if (counts > 1).any():
        raise RegistryError(f"{where}: item id {str(uniq[counts > 1][0])!r} occurs "
                            f"{int(counts[counts > 1][0])} times; ids must be unique")
    return out


def _check(items: ItemSet, where: str = "items") -> ItemSet:
    """Validate shapes, types and values; returns a set with normalised dtypes."""
    ids = _as_ids(items.ids, where)
    n = ids.size
    out: dict[str, Any] = {"ids": ids, "metric": items.metric}

    def vec(name: str, kind: str) -> np.ndarray | None:
        v = getattr(items, name)
        if v is None:
            return None
        a = M.as_numpy(v)
        if a.ndim != 1 or a.shape[0] != n:
            raise RegistryError(f"{where}: {name} must be ({n},) like ids, got shape {a.shape}")
        if kind == "int":
            if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            if a.dtype.kind not in "iu":
                raise RegistryError(f"{where}: {name} must hold integers, got dtype {a.dtype}")
            return a.astype(np.int64)
        if kind == "float":
            if a.dtype.kind not in "fiub":
                raise RegistryError(f"{where}: {name} must be numbers, got dtype {a.dtype}")
            a = a.astype(np.float64)
            if not np.all(np.isfinite(a)):
                raise RegistryError(f"{where}: {name}[{int(np.flatnonzero(~np.isfinite(a))[0])}] "
                                    "is not finite")
            return a
        return np.array([str(x) for x in a.tolist()])

    if items.scores is not None:
        s = M.as_numpy(items.scores)
        if s.ndim != 2 or s.shape[0] != n:
            raise RegistryError(f"{where}: scores must be ({n}, C), got shape {s.shape}")
        if s.dtype.kind not in "fiu" or not np.all(np.isfinite(s)):
            raise RegistryError(f"{where}: scores must be finite numbers")
        out["scores"] = s.astype(np.float64)
    if items.targets is not None:
        t = M.as_numpy(items.targets)
        if out.get("scores") is None or t.shape != out["scores"].shape:
            raise RegistryError(f"{where}: targets need scores of the same shape; got targets "
                                f"{t.shape}, scores {None if out.get('scores') is None else out['scores'].shape}")
        if not np.isin(t, (0, 1)).all():
            raise RegistryError(f"{where}: targets must be 0/1")
        out["targets"] = t.astype(np.uint8)
    out["labels"] = vec("labels", "int")
    if out["labels"] is not None and out.get("scores") is None and items.values is None:
        raise RegistryError(f"{where}: labels need scores (N, C) or per-item values")
    if out["labels"] is not None and out.get("scores") is not None:
        bad = (out["labels"] < 0) | (out["labels"] >= out["scores"].shape[1])
        if bad.any():
            raise RegistryError(f"{where}: labels[{int(np.flatnonzero(bad)[0])}] = "
                                f"{out['labels'][bad][0]} is not a class of scores "
                                f"(C = {out['scores'].shape[1]})")
    out["ranks"] = vec("ranks", "int")
    if out["ranks"] is not None and (out["ranks"] < 1).any():
        raise RegistryError(f"{where}: ranks are 1-based; ranks[{int(np.argmin(out['ranks']))}] "
                            f"= {out['ranks'].min()}")
    out["gallery"] = vec("gallery", "int")
    if out["gallery"] is not None:
        if out["ranks"] is None:
            raise RegistryError(f"{where}: gallery sizes belong to retrieval ranks")
        bad = out["gallery"] < out["ranks"]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RegistryError(f"{where}: gallery[{i}] = {out['gallery'][i]} is smaller than "
                                f"ranks[{i}] = {out['ranks'][i]}")
    out["values"] = vec("values", "float")
    out["groups"] = vec("groups", "str")
    if out.get("scores") is not None and out.get("targets") is None and out["labels"] is None:
        raise RegistryError(f"{where}: scores need targets (tagging) or labels (classification)")
    if items.metric is not None:
        metric_function(items.metric)          # raises on an unknown name
    return ItemSet(**{f.name: out.get(f.name) for f in fields(ItemSet)})


def tagging_items(ids: Any, scores: Any, targets: Any, groups: Any = None,
                  metric: str | None = None) -> ItemSet:
    """Multi-label outputs: ``scores`` (N, C) and 0/1 ``targets`` (N, C) per test clip."""
    return _check(ItemSet(ids, scores=scores, targets=targets, groups=groups, metric=metric))


def classification_items(ids: Any, scores: Any, labels: Any, groups: Any = None,
                         metric: str | None = None) -> ItemSet:
    """Single-label outputs: ``scores`` (N, C) and class indices ``labels`` (N,)."""
    return _check(ItemSet(ids, scores=scores, labels=labels, groups=groups, metric=metric))


def retrieval_items(ids: Any, ranks: Any, groups: Any = None, metric: str | None = None,
                    gallery: Any = None) -> ItemSet:
    """Retrieval outputs: the 1-based rank of each query's relevant item (pessimistic ties,
    :func:`audiorepro.metrics.retrieval_ranks`); ``ids`` name the queries; ``gallery``: how many
    candidates each query ranked (an int for all), from which :func:`chance_level` follows."""
    if gallery is not None and np.ndim(gallery) == 0:
        gallery = np.full(len(np.asarray(ranks)), int(gallery))
    return _check(ItemSet(ids, ranks=ranks, groups=groups, metric=metric, gallery=gallery))


def value_items(ids: Any, values: Any, groups: Any = None, metric: str | None = "mean",
                labels: Any = None) -> ItemSet:
    """Per-item contributions whose mean is the metric (``metric="mean"``). When the values are
    per-item correctness of a classifier, ``labels`` (N,) (each item's class index) give the
    chance level: always answering the most frequent class (:func:`chance_level`)."""
    return _check(ItemSet(ids, values=values, groups=groups, metric=metric, labels=labels))


# ------------------------------------------------------------------------ metric registry
@dataclass(frozen=True)
class MetricFunction:
    """A metric recomputable from items: ``resampled(items, counts (B, N)) -> (B,)``.

    ``counts[b, n]`` is how often item n was drawn in resample b; a row of ones gives the
    metric of the items themselves (:meth:`full`).
    """

    name: str
    needs: tuple[str, ...]
    resampled: Callable[[ItemSet, np.ndarray], np.ndarray]

    def full(self, items: ItemSet) -> float:
        return float(evaluate(self, items, np.ones((1, items.n)))[0])


def _contributions(items: ItemSet, name: str) -> np.ndarray:
    if name == "accuracy":
        return (items.scores.argmax(axis=1) == items.labels).astype(np.float64)
    if name == "mean":
        return items.values
    m = re.fullmatch(r"(mAP|R)@(\d+)", name)
    r, k = items.ranks, int(m.group(2))
    return np.where(r <= k, 1.0 / r, 0.0) if m.group(1) == "mAP" else (r <= k).astype(np.float64)


def _mean_fn(name: str, needs: tuple[str, ...]) -> MetricFunction:
    return MetricFunction(name, needs,
                          lambda items, w: M.weighted_mean(_contributions(items, name), w))


METRIC_FUNCTIONS: dict[str, MetricFunction] = {
    "mAP": MetricFunction("mAP", ("scores", "targets"),
                          lambda it, w: M.weighted_average_precision(it.targets, it.scores, w)),
    "AUC": MetricFunction("AUC", ("scores", "targets"),
                          lambda it, w: M.weighted_roc_auc(it.targets, it.scores, w)),
    "accuracy": _mean_fn("accuracy", ("scores", "labels")),
    "mean": _mean_fn("mean", ("values",)),
    **{name: _mean_fn(name, ("ranks",)) for name in ("mAP@10", "R@1", "R@5", "R@10")},
}   # any other mAP@k / R@k is resolved by metric_function


def metric_function(name: str) -> MetricFunction:
    """The registered function called ``name``: ``mAP``, ``AUC``, ``accuracy``, ``mean``,
    ``mAP@k`` or ``R@k`` for any integer k >= 1."""
    if name in METRIC_FUNCTIONS:
        return METRIC_FUNCTIONS[name]
    m = re.fullmatch(r"(mAP|R)@(\d+)", str(name))
    if m and int(m.group(2)) >= 1:
        return _mean_fn(name, ("ranks",))
    raise RegistryError(f"no metric function {name!r}; known: mAP, AUC, accuracy, mean, mAP@k, R@k")


def evaluate(fn: MetricFunction, items: ItemSet, counts: np.ndarray) -> np.ndarray:
    """``fn`` on B resamples (``counts`` (B, N)); with ``groups``, the mean over groups of the
    metric within each group. Returns (B,)."""
    if items.groups is None:
        return fn.resampled(items, counts)
    per = []
    for g in np.unique(items.groups):
        idx = np.flatnonzero(items.groups == g)
        per.append(fn.resampled(items.take(idx), counts[:, idx]))
    return np.mean(per, axis=0)


def chance_level(items: ItemSet) -> float | None:
    """What a predictor without information scores on these items, in the metric's units.

    ``mAP``: the expected mAP of a random ranking (:func:`audiorepro.metrics.random_ranking_map`);
    ``AUC``: 0.5; ``accuracy``, and ``mean`` of per-item correctness values that carry their
    ``labels`` (:func:`value_items`): the share of the most frequent label (always answering it);
    retrieval with ``gallery`` sizes G (one relevant item per query, its rank uniform on 1..G):
    ``R@k`` the mean of min(k, G) / G, ``mAP@k`` the mean of (1 + 1/2 + ... + 1/min(k, G)) / G.
    With ``groups``, the mean over groups, as the metric itself. None for a metric without a
    chance level known from the items (ranks without gallery sizes; plain values).
    """
    name = items.metric or ""
    at_k = re.fullmatch(r"(mAP|R)@(\d+)", name)
    if at_k:
        if items.ranks is None or items.gallery is None:
            return None
    elif name == "mean":
        if items.labels is None:
            return None
    elif name not in ("mAP", "AUC", "accuracy") or not set(METRIC_FUNCTIONS[name].needs) <= items.present():
        return None
    if name == "AUC":
        return 0.5

    def one(it: ItemSet) -> float:
        if at_k:
            return M.random_retrieval(it.gallery, name)
        if name == "mAP":
            return M.random_ranking_map(it.targets) if it.targets.any() else float("nan")
        return float(np.bincount(it.labels.astype(np.int64)).max() / it.n)
    level = one(items) if items.groups is None else float(np.mean(
        [one(items.take(np.flatnonzero(items.groups == g))) for g in np.unique(items.groups)]))
    return level if np.isfinite(level) else None       # no positive anywhere: no level


def _resolve(metric: str, items: ItemSet, strict: bool) -> MetricFunction | None:
    """The function computing recorded ``metric`` from ``items`` (None if it cannot, unless
    ``strict``, which raises)."""
    name = items.metric or metric
    try:
        fn = metric_function(name)
    except RegistryError:
        if strict:
            raise RegistryError(f"items for metric {metric!r}: no metric function {name!r}; "
                                "pass metric= (mAP, AUC, accuracy, mean, mAP@k, R@k)") from None
        return None
    missing = [f for f in fn.needs if f not in items.present()]
    if missing:
        if strict:
            raise RegistryError(f"items for metric {metric!r}: function {fn.name!r} needs "
                                f"{missing}, the item set has {sorted(items.present())}")
        return None
    return fn


def _as_set(value: Any, where: str) -> ItemSet:
    if isinstance(value, ItemSet):
        return _check(value, where)
    if isinstance(value, Mapping) and "ids" in value:
        return _check(ItemSet(**dict(value)), where)
    raise RegistryError(f"{where}: expected an ItemSet (tagging_items(...), ...), got "
                        f"{type(value).__name__}")


def normalise(items: Any, metrics: Mapping[str, float]) -> dict[str, tuple[ItemSet, MetricFunction]]:
    """``items`` as given to :func:`record` -> {recorded metric: (set, function)}, checked
    against the recorded values."""
    if isinstance(items, Mapping) and "ids" not in items:
        out = {}
        for metric, value in items.items():
            if metric not in metrics:
                raise RegistryError(f"items given for metric {metric!r}, which the record does "
                                    f"not hold (metrics: {sorted(metrics)})")
            s = _as_set(value, f"items for metric {metric!r}")
            out[metric] = (s, _resolve(metric, s, strict=True))
    else:
        s = _as_set(items, "items")
        out = {m: (s, fn) for m in metrics if (fn := _resolve(m, s, strict=False)) is not None}
        if not out:
            raise RegistryError(f"items fit none of the recorded metrics {sorted(metrics)}; "
                                "give {metric: set} or the set's metric=")
    for metric, (s, fn) in out.items():
        got = fn.full(s)
        if not abs(got - metrics[metric]) <= TOLERANCE + 1e-6 * abs(metrics[metric]):
            raise RegistryError(f"items for metric {metric!r} give {fn.name} = {got:.6g} but the "
                                f"record says {metrics[metric]:.6g}: items must be the outputs "
                                "that computed the recorded value")
    return out


def _compact_scores(s: ItemSet, fns: list[MetricFunction]) -> np.ndarray:
    """Scores in the smallest float type that changes no metric by more than TOLERANCE."""
    exact = [fn.full(s) for fn in fns]
    for dtype in (np.float16, np.float32):
        cast = s.scores.astype(dtype)
        if not np.all(np.isfinite(cast)):
            continue
        trial = replace(s, scores=cast.astype(np.float64))
        if all(abs(fn.full(trial) - v) <= TOLERANCE for fn, v in zip(fns, exact)):
            return cast
    return s.scores


def save_items(items: Any, metrics: Mapping[str, float], stem: str,
               folder: Path | None = None) -> dict[str, Any]:
    """Validate ``items`` against ``metrics`` and write ``<stem>.items.npz`` atomically.

    Returns the reference stored in the record: ``{"file", "metrics": {name: {"fn", "n"}}}``.
    """
    table = normalise(items, metrics)
    folder = records_dir() if folder is None else folder
    sets: dict[int, str] = {}
    arrays: dict[str, np.ndarray] = {}
    index: dict[str, dict[str, Any]] = {}
    for metric, (s, fn) in table.items():
        key = sets.get(id(s))
        if key is None:
            key = sets[id(s)] = f"s{len(sets)}"
            users = [f for m, (t, f) in table.items() if t is s]
            for name in _ARRAY_FIELDS:
                value = getattr(s, name)
                if value is None:
                    continue
                if name == "scores":
                    value = _compact_scores(s, users)
                elif name in ("labels", "ranks", "gallery"):
                    value = value.astype(np.int32)
                arrays[f"{key}.{name}"] = value
        index[metric] = {"set": key, "fn": fn.name, "n": s.n}
    arrays["__index__"] = np.array(json.dumps({"version": 1, "metrics": index}))
    path = Path(folder) / f"{stem}{ITEMS_SUFFIX}"
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays), binary=True, fsync=True)
    return {"file": path.name, "metrics": {m: {"fn": v["fn"], "n": v["n"]} for m, v in index.items()}}


def items_path(record_id: str) -> Path:
    return records_dir() / f"{record_id}{ITEMS_SUFFIX}"


def load_items(record_id: str) -> dict[str, ItemSet]:
    """The per-item outputs stored with record ``record_id``: {recorded metric: ItemSet} (each
    set's ``metric`` names the registry function that recomputes the recorded value).

    Raises :class:`ItemsMissing` when the record has no items file, :class:`RegistryError` when
    the file is unreadable (naming it).
    """
    path = items_path(record_id)
    if not path.is_file():
        raise ItemsMissing(f"record {record_id} has no per-item outputs ({path.name} not found)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        index = json.loads(str(data.pop("__index__")))["metrics"]
        out = {}
        for metric, ref in index.items():
            key = ref["set"]
            kw = {name: data[f"{key}.{name}"] for name in _ARRAY_FIELDS if f"{key}.{name}" in data}
            if "scores" in kw:
                kw["scores"] = kw["scores"].astype(np.float64)
            out[metric] = ItemSet(**kw, metric=ref["fn"])
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile,
            json.JSONDecodeError) as exc:
        raise RegistryError(f"unreadable items file {path}: {exc}") from exc
    return out
