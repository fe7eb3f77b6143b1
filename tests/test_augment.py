"""SpecAugment masks, mixup, gain and time shift."""
from __future__ import annotations

import math

import pytest
import torch

from audiorepro.augment import (SpecAugment, mixup, random_gain, random_time_shift,
                                sample_mixup_lambda, scaled_mask_params)


def masked_runs(mask_1d: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    runs, n = [], 0
    for v in mask_1d.tolist() + [False]:
        if v:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_scaled_mask_params():
    assert scaled_mask_params(128, 1024) == (48, 192)
    assert scaled_mask_params(128, 1056) == (48, 198)  # 192 * 1056 / 1024 = 198
    assert scaled_mask_params(64, 512) == (24, 96)
    assert scaled_mask_params(96, 100) == (36, 19)  # 18.75 -> 19
    assert scaled_mask_params(2, 3) == (1, 1)
    assert scaled_mask_params(96, 100, ref=(96, 100, 10, 20)) == (10, 20)
    with pytest.raises(ValueError, match="n_mels"):
        scaled_mask_params(0, 10)


def test_specaugment_widths_bounded_and_fill_value():
    torch.manual_seed(0)
    B, M, N = 64, 40, 60
    x = torch.rand(B, M, N) + 1.0  # strictly positive, so the fill value -7 is recognisable
    aug = SpecAugment(freq_mask_param=10, time_mask_param=15, mask_value=-7.0).train()
    y = aug(x)
    masked = y == -7.0
    assert torch.equal(y[~masked], x[~masked])  # everything else untouched
    widths_f, widths_t = [], []
    for b in range(B):
        rows = masked[b].all(dim=1)   # frequency bins masked over all frames
        cols = masked[b].all(dim=0)   # frames masked over all bins
        wf = int(rows.sum())
        wt = int(cols.sum())
        assert wf < 10 and wt < 15
        assert len(masked_runs(rows)) <= 1 and len(masked_runs(cols)) <= 1  # one contiguous band
        # every masked value lies in the masked rows or columns
        assert torch.equal(masked[b], rows[:, None] | cols[None, :])
        widths_f.append(wf)
        widths_t.append(wt)
    # iid masks: examples get different widths, and widths are not all 0
    assert len(set(widths_f)) > 3 and len(set(widths_t)) > 3
    assert max(widths_f) >= 6 and max(widths_t) >= 9


def test_specaugment_multiple_masks_and_eval_identity_and_4d():
    torch.manual_seed(1)
    x = torch.rand(32, 1, 30, 50) + 1.0
    aug = SpecAugment(8, 8, n_freq_masks=3, n_time_masks=2).train()
    y = aug(x)
    assert y.shape == x.shape
    rows = (y == 0).all(dim=-1)[:, 0]  # (B, F)
    assert int(rows.sum(1).max()) <= 3 * 7  # at most 3 masks of width <= 7
    assert int(rows.sum(1).max()) > 7  # several masks actually occur
    assert torch.equal(aug.eval()(x), x)
    assert torch.equal(SpecAugment(0, 0).train()(x), x)
    with pytest.raises(ValueError, match="n_freq_masks"):
        SpecAugment(4, 4, n_freq_masks=-1)
    with pytest.raises(ValueError, match="expected"):
        SpecAugment(4, 4).train()(torch.zeros(10, 10))


def test_mixup_same_lambda_for_inputs_and_targets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 20)
    y = (torch.rand(8, 5) > 0.5).float()
    xm, ym, lam, perm = mixup(x, y, alpha=0.5, generator=g, return_perm=True)
    assert lam.shape == () and 0.0 <= float(lam) <= 1.0
    assert sorted(perm.tolist()) == list(range(8))
    torch.testing.assert_close(xm, lam * x + (1 - lam) * x[perm])
    torch.testing.assert_close(ym, lam * y + (1 - lam) * y[perm])
    # the target mixture recovers lam wherever the two targets differ
    diff = (y != y[perm])
    if diff.any():
        est = torch.where(y[diff] == 1, ym[diff], 1 - ym[diff])
        torch.testing.assert_close(est, torch.full_like(est, float(lam)))


def test_mixup_per_example_and_class_indices():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 100)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    xm, ym, lam, perm = mixup(x, y, alpha=1.0, generator=g, per_example=True, num_classes=3,
                              return_perm=True)
    assert lam.shape == (6,) and ((lam >= 0) & (lam <= 1)).all()
    onehot = torch.nn.functional.one_hot(y, 3).float()
    torch.testing.assert_close(ym, lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm])
    torch.testing.assert_close(xm, lam[:, None] * x + (1 - lam[:, None]) * x[perm])
    torch.testing.assert_close(ym.sum(1), torch.ones(6))  # soft one-hot stays normalised
    with pytest.raises(ValueError, match="num_classes"):
        mixup(x, y, 1.0)
    with pytest.raises(ValueError, match="batch size"):
        mixup(x, y[:3].float(), 1.0)


def test_mixup_alpha_zero_and_small_alpha():
    x = torch.randn(4, 10)
    y = torch.eye(4)
    xm, ym, lam = mixup(x, y, alpha=0.0)
    assert float(lam) == 1.0 and torch.equal(xm, x) and torch.equal(ym, y)
    g = torch.Generator().manual_seed(2)
    lam_small = sample_mixup_lambda(0.01, 2000, g)
    # Beta(a, a) with a -> 0 puts its mass at 0 and 1
    assert ((lam_small < 0.01) | (lam_small > 0.99)).float().mean() > 0.9
    lam_big = sample_mixup_lambda(50.0, 2000, g)
    assert abs(float(lam_big.mean()) - 0.5) < 0.01 and float(lam_big.std()) < 0.06
    with pytest.raises(ValueError, match="alpha"):
        sample_mixup_lambda(-1.0)


def test_mixup_reproducible_with_generator():
    x, y = torch.randn(5, 7), torch.rand(5, 3)
    a = mixup(x, y, 0.4, torch.Generator().manual_seed(3))
    b = mixup(x, y, 0.4, torch.Generator().manual_seed(3))
    for u, v in zip(a, b):
        assert torch.equal(u, v)


def test_random_gain():
    g = torch.Generator().manual_seed(0)
    w = torch.ones(500, 16)
    out = random_gain(w, 6.0, g)
    db = 20 * torch.log10(out[:, 0])
    assert float(db.min()) >= -6.0 - 1e-4 and float(db.max()) <= 6.0 + 1e-4
    assert float(db.max()) > 5.0 and float(db.min()) < -5.0
    torch.testing.assert_close(out, out[:, :1].expand_as(out))  # one gain per example
    assert torch.equal(random_gain(w, 0.0), w)


def test_random_time_shift_roll_and_zero():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(10.0).expand(50, 2, 10).clone()
    y = random_time_shift(x, 3, g, mode="roll")
    for b in range(50):
        s = int((y[b, 0] == 0).nonzero()[0])  # where sample 0 moved to
        s = s if s <= 3 else s - 10
        assert -3 <= s <= 3
        assert torch.equal(y[b], torch.roll(x[b], s, dims=-1))
    z = random_time_shift(x, 3, torch.Generator().manual_seed(0), mode="zero")
    for b in range(50):
        assert int((z[b, 0] == 0).sum()) in range(1, 5)  # x[0] = 0 plus up to 3 zeros shifted in
    assert torch.equal(random_time_shift(x, 0), x)
    with pytest.raises(ValueError, match="mode"):
        random_time_shift(x, 2, mode="wrap")
    assert math.isfinite(float(y.sum()))
