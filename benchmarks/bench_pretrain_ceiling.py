"""Ceiling of the synthetic world: the test mAP that models trained long enough reach on it.

The stand-ins of :mod:`audiorepro.backbones.pretrain` are read against this ceiling (the book
profile aims at a stated fraction of it). Every number printed is measured by this run, on the
world of a pre-training profile (``default_world(n_clips, seed)``, its train / valid / test
splits); the epoch / configuration is chosen on ``valid`` and ``test`` is scored once.

Models (each a lower bound on what the world allows; the ceiling estimate is the best of them):

1. ``stats-mlp``: the library's estimate, the one the backbones chapter prints
   (:mod:`audiorepro.backbones.ceiling`): fixed statistics of each whole clip's log-mel -> an MLP
   with one hidden layer, trained with the book's loop (best validation-mAP epoch kept).
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

from audiorepro.backbones import pretrain as P
from audiorepro.backbones.ceiling import world_ceiling
from audiorepro.data.synthetic import default_world
from audiorepro.training import pick_device

ENR_EDGES = (-np.inf, -5.0, 0.0, 5.0, 10.0, np.inf)                # event level above background, dB


def stats_mlp(profile: str, epochs: int, device: torch.device) -> dict[str, Any]:
    """Model 1: the library's statistics MLP (:func:`audiorepro.backbones.ceiling.world_ceiling`,
    the estimate the backbones chapter prints); returns valid / test mAP and the test scores."""
    c = world_ceiling(profile, epochs=epochs, device=device)
    return {"valid_mAP": c.valid_mAP, "best_epoch": c.best_epoch, "test_mAP": c.test_mAP,
            "scores": c.scores, "targets": c.targets, "ids": c.ids}


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
    results["stats-mlp"] = stats_mlp(args.profile, args.mlp_epochs, device)
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
