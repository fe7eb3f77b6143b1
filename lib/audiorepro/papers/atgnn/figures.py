"""Figures of the ATGNN chapter (matplotlib). Each function draws one figure and returns it.

Numbers drawn are this run's (from the frames passed in) except the Table I curve labelled
"paper", which is read from the paper's own numbers (``paper.yml``).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from audiorepro import results
from audiorepro.papers.atgnn.data import TaggingData
from audiorepro.papers.atgnn.experiments import CHAPTER, LabelGraphStats, label_attention
from audiorepro.papers.atgnn.model import ATGNN

__all__ = ["plot_counts", "plot_k_sweep", "plot_table_runs", "plot_label_graph",
           "plot_label_attention"]


def plot_counts(counts: pd.DataFrame, profile: str) -> plt.Figure | None:
    """Bars of :func:`~audiorepro.papers.atgnn.experiments.count_variants`: trainable parameters
    (plus the reference code's frozen position tables, stacked) and GMACs per variant."""
    if not len(counts):
        return None
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    lab = counts["row"] + " / " + counts["dataset"]
    ax[0].barh(lab, counts["trainable (M)"], label="trainable (this run)")
    ax[0].barh(lab, counts["+ frozen tables in ref. code (M)"], left=counts["trainable (M)"],
               alpha=0.4, label="frozen position tables of the reference code")
    ax[0].set_xlabel("parameters (M)")
    ax[0].legend(fontsize=7)
    ax[1].barh(lab, counts["GMACs"])
    ax[1].set_xlabel("GMACs, one forward pass (this run)")
    ax[1].set_yticks([])
    fig.suptitle(f"ATGNN variants at the paper inputs ({profile} profile)")
    fig.tight_layout()
    return fig


def plot_k_sweep(runs: pd.DataFrame, profile: str, dataset: str = "synthetic world") -> plt.Figure:
    """Test mAP against k of :func:`~audiorepro.papers.atgnn.experiments.k_sweep` (crosses:
    seeds; line: mean over seeds; one line per MLG setting) next to the paper's Table I."""
    pn = results.paper_numbers(CHAPTER)
    pn = pn[pn.table == "table1"]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot([int(r.split("=")[1]) for r in pn.row], pn.value, "s--", label="paper (Table I, %)")
    seeds = sorted(runs["seed"].unique())
    for i, (mlg, g) in enumerate(runs.groupby("MLG") if "MLG" in runs else [(False, runs)]):
        mean = g.groupby("k")["test mAP"].mean()
        name = "with MLG" if mlg else "without MLG"
        ax.plot(mean.index, 100 * mean.to_numpy(), "o-", color=f"C{i + 1}",
                label=f"this run {name}, mean of seeds {seeds} (%)")
        ax.scatter(g["k"], 100 * g["test mAP"], marker="x", color=f"C{i + 1}", s=14)
    ax.set_xlabel("k")
    ax.set_ylabel("mAP (%)")
    ax.legend(fontsize=7)
    ax.set_title(f"mAP vs. k ({profile} profile, {dataset})", fontsize=9)
    fig.tight_layout()
    return fig


def plot_table_runs(runs: pd.DataFrame, summary: pd.DataFrame, models: Sequence[str],
                    seeds: Sequence[int], title: str) -> plt.Figure:
    """Validation loss and mAP per epoch of every (row, seed) run, and each row's test mAP
    (dots: seeds; bar: mean +- std over seeds)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for i, name in enumerate(models):
        for r in runs[runs.model == name].itertuples():
            for ax, metric in zip(axes[:2], ("loss", "mAP")):
                c = r.result.curve(metric, "valid")
                ax.plot(c["epoch"], c["value"], color=f"C{i}", alpha=0.7,
                        label=name if r.seed == seeds[0] else None)
    for ax, metric in zip(axes[:2], ("loss", "mAP")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {metric}")
    axes[1].legend(fontsize=7)
    for i, r in enumerate(summary.to_dict("records")):
        pts = runs[runs.model == r["model"]]["test mAP"]
        axes[2].scatter([i] * len(pts), pts, color=f"C{i}", s=14)
        axes[2].errorbar(i, r["mean"], yerr=0 if r["seeds"] < 2 else r["std"], fmt="_", color="k",
                         capsize=4)
    axes[2].set_xticks(range(len(summary)), summary.model, rotation=30, fontsize=7)
    axes[2].set_ylabel("test mAP (dots: seeds)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_label_graph(stats: LabelGraphStats, title: str) -> plt.Figure:
    """Heatmaps of the training labels' log2 lift and the learned adjacency (symmetrised), labels
    ordered by training frequency."""
    order = np.argsort(-stats.prevalence)
    idx = np.ix_(order, order)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4.2))
    im0 = ax[0].imshow(np.log2(np.maximum(stats.lift, 1e-3))[idx], cmap="RdBu_r", vmin=-4, vmax=4)
    ax[0].set_title("training labels: log2 lift")
    plt.colorbar(im0, ax=ax[0], fraction=0.046)
    v = np.abs(stats.A_sym).max()
    im1 = ax[1].imshow(stats.A_sym[idx], cmap="RdBu_r", vmin=-v, vmax=v)
    ax[1].set_title(f"learned A (mean of MLG blocks); Spearman {stats.rho:.2f}")
    plt.colorbar(im1, ax=ax[1], fraction=0.046)
    for a in ax:
        a.set_xlabel("label (by frequency)")
        a.set_ylabel("label")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_label_attention(model: ATGNN, data: TaggingData, clip_index: int = 0, max_labels: int = 4,
                         device: str = "auto") -> plt.Figure:
    """A test clip's log-mel input and, for up to ``max_labels`` of its true labels, the patch
    nodes the label connects to in the first PLG block
    (:func:`~audiorepro.papers.atgnn.experiments.label_attention`, run on ``device``)."""
    i = min(clip_index, len(data.y_test) - 1)
    att = label_attention(model, data.x_test[i:i + 1], device=device)[0]        # (S, H, W)
    labels = np.flatnonzero(data.y_test[i].numpy())[:max_labels]
    fig, ax = plt.subplots(1, len(labels) + 1, figsize=(3 * (len(labels) + 1), 2.6), squeeze=False)
    ax = ax[0]
    ax[0].imshow(data.x_test[i].T.numpy(), origin="lower", aspect="auto")
    ax[0].set_title("input (log-mel)")
    for a, lab in zip(ax[1:], labels):
        a.imshow(att[lab].numpy(), origin="lower", aspect="auto", cmap="magma")
        a.set_title(f"{data.classes[lab]}: patch neighbours", fontsize=8)
    for a in ax:
        a.set_xlabel("time")
        a.set_ylabel("frequency")
    fig.tight_layout()
    return fig
