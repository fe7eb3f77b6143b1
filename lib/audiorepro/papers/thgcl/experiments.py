"""Runs of the THGCL chapter: training the variants, run caches, evaluation and recording.

* :func:`train_variant` - one :data:`~audiorepro.papers.thgcl.model.VARIANTS` entry trained with
  the shared loop (:func:`audiorepro.training.fit`) on node features of
  :mod:`audiorepro.papers.thgcl.data` (inputs standardised with the training split's statistics by
  :func:`audiorepro.preprocessing.standardise`), scored on the test split
  (:func:`evaluate_model`). Run folders under ``cache/thgcl/runs`` are keyed by
  :func:`audiorepro.caching.run_key` over the run's settings, the features' ``data_key`` and the
  code (:data:`~audiorepro.papers.thgcl.data.CACHE_CODE`): notebooks sharing a run train it once,
  and a changed model or loop never reloads a run of older code.
* :func:`run_variants` (Tables 1 and Fig. 3), :func:`kernel_ablation` (Table 2, several seeds),
  :func:`robustness_sweep` (beyond the paper), :func:`record_param_counts` (parameter counts at
  the paper's sizes): train / count and record through :mod:`audiorepro.results`.
* :func:`leader_share` (Fig. 3b) and the graph tables :func:`edge_weight_summary` /
  :func:`node_weight_table` (what the edge weights of Eqs. 1-2 look like on one graph).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from audiorepro import caching, paths, results
from audiorepro.backbones.counting import count_parameters
from audiorepro.metrics import tagging_metrics
from audiorepro.papers.thgcl.data import CACHE_CODE, AVFeatures, av_collate, chapter_features
from audiorepro.papers.thgcl.model import (VARIANTS, GraphConfig, TemporalGraph, THGCLError,
                                           build_variant, edge_weights, hawkes_weights,
                                           make_batch_fn, parameter_table)
from audiorepro.preprocessing import standardise
from audiorepro.training import fit, pick_device

__all__ = ["DEFAULT_TRAIN", "evaluate_model", "train_variant", "run_variants", "kernel_ablation",
           "robustness_sweep", "record_param_counts", "leader_share", "edge_weight_summary",
           "node_weight_table"]

#: training defaults of :func:`train_variant` (the THGCL config: Adam 0.005, batch 64, early
#: stopping on validation mAP with patience 5 evaluations)
DEFAULT_TRAIN: dict[str, Any] = {"seed": 0, "epochs": 20, "batch_size": 64, "lr": 0.005, "optimizer": "adam",
                                 "monitor": "mAP", "mode": "max", "patience": 5, "progress": False}


# =============================================================================== training
def evaluate_model(model: nn.Module, data: AVFeatures, batch_size: int = 256,
                   device: str = "auto") -> dict[str, float]:
    """mAP / AUC / d' (:func:`audiorepro.metrics.tagging_metrics`) of ``model`` on ``data``,
    computed on ``device`` (the model is moved there)."""
    dev = pick_device(device)
    model.to(dev)
    was = model.training
    model.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            a = data.audio[s:s + batch_size].to(dev)
            v = data.video[s:s + batch_size].to(dev)
            outs.append(model(a, v)["logits"].float().cpu())
    model.train(was)
    return tagging_metrics(data.target.numpy(), torch.cat(outs).numpy())


def _standardise_nodes(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """(N, P, D) node features standardised per dimension with the statistics of the training
    clips' nodes (``train`` (N,) bool), by :func:`audiorepro.preprocessing.standardise`."""
    x = np.asarray(x, dtype=np.float32)
    d = x.shape[-1]
    scaled_train, scaled_rest = standardise(x[train].reshape(-1, d), x[~train].reshape(-1, d))
    out = np.empty(x.shape, dtype=np.float32)
    out[train] = scaled_train.reshape(-1, *x.shape[1:])
    out[~train] = scaled_rest.reshape(-1, *x.shape[1:])
    return out


def _run_dir(run_root: str | os.PathLike, name: str, params: Mapping[str, Any], data_key: str) -> Path:
    key = caching.run_key(params, data=data_key, code=CACHE_CODE)
    return Path(run_root) / f"{name.replace(' ', '_').replace('(', '').replace(')', '')}_{key}"


