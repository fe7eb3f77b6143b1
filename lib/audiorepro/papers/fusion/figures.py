"""Figures of the multilayer-fusion chapter: layer-wise heatmaps (the paper's Figs. 2-4 style)
and the accuracy change from fusion (this run's Table III). Every plotted number comes from the
frames passed in (this run's results)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from audiorepro.backbones.base import Tap

__all__ = ["plot_layer_heatmap", "plot_layer_heatmaps", "plot_fusion_gain", "plot_control_curves"]


def plot_layer_heatmap(acc: pd.DataFrame, title: str, ax: Any = None,
                       mark: Sequence[Tap] = ()) -> Any:
    """Figs. 2-4 style heatmap: layers (rows) x tasks (columns), accuracy in % written in the
    cells, each column's best layer boxed; layers in ``mark`` get a star in their label."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * acc.shape[1], 0.9 + 0.42 * acc.shape[0]))
    vals = 100 * acc.to_numpy(dtype=float)
    ax.imshow(vals, cmap="viridis", aspect="auto")
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            ax.text(j, i, f"{vals[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if vals[i, j] < np.nanmean(vals) else "black")
    for j in range(vals.shape[1]):
        i = int(np.nanargmax(vals[:, j]))
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set_xticks(range(acc.shape[1]), list(acc.columns), rotation=45, ha="right")
    ax.set_yticks(range(acc.shape[0]), [f"#{l}" + (" *" if l in mark else "") for l in acc.index])
    ax.set_xlabel("task (analogue)")
    ax.set_ylabel("layer")
    ax.set_title(title)
    return ax


def plot_layer_heatmaps(matrices: Mapping[str, pd.DataFrame], profile: str) -> Any:
    """One :func:`plot_layer_heatmap` per backbone (``matrices``: label -> layer x task), side by
    side; returns the figure."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.6 * len(matrices), 4.4), squeeze=False)
    for ax, (label, acc) in zip(axes[0], matrices.items()):
        plot_layer_heatmap(acc, label, ax=ax)
    fig.suptitle(f"Layer-wise linear-evaluation accuracy (%), task analogues, profile {profile}; "
                 "red box = best layer per task")
    fig.tight_layout()
    return fig


def plot_fusion_gain(rows: pd.DataFrame, profile: str) -> Any:
    """Bars of fusion - last layer (points) per task and backbone, from the ``": difference"``
    rows of :func:`audiorepro.papers.fusion.experiments.table3_frames`; returns the axes."""
    diff = 100 * rows[[i.endswith("difference") for i in rows.index]].drop(columns="Avg.")
    n = max(1, len(diff))
    _, ax = plt.subplots(figsize=(8.5, 3.4))
    for k, (name, r) in enumerate(diff.iterrows()):
        ax.bar(np.arange(len(r)) + 0.8 * k / n, r.to_numpy(), width=0.8 / n,
               label=name.replace(": difference", ""))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(np.arange(diff.shape[1]) + 0.4 - 0.4 / n, list(diff.columns))
    ax.set_ylabel("fusion - last layer (points)")
    ax.set_title(f"Accuracy change from fusion, this run (profile {profile}, task analogues)")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def plot_control_curves(curves: Mapping[str, tuple[pd.Series, pd.Series]], profile: str) -> Any:
    """Per backbone, the test accuracy averaged over the tasks at each layer of the trained model
    and of its random-init control (``curves``: label -> (trained, random) series indexed by
    layer, from :class:`~audiorepro.papers.fusion.experiments.LayerwiseRun` ``.acc.mean(axis=1)``);
    returns the figure."""
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(4.2 * max(1, len(curves)), 3.3),
                             squeeze=False)
    for ax, (label, (trained, random)) in zip(axes[0], curves.items()):
        for series, style, name in ((trained, "-o", "trained"), (random, "--s", "random init")):
            ax.plot(range(len(series)), 100 * series.to_numpy(dtype=float), style, ms=3, label=name)
        ax.set_xticks(range(len(trained)), [f"#{l}" for l in trained.index], rotation=90, fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("layer")
        ax.set_ylabel("mean test accuracy over tasks (%)")
        ax.legend(fontsize=8)
    fig.suptitle(f"What pre-training adds per layer: trained vs random-init control, profile {profile}",
                 fontsize=10)
    fig.tight_layout()
    return fig
