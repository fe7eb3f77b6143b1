"""Figures of the bag-of-codewords chapter (matplotlib); every function returns the Figure.

* :func:`plot_families` - Fig. 1 of the paper on a real chunk (the four patch families);
* :func:`plot_reconstructions` - autoencoder inputs and reconstructions, put back in place;
* :func:`plot_codeword_usage`, :func:`plot_counts` - codeword frequencies, one chunk's 4 D counts;
* :func:`plot_grid` - Fig. 2 as heatmaps; :func:`plot_curve` - Fig. 3 with the paper's points on
  their own axis; :func:`plot_table1` - Table I (and notebook 05) as bars.

Only this run's numbers are drawn, except where a function takes the paper's points explicitly
(``plot_curve(paper=...)``), which it labels as the paper's.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.patches import Rectangle

from .model import FAMILIES, FAMILY_NAMES, PatchSpec, assemble, extract_patches, family_boxes, family_shapes

__all__ = ["plot_families", "plot_reconstructions", "plot_codeword_usage", "plot_counts", "plot_grid",
           "plot_curve", "plot_table1"]


def plot_families(chunk: np.ndarray, spec: PatchSpec = PatchSpec(), title: str = ""):
    """Fig. 1 of the paper on a real chunk: the (96, 100) log-mel with the boxes of each family
    (one panel per family) and the 8 x 10 coarse picture. Returns the Figure."""
    x = np.asarray(chunk, dtype=np.float32)
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.2))
    boxes = family_boxes(spec)
    colors = {"pat": "cyan", "fenv": "lime", "env": "yellow", "o": "white"}
    for ax, fam in zip(axes[:4], FAMILIES):
        ax.imshow(x, origin="lower", aspect="auto", cmap="magma")
        for k, (t0, f0, nt, nf) in enumerate(boxes[fam]):
            ax.add_patch(Rectangle((t0 - 0.5, f0 - 0.5), nt, nf, fill=False, lw=0.6 if fam == "pat" else 1.2,
                                   ec=colors[fam], alpha=0.9))
        n, d = family_shapes(spec)[fam]
        ax.set_title(f"{fam}: {n} x {d}-dim\n{FAMILY_NAMES[fam]}", fontsize=8)
        ax.set_xlabel("frame (10 ms)", fontsize=7)
        ax.set_ylabel("mel bin", fontsize=7)
        ax.tick_params(labelsize=6)
    o = extract_patches(torch.from_numpy(x)[None], spec)["o"][0, 0].reshape(spec.coarse).numpy()
    axes[4].imshow(o, origin="lower", aspect="auto", cmap="magma")
    axes[4].set_title("o: the chunk resized (bicubic) to 8 x 10", fontsize=8)
    axes[4].tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_reconstructions(original: dict[str, torch.Tensor], recon: dict[str, torch.Tensor], chunk_index: int = 0,
                         spec: PatchSpec = PatchSpec(), title: str = ""):
    """Top: the standardised chunk seen by each family; bottom: the autoencoder reconstructions,
    put back in place with :func:`assemble`. Inputs are :meth:`BowPipeline.patches` /
    :meth:`BowPipeline.reconstruct` outputs. Returns the Figure."""
    fig, axes = plt.subplots(2, 4, figsize=(15, 5))
    for j, fam in enumerate(FAMILIES):
        a = assemble(fam, original[fam][chunk_index], spec)
        b = assemble(fam, recon[fam][chunk_index], spec)
        lo, hi = float(np.percentile(a, 1)), float(np.percentile(a, 99))
        for i, (img, lab) in enumerate(((a, "input"), (b, "reconstruction"))):
            axes[i, j].imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi)
            axes[i, j].set_title(f"{fam} {lab}", fontsize=8)
            axes[i, j].tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_codeword_usage(codes: Mapping[str, np.ndarray], codebook_size: int, title: str = ""):
    """Histogram of codeword frequencies per family, codewords sorted by frequency. Returns the Figure."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 2.8))
    for ax, fam in zip(axes, FAMILIES):
        c = np.bincount(np.asarray(codes[fam]).reshape(-1), minlength=codebook_size)
        c = np.sort(c)[::-1] / c.sum()
        ax.bar(np.arange(codebook_size), c, width=1.0, color="tab:blue")
        ax.set_yscale("log")
        ax.set_title(f"{fam}: codeword frequency (sorted)", fontsize=8)
        ax.set_xlabel("codeword rank", fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_counts(counts: np.ndarray, codebook_size: int, title: str = ""):
    """Bars of one chunk's (4 D,) count vector, one group of D bars per family (separated by grey
    lines). The default title gives the vector size and its sum. Returns the Figure."""
    c = np.asarray(counts, dtype=float).reshape(-1)
    fig, ax = plt.subplots(figsize=(12, 2.4))
    ax.bar(np.arange(len(c)), c, width=1.0)
    for k in range(1, len(FAMILIES)):
        ax.axvline(k * codebook_size - 0.5, color="gray", lw=0.8)
    ax.set_xticks([(k + 0.5) * codebook_size for k in range(len(FAMILIES))], [f"{f} codewords" for f in FAMILIES])
    ax.set_ylabel("count")
    ax.set_title(title or f"4 D = {len(c)} counts of one second (sum {c.sum():.0f})")
    fig.tight_layout()
    return fig


def plot_grid(df: pd.DataFrame, metric: str = "mAP_1s_valid", title: str = ""):
    """Fig. 2 as heatmaps: one panel per compression factor F, rows = head (hidden, dropout),
    columns = D, cells = ``metric`` (mean over seeds). Returns the Figure."""
    agg = df.groupby(["F", "hidden", "dropout", "D"], as_index=False)[metric].mean()
    fs = sorted(agg["F"].unique())
    fig, axes = plt.subplots(1, len(fs), figsize=(5.2 * len(fs), 0.5 * agg.groupby(["hidden", "dropout"]).ngroups + 1.8),
                             squeeze=False)
    vmin, vmax = float(agg[metric].min()), float(agg[metric].max())
    for ax, f in zip(axes[0], fs):
        t = agg[agg["F"] == f].pivot_table(index=["hidden", "dropout"], columns="D", values=metric)
        im = ax.imshow(t.to_numpy(), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(t.shape[1]), [str(c) for c in t.columns], fontsize=7)
        ax.set_yticks(range(t.shape[0]), [f"{h} units, dropout {p}" for h, p in t.index], fontsize=7)
        ax.set_xlabel("codebook size D", fontsize=8)
        ax.set_title(f"F = {f:g}: {metric}", fontsize=9)
        for (i, j), v in np.ndenumerate(t.to_numpy()):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7,
                        color="white" if v < (vmin + vmax) / 2 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_curve(x: Sequence[float], runs: Mapping[str, Sequence[float]], paper: Mapping[str, float] | None = None,
               xlabel: str = "", ylabel: str = "mAP", title: str = "", paper_label: str = "paper (FSD50K)"):
    """Line plot of this run's curves (``runs``: label -> y per ``x``) with the paper's points
    (``paper``: x label -> value) as markers labelled ``paper_label`` on a second axis (different
    data). Returns the Figure."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for lab, ys in runs.items():
        ax.plot(list(x), list(ys), marker="o", label=f"this run: {lab}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (this run)")
    if paper:
        ax2 = ax.twinx()
        ax2.scatter([float(k) for k in paper], list(paper.values()), marker="*", s=120, color="tab:red",
                    label=paper_label)
        ax2.set_ylabel(f"{ylabel} (paper, FSD50K)", color="tab:red")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower right")
    else:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_table1(table: pd.DataFrame, title: str = ""):
    """Bars of test mAP at the 1 s and clip level for each model of a :func:`table1_frame` (with
    a ``seed`` column: the mean over seeds, the seeds' range as an error bar). Returns the Figure."""
    cols = ["mAP_1s_test", "mAP_clip_test"]
    by = table.groupby("row", sort=False)
    mean, lo, hi = by[cols + ["params_M"]].mean().reset_index(), by[cols].min(), by[cols].max()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(mean))
    for k, (col, lab) in enumerate(zip(cols, ("1 s chunks", "clip (mean of 1 s)"))):
        m = mean[col].to_numpy()
        err = np.stack([m - lo.loc[mean["row"], col].to_numpy(), hi.loc[mean["row"], col].to_numpy() - m])
        ax.bar(x + (k - 0.5) * 0.38, m, width=0.38, yerr=err, capsize=3, label=lab)
    table = mean
    ax.set_xticks(x, [f"{r}\n{p:.2f} M params" for r, p in zip(table["row"], table["params_M"])], fontsize=7)
    ax.set_ylabel("test mAP (this run)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig

