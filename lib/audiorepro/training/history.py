"""The tidy training history (one row per recorded value) and its plot."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

__all__ = ["HISTORY_COLUMNS", "history_frame", "plot_history"]

HISTORY_COLUMNS = ("epoch", "iteration", "split", "metric", "value")


def history_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """Rows ``{epoch, iteration, split, metric, value}`` -> DataFrame with typed columns."""
    df = pd.DataFrame(list(rows), columns=list(HISTORY_COLUMNS))
    return df.astype({"epoch": "int64", "iteration": "int64", "split": "object",
                      "metric": "object", "value": "float64"})


def plot_history(history: pd.DataFrame, metrics: Sequence[str] | None = None, x: str = "epoch",
                 title: str | None = None, ncols: int = 3):
    """One panel per metric, one line per split (train / valid); returns the matplotlib Figure.

    Args:
        history: ``FitResult.history`` (columns epoch, iteration, split, metric, value).
        metrics: metrics to draw (default: all, ``loss`` first, ``lr`` last).
        x: ``epoch`` or ``iteration`` on the horizontal axis.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(f"plot_history: history lacks column(s) {missing}")
    if x not in ("epoch", "iteration"):
        raise ValueError(f"plot_history: x must be 'epoch' or 'iteration', got {x!r}")
    available = list(dict.fromkeys(history["metric"]))
    if metrics is None:
        metrics = sorted(available, key=lambda m: (m != "loss", m == "lr", available.index(m)))
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise KeyError(f"plot_history: metric(s) {unknown} not in the history {available}")
    if not metrics:
        raise ValueError("plot_history: the history is empty")
    ncols = min(ncols, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        d = history[history["metric"] == m]
        sns.lineplot(data=d, x=x, y="value", hue="split", marker="o", ax=ax,
                     hue_order=[s for s in ("train", "valid", "test") if s in set(d["split"])] or None)
        ax.set_title(m)
        ax.set_ylabel(m)
        if m == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
