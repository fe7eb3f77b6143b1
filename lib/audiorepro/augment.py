"""Data augmentation: SpecAugment masks (torchaudio), mixup, random gain and time shift.

Conventions: features are ``(B, n_mels, frames)`` (or ``(B, C, n_mels, frames)``), waves
``(B, T)``. Random draws take an optional ``torch.Generator`` for reproducibility, except the
SpecAugment masks, which use torchaudio's masking functions and therefore the global torch RNG
(seed it with ``torch.manual_seed``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.transforms as T
from torch import nn

__all__ = ["SpecAugment", "scaled_mask_params", "mixup", "sample_mixup_lambda",
           "random_gain", "random_time_shift"]


def scaled_mask_params(n_mels: int, frames: int,
                       ref: tuple[int, int, int, int] = (128, 1024, 48, 192)) -> tuple[int, int]:
    """Scale SpecAugment widths to another input size.

    ``ref = (ref_mels, ref_frames, ref_freq_param, ref_time_param)``; the default is ATGNN /
    AST on AudioSet-like input (freqm 48 on 128 bins, timem 192 on 1024 frames). Returns
    ``(freq_mask_param, time_mask_param) = (round(48 * n_mels / 128), round(192 * frames / 1024))``,
    each at least 1 when the input dimension is positive.
    """
    ref_mels, ref_frames, ref_f, ref_t = ref
    if n_mels <= 0 or frames <= 0:
        raise ValueError(f"scaled_mask_params: n_mels={n_mels} and frames={frames} must be > 0")
    if min(ref) <= 0:
        raise ValueError(f"scaled_mask_params: ref={ref} must be positive")
    f = max(1, int(round(ref_f * n_mels / ref_mels)))
    t = max(1, int(round(ref_t * frames / ref_frames)))
    return f, t


class SpecAugment(nn.Module):
    """Frequency and time masks (Park et al. 2019) from torchaudio's ``FrequencyMasking`` /
    ``TimeMasking`` with ``iid_masks=True`` (an independent mask per example).

    Each mask has width ``floor(U[0, 1) * param)`` (so ``< param``) at a uniform position inside
    the axis, and is filled with ``mask_value``. Masks are applied only in ``train()`` mode
    (identity in ``eval()``, as PaSST's ``AugmentMelSTFT``).

    Args:
        freq_mask_param, time_mask_param: maximum widths (0 disables that axis).
        n_freq_masks, n_time_masks: masks per example on each axis (drawn independently; they
            may overlap).
        mask_value: fill value (AST masks the raw fbank with 0 before normalisation).

    Shapes: (B, n_mels, frames) or (B, C, n_mels, frames) -> same.
    """

    def __init__(self, freq_mask_param: int, time_mask_param: int, n_freq_masks: int = 1,
                 n_time_masks: int = 1, mask_value: float = 0.0) -> None:
        super().__init__()
        for name, v in (("freq_mask_param", freq_mask_param), ("time_mask_param", time_mask_param),
                        ("n_freq_masks", n_freq_masks), ("n_time_masks", n_time_masks)):
            if int(v) != v or v < 0:
                raise ValueError(f"SpecAugment: {name}={v} must be a non-negative integer")
        self.freq_mask_param = int(freq_mask_param)
        self.time_mask_param = int(time_mask_param)
        self.n_freq_masks = int(n_freq_masks)
        self.n_time_masks = int(n_time_masks)
        self.mask_value = float(mask_value)
        self.freq = T.FrequencyMasking(self.freq_mask_param, iid_masks=True) if self.freq_mask_param else None
        self.time = T.TimeMasking(self.time_mask_param, iid_masks=True) if self.time_mask_param else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if x.dim() not in (3, 4):
            raise ValueError(f"SpecAugment: expected (B, n_mels, frames) or (B, C, n_mels, frames), "
                             f"got shape {tuple(x.shape)}")
        if self.freq is not None:
            for _ in range(self.n_freq_masks):
                x = self.freq(x, self.mask_value)
        if self.time is not None:
            for _ in range(self.n_time_masks):
                x = self.time(x, self.mask_value)
        return x

    def extra_repr(self) -> str:
        return (f"freq_mask_param={self.freq_mask_param} x{self.n_freq_masks}, "
                f"time_mask_param={self.time_mask_param} x{self.n_time_masks}, "
                f"mask_value={self.mask_value}")


def _numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    return np.random.default_rng(seed)


def sample_mixup_lambda(alpha: float, size: int | tuple[int, ...] = (),
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """``lam ~ Beta(alpha, alpha)`` as a float32 tensor of shape ``size`` (``alpha <= 0`` -> 1).

    Drawn with numpy's Beta sampler seeded from ``generator`` (torch's Beta distribution
    cannot take a generator).
    """
    if alpha < 0:
        raise ValueError(f"mixup alpha={alpha} must be >= 0")
    shape = (size,) if isinstance(size, int) else tuple(size)
    if alpha == 0:
        return torch.ones(shape)
    lam = _numpy_rng(generator).beta(alpha, alpha, size=shape)
    return torch.as_tensor(lam, dtype=torch.float32)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator | None = None,
          per_example: bool = False, num_classes: int | None = None,
          return_perm: bool = False):
    """Mix each example with a random partner of the same batch (Zhang et al. 2018).

    ``x_mix = lam * x + (1 - lam) * x[perm]``, ``y_mix = lam * y + (1 - lam) * y[perm]`` with
    ``perm`` a random permutation and ``lam ~ Beta(alpha, alpha)``.

    Args:
        x: (B, ...) waves or features (any trailing shape).
        y: (B, C) multi-hot / one-hot / soft targets, or (B,) integer class indices (then
            ``num_classes`` is required and the result is a (B, C) soft target).
        alpha: Beta parameter; ``alpha = 0`` disables mixing (``lam = 1``, outputs equal inputs);
            small alpha gives ``lam`` near 0 or 1.
        per_example: one ``lam`` per example (shape (B,), as PaSST) instead of one per batch.
        return_perm: also return ``perm``.
    Returns:
        ``(x_mix, y_mix, lam)`` (``+ perm`` if requested); ``lam`` is a scalar tensor or (B,).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"mixup: x has batch size {x.shape[0]} but y has {y.shape[0]}")
    b = x.shape[0]
    if not y.is_floating_point():
        if y.dim() != 1:
            raise ValueError(f"mixup: integer targets must be (B,) class indices, got {tuple(y.shape)}")
        if num_classes is None:
            raise ValueError("mixup: integer class-index targets need num_classes")
        y = F.one_hot(y.long(), num_classes).float()
    lam = sample_mixup_lambda(alpha, (b,) if per_example else (), generator)
    perm = torch.randperm(b, generator=generator).to(x.device)
    lam_d = lam.to(device=x.device)

    def mix(v: torch.Tensor) -> torch.Tensor:
        l = lam_d.to(v.dtype).reshape((-1,) + (1,) * (v.dim() - 1)) if per_example else lam_d.to(v.dtype)
        return l * v + (1 - l) * v[perm.to(v.device)]

    out = (mix(x), mix(y), lam)
    return out + (perm,) if return_perm else out


