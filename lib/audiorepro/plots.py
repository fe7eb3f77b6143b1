"""Figures shared by the chapters (matplotlib/seaborn); each returns the Figure it draws."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch


def log_mel(wave: torch.Tensor | np.ndarray, sample_rate: int = 16000, n_mels: int = 64) -> np.ndarray:
    """(T,) waveform -> (n_mels, frames) log-mel (dB) for display (25 ms / 10 ms, torchaudio)."""
    import torchaudio.transforms as T

    w = torch.as_tensor(np.asarray(wave), dtype=torch.float32)
    mel = T.MelSpectrogram(sample_rate, n_fft=int(0.025 * sample_rate) * 2,
                           win_length=int(0.025 * sample_rate), hop_length=int(0.01 * sample_rate),
                           n_mels=n_mels)(w)
    return T.AmplitudeToDB(top_db=80)(mel).numpy()


def spectrogram_grid(waves: Sequence[torch.Tensor | np.ndarray], titles: Sequence[str],
                     sample_rate: int = 16000, ncols: int = 3,
                     features: Callable[[torch.Tensor | np.ndarray], np.ndarray] | None = None,
                     hop_s: float = 0.01) -> plt.Figure:
    """A grid of log-mel spectrograms, one per waveform, with a title each."""
    feats = [(features or (lambda w: log_mel(w, sample_rate)))(w) for w in waves]
    nrows = int(np.ceil(len(feats) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.4 * nrows), squeeze=False)
    for ax in axes.flat[len(feats):]:
        ax.axis("off")
    for ax, f, title in zip(axes.flat, feats, titles):
        ax.imshow(f, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, f.shape[1] * hop_s, 0, f.shape[0]))
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("time (s)", fontsize=7)
        ax.set_ylabel("mel bin", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def class_counts(counts: pd.Series, title: str = "clips per class", top: int | None = None) -> plt.Figure:
    """Horizontal bar chart of a Series class -> count (sorted)."""
    c = counts.sort_values(ascending=False)
    if top is not None:
        c = c.head(top)
    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.18 * len(c))))
    sns.barplot(x=c.values, y=c.index, ax=ax, color="steelblue")
    ax.set_xlabel("clips")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def cooccurrence_heatmap(matrix: np.ndarray, classes: Sequence[str], title: str = "label co-occurrence",
                         normalise: bool = True) -> plt.Figure:
    """Heatmap of a (C, C) co-occurrence matrix.

    With ``normalise``, cell (i, j) is P(j | i) = count(i, j) / count(i), the diagonal blanked.
    """
    m = np.asarray(matrix, dtype=float)
    if normalise:
        diag = np.diag(m).copy()
        m = np.divide(m, diag[:, None], out=np.zeros_like(m), where=diag[:, None] > 0)
        np.fill_diagonal(m, np.nan)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(0.22 * n + 2.5, 0.22 * n + 1.5))
    sns.heatmap(m, xticklabels=classes, yticklabels=classes, cmap="viridis", ax=ax, square=True,
                cbar_kws={"label": "P(column | row)" if normalise else "clips"})
    ax.tick_params(labelsize=6)
    ax.set_title(title)
    fig.tight_layout()
    return fig
