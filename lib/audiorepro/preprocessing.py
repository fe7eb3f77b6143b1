"""The one standardiser of the project: scikit-learn's ``StandardScaler``.

Convention (scikit-learn's): statistics fitted on the training rows only; population standard
deviation (ddof 0); a feature with zero variance is left centred but not scaled (scale 1).
Memory stays bounded for paper-size inputs: statistics are accumulated over chunks of rows
(``StandardScaler.partial_fit``) and the output is written chunk by chunk into a ``float32`` array,
so no float64 copy of a whole split is made.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler


CHUNK_ROWS = 1 << 18


def fit_standardiser(train: Any, chunk_rows: int = CHUNK_ROWS) -> StandardScaler:
    """A ``StandardScaler`` fitted on ``train`` (N, D) (numpy array or torch tensor), chunk by chunk."""
    scaler = StandardScaler()
    _check_2d(train)
    for start in range(0, max(len(train), 1), chunk_rows):
        scaler.partial_fit(_as_numpy(train[start:start + chunk_rows]))
    return scaler


def standardise(train: Any, *others: Any, dtype: Any = np.float32,
                chunk_rows: int = CHUNK_ROWS) -> list[np.ndarray]:
    """``(x - mean) / std`` with mean and std (ddof 0) of ``train`` (N, D); returns the scaled
    ``train`` followed by each of ``others`` (M_i, D), as ``dtype`` arrays."""
    scaler = fit_standardiser(train, chunk_rows)
    out = []
    for x in (train, *others):
        _check_2d(x)
        y = np.empty(tuple(x.shape), dtype=dtype)
        for start in range(0, len(x), chunk_rows):
            y[start:start + chunk_rows] = scaler.transform(_as_numpy(x[start:start + chunk_rows]))
        out.append(y)
    return out


def _check_2d(x: Any) -> None:
    if len(getattr(x, "shape", np.shape(x))) != 2:
        raise ValueError(f"standardise expects a 2-d array (rows, features), got shape "
                         f"{tuple(getattr(x, 'shape', np.shape(x)))}")


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)
