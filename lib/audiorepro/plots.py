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


def event_timeline(events: pd.DataFrame, visual: np.ndarray, clip_seconds: float = 10.0,
                   title: str = "") -> plt.Figure:
    """Audio events (bars) above the pseudo-visual stream of one clip.

    Args:
        events: rows with ``label``, ``onset_s``, ``offset_s``, ``audible`` and optionally
            ``visual_onset_s`` / ``visual_offset_s`` (the synthetic world's events.csv).
        visual: (chunks, D) visual features of the clip.
    """
    chunks = visual.shape[0]
    chunk_s = clip_seconds / chunks
    fig, (ax_a, ax_v, ax_d) = plt.subplots(3, 1, figsize=(8, 4.8), sharex=True,
                                           gridspec_kw={"height_ratios": [1.2, 2, 0.8]})
    labels = list(dict.fromkeys(events["label"]))
    for _, ev in events.iterrows():
        y = labels.index(ev["label"])
        audible = bool(ev.get("audible", True))
        if audible:
            ax_a.barh(y, ev["offset_s"] - ev["onset_s"], left=ev["onset_s"], height=0.35,
                      color="tab:blue", label="audio")
        if "visual_onset_s" in ev and not _isnan(ev["visual_onset_s"]):
            ax_a.barh(y + 0.38, ev["visual_offset_s"] - ev["visual_onset_s"], left=ev["visual_onset_s"],
                      height=0.25, color="tab:orange", alpha=0.8, label="visual")
    ax_a.set_yticks(range(len(labels)), labels, fontsize=7)
    handles, names = ax_a.get_legend_handles_labels()
    uniq = dict(zip(names, handles))
    ax_a.legend(uniq.values(), uniq.keys(), fontsize=7, loc="upper right")
    ax_a.set_title(title or "events: audio interval (blue) and visual interval (orange)", fontsize=9)
    v = np.asarray(visual, dtype=np.float32)
    ax_v.imshow(v.T, aspect="auto", origin="lower", cmap="coolwarm", extent=(0, clip_seconds, 0, v.shape[1]))
    ax_v.set_ylabel("visual dim", fontsize=7)
    change = np.r_[0.0, np.linalg.norm(np.diff(v, axis=0), axis=1)]
    ax_d.plot((np.arange(chunks) + 0.5) * chunk_s, change, color="k")
    ax_d.set_ylabel("|Δ visual|", fontsize=7)
    ax_d.set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def _isnan(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))
