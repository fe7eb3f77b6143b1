"""The one standardiser of the project: scikit-learn's ``StandardScaler``.

Convention (scikit-learn's): statistics fitted on the training rows only; population standard
deviation (ddof 0); a feature with zero variance is left centred but not scaled (scale 1).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler


def fit_standardiser(train: Any) -> StandardScaler:
    """A ``StandardScaler`` fitted on ``train`` (N, D) (numpy array or torch tensor)."""
    return StandardScaler().fit(_as_numpy(train))


def standardise(train: Any, *others: Any, dtype: Any = np.float32) -> list[np.ndarray]:
    """``(x - mean) / std`` with mean and std (ddof 0) of ``train`` (N, D); returns the scaled
    ``train`` followed by each of ``others`` (M_i, D), as ``dtype`` arrays."""
    scaler = fit_standardiser(train)
    return [scaler.transform(_as_numpy(a)).astype(dtype, copy=False) for a in (train, *others)]


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"standardise expects a 2-d array (rows, features), got shape {x.shape}")
    return x
