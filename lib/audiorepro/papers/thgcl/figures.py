"""Figures of the THGCL chapter (matplotlib): the graph of one clip, training curves, the bar
charts of Tables 1 / 2 and the robustness sweep. Inputs are what
:mod:`audiorepro.papers.thgcl.experiments` returns; nothing here computes a result.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.collections import LineCollection

from audiorepro.papers.thgcl.model import TemporalGraph, edge_weights, hawkes_weights

__all__ = ["draw_graph", "graph_panels", "weight_matrices", "plot_curves", "table1_figure", "table2_figure",
           "balance_figure",
           "robustness_figure"]


def draw_graph(graph: TemporalGraph, intra_kernel: str, cross_kernel: str, ax: plt.Axes | None = None,
               audio_values: np.ndarray | None = None, video_values: np.ndarray | None = None,
               tau: float = 1.0, title: str = "") -> plt.Axes:
    """Draw one clip's graph: audio nodes (top row) and video nodes (bottom row) at their start
    times, intra-modal edges as arcs and cross-modal edges as lines, coloured by edge weight
    (evaluation weights, ``xi = 0.5``). ``audio_values`` (P_a,) / ``video_values`` (P_v,) colour
    the nodes (e.g. a feature's energy). Returns the matplotlib axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.6))
    wa = edge_weights(graph, "audio", intra_kernel, tau).numpy()
    wv = edge_weights(graph, "video", intra_kernel, tau).numpy()
    wx = edge_weights(graph, "cross", cross_kernel, tau).numpy()
    ta, tv = graph.audio_time.numpy(), graph.video_time.numpy()
    ya, yv = 1.0, 0.0
    segs, vals = [], []
    for w, t, y, sign in ((wa, ta, ya, 1.0), (wv, tv, yv, -1.0)):
        for i, j in zip(*np.nonzero(w)):
            if j <= i:
                continue
            xs = np.linspace(t[i], t[j], 12)
            h = 0.08 + 0.03 * abs(t[j] - t[i])
            ys = y + sign * h * np.sin(np.linspace(0, np.pi, 12))
            segs.append(np.c_[xs, ys])
            vals.append(w[i, j])
    for k, j in zip(*np.nonzero(wx)):
        segs.append(np.array([[tv[j], yv], [ta[k], ya]]))
        vals.append(wx[k, j])
    lc = LineCollection(segs, array=np.asarray(vals), cmap="viridis", linewidths=0.8, alpha=0.8)
    ax.add_collection(lc)
    plt.colorbar(lc, ax=ax, label="edge weight", pad=0.01)
    ax.scatter(ta, np.full_like(ta, ya), c=audio_values if audio_values is not None else "tab:blue",
               cmap="magma", s=18, zorder=3, edgecolors="k", linewidths=0.3)
    ax.scatter(tv, np.full_like(tv, yv), c=video_values if video_values is not None else "tab:orange",
               cmap="magma", s=18, zorder=3, marker="s", edgecolors="k", linewidths=0.3)
    ax.set_yticks([yv, ya], ["video nodes", "audio nodes"])
    ax.set_xlabel("segment start time (s)")
    ax.set_xlim(-0.2, max(ta.max(), tv.max()) + 0.3)
    ax.set_ylim(-0.75, 1.75)
    ax.set_title(title or f"intra-modal {intra_kernel}, cross-modal {cross_kernel}")
    return ax


def graph_panels(graph: TemporalGraph, audio_values: np.ndarray | None = None,
                 video_values: np.ndarray | None = None, tau: float = 1.0) -> plt.Figure:
    """The graph with the paper's weighting (Gaussian intra-modal + Hawkes cross-modal, top) and
    with Hawkes weights everywhere (the TMac setting of Table 2, bottom); see :func:`draw_graph`."""
    fig, axes = plt.subplots(2, 1, figsize=(13, 7.5))
    draw_graph(graph, "gaussian", "hawkes", axes[0], audio_values, video_values, tau,
               title="Gaussian intra-modal + Hawkes cross-modal (paper)")
    draw_graph(graph, "hawkes", "hawkes", axes[1], audio_values, video_values, tau,
               title="Hawkes everywhere (TMac setting of Table 2)")
    fig.tight_layout()
    return fig


def weight_matrices(graphs: Mapping[str, TemporalGraph], tau: float = 1.0, seed: int = 0) -> plt.Figure:
    """The edge weights as matrices, one row per graph (``graphs``: label -> graph, e.g. the
    book's and the paper's node counts): audio-audio under the Gaussian (Eq. 1), the Hawkes
    kernel (Eq. 2) in evaluation (``xi = 0.5``) and in one training draw of ``xi`` (uniform,
    generator ``seed``: what the model sees in a training step), and video -> audio under both
    kernels in evaluation (rows: audio nodes; white: no edge). One colour scale for the whole
    figure, so flat weights look flat."""
    panels = (("audio", "gaussian", False), ("audio", "hawkes", False), ("audio", "hawkes", True),
              ("cross", "gaussian", False), ("cross", "hawkes", False))
    fig, axes = plt.subplots(len(graphs), len(panels), figsize=(2.9 * len(panels), 3.2 * len(graphs)),
                             squeeze=False, layout="constrained")
    image = None
    generator = torch.Generator().manual_seed(seed)
    for row, (label, graph) in zip(axes, graphs.items()):
        for ax, (family, kernel, training) in zip(row, panels):
            mask = getattr(graph, f"{family}_mask")
            if training:
                xi = torch.rand(mask.shape, generator=generator)
                w = hawkes_weights(getattr(graph, f"{family}_term"), mask, tau, xi)
            else:
                w = edge_weights(graph, family, kernel, tau)
            w = np.where(mask.numpy(), w.numpy(), np.nan)
            image = ax.imshow(w, vmin=0.0, vmax=1.0 / tau, cmap="viridis", aspect="auto",
                              interpolation="nearest")
            pair = "audio-audio" if family == "audio" else "video -> audio"
            ax.set_title(f"{label}\n{pair}, {kernel}{' (one training draw)' if training else ''}",
                         fontsize=8)
            ax.set_xlabel("video node" if family == "cross" else "audio node")
            ax.set_ylabel("audio node")
    fig.colorbar(image, ax=axes, label="edge weight", shrink=0.8)
    return fig


def _curve_panel(ax: plt.Axes, fits: Mapping[str, Any], metric: str, split: str, x: str,
                 relative: bool = False) -> None:
    """One line per run (``FitResult.curve``) of ``split`` ``metric`` against ``x``; with
    ``relative`` each curve is divided by its own first value."""
    for label, fr in fits.items():
        h = fr.curve(metric, split)
        y = h["value"] / h["value"].iloc[0] if relative and len(h) else h["value"]
        ax.plot(h[x], y, marker=".", label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(f"{split} {metric}" + (" / its first value" if relative else ""))
    ax.grid(alpha=0.3)


def plot_curves(fits: Mapping[str, Any], metrics: Sequence[tuple[str, str]] = (("loss", "train"), ("mAP", "valid")),
                x: str = "iteration", relative: Sequence[str] = (), title: str = "") -> plt.Figure:
    """One panel per ``(metric, split)`` with one line per run (name -> ``FitResult``); metrics in
    ``relative`` are divided by each run's first value (losses of different scales, Fig. 3a)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.6))
    axes = np.atleast_1d(axes)
    for ax, (metric, split) in zip(axes, metrics):
        _curve_panel(ax, fits, metric, split, x, metric in relative)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _seed_bars(ax: plt.Axes, per_seed: pd.DataFrame, labels: Mapping[str, str],
               horizontal: bool = False) -> None:
    """Mean test mAP per variant (bars; ``labels``: variant -> tick label) with one dot per seed."""
    for i, name in enumerate(labels):
        v = per_seed.loc[per_seed["variant"] == name, "mAP"].to_numpy()
        if horizontal:
            ax.barh(i, v.mean(), color=f"C{i}", alpha=0.7)
            ax.scatter(v, np.full(len(v), i), color="k", s=12, zorder=3)
        else:
            ax.bar(i, v.mean(), color=f"C{i}", alpha=0.7)
            ax.scatter(np.full(len(v), i), v, color="k", s=12, zorder=3)
    (ax.set_yticks if horizontal else ax.set_xticks)(range(len(labels)), list(labels.values()))


def table1_figure(per_seed: pd.DataFrame, fits: Mapping[str, Any], xlabel: str = "test mAP",
                  title: str = "") -> plt.Figure:
    """Left: mean test mAP per variant with one dot per seed (``per_seed`` of
    :func:`~audiorepro.papers.thgcl.experiments.run_variants`); right: validation mAP per epoch
    of each run (name -> ``FitResult``, e.g. the first seed's)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    names = list(dict.fromkeys(per_seed["variant"]))
    _seed_bars(axes[0], per_seed, {n: n for n in names}, horizontal=True)
    axes[0].set_xlabel(xlabel + " (bars: mean over seeds, dots: seeds)")
    _curve_panel(axes[1], fits, "mAP", "valid", "epoch")
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def table2_figure(per_seed: pd.DataFrame, settings: Mapping[str, str], title: str = "") -> plt.Figure:
    """Mean test mAP per setting (bars; ``settings``: variant -> label) with one dot per seed
    (``per_seed`` of :func:`~audiorepro.papers.thgcl.experiments.kernel_ablation`)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    _seed_bars(ax, per_seed, settings)
    ax.set_ylabel("test mAP")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def robustness_figure(sweep: pd.DataFrame, names: Sequence[str], floor: str = "audio-only MLP",
                      aligned_noise: float = 0.5, title: str = "") -> plt.Figure:
    """Test mAP against the audio-visual offset (at the world's visual noise ``aligned_noise``)
    and against the visual noise (aligned), one line per variant (``floor`` dashed); ``sweep`` as
    :func:`~audiorepro.papers.thgcl.experiments.robustness_sweep` returns it."""
    sweep = sweep.copy()
    if "seed" in sweep:    # one point per (condition, variant): the mean over seeds
        sweep = sweep.groupby(["condition", "variant"], as_index=False, sort=False).mean(numeric_only=True)
    sweep["av_offset_s"] = sweep.get("av_offset_s", pd.Series(np.nan, index=sweep.index)).fillna(0.0)
    sweep["visual_noise"] = sweep.get("visual_noise", pd.Series(np.nan, index=sweep.index)).fillna(aligned_noise)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, (param, label, keep) in zip(axes, (
            ("av_offset_s", "audio-visual offset (s)", sweep["visual_noise"] == aligned_noise),
            ("visual_noise", "visual noise std", sweep["av_offset_s"] == 0.0))):
        sub = sweep[keep]
        for name in names:
            s = sub[sub["variant"] == name].sort_values(param)
            ax.plot(s[param], s["mAP"], marker="o", label=name, ls="--" if name == floor else "-")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test mAP")
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def balance_figure(balance: pd.DataFrame, chosen: str | None = None, title: str = "") -> plt.Figure:
    """Grouped bars of a :func:`~audiorepro.papers.thgcl.experiments.modality_balance` table:
    validation mAP per visual stream (x) and model (colour), the chance level as a dashed line,
    the ``chosen`` stream's label in bold."""
    wide = balance.pivot(index="setting", columns="variant", values="valid mAP")
    wide = wide.loc[list(dict.fromkeys(balance["setting"]))]
    fig, ax = plt.subplots(figsize=(7.5, 3.4), layout="constrained")
    width = 0.8 / len(wide.columns)
    x = np.arange(len(wide))
    for i, name in enumerate(wide.columns):
        ax.bar(x + (i - (len(wide.columns) - 1) / 2) * width, wide[name], width, label=name)
    ax.axhline(float(balance["chance"].mean()), color="0.3", ls="--", lw=1, label="chance")
    ax.set_xticks(x, wide.index)
    for tick in ax.get_xticklabels():
        if tick.get_text() == chosen:
            tick.set_fontweight("bold")
    ax.set_ylabel("validation mAP")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, ncol=2)
    return fig
