"""Metrics against hand-computed cases and against scikit-learn."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score, top_k_accuracy_score

from audiorepro import metrics as M

# 4 clips x 3 classes; class 2 has no positive.
Y = np.array([[1, 0, 0],
              [0, 1, 0],
              [1, 0, 0],
              [0, 0, 0]])
S = np.array([[0.9, 0.1, 0.3],
              [0.8, 0.4, 0.2],
              [0.7, 0.35, 0.1],
              [0.1, 0.8, 0.5]])


def test_ap_hand_computed():
    # class 0: ranking 0.9(+) 0.8(-) 0.7(+) 0.1(-): AP = 0.5*1 + 0.5*(2/3) = 0.83333
    # class 1: ranking 0.8(-) 0.4(+) ...:             AP = 1 * (1/2)        = 0.5
    # class 2: no positive -> skipped;  mAP = (0.83333 + 0.5) / 2 = 0.666667
    d = M.average_precision_details(Y, S)
    assert d.per_class[0] == pytest.approx(5 / 6)
    assert d.per_class[1] == pytest.approx(0.5)
    assert math.isnan(d.per_class[2])
    assert d.skipped == [2] and d.used == [0, 1]
    assert M.mean_average_precision(Y, S) == pytest.approx(2 / 3)


def test_auc_and_dprime_hand_computed():
    # class 0: positives {0.9, 0.7}, negatives {0.8, 0.1}: pairs won 0.9>0.8, 0.9>0.1, 0.7>0.1,
    #          lost 0.7<0.8 -> 3/4
    # class 1: positive {0.4} vs negatives {0.1, 0.35, 0.8}: wins 2 of 3 -> 2/3
    # class 2 has no positive -> skipped. macro AUC = (3/4 + 2/3) / 2 = 17/24
    d = M.roc_auc_details(Y, S)
    assert d.per_class[:2] == pytest.approx([0.75, 2 / 3])
    assert d.skipped == [2]
    auc = M.macro_roc_auc(Y, S)
    assert auc == pytest.approx(17 / 24)
    # d' = sqrt(2) * Phi^-1(AUC); Phi(1) = 0.8413447 -> d' = sqrt(2); Phi^-1(0.5) = 0
    assert M.d_prime(0.5) == pytest.approx(0.0, abs=1e-12)
    assert M.d_prime(0.8413447460685429) == pytest.approx(math.sqrt(2), rel=1e-9)
    assert M.d_prime(1.0) == math.inf
    m = M.tagging_metrics(Y, S, details=True)
    assert m["mAP"] == pytest.approx(2 / 3) and m["AUC"] == pytest.approx(17 / 24)
    assert m["d_prime"] == pytest.approx(math.sqrt(2) * norm.ppf(17 / 24))
    assert m["mAP_skipped"] == [2] and m["AUC_skipped"] == [2]
    with pytest.raises(ValueError, match="auc"):
        M.d_prime(1.5)


def test_tagging_against_sklearn_and_torch_input():
    rng = np.random.default_rng(0)
    y = (rng.random((50, 6)) < 0.3).astype(int)
    y[0] = 1  # every class has a positive and (almost surely) a negative
    s = rng.normal(size=(50, 6)) + y
    assert M.mean_average_precision(y, s) == pytest.approx(average_precision_score(y, s, average="macro"))
    assert M.macro_roc_auc(y, s) == pytest.approx(roc_auc_score(y, s, average="macro"))
    # tensors (incl. bf16 logits) are accepted; the sigmoid does not change mAP / AUC
    t = M.tagging_metrics(torch.tensor(y), torch.sigmoid(torch.tensor(s)))
    assert t["mAP"] == pytest.approx(M.mean_average_precision(y, s))
    assert t["AUC"] == pytest.approx(M.macro_roc_auc(y, s))


def test_tagging_errors_name_the_problem():
    with pytest.raises(ValueError, match="differ in shape"):
        M.tagging_metrics(Y, S[:, :2])
    bad = S.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="row 1, class 2"):
        M.tagging_metrics(Y, bad)
    with pytest.raises(ValueError, match="0/1"):
        M.tagging_metrics(Y * 2, S)


def test_accuracy_and_classification_metrics():
    y = np.array([0, 1, 2, 1])
    s = np.array([[0.9, 0.1, 0.0],   # -> 0 correct
                  [0.1, 0.2, 0.7],   # -> 2 wrong
                  [0.0, 0.1, 0.9],   # -> 2 correct
                  [0.2, 0.5, 0.3]])  # -> 1 correct        accuracy = 3/4
    assert M.accuracy(y, s) == 0.75
    assert M.accuracy(np.eye(3)[y], s) == 0.75  # one-hot targets
    assert M.accuracy(y, np.array([0, 2, 2, 1])) == 0.75  # predicted indices
    # macro F1: class0 P=1 R=1 F=1; class1 P=1 R=1/2 F=2/3; class2 P=1/2 R=1 F=2/3 -> 7/9
    m = M.classification_metrics(y, s)
    assert m["accuracy"] == 0.75 and m["macro_F1"] == pytest.approx(7 / 9)
    with pytest.raises(ValueError, match="targets"):
        M.accuracy(y[:3], s)


def test_top_k_accuracy_against_sklearn():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(40, 8))
    y = rng.integers(0, 8, size=40)
    for k in (1, 3, 5):
        assert M.top_k_accuracy(y, s, k) == pytest.approx(top_k_accuracy_score(y, s, k=k, labels=range(8)))
    assert "top5_accuracy" in M.classification_metrics(y, s)


def test_retrieval_hand_computed_with_pessimistic_ties():
    sim = np.array([[0.9, 0.1, 0.5, 0.3],    # target 0: rank 1
                    [0.2, 0.8, 0.8, 0.1],    # target 2: tied with item 1 -> pessimistic rank 2
                    [0.7, 0.6, 0.5, 0.4]])   # target 3: rank 4
    tgt = np.array([0, 2, 3])
    assert M.retrieval_ranks(sim, tgt).tolist() == [1, 2, 4]
    r = M.retrieval_metrics(sim, tgt)
    assert r["R@1"] == pytest.approx(1 / 3)
    assert r["R@5"] == 1.0 and r["R@10"] == 1.0
    assert M.recall_at_k(sim, tgt, 2) == pytest.approx(2 / 3)
    # mAP@10 = (1/1 + 1/2 + 1/4) / 3 = 0.583333 ; mAP@3 = (1 + 1/2 + 0) / 3 = 0.5
    assert r["mAP@10"] == pytest.approx(0.7 / 1.2)
    assert M.map_at_k(sim, tgt, 3) == pytest.approx(0.5)
    assert r["median_rank"] == 2.0 and r["mean_rank"] == pytest.approx(7 / 3)


def test_map_at_10_ignores_ranks_beyond_10():
    # one query, 12 items, relevant item 11 scored lowest-but-one -> rank 11 -> contributes 0
    sim = np.arange(12, 0, -1, dtype=float)[None, :]
    assert M.retrieval_ranks(sim, np.array([10])).tolist() == [11]
    assert M.map_at_k(sim, np.array([10]), 10) == 0.0
    assert M.map_at_k(sim, np.array([9]), 10) == pytest.approx(0.1)


def test_retrieval_errors():
    sim = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"target_index\[1\] = 3"):
        M.retrieval_ranks(sim, np.array([0, 3]))
    with pytest.raises(ValueError, match="must be"):
        M.retrieval_ranks(sim, np.array([0]))
    with pytest.raises(ValueError, match="integers"):
        M.retrieval_ranks(sim, np.array([0.0, 1.0]))


def test_expected_random_ap_hand_values_and_simulation():
    from audiorepro.metrics import expected_random_ap, random_ranking_map
    assert expected_random_ap(4, 4) == pytest.approx(1.0)
    assert expected_random_ap(1, 4) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)  # H_4 / 4 = 25/48
    # 2 positives of 3: rankings (P = positive) PPN 1, PNP (1 + 2/3)/2, NPP (1/2 + 2/3)/2 -> mean
    by_hand = (1 + (1 + 2 / 3) / 2 + (1 / 2 + 2 / 3) / 2) / 3
    assert expected_random_ap(2, 3) == pytest.approx(by_hand)
    rng = np.random.default_rng(0)
    y = np.zeros((30, 2))
    y[:2, 0] = 1
    y[:9, 1] = 1
    simulated = np.mean([M.mean_average_precision(y, rng.random(y.shape)) for _ in range(3000)])
    assert random_ranking_map(y) == pytest.approx(simulated, abs=0.01)
    assert random_ranking_map(y) > y.mean(0).mean()  # the prevalence understates chance
    with pytest.raises(ValueError, match="positives"):
        expected_random_ap(0, 5)


def test_random_retrieval_by_hand():
    # G = 4: R@1 = 1/4, R@5 = 1; mAP@10 = (1 + 1/2 + 1/3 + 1/4) / 4 = 25/48; per-query sizes average
    assert M.random_retrieval(4, "R@1") == pytest.approx(0.25)
    assert M.random_retrieval(4, "R@5") == pytest.approx(1.0)
    assert M.random_retrieval(4, "mAP@10") == pytest.approx(25 / 48)
    assert M.random_retrieval([4, 2], "mAP@1") == pytest.approx((1 / 4 + 1 / 2) / 2)
    for bad in ("mAP", "R@0", "P@5"):
        with pytest.raises(ValueError, match="R@k or mAP@k"):
            M.random_retrieval(4, bad)
    with pytest.raises(ValueError, match=">= 1"):
        M.random_retrieval([4, 0], "R@1")
