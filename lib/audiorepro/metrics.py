"""Evaluation metrics of the five papers: tagging (mAP, AUC, d'), classification, retrieval.

Conventions (all inputs are NumPy arrays or tensors, converted with :func:`as_numpy`):

* tagging: ``y_true`` (N, C) in {0, 1}, ``y_score`` (N, C) real-valued (logits or
  probabilities; mAP and AUC are invariant to a monotonic map such as the sigmoid);
* classification: ``y_true`` (N,) class indices (or (N, C) one-hot), ``y_score`` (N, C) scores
  or (N,) predicted indices;
* retrieval: ``sim`` (Q, N) similarity of Q queries to N items (higher = more similar) and
  ``target_index`` (Q,) the index of the one relevant item of each query.

Macro averages skip classes where the metric is undefined (no positive for AP; no positive or
no negative for ROC-AUC); the ``*_details`` functions say which classes were skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.stats import norm
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

__all__ = [
    "as_numpy", "ClassAverage", "average_precision_details", "mean_average_precision",
    "roc_auc_details", "macro_roc_auc", "d_prime", "accuracy", "top_k_accuracy",
    "tagging_metrics", "classification_metrics", "retrieval_ranks", "recall_at_k",
    "map_at_k", "retrieval_metrics", "weighted_average_precision", "weighted_roc_auc",
    "weighted_mean", "expected_random_ap", "random_ranking_map", "random_retrieval",
]


def as_numpy(a: object, name: str = "array") -> np.ndarray:
    """Tensor / list / array -> NumPy array (detached, on CPU, float64 for floats)."""
    try:
        import torch
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu()
            a = a.float().numpy() if a.is_floating_point() else a.numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    arr = np.asarray(a)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64)
    return arr


def _check_2d(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    t = as_numpy(y_true, "y_true")
    s = as_numpy(y_score, "y_score")
    if t.ndim != 2 or s.ndim != 2:
        raise ValueError(f"y_true and y_score must be (N, C); got y_true {t.shape}, y_score {s.shape}")
    if t.shape != s.shape:
        raise ValueError(f"y_true {t.shape} and y_score {s.shape} differ in shape")
    if not np.all(np.isfinite(s)):
        bad = np.argwhere(~np.isfinite(s))[0]
        raise ValueError(f"y_score has a non-finite value at row {bad[0]}, class {bad[1]}")
    if not np.isin(t, (0, 1)).all():
        bad = np.argwhere(~np.isin(t, (0, 1)))[0]
        raise ValueError(f"y_true must be 0/1; row {bad[0]}, class {bad[1]} is {t[tuple(bad)]!r}")
    return t.astype(np.int64), s


@dataclass
class ClassAverage:
    """A macro average over classes plus which classes entered it.

    Attributes:
        value: mean over the ``used`` classes (NaN if none).
        per_class: (C,) per-class values, NaN for skipped classes.
        used: indices of classes in the average.
        skipped: indices of classes left out (metric undefined for them).
    """

    value: float
    per_class: np.ndarray
    used: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def average_precision_details(y_true: object, y_score: object) -> ClassAverage:
    r"""Per-class average precision and its macro mean (mAP).

    For class c with positives P_c, AP_c = \sum_n (R_n - R_{n-1}) P_n over score thresholds
    (sklearn ``average_precision_score``: precision P_n and recall R_n at the n-th threshold,
    no interpolation). mAP = mean of AP_c over classes with >= 1 positive; classes without
    positives are skipped (listed in ``skipped``).

    Args:
        y_true: (N, C) 0/1 targets.  y_score: (N, C) scores.
    """
    t, s = _check_2d(y_true, y_score)
    return _macro(t, s, average_precision_score, lambda pos, n: pos > 0)


def mean_average_precision(y_true: object, y_score: object) -> float:
    """Macro mAP over classes with >= 1 positive (see :func:`average_precision_details`)."""
    return average_precision_details(y_true, y_score).value


def expected_random_ap(positives: int, n: int) -> float:
    """Expected average precision of a uniformly random ranking of ``n`` items of which
    ``positives`` (K >= 1) are relevant: ``H_n / n + (K - 1) (n - H_n) / (n (n - 1))`` with
    ``H_n`` the n-th harmonic number (from AP = mean over positives of the precision at their
    rank: E[1 / rank] = H_n / n for the positive itself, and each other positive ranks above
    it with probability (r - 1) / (n - 1) at rank r). K = n gives 1; K = 1 gives H_n / n, which
    is above the prevalence 1 / n for every n > 1: the prevalence understates chance on small
    splits."""
    k, n = int(positives), int(n)
    if not 1 <= k <= n:
        raise ValueError(f"expected_random_ap: positives={k} must be in [1, n={n}]")
    if n == 1:
        return 1.0
    h = float(np.sum(1.0 / np.arange(1, n + 1)))
    return h / n + (k - 1) * (n - h) / (n * (n - 1))


def random_retrieval(gallery: object, metric: str) -> float:
    """Expected ``R@k`` or ``mAP@k`` of uniformly random rankings, one relevant item per query,
    averaged over queries ranking ``gallery`` candidates each (an int or one size per query):
    R@k = min(k, G) / G; mAP@k = (1 + 1/2 + ... + 1/min(k, G)) / G (the expected reciprocal
    rank within the top k)."""
    m = re.fullmatch(r"(mAP|R)@(\d+)", str(metric))
    if not m or int(m.group(2)) < 1:
        raise ValueError(f"random_retrieval: metric must be R@k or mAP@k, got {metric!r}")
    k, g = int(m.group(2)), np.atleast_1d(np.asarray(gallery, dtype=np.int64))
    if g.size == 0 or (g < 1).any():
        raise ValueError(f"random_retrieval: gallery sizes must be >= 1, got {g.tolist()[:5]}")
    top = np.minimum(k, g)
    if m.group(1) == "R":
        return float(np.mean(top / g))
    harmonic = np.cumsum(1.0 / np.arange(1, k + 1))                  # H_1 .. H_k
    return float(np.mean(harmonic[top - 1] / g))


def random_ranking_map(y_true: object) -> float:
    """Expected macro mAP of random scores on ``y_true`` (N, C) multi-hot: the mean of
    :func:`expected_random_ap` over the classes with >= 1 positive (as
    :func:`mean_average_precision` averages). The chance level a tagging mAP is read against."""
    t = as_numpy(y_true, "y_true")
    if t.ndim != 2:
        raise ValueError(f"random_ranking_map: y_true has shape {t.shape}, expected (N, C)")
    pos = (t > 0).sum(axis=0)
    present = pos[pos > 0]
    if not len(present):
        raise ValueError("random_ranking_map: no class has a positive item")
    return float(np.mean([expected_random_ap(k, t.shape[0]) for k in present]))


def roc_auc_details(y_true: object, y_score: object) -> ClassAverage:
    r"""Per-class ROC-AUC and its macro mean.

    AUC_c = P(score of a random positive > score of a random negative) + 0.5 P(tie)
    (sklearn ``roc_auc_score``); the macro mean skips classes lacking positives or negatives.
    """
    t, s = _check_2d(y_true, y_score)
    return _macro(t, s, roc_auc_score, lambda pos, n: 0 < pos < n)


def _macro(t: np.ndarray, s: np.ndarray, score: Callable[[np.ndarray, np.ndarray], float],
           usable: Callable[[float, int], bool]) -> ClassAverage:
    """Per-class ``score`` over the classes whose positive count passes ``usable(pos, n)``."""
    per = np.full(t.shape[1], np.nan)
    used, skipped = [], []
    for c in range(t.shape[1]):
        if not usable(t[:, c].sum(), t.shape[0]):
            skipped.append(c)
            continue
        per[c] = score(t[:, c], s[:, c])
        used.append(c)
    value = float(np.mean(per[used])) if used else float("nan")
    return ClassAverage(value, per, used, skipped)


def macro_roc_auc(y_true: object, y_score: object) -> float:
    """Macro ROC-AUC over classes with both positives and negatives."""
    return roc_auc_details(y_true, y_score).value


def d_prime(auc: float) -> float:
    r"""Sensitivity index d' = \sqrt{2} \Phi^{-1}(AUC) (AST / PANNs convention).

    \Phi^{-1} is the standard normal quantile (``scipy.stats.norm.ppf``). AUC = 0.5 -> 0;
    AUC = 1 -> +inf. Apply it to the *macro* AUC, as AST does.
    """
    if not np.isfinite(auc):
        return float("nan")
    if not 0.0 <= auc <= 1.0:
        raise ValueError(f"d_prime: auc must lie in [0, 1], got {auc}")
    return float(np.sqrt(2.0) * norm.ppf(auc))


def tagging_metrics(y_true: object, y_score: object, details: bool = False) -> dict:
    """Multi-label tagging metrics: ``{"mAP", "AUC", "d_prime"}`` (floats).

    Args:
        y_true: (N, C) 0/1.  y_score: (N, C) scores.
        details: also return ``AP_per_class`` / ``AUC_per_class`` (C,) arrays and the skipped
            class indices ``mAP_skipped`` / ``AUC_skipped`` (lists).
    """
    ap = average_precision_details(y_true, y_score)
    auc = roc_auc_details(y_true, y_score)
    out: dict = {"mAP": ap.value, "AUC": auc.value, "d_prime": d_prime(auc.value)}
    if details:
        out.update(AP_per_class=ap.per_class, AUC_per_class=auc.per_class,
                   mAP_skipped=ap.skipped, AUC_skipped=auc.skipped)
    return out


def _class_indices(y_true: object) -> np.ndarray:
    t = as_numpy(y_true, "y_true")
    if t.ndim == 2:
        return t.argmax(axis=1)
    if t.ndim != 1:
        raise ValueError(f"y_true must be (N,) indices or (N, C) one-hot, got shape {t.shape}")
    return t.astype(np.int64)


def _predictions(y_score: object) -> np.ndarray:
    s = as_numpy(y_score, "y_score")
    if s.ndim == 2:
        return s.argmax(axis=1)
    if s.ndim != 1:
        raise ValueError(f"y_score must be (N, C) scores or (N,) predictions, got shape {s.shape}")
    return s.astype(np.int64)


def accuracy(y_true: object, y_score: object) -> float:
    """Top-1 accuracy = mean_n [argmax_c y_score[n, c] == y_true[n]].

    ``y_score`` may be (N, C) scores (ties: the first maximal class, NumPy ``argmax``) or (N,)
    predicted indices; ``y_true`` (N,) indices or (N, C) one-hot.
    """
    t, p = _class_indices(y_true), _predictions(y_score)
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"accuracy: {t.shape[0]} targets but {p.shape[0]} predictions")
    if t.shape[0] == 0:
        raise ValueError("accuracy of an empty set")
    return float(np.mean(t == p))


def top_k_accuracy(y_true: object, y_score: object, k: int = 5) -> float:
    """Share of rows whose true class is among the k highest scores (ties pessimistic).

    The rank of the true class is 1 + the number of classes with a strictly higher score or an
    equal score (other than the true class itself), so ties never help.
    """
    t = _class_indices(y_true)
    s = as_numpy(y_score, "y_score")
    if s.ndim != 2:
        raise ValueError(f"top_k_accuracy needs (N, C) scores, got shape {s.shape}")
    ranks = retrieval_ranks(s, t)
    return float(np.mean(ranks <= k))


def classification_metrics(y_true: object, y_score: object) -> dict:
    """Single-label metrics: ``{"accuracy", "macro_F1"}`` and ``top5_accuracy`` when C > 5.

    Args:
        y_true: (N,) class indices or (N, C) one-hot.  y_score: (N, C) scores or (N,) predictions.
    """
    t, p = _class_indices(y_true), _predictions(y_score)
    s = as_numpy(y_score)
    labels = None
    if s.ndim == 2:
        labels = list(range(s.shape[1]))
    out = {"accuracy": accuracy(t, p),
           "macro_F1": float(f1_score(t, p, labels=labels, average="macro", zero_division=0))}
    if s.ndim == 2 and s.shape[1] > 5:
        out["top5_accuracy"] = top_k_accuracy(t, s, 5)
    return out


# ---------------------------------------------------------------------------- retrieval
def retrieval_ranks(sim: object, target_index: object) -> np.ndarray:
    """1-based rank of each query's relevant item, ties resolved pessimistically.

    rank_q = #{n : sim[q, n] >= sim[q, t_q]}, i.e. every item scoring the same as the relevant
    one is counted as ranked before it.

    Args:
        sim: (Q, N) similarities.  target_index: (Q,) int index in [0, N) of the relevant item.
    Returns:
        (Q,) int64 ranks in [1, N].
    """
    s = as_numpy(sim, "sim")
    t = as_numpy(target_index, "target_index")
    if s.ndim != 2:
        raise ValueError(f"sim must be (Q, N), got shape {s.shape}")
    if t.ndim != 1 or t.shape[0] != s.shape[0]:
        raise ValueError(f"target_index must be ({s.shape[0]},) for sim {s.shape}, got {t.shape}")
    if t.dtype.kind not in "iu":
        raise ValueError(f"target_index must hold integers, got dtype {t.dtype}")
    bad = np.flatnonzero((t < 0) | (t >= s.shape[1]))
    if bad.size:
        raise ValueError(f"target_index[{bad[0]}] = {t[bad[0]]} is outside [0, {s.shape[1]})")
    if not np.all(np.isfinite(s)):
        q = int(np.argwhere(~np.isfinite(s))[0][0])
        raise ValueError(f"sim has a non-finite value in query row {q}")
    target_scores = s[np.arange(s.shape[0]), t][:, None]
    return (s >= target_scores).sum(axis=1).astype(np.int64)


def recall_at_k(sim: object, target_index: object, k: int) -> float:
    """R@k = share of queries whose relevant item has rank <= k (pessimistic ties)."""
    return float(np.mean(retrieval_ranks(sim, target_index) <= k))


def map_at_k(sim: object, target_index: object, k: int = 10) -> float:
    """mAP@k for one relevant item per query = mean_q (1 / rank_q if rank_q <= k else 0)."""
    r = retrieval_ranks(sim, target_index)
    return float(np.mean(np.where(r <= k, 1.0 / r, 0.0)))


def retrieval_metrics(sim: object, target_index: object, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """``{"R@1", "R@5", "R@10", "mAP@10", "median_rank", "mean_rank"}`` of a (Q, N) similarity.

    Ties are pessimistic (see :func:`retrieval_ranks`).
    """
    r = retrieval_ranks(sim, target_index)
    out = {f"R@{k}": float(np.mean(r <= k)) for k in ks}
    out["mAP@10"] = float(np.mean(np.where(r <= 10, 1.0 / r, 0.0)))
    out["median_rank"] = float(np.median(r))
    out["mean_rank"] = float(np.mean(r))
    return out


# ------------------------------------------------------------------ resampled (bootstrap) metrics
# A bootstrap resample of N items is a row of counts w[n] (how often item n was drawn). The
# functions below evaluate a metric on B resamples at once, without materialising them: each
# equals the plain metric on the data set in which item n appears w[b, n] times (tests check
# this against the functions above on explicit resamples).
def _check_weights(weights: object, n: int) -> np.ndarray:
    """(B, n) counts; float32 / float64 arrays are used as they are (no copy)."""
    w = np.asarray(weights)
    if w.dtype not in (np.float32, np.float64):
        w = w.astype(np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must be (B, {n}) item counts, got shape {w.shape}")
    if w.size and w.min() < 0:
        raise ValueError("weights must be >= 0 (counts of each item in a resample)")
    return w


def _class_bins(t: np.ndarray, s: np.ndarray):
    """Sparse bin structure of every class for the resampled tagging metrics.

    Per class c the items are sorted by increasing score and grouped by equal score; the groups
    holding a positive are numbered u = 0..U_c-1 (classes without positives have none). An item
    below the top positive group falls either in the gap under positive group u (scoring strictly
    between groups u-1 and u) or is tied with group u; items above the top one never matter.
    Returns three (U, N) CSR 0/1 matrices over all classes' groups stacked (U = sum_c U_c):
    ``gap``, ``tie`` and ``pos`` (the positives of each group), and the first row of each class
    that has positives with the classes' indices.
    """
    from scipy import sparse

    n, n_cls = t.shape
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"gap": [], "tie": [], "pos": []}
    starts, used = [], []
    k = 0
    for c in range(n_cls):
        pos = t[:, c] == 1
        if not pos.any():
            continue
        order = np.argsort(s[:, c], kind="stable")
        ss = s[order, c]
        new = np.ones(n, dtype=bool)
        new[1:] = ss[1:] != ss[:-1]
        gid = np.cumsum(new) - 1                                   # tie group per sorted item
        pos_sorted = pos[order]
        pgroups = np.unique(gid[pos_sorted])                       # positive groups, ascending
        u_of = np.searchsorted(pgroups, gid)                       # first positive group >= item
        keep = u_of < pgroups.size                                 # drop items above the top one
        tied = keep & (pgroups[np.minimum(u_of, pgroups.size - 1)] == gid)
        gap = keep & ~tied
        parts["gap"].append((k + u_of[gap], order[gap]))
        parts["tie"].append((k + u_of[tied], order[tied]))
        parts["pos"].append((k + u_of[pos_sorted], order[pos_sorted]))
        starts.append(k)
        used.append(c)
        k += pgroups.size

    def csr(pieces: list[tuple[np.ndarray, np.ndarray]]) -> "sparse.csr_matrix":
        r = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.int64)
        q = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0, np.int64)
        return sparse.csr_matrix((np.ones(r.size, np.float32), (r, q)), shape=(k, n))
    return csr(parts["gap"]), csr(parts["tie"]), csr(parts["pos"]), np.asarray(starts, np.int64), used


def _segment_cumsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum of x (K, B) along axis 0 restarted at every segment start (in place)."""
    if starts.size > 1:
        totals = np.add.reduceat(x, starts, axis=0)                 # (S, B)
        x[starts[1:]] -= totals[:-1]          # the running sum restarts at each start
    return np.cumsum(x, axis=0, out=x)