def train_variant(name: str, features: Mapping[str, Any], model_kwargs: Mapping[str, Any] | None = None,
                  train_config: Mapping[str, Any] | None = None, loss_kwargs: Mapping[str, Any] | None = None,
                  run_root: str | os.PathLike | None = None, data_key: str = "",
                  device: str = "auto", amp: bool | str = False) -> dict[str, Any]:
    """Train one variant on ``features`` (train / valid / test split) and score it on test.

    Inputs are standardised per dimension with the training split's mean / std (ddof 0, by
    :func:`audiorepro.preprocessing.standardise`). The graph's audio hop comes from
    ``features["audio_hop_s"]`` (``model_kwargs["graph"]`` overrides). ``train_config`` overrides
    :data:`DEFAULT_TRAIN` (any :class:`~audiorepro.training.TrainConfig` key); ``amp`` is the
    loop's mixed precision unless ``train_config`` sets it; ``device``: ``"auto"`` (see
    :func:`audiorepro.training.pick_device`) or a device name.

    ``run_root``: checkpoint folder root; the run folder's key covers variant, model, loss and
    training settings, ``data_key`` (default ``features["data_key"]``) and the code. Returns
    ``{"name", "model", "fit" (FitResult), "test" (metrics), "params" (trainable count)}``.
    """
    model_kwargs, loss_kwargs = dict(model_kwargs or {}), dict(loss_kwargs or {})
    cfg = {**DEFAULT_TRAIN, "amp": amp, **dict(train_config or {})}
    split = np.asarray(features["split"])
    for s in ("train", "valid", "test"):
        if not (split == s).any():
            raise THGCLError(f"train_variant: split {s!r} is empty (features['split'] has "
                             f"{sorted(set(split.tolist()))})")
    train = split == "train"
    ds = AVFeatures(_standardise_nodes(features["audio"], train), _standardise_nodes(features["video"], train),
                    features["target"])
    parts = {s: ds.subset(np.flatnonzero(split == s)) for s in ("train", "valid", "test")}
    torch.manual_seed(int(cfg.get("seed", 0)))
    graph = {"audio_hop_s": float(features.get("audio_hop_s", GraphConfig.audio_hop_s)),
             **dict(model_kwargs.get("graph") or {})}
    model = build_variant(name, ds.target.shape[1], ds.audio.shape[1], ds.video.shape[1],
                          ds.audio.shape[2], ds.video.shape[2], **{**model_kwargs, "graph": graph})
    batch_fn = make_batch_fn(VARIANTS[name]["loss"], **loss_kwargs)
    run_dir = None
    if run_root is not None:
        data_key = data_key or str(features.get("data_key", ""))
        if not data_key:
            raise THGCLError(f"train_variant({name!r}): a run cache (run_root={run_root}) needs data_key "
                             "(or features['data_key']) to tell the data apart")
        run_dir = _run_dir(run_root, name, {"variant": name, "model": model_kwargs, "loss": loss_kwargs,
                                            "train": {k: v for k, v in cfg.items() if k != "progress"}},
                           data_key)
    dev = pick_device(device)
    result = fit(model, parts["train"], parts["valid"], config=cfg, task="tagging",
                 batch_fn=batch_fn, run_dir=run_dir, device=dev, collate_fn=av_collate)
    return {"name": name, "model": result.model, "fit": result,
            "test": evaluate_model(result.model, parts["test"], device=dev),
            "params": count_parameters(result.model)["trainable"]}


def _model_label(name: str, model_kwargs: Mapping[str, Any]) -> str:
    if VARIANTS[name]["model"] == "thgn":
        return f"{name} ({', '.join(f'{k} {v}' for k, v in model_kwargs.items() if k != 'graph')})"
    return f"{name} (hidden {model_kwargs.get('hidden', 512)})"


