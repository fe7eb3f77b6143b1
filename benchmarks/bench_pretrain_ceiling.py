"""Ceiling of the synthetic world: the test mAP that models trained long enough reach on it.

The stand-ins of :mod:`audiorepro.backbones.pretrain` are read against this ceiling (the book
profile aims at a stated fraction of it). Every number printed is measured by this run, on the
world of a pre-training profile (``default_world(n_clips, seed)``, its train / valid / test
splits); the epoch / configuration is chosen on ``valid`` and ``test`` is scored once.

Models (each a lower bound on what the world allows; the ceiling estimate is the best of them):

1. ``stats-mlp``: fixed statistics of each whole clip's log-mel (PANNs 16 kHz front end, 64
   bins): per-bin mean, standard deviation, quantiles, mean absolute and standard deviation of
   the frame-to-frame difference, and temporal-modulation energies of 16 bands, standardised
   (:func:`audiorepro.preprocessing.standardise`) -> an MLP (one hidden layer) trained with the
   book's loop (:func:`audiorepro.training.fit`, BCE, AdamW, best validation-mAP epoch kept).
2. ``cnn10-long``: the CNN10 stand-in recipe of the profile (``pretrained_backbone``) trained for
   ``--epochs`` epochs instead of the profile's (``--skip-long`` leaves it out).

Then a diagnostic of audibility: for the best model's test scores, every positive (clip, class)
pair is compared with that class's negative clips (the pair's AUC: the share of negatives scored
lower) and the pairs are grouped by the level of the event above the background (the clip's SNR
plus the event's gain, both in ``events.csv`` / ``clips.csv``). Pairs near 0.5 are labels the
model cannot hear; if the quiet groups sit there while the loud ones are near 1, the world's
quiet events cap the ceiling.

Time box: about 15 minutes on two idle cores with the defaults (the stand-in run dominates);
each part prints its wall time.

Usage::

    .venv/bin/python benchmarks/bench_pretrain_ceiling.py [--profile book] [--epochs 48]
        [--mlp-epochs 300] [--skip-long] [--device auto] [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from audiorepro.backbones import pretrain as P
from audiorepro.data.synthetic import default_world
from audiorepro.metrics import tagging_metrics
from audiorepro.preprocessing import standardise
from audiorepro.training import fit, make_loader, pick_device

QUANTILES = (0.1, 0.5, 0.75, 0.9, 0.97, 0.99)
MOD_BANDS = ((1, 5), (5, 15), (15, 40), (40, 100), (100, 200))   # FFT bins of a 10 s band envelope
ENR_EDGES = (-np.inf, -5.0, 0.0, 5.0, 10.0, np.inf)                # event level above background, dB


def clip_statistics(feats: torch.Tensor) -> torch.Tensor:
    """(N, 64, F) log-mel of whole clips -> (N, D) fixed statistics (see the module docstring)."""
    x = feats - feats.median(-1, keepdim=True).values.median(1, keepdim=True).values
    d = x[..., 1:] - x[..., :-1]
    q = torch.quantile(x, torch.tensor(QUANTILES), dim=-1).permute(1, 0, 2).reshape(len(x), -1)
    bands = x[:, : (x.shape[1] // 16) * 16].reshape(len(x), 16, -1, x.shape[-1]).mean(2)
    spec = torch.fft.rfft(bands - bands.mean(-1, keepdim=True), dim=-1).abs()
    mod = torch.stack([spec[..., a:b].mean(-1) for a, b in MOD_BANDS], -1).reshape(len(x), -1)
    return torch.cat([x.mean(-1), x.std(-1), q, d.abs().mean(-1), d.std(-1), torch.log1p(mod)], 1)


def split_features(world: Any, cfg: dict, split: str, device: torch.device
                   ) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """(statistics (N, D), targets (N, C), clip ids) of one split (features cached per clip)."""
    table = world.table.subset(split)
    ds, _, valid = P._features(table, cfg, device, False)
    feats = torch.stack([ds[i]["features"] for i in range(len(ds))])[..., :valid]
    return clip_statistics(feats), table.targets(), list(table.frame["clip_id"].astype(str))


def stats_mlp(world: Any, epochs: int, device: torch.device, seed: int = 0) -> dict[str, Any]:
    """Model 1: log-mel statistics -> MLP; returns valid / test mAP and the test scores."""
    cfg = P.pretrain_config("panns_cnn14_16k", "cpu", "book", world.table)
    parts = {s: split_features(world, cfg, s, device) for s in ("train", "valid", "test")}
    xs = standardise(*(parts[s][0].numpy() for s in ("train", "valid", "test")))
    data = {s: torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(parts[s][1]).float())
            for s, x in zip(("train", "valid", "test"), xs)}
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(xs[0].shape[1], 512), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(512, parts["train"][1].shape[1]))
    res = fit(model, make_loader(data["train"], 64, shuffle=True, seed=seed),
              make_loader(data["valid"], 256, shuffle=False, seed=0),
              loss_fn=F.binary_cross_entropy_with_logits, task="tagging", device=device,
              config=dict(epochs=epochs, optimizer="adamw", lr=1e-3, weight_decay=1e-2,
                          schedule="cosine", monitor="mAP", mode="max", restore_best=True,
                          seed=seed, progress=False))
    res.model.eval()
    with torch.no_grad():
        scores = torch.sigmoid(res.model(data["test"].tensors[0].to(device))).cpu().numpy()
    return {"valid_mAP": float(res.best_metrics["mAP"]), "best_epoch": int(res.best_metrics["epoch"]),
            "test_mAP": float(tagging_metrics(parts["test"][1], scores)["mAP"]),
            "scores": scores, "targets": parts["test"][1], "ids": parts["test"][2]}


def long_standin(world: Any, profile: str, epochs: int, device: torch.device) -> dict[str, Any]:
    """Model 2: the CNN10 stand-in recipe trained for ``epochs`` epochs (cached like any run)."""
    _, rep = P.pretrained_backbone("panns_cnn10_32k", profile=profile, world=world, epochs=epochs,
                                   progress=False, record=False, device=device)
    with np.load(rep.run_dir / P.TEST_ITEMS) as z:
        scores, targets, ids = z["scores"], z["targets"], [str(i) for i in z["ids"]]
    return {"valid_mAP": rep.metrics["mAP"], "best_epoch": rep.best_epoch,
            "test_mAP": rep.test_metrics["mAP"], "train_s": rep.train_seconds,
            "from_cache": rep.from_cache, "scores": scores, "targets": targets, "ids": ids}


def pair_auc_by_level(world: Any, scores: np.ndarray, targets: np.ndarray, ids: list[str]
                      ) -> pd.DataFrame:
    """Mean AUC of positive (clip, class) pairs against the class's negatives, grouped by the
    loudest event of that class in the clip: clip SNR + event gain (dB above the background)."""
    classes = world.table.classes
    snr = world.table.frame.set_index("clip_id")["snr_db"]
    ev = world.events[world.events["audible"].astype(bool) & world.events["clip_id"].isin(ids)]
    level = (ev.assign(enr=ev["gain_db"].to_numpy() + snr.loc[ev["clip_id"]].to_numpy())
             .groupby(["clip_id", "label"])["enr"].max())
    row = {c: i for i, c in enumerate(ids)}
    rows = []
    for (cid, lab), enr in level.items():
        k, i = classes.index(lab), row[cid]
        neg = scores[targets[:, k] == 0, k]
        if targets[i, k] != 1 or len(neg) == 0:
            continue
        auc = float((neg < scores[i, k]).mean() + 0.5 * (neg == scores[i, k]).mean())
        rows.append({"enr_db": enr, "pair_auc": auc})
    frame = pd.DataFrame(rows)
    frame["level (dB above background)"] = pd.cut(frame["enr_db"], ENR_EDGES)
    out = frame.groupby("level (dB above background)", observed=True)["pair_auc"].agg(["count", "mean"])
    out["share >= 0.9"] = frame.groupby("level (dB above background)", observed=True)["pair_auc"] \
        .apply(lambda a: float((a >= 0.9).mean()))
    return out.rename(columns={"count": "positive pairs", "mean": "mean pair AUC"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="book", choices=sorted(P.PROFILES))
    ap.add_argument("--epochs", type=int, default=48, help="epochs of the long CNN10 stand-in run")
    ap.add_argument("--mlp-epochs", type=int, default=300)
    ap.add_argument("--skip-long", action="store_true", help="only the statistics model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    t_all = time.perf_counter()
    prof = P.PROFILES[args.profile]
    world = default_world(prof["n_clips"], prof["seed"], progress=False)
    chance = {s: P.chance_map(world.table, s) for s in ("valid", "test")}
    n = {s: int((world.table.frame["split"] == s).sum()) for s in ("train", "valid", "test")}
    print(f"world {world.root.name}: {n} clips, {len(world.table.classes)} classes; chance mAP "
          f"valid {chance['valid']:.3f} test {chance['test']:.3f}; device {device}, "
          f"{torch.get_num_threads()} threads", flush=True)

    results: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    results["stats-mlp"] = stats_mlp(world, args.mlp_epochs, device)
    results["stats-mlp"]["wall_s"] = time.perf_counter() - t0
    if not args.skip_long:
        t0 = time.perf_counter()
        results["cnn10-long"] = long_standin(world, args.profile, args.epochs, device)
        results["cnn10-long"]["wall_s"] = time.perf_counter() - t0

    table = pd.DataFrame([{"model": k, "valid mAP": r["valid_mAP"], "best epoch": r["best_epoch"],
                           "test mAP": r["test_mAP"], "test mAP / chance": r["test_mAP"] / chance["test"],
                           "wall (s)": round(r["wall_s"], 1)} for k, r in results.items()])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
    best = max(results, key=lambda k: results[k]["valid_mAP"])     # chosen on valid
    ceiling = results[best]["test_mAP"]
    print(f"ceiling estimate (model chosen on valid: {best}): test mAP {ceiling:.3f} "
          f"= {ceiling / chance['test']:.1f} x chance", flush=True)
    levels = pair_auc_by_level(world, results[best]["scores"], results[best]["targets"],
                               results[best]["ids"])
    print(f"audibility ({best}, test positives by event level):")
    print(levels.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"total wall time {time.perf_counter() - t_all:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"chance": chance, "ceiling_test_mAP": ceiling, "chosen": best,
                       "models": table.to_dict("records"),
                       "audibility": levels.reset_index().astype(str).to_dict("records")}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
