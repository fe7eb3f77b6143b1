"""Figures of the retrieval chapter (this run's numbers only; the paper's are never plotted here)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from torch import Tensor

from audiorepro.papers.retrieval.data import CaptionSet

__all__ = ["plot_table3", "plot_table4", "plot_segment_lengths", "plot_query_hits"]


def _bars(ax, per_seed: pd.DataFrame, by: str, metric: str = "mAP@10") -> None:
    """Horizontal bars of the mean ``metric`` (%) over seeds per ``by`` value, each seed a dot."""
    order = list(dict.fromkeys(per_seed[by]))
    means = per_seed.groupby(by, sort=False)[metric].mean().reindex(order)
    ax.barh(order, means.values * 100, color="#90a4ae", label="mean over seeds")
    pos = {k: i for i, k in enumerate(order)}
    ax.plot(per_seed[metric] * 100, [pos[k] for k in per_seed[by]], "o", color="#263238", ms=3,
            label="one seed")
    ax.invert_yaxis()


def plot_table3(per_seed: pd.DataFrame, runs: Mapping[str, Sequence[dict]], chance_map10: float,
                target: str) -> Figure:
    """Left: test mAP@10 of every row of ``per_seed`` (from :func:`run_table3`): mean over seeds
    and each seed; right: validation mAP@10 per epoch of each row's first seed (pre-training,
    then fine-tuning). Both with the expected mAP@10 of a random ranking ``chance_map10``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3))
    _bars(axes[0], per_seed, "run")
    axes[0].axvline(chance_map10 * 100, color="gray", ls="--", label="random ranking")
    axes[0].set_xlabel(f"mAP@10 (%) on the {target} test split - this run")
    axes[0].legend(fontsize=7)
    for key, outs in runs.items():
        h = outs[0]["history"]
        v = h[(h.metric == "mAP@10") & (h.split == "valid")].reset_index(drop=True)
        axes[1].plot(range(1, len(v) + 1), v["value"] * 100, marker="o", label=key)
    axes[1].axhline(chance_map10 * 100, color="gray", ls="--", label="chance")
    axes[1].set_xlabel("epoch (pre-training, then fine-tuning); first seed")
    axes[1].set_ylabel("valid mAP@10 (%)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_table4(per_seed: pd.DataFrame, chance_map10: float, target: str) -> Figure:
    """Test mAP@10 per pre-training combination (``per_seed`` from :func:`run_table4`: mean over
    seeds and each seed) and the expected mAP@10 of a random ranking."""
    fig, ax = plt.subplots(figsize=(6, 3))
    _bars(ax, per_seed, "paper role")
    ax.axvline(chance_map10 * 100, color="gray", ls="--", label="random ranking")
    ax.set_xlabel(f"mAP@10 (%) on the {target} test split - this run")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_segment_lengths(per_seed: pd.DataFrame, chance_map10: float, profile: str,
                         max_seconds: float = 20.0) -> Figure:
    """Test mAP@10 against the segment length, one curve per encoder (``per_seed`` from
    :func:`run_segment_lengths`: mean over seeds, each seed a dot; legend from its ``audio``
    column), and the expected mAP@10 of a random ranking; ``max_seconds``: seconds read per clip."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for enc, g in per_seed.groupby("encoder", sort=False):
        mean = g.groupby("segment (s)")["mAP@10"].mean()
        label = g["audio"].iloc[0] if "audio" in g else enc
        line, = ax.plot(mean.index, mean.values * 100, marker="o", label=label)
        ax.plot(g["segment (s)"], g["mAP@10"] * 100, ".", color=line.get_color(), alpha=0.5)
    ax.axhline(chance_map10 * 100, color="gray", ls="--", label="random ranking")
    ax.set_xlabel("segment length (s)")
    ax.set_ylabel("mAP@10 (%) - this run")
    ax.set_title(f"segment length, {profile} profile (first {max_seconds:g} s of each clip; "
                 "line: mean over seeds)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_query_hits(query: str, index_set: CaptionSet, spectra: Sequence[Tensor],
                    idx: Sequence[int], sims: Sequence[float]) -> Figure:
    """The log-mel spectrograms ``spectra[i]`` ((mel, frames)) of the hits ``idx`` of ``query``
    in ``index_set``, titled with their source and cosine similarity ``sims``."""
    fig, axes = plt.subplots(1, len(idx), figsize=(3.2 * len(idx), 2.4), squeeze=False)
    for ax, i, v in zip(axes[0], idx, sims):
        r = index_set.frame.iloc[i]
        ax.imshow(spectra[i].float().numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"{r['source']}: cos {v:.2f}", fontsize=8)
        ax.set_xlabel("frames (10 ms)")
    axes[0][0].set_ylabel("mel bin")
    fig.suptitle(f"query: {query!r}", fontsize=10)
    fig.tight_layout()
    return fig