def _resampled_tagging(y_true: object, y_score: object, weights: object, which: str,
                       chunk_elements: int = 1_000_000) -> np.ndarray:
    """(B,) macro ``which`` (``"mAP"`` or ``"AUC"``) of B resamples given as item counts (B, N).

    Works on chunks of resamples so that the (U, chunk) intermediates stay near
    ``chunk_elements`` values (U = positive score groups over all classes). Counts are float32
    (exact for integers below 2**24); per-class sums are float64.
    """
    t, s = _check_2d(y_true, y_score)
    w = _check_weights(weights, t.shape[0])
    gap, tie, posm, starts, used = _class_bins(t, s)
    n_b = w.shape[0]
    out = np.full(n_b, np.nan)
    if not used:
        return out
    seg_len = np.diff(np.append(starts, posm.shape[0]))
    step = max(1, int(chunk_elements // max(posm.shape[0], 1)))
    for lo in range(0, n_b, step):
        wt = np.ascontiguousarray(w[lo:lo + step].T, dtype=np.float32)   # (N, b)
        total = wt.sum(axis=0)                                      # (b,) exact counts
        x_tie = np.asarray(tie @ wt)                                # (U, b) items tied with u
        below = np.asarray(gap @ wt)
        below += x_tie
        _segment_cumsum(below, starts)                              # items scoring <= group u
        dtp = np.asarray(posm @ wt)                                 # (U, b) positives of u
        p_tot32 = np.add.reduceat(dtp, starts, axis=0)              # (classes, b)
        p_tot = p_tot32.astype(np.float64)
        has_pos = p_tot > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            if which == "mAP":
                # positives scoring >= u = P - (positives below u); items >= u = total - below
                tp_ge = _segment_cumsum(dtp.copy(), starts)
                np.subtract(np.repeat(p_tot32, seg_len, axis=0), tp_ge, out=tp_ge)
                tp_ge += dtp
                below -= x_tie                                      # strictly below u
                np.subtract(total[None, :], below, out=below)       # -> items scoring >= u
                np.maximum(below, 1.0, out=below)                   # 0 only where tp_ge is 0
                tp_ge /= below
                tp_ge *= dtp
                num = np.add.reduceat(tp_ge, starts, axis=0, dtype=np.float64)
                per = np.where(has_pos, num / np.where(has_pos, p_tot, 1), np.nan)
            else:
                x_tie *= 0.5
                below -= x_tie                                      # below u + half the ties
                below *= dtp
                rank_sum = np.add.reduceat(below, starts, axis=0, dtype=np.float64)
                n_neg = total[None, :].astype(np.float64) - p_tot
                ok = has_pos & (n_neg > 0)
                per = np.where(ok, (rank_sum - 0.5 * p_tot ** 2) / np.where(ok, p_tot * n_neg, 1),
                               np.nan)
        out[lo:lo + step] = _nan_mean(per.T)
    return out


def _nan_mean(per: np.ndarray) -> np.ndarray:
    used = np.isfinite(per)
    with np.errstate(invalid="ignore"):
        return np.where(used.any(axis=1), np.nansum(per, axis=1) / np.maximum(used.sum(axis=1), 1),
                        np.nan)


def weighted_average_precision(y_true: object, y_score: object, weights: object) -> np.ndarray:
    r"""Macro mAP of B resamples: (B,) values, NaN where no class has a positive.

    For resample b, item n counts ``weights[b, n]`` times. Per class, with the items grouped by
    equal score (the thresholds of sklearn's ``precision_recall_curve``):
    AP = \sum_g \Delta TP_g \cdot TP_{\ge g} / ALL_{\ge g} / P, where \Delta TP_g are the weighted
    positives of group g, TP_{\ge g} / ALL_{\ge g} the weighted positives / items scoring at
    least as high, P the weighted positives. Classes without a (weighted) positive are skipped,
    as in :func:`average_precision_details`. Cost O(B N C) through one sparse product.

    Args:
        y_true: (N, C) 0/1.  y_score: (N, C).  weights: (B, N) counts (or (N,)).
    """
    return _resampled_tagging(y_true, y_score, weights, "mAP")


def weighted_roc_auc(y_true: object, y_score: object, weights: object) -> np.ndarray:
    r"""Macro ROC-AUC of B resamples: (B,) values, NaN where no class is usable.

    Per class, AUC = (\sum_{i \in pos} w_i A_i - P^2 / 2) / (P N_-), with A_i the weighted number
    of items scoring below item i plus half of those tied with it (itself included), P / N_- the
    weighted positives / negatives: the Mann-Whitney form of sklearn's ``roc_auc_score`` (ties
    count one half). Classes without a weighted positive or negative are skipped, as in
    :func:`roc_auc_details`.

    Args:
        y_true: (N, C) 0/1.  y_score: (N, C).  weights: (B, N) counts (or (N,)).
    """
    return _resampled_tagging(y_true, y_score, weights, "AUC")


def weighted_mean(values: object, weights: object) -> np.ndarray:
    """Mean of per-item ``values`` (N,) over B resamples given as counts ``weights`` (B, N): (B,).

    Accuracy (``values`` = 1 where the prediction is right), R@k (1 where rank <= k) and
    mAP@k (1 / rank where rank <= k) are such means.
    """
    v = as_numpy(values, "values").astype(np.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be (N,), got shape {v.shape}")
    w = _check_weights(weights, v.shape[0])
    tot = w.sum(axis=1, dtype=np.float64)
    num = (w @ v.astype(w.dtype)).astype(np.float64)     # no float64 copy of float32 counts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, num / np.where(tot > 0, tot, 1), np.nan)
