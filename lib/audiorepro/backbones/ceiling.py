"""How much the synthetic world allows: a cheap estimate of its ceiling, and each stand-in's share.

The stand-ins of :mod:`.pretrain` are read against what a model trained to convergence reaches on
the same world, splits and labels. This module trains the cheapest such model, a **statistics
MLP**: fixed statistics of each whole clip's log-mel (PANNs 16 kHz front end, 64 bins, the
features the CNN14 stand-in already cached): per-bin mean, standard deviation, quantiles, mean
absolute and standard deviation of the frame-to-frame difference, and the energies of five
temporal-modulation bands in 16 frequency bands, standardised
(:func:`audiorepro.preprocessing.standardise`) -> one hidden layer of 512 -> the world's classes,
trained with the book's loop (:func:`audiorepro.training.fit`: BCE, AdamW, cosine schedule, the
best *validation*-mAP epoch kept); the test split is scored once.

Its test mAP is a **lower bound** on the world's ceiling, so a stand-in's share of it is an
upper bound on the share of the true ceiling. ``benchmarks/bench_pretrain_ceiling.py`` adds the
expensive estimate (the CNN10 recipe trained three times as long) and an audibility diagnostic.

>>> c = world_ceiling("book")                                       # doctest: +SKIP
>>> ceiling_table(reports, c)                                       # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..metrics import tagging_metrics
from ..preprocessing import standardise
from ..training import fit, make_loader, pick_device
from . import pretrain as P

__all__ = ["CeilingEstimate", "clip_statistics", "world_ceiling", "ceiling_table",
           "STATS_FRONTEND_OF"]

QUANTILES = (0.1, 0.5, 0.75, 0.9, 0.97, 0.99)
#: FFT bins of a 10 s band envelope at 100 frames/s (0.1-0.5, 0.5-1.5, 1.5-4, 4-10, 10-20 Hz).
MOD_BANDS = ((1, 5), (5, 15), (15, 40), (40, 100), (100, 200))
#: The stand-in whose front end (and cached features) the statistics are read from.
STATS_FRONTEND_OF = "panns_cnn14_16k"


def clip_statistics(feats: torch.Tensor) -> torch.Tensor:
    """(N, 64, F) log-mel of whole clips -> (N, D) fixed statistics, D = 64 * 10 + 16 * 5.

    The clip's median level is subtracted first (a statistic of loudness alone is no cue)."""
    if feats.dim() != 3 or feats.shape[1] < 16:
        raise ValueError(f"clip_statistics needs (N, mel bins >= 16, frames), got {tuple(feats.shape)}")
    x = feats - feats.median(-1, keepdim=True).values.median(1, keepdim=True).values
    d = x[..., 1:] - x[..., :-1]
    q = torch.quantile(x, torch.tensor(QUANTILES, dtype=x.dtype), dim=-1)
    q = q.permute(1, 0, 2).reshape(len(x), -1)
    bands = x[:, : (x.shape[1] // 16) * 16].reshape(len(x), 16, -1, x.shape[-1]).mean(2)
    spec = torch.fft.rfft(bands - bands.mean(-1, keepdim=True), dim=-1).abs()
    mod = torch.stack([spec[..., a:b].mean(-1) if spec.shape[-1] > a else spec[..., :0].sum(-1)
                       for a, b in MOD_BANDS], -1).reshape(len(x), -1)
    return torch.cat([x.mean(-1), x.std(-1), q, d.abs().mean(-1), d.std(-1), torch.log1p(mod)], 1)


@dataclass
class CeilingEstimate:
    """The statistics MLP's scores on one world.

    valid_mAP chose the epoch (``best_epoch``); test_mAP is read once; chance holds the expected
    mAP of a random ranking per split; scores / targets (n_test, C) and ids are the test items."""
    dataset: str
    valid_mAP: float
    test_mAP: float
    best_epoch: int
    epochs: int
    chance: dict[str, float]
    n_items: dict[str, int]
    scores: np.ndarray
    targets: np.ndarray
    ids: list[str]

    @property
    def over_chance(self) -> float:
        """Test mAP / the test split's chance mAP."""
        return self.test_mAP / self.chance["test"]


def _split_statistics(table, cfg, split: str, device: torch.device
                      ) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    sub = table.subset(split)
    ds, _, valid = P._features(sub, cfg, device, False)
    feats = torch.stack([ds[i]["features"] for i in range(len(ds))])[..., :valid].float().cpu()
    return clip_statistics(feats), sub.targets(), list(sub.frame["clip_id"].astype(str))


def world_ceiling(profile: str = "book", epochs: int | None = None, hidden: int = 512,
                  seed: int = 0, device: str | torch.device = "auto") -> CeilingEstimate:
    """Train the statistics MLP on a pre-training profile's world (see the module docstring).

    ``epochs``: default 300 on the book world, 30 on the smoke world. The front-end features
    are the cached ones of the CNN14 stand-in's front end (computed here if absent)."""
    dev = pick_device(device)
    table, dataset = P.profile_world(profile)
    epochs = int(epochs if epochs is not None else (300 if profile == "book" else 30))
    if epochs < 1:
        raise ValueError(f"world_ceiling: epochs must be >= 1, got {epochs}")
    cfg = P.pretrain_config(STATS_FRONTEND_OF, "cpu", profile, table)
    splits = ("train", "valid", "test")
    parts = {s: _split_statistics(table, cfg, s, dev) for s in splits}
    xs = standardise(*(parts[s][0].numpy() for s in splits))
    data = {s: torch.utils.data.TensorDataset(torch.from_numpy(np.asarray(x, np.float32)),
                                              torch.from_numpy(parts[s][1]).float())
            for s, x in zip(splits, xs)}
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(xs[0].shape[1], hidden), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(hidden, parts["train"][1].shape[1]))
    res = fit(model, make_loader(data["train"], 64, shuffle=True, seed=seed),
              make_loader(data["valid"], 256, shuffle=False, seed=0),
              loss_fn=F.binary_cross_entropy_with_logits, task="tagging", device=dev,
              config=dict(epochs=epochs, optimizer="adamw", lr=1e-3, weight_decay=1e-2,
                          schedule="cosine", monitor="mAP", mode="max", restore_best=True,
                          eval_every_epochs=5, seed=seed, progress=False))
    res.model.eval()
    with torch.no_grad():
        scores = torch.sigmoid(res.model(data["test"].tensors[0].to(dev))).cpu().numpy()
    targets = parts["test"][1]
    return CeilingEstimate(
        dataset=dataset, valid_mAP=float(res.best_metrics["mAP"]),
        test_mAP=float(tagging_metrics(targets, scores)["mAP"]),
        best_epoch=int(res.best_metrics["epoch"]), epochs=epochs,
        chance={s: P.chance_map(table, s) for s in ("valid", "test")},
        n_items={s: len(parts[s][2]) for s in splits}, scores=scores, targets=targets,
        ids=parts["test"][2])


def ceiling_table(reports: Mapping[str, "P.PretrainReport"] | Sequence["P.PretrainReport"],
                  ceiling: CeilingEstimate) -> pd.DataFrame:
    """One row per stand-in: its test mAP, the ceiling's lower bound, and the stand-in's share of
    the distance from chance to that bound, ``(mAP - chance) / (ceiling - chance)`` (0: chance,
    1: as good as the statistics MLP), beside the plain ratio mAP / ceiling."""
    chance, top = ceiling.chance["test"], ceiling.test_mAP
    rows = []
    for r in P.report_list(reports):
        m = r.test_metrics.get("mAP", float("nan"))
        rows.append({"backbone": r.name, "test mAP": m, "test mAP / chance": m / chance,
                     "mAP / ceiling": m / top,
                     "share of chance-to-ceiling": (m - chance) / (top - chance)})
    rows.append({"backbone": "ceiling (statistics MLP, lower bound)", "test mAP": top,
                 "test mAP / chance": top / chance, "mAP / ceiling": 1.0,
                 "share of chance-to-ceiling": 1.0})
    return pd.DataFrame(rows)