def run_variants(names: Sequence[str], features: Mapping[str, Any], model_kwargs: Mapping[str, Any],
                 train_config: Mapping[str, Any], data_key: str, *, chapter: str = "thgcl",
                 table: str | None = None, paper_rows: Mapping[str, str] | None = None,
                 profile: str = "smoke", dataset: str = "synthetic", scale: str = "",
                 loss_kwargs: Mapping[str, Any] | None = None, extra_params: Mapping[str, Any] | None = None,
                 record_metrics: Sequence[str] = ("mAP", "AUC", "params"), device: str = "auto",
                 amp: bool | str = False) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Train ``names`` (cached per configuration under ``cache/thgcl/runs``) on ``device``, score
    them on the test split, and (if ``table``) record ``record_metrics`` (of ``mAP`` / ``AUC`` /
    ``params``) for each under the paper row ``paper_rows.get(name, name)``. Returns ``(summary
    DataFrame, results by name)``.
    """
    rows, out = [], {}
    for name in names:
        res = train_variant(name, features, model_kwargs, train_config, loss_kwargs,
                            run_root=paths.cache_dir("thgcl", "runs"), data_key=data_key,
                            device=device, amp=amp)
        out[name] = res
        row = (paper_rows or {}).get(name, name)
        metrics = {"mAP": res["test"]["mAP"], "AUC": res["test"]["AUC"], "params": res["params"]}
        rows.append({"variant": name, "paper row": row, **metrics,
                     "epochs": res["fit"].epochs_run, "train s": round(res["fit"].duration_s, 1)})
        if table is not None:
            results.record(chapter, table, {k: metrics[k] for k in record_metrics},
                           {"paper_row": row, "variant": name, **dict(model_kwargs),
                            "train": dict(train_config), **dict(extra_params or {})},
                           dataset=dataset, scale=scale or "n/a", profile=profile,
                           model=_model_label(name, model_kwargs), duration_s=res["fit"].duration_s)
    return pd.DataFrame(rows), out


def kernel_ablation(settings: Mapping[str, str], seeds: Sequence[int], features: Mapping[str, Any],
                    model_kwargs: Mapping[str, Any], train_config: Mapping[str, Any], data_key: str, *,
                    profile: str = "smoke", dataset: str = "synthetic", scale: str = "",
                    table: str | None = "table2", chapter: str = "thgcl", device: str = "auto",
                    amp: bool | str = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 2: train each variant of ``settings`` (variant -> paper row) once per training seed
    and (if ``table``) record the mean test mAP / AUC over seeds under its paper row.

    Returns ``(per_seed, summary)``: one row per (variant, seed) as :func:`run_variants` gives, and
    mean / std / count of mAP and AUC per variant.
    """
    per_seed = []
    for s in seeds:
        summary, _ = run_variants(list(settings), features, model_kwargs, {**dict(train_config), "seed": s},
                                  data_key, device=device, amp=amp)
        per_seed.append(summary.assign(seed=s))
    per_seed = pd.concat(per_seed, ignore_index=True)
    if table is not None:
        recipe = {k: train_config[k] for k in ("epochs", "batch_size", "lr") if k in train_config}
        for name, row in settings.items():
            sub = per_seed[per_seed["variant"] == name]
            results.record(chapter, table, {"mAP": sub["mAP"].mean(), "AUC": sub["AUC"].mean()},
                           {"paper_row": row, "variant": name, "seeds": list(seeds), **dict(model_kwargs),
                            **recipe},
                           dataset=dataset, scale=scale or "n/a", profile=profile,
                           model=f"{name} (hidden {model_kwargs.get('hidden', 512)}, "
                                 f"{model_kwargs.get('num_layers', 4)} layers, mean of {len(seeds)} seeds)")
    summary = per_seed.groupby("variant", sort=False)[["mAP", "AUC"]].agg(["mean", "std", "count"])
    return per_seed, summary


def robustness_sweep(conditions: Mapping[str, Mapping[str, Any]], names: Sequence[str],
                     n_clips: int, seed: int, audio_encoder: str, model_kwargs: Mapping[str, Any],
                     train_config: Mapping[str, Any], *, audio_hop_s: float = 0.48,
                     visual_only_names: Sequence[str] = ("audio-only MLP",), profile: str = "smoke",
                     table: str | None = "robustness", chapter: str = "thgcl", device: str = "auto",
                     amp: bool | str = False) -> pd.DataFrame:
    """Train ``names`` on the synthetic world with each visual condition (label -> keyword
    arguments of :func:`~audiorepro.data.synthetic.visual_variant`, e.g. ``{"av_offset_s": 1.0}``)
    and score them on the test split. Variants in ``visual_only_names`` do not read the video
    (audio-only), so they are trained once, on the first condition, and repeated for the others.
    Each result is recorded (if ``table``) under the row ``"<variant> @ <condition label>"``.
    Returns a DataFrame ``condition, variant, mAP, AUC, epochs`` plus one column per visual
    parameter.
    """
    rows, once = [], {}
    keys = sorted({k for c in conditions.values() for k in c})
    for label, visual_params in conditions.items():
        feats, key, dataset, _ = chapter_features(n_clips, seed, "", audio_hop_s, audio_encoder,
                                                  device=device, **dict(visual_params))
        for name in names:
            if name in visual_only_names and name in once:
                summary = once[name]
            else:
                summary, _ = run_variants([name], feats, model_kwargs, train_config, key,
                                          device=device, amp=amp)
                if name in visual_only_names:
                    once[name] = summary
            r = summary.iloc[0]
            row = {"condition": label, "variant": name, "mAP": float(r["mAP"]), "AUC": float(r["AUC"]),
                   "epochs": int(r["epochs"]), **{k: visual_params.get(k, np.nan) for k in keys}}
            rows.append(row)
            if table is not None:
                results.record(chapter, table, {"mAP": row["mAP"], "AUC": row["AUC"]},
                               {"paper_row": f"{name} @ {label}", "variant": name, "condition": label,
                                **{k: float(v) for k, v in dict(visual_params).items()},
                                **dict(model_kwargs), "train": dict(train_config)},
                               dataset=dataset, scale=f"{n_clips} clips (seed {seed})", profile=profile,
                               model=f"{name} (hidden {model_kwargs.get('hidden', 512)}, "
                                     f"{model_kwargs.get('num_layers', 4)} layers)")
    return pd.DataFrame(rows)