def random_gain(wave: torch.Tensor, max_db: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each example of (B, ...) by ``10 ** (g / 20)``, ``g ~ U[-max_db, max_db]`` dB."""
    if max_db < 0:
        raise ValueError(f"random_gain: max_db={max_db} must be >= 0")
    g = (torch.rand(wave.shape[0], generator=generator) * 2 - 1) * max_db
    scale = (10.0 ** (g / 20.0)).to(device=wave.device, dtype=wave.dtype)
    return wave * scale.reshape((-1,) + (1,) * (wave.dim() - 1))


def random_time_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None,
                      mode: str = "roll") -> torch.Tensor:
    """Shift each example of (B, ..., T) along the last axis by ``s ~ U{-max_shift..max_shift}``.

    mode: ``roll`` (circular, as PaSST's roll augmentation) or ``zero`` (shifted-in samples are 0).
    """
    if max_shift < 0:
        raise ValueError(f"random_time_shift: max_shift={max_shift} must be >= 0")
    if mode not in ("roll", "zero"):
        raise ValueError(f"random_time_shift: mode must be 'roll' or 'zero', got {mode!r}")
    n = x.shape[-1]
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=generator)
    idx = torch.arange(n)
    src = (idx[None, :] - shifts[:, None])  # (B, T): output t takes input t - s
    if mode == "roll":
        src = src % n
        valid = torch.ones_like(src, dtype=torch.bool)
    else:
        valid = (src >= 0) & (src < n)
        src = src.clamp(0, n - 1)
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (n,)
    src = src.reshape(shape).expand_as(x).to(x.device)
    out = torch.gather(x, -1, src)
    return out * valid.reshape(shape).to(device=x.device, dtype=x.dtype)