def record_param_counts(profile: str = "smoke",
                        rows: Sequence[tuple[str, str]] = (("THGCL", "THGCL"), ("TMac", "TMac-style")),
                        names: Sequence[str] = ("THGCL", "TMac-style", "THGCL (TMac layout)"),
                        chapter: str = "thgcl", table: str = "param_count") -> pd.DataFrame:
    """Count the trainable parameters of ``names`` at the paper's sizes
    (:func:`~audiorepro.papers.thgcl.model.parameter_table`) and record the total of each paper
    row's variant (``rows``: pairs paper row, variant). Returns the per-module table."""
    by_module = parameter_table(tuple(names))
    total = dict(zip(by_module["variant"], by_module["total"]))
    for row, name in rows:
        results.record(chapter, table, {"params": total[name]}, {"paper_row": row},
                       dataset="model size only", scale="paper sizes", profile=profile,
                       model=f"{name} as built here (hidden 512, 4 layers, 33 classes)")
    return by_module


# =============================================================================== analysis
def leader_share(fits: Mapping[str, Any], leader: str, metric: str = "mAP",
                 split: str = "valid", skip_first: int = 1) -> tuple[float, int]:
    """Share of evaluations at which run ``leader`` has the highest ``split`` ``metric`` among
    ``fits`` (name -> FitResult), over the epochs every run reached, ignoring the first
    ``skip_first`` evaluations. Returns ``(share in [0, 1], evaluations compared)``."""
    if leader not in fits:
        raise THGCLError(f"leader_share: leader={leader!r} is not one of {list(fits)}")
    curves = {}
    for name, fr in fits.items():
        h = fr.history
        h = h[(h.metric == metric) & (h.split == split)]
        curves[name] = h.groupby("epoch")["value"].last()
    common = sorted(set.intersection(*(set(c.index) for c in curves.values())))[skip_first:]
    if not common:
        raise THGCLError("leader_share: the runs share no evaluation after skip_first")
    wins = [all(curves[leader][e] >= curves[o][e] for o in curves if o != leader) for e in common]
    return float(np.mean(wins)), len(common)


def edge_weight_summary(graph: TemporalGraph, kernels: Sequence[str] = ("gaussian", "hawkes"),
                        tau: float = 1.0) -> pd.DataFrame:
    """Per edge family and kernel: edge count and min / mean / max evaluation weight (``xi = 0.5``)."""
    rows = []
    for family in ("audio", "video", "cross"):
        mask = getattr(graph, f"{family}_mask")
        for kernel in kernels:
            w = edge_weights(graph, family, kernel, tau)[mask]
            rows.append({"edges": family, "kernel": kernel, "n edges": int(mask.sum()),
                         "min": float(w.min()), "mean": float(w.mean()), "max": float(w.max())})
    return pd.DataFrame(rows)


def node_weight_table(graph: TemporalGraph, node: int, family: str = "audio", tau: float = 1.0,
                      draws: int = 5, seed: int = 0) -> pd.DataFrame:
    """Weights of the edges around one node: the audio neighbours of audio node ``node``
    (``family="audio"``) or of video node ``node`` (``family="cross"``), with Eq. 1, Eq. 2 at
    ``xi = 0.5`` and the range of ``draws`` random ``xi`` draws (as in training, seed ``seed``)."""
    if family not in ("audio", "cross"):
        raise THGCLError(f"node_weight_table: family={family!r} must be audio or cross")
    mask = getattr(graph, f"{family}_mask")
    xi = torch.rand(draws, *mask.shape, generator=torch.Generator().manual_seed(seed))
    weights = {"Gaussian (Eq. 1)": edge_weights(graph, family, "gaussian"),
               "Hawkes xi=0.5 (Eq. 2)": edge_weights(graph, family, "hawkes", tau)}
    random_w = hawkes_weights(getattr(graph, f"{family}_term"), mask, tau, xi)
    if family == "audio":  # receiver row of the audio node
        nbrs = np.flatnonzero(mask[node].numpy())
        rows, cols = node, nbrs
    else:  # sender column of the video node
        nbrs = np.flatnonzero(mask[:, node].numpy())
        rows, cols = nbrs, node
    table = {"audio neighbour": nbrs, "time (s)": graph.audio_time.numpy()[nbrs],
             **{k: w[rows, cols].numpy() for k, w in weights.items()}}
    table[f"Hawkes, random xi (min of {draws})"] = random_w[:, rows, cols].min(0).values.numpy()
    table[f"Hawkes, random xi (max of {draws})"] = random_w[:, rows, cols].max(0).values.numpy()
    return pd.DataFrame(table)
