"""Runs of the THGCL chapter: training the variants, run caches, evaluation and recording.

* :func:`train_variant` - one :data:`~audiorepro.papers.thgcl.model.VARIANTS` entry trained with
  the shared loop (:func:`audiorepro.training.fit`) on node features of
  :mod:`audiorepro.papers.thgcl.data` (inputs standardised with the training split's statistics by
  :func:`audiorepro.preprocessing.standardise`), scored on the test split
  (:func:`evaluate_model`). Run folders under ``cache/thgcl/runs`` are keyed by
  :func:`audiorepro.caching.run_key` over the run's settings, the features' ``data_key`` and the
  code (:data:`~audiorepro.papers.thgcl.data.CACHE_CODE`): notebooks sharing a run train it once,
  and a changed model or loop never reloads a run of older code.
* :func:`run_variants` (Tables 1 and Fig. 3), :func:`kernel_ablation` (Table 2),
  :func:`robustness_sweep` (beyond the paper): train once per seed and record every
  (row, seed) with its per-item test outputs and the notebook run's ``run_group``;
  :func:`record_param_counts` (parameter counts at the paper's sizes). Model selection (the
  epoch) is on validation only; the test split is read once per trained model.
* :func:`decide_claims` - the claims of a notebook decided by
  :func:`audiorepro.results.evaluate_claim` (paired bootstrap, seeds) and registered.
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
from audiorepro.metrics import random_ranking_map, tagging_metrics
from audiorepro.fileio import atomic_save_npy
from audiorepro.papers.thgcl.data import (CACHE_CODE, TMAC_DATASET, AVFeatures, StreamedAVFeatures,
                                          av_collate, chapter_features, node_statistics, world_features)
from audiorepro.papers.thgcl.model import (VARIANTS, GraphConfig, TemporalGraph, THGCLError,
                                           build_variant, edge_weights, hawkes_weights,
                                           make_batch_fn, parameter_table, COUNTED_LAYOUTS)
from audiorepro.preprocessing import standardise
from audiorepro.training import fit, pick_device

__all__ = ["DEFAULT_TRAIN", "ignores_video", "PAPER_PROTOCOL", "train_config", "CLAIMS_BY_NOTEBOOK",
           "PAPER_DATA_CLAIMS", "LARGEST_OFFSET", "NOISIEST", "predict_scores", "evaluate_model",
           "train_variant", "run_variants", "seed_summary", "kernel_ablation",
           "robustness_conditions", "robustness_sweep", "record_param_counts", "decide_claims",
           "chance_table", "leader_share", "edge_weight_summary", "node_weight_table"]

#: training defaults of :func:`train_variant` (the THGCL config: Adam 0.005, batch 64, early
#: stopping on validation mAP with patience 5 evaluations)
DEFAULT_TRAIN: dict[str, Any] = {"seed": 0, "epochs": 20, "batch_size": 64, "lr": 0.005, "optimizer": "adam",
                                 "monitor": "mAP", "mode": "max", "patience": 5, "progress": False}


# =============================================================================== training
def predict_scores(model: nn.Module, data: AVFeatures | StreamedAVFeatures, batch_size: int = 256,
                   device: str = "auto") -> np.ndarray:
    """(N, C) logits of ``model`` on ``data`` (in memory or streamed: read ``batch_size`` clips
    at a time), computed on ``device`` (the model is moved there)."""
    dev = pick_device(device)
    model.to(dev)
    was = model.training
    model.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            batch = data.__getitems__(range(s, min(len(data), s + batch_size)))
            outs.append(model(batch["audio"].to(dev), batch["video"].to(dev))["logits"].float().cpu())
    model.train(was)
    return torch.cat(outs).numpy()


#: the paper's training protocol (Section 3.1.2: Adam 0.005, at most 5,000 iterations, early
#: stopping; the THGCL repository's config: batch 64, 1,000 warm-up iterations, an evaluation
#: every 250 iterations, patience 5 evaluations, seed 1024)
PAPER_PROTOCOL: dict[str, Any] = {"max_iters": 5000, "warmup_iters": 1000, "eval_every_iters": 250,
                                  "patience": 5, "batch_size": 64, "lr": 0.005, "seed": 1024}


def train_config(epochs: int, batch_size: int, lr: float, patience: int | None, *,
                 max_iters: int = 0, warmup_iters: int = 0, eval_every_iters: int = 0) -> dict[str, Any]:
    """A notebook's training settings as :func:`train_variant` takes them. ``max_iters``,
    ``warmup_iters`` and ``eval_every_iters`` of 0 mean off (epochs only, no warm-up, an
    evaluation per epoch) and are then left out, so the run cache of a configuration without
    them stays the same; with ``max_iters`` the run stops at whichever of ``epochs`` /
    ``max_iters`` comes first."""
    for name, value in (("epochs", epochs), ("max_iters", max_iters), ("warmup_iters", warmup_iters),
                        ("eval_every_iters", eval_every_iters)):
        if int(value) != value or value < 0 or (name == "epochs" and value < 1):
            raise THGCLError(f"train_config: {name}={value!r} must be a whole number "
                             f"{'>= 1' if name == 'epochs' else '>= 0 (0 = off)'}")
    cfg: dict[str, Any] = {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
                           "patience": patience}
    cfg.update({k: int(v) for k, v in (("max_iters", max_iters), ("warmup_iters", warmup_iters),
                                       ("eval_every_iters", eval_every_iters)) if v})
    return cfg


def evaluate_model(model: nn.Module, data: AVFeatures | StreamedAVFeatures, batch_size: int = 256,
                   device: str = "auto") -> dict[str, float]:
    """mAP / AUC / d' (:func:`audiorepro.metrics.tagging_metrics`) of ``model`` on ``data``,
    computed on ``device`` (the model is moved there)."""
    return tagging_metrics(data.target.numpy(), predict_scores(model, data, batch_size, device))


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


_STATS: dict[tuple[str, str], np.ndarray] = {}


def _streamed_dataset(features: Mapping[str, Any], train: np.ndarray) -> StreamedAVFeatures:
    """Features read on demand (a features file: :func:`~audiorepro.papers.thgcl.data.tmac_av_features`,
    :func:`~audiorepro.papers.thgcl.data.clip_table_av_features`), standardised with the
    training clips' node statistics (:func:`~audiorepro.papers.thgcl.data.node_statistics`,
    computed once per file and split, kept under ``cache/thgcl/features``) and perturbed by
    ``features["video_perturbation"]`` if any."""
    key = str(features.get("stats_key") or features.get("data_key") or "")
    rows = np.flatnonzero(train)
    stats = {}
    for m in ("audio", "video"):
        cached = _STATS.get((key, m))
        file = paths.cache_dir("thgcl", "features") / f"stats_{m}_{key}.npy" if key else None
        if cached is None and file is not None and file.is_file():
            cached = np.load(file)
        if cached is None:
            cached = node_statistics(features[m], rows)
            if file is not None:
                atomic_save_npy(file, cached)
        if key:
            _STATS[(key, m)] = cached
        stats[m] = cached
    return StreamedAVFeatures(features["audio"], features["video"], features["target"],
                              audio_stats=stats["audio"], video_stats=stats["video"],
                              **dict(features.get("video_perturbation") or {}))


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
    training settings, ``data_key`` (default ``features["data_key"]``) and the code. The epoch
    is chosen on validation mAP (early stopping, best weights restored); the test split is read
    once, for that model. Returns ``{"name", "model", "fit" (FitResult), "test" (metrics),
    "items" (the test clips' per-item outputs, :func:`audiorepro.results.tagging_items`),
    "params" (trainable count)}``.
    """
    model_kwargs, loss_kwargs = dict(model_kwargs or {}), dict(loss_kwargs or {})
    cfg = {**DEFAULT_TRAIN, "amp": amp, **dict(train_config or {})}
    split = np.asarray(features["split"])
    for s in ("train", "valid", "test"):
        if not (split == s).any():
            raise THGCLError(f"train_variant: split {s!r} is empty (features['split'] has "
                             f"{sorted(set(split.tolist()))})")
    train = split == "train"
    if isinstance(features["audio"], (np.ndarray, torch.Tensor)):
        ds: AVFeatures | StreamedAVFeatures = AVFeatures(_standardise_nodes(features["audio"], train),
                                                         _standardise_nodes(features["video"], train),
                                                         features["target"])
    else:   # a features file, read per batch
        ds = _streamed_dataset(features, train)
    parts = {s: ds.subset(np.flatnonzero(split == s)) for s in ("train", "valid", "test")}
    torch.manual_seed(int(cfg.get("seed", 0)))
    graph = {"audio_hop_s": float(features.get("audio_hop_s", GraphConfig.audio_hop_s)),
             **({"video_chunk_s": float(features["video_chunk_s"])} if "video_chunk_s" in features else {}),
             **dict(model_kwargs.get("graph") or {})}
    (p_a, d_a), (p_v, d_v) = ds.audio_shape, ds.video_shape
    model = build_variant(name, ds.target.shape[1], p_a, p_v, d_a, d_v, **{**model_kwargs, "graph": graph})
    own = {k: VARIANTS[name][k] for k in ("focal_reduction",) if k in VARIANTS[name]}
    batch_fn = make_batch_fn(VARIANTS[name]["loss"], **{**own, **loss_kwargs})
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
    result = fit(model, parts["train"], parts["valid"], config=cfg,
                 task="tagging", batch_fn=batch_fn, run_dir=run_dir, device=dev,
                 collate_fn=av_collate)
    test_idx = np.flatnonzero(split == "test")
    scores = predict_scores(result.model, parts["test"], device=dev)
    targets = parts["test"].target.numpy()
    ids = np.asarray(features.get("clip_id", [str(i) for i in range(len(split))]))[test_idx]
    return {"name": name, "model": result.model, "fit": result,
            "test": tagging_metrics(targets, scores),
            "items": results.tagging_items(ids, scores, targets),
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
                 amp: bool | str = False, seeds: Sequence[int] | None = None,
                 run_group: str | None = None) -> tuple[pd.DataFrame, dict[str, dict[int, dict[str, Any]]]]:
    """Train ``names`` once per training seed (``seeds``; default the ``seed`` of
    ``train_config``, else :data:`DEFAULT_TRAIN`'s), cached per configuration under
    ``cache/thgcl/runs``, on ``device``; score each on the test split, and (if ``table``) record
    ``record_metrics`` (of ``mAP`` / ``AUC`` / ``params``) of every (variant, seed) under the paper
    row ``paper_rows.get(name, name)`` with its per-item test outputs and ``params`` holding
    ``seed`` and ``run_group`` (one :func:`audiorepro.results.new_run_group` for the call unless
    given: give the same one to every call of one notebook run).

    Returns ``(per-seed DataFrame, {name: {seed: result of train_variant}})``; the DataFrame has
    one row per (variant, seed): ``variant, paper row, seed, mAP, AUC, params, epochs, train s``
    (:func:`seed_summary` gives mean / std over seeds).

    Features of a user's clip table (``features["task"]``, see
    :func:`~audiorepro.papers.thgcl.data.chapter_features`) are recorded under
    ``"<paper row> | <task>"``: never beside a paper number they do not correspond to. The
    record's ``params["data"]`` names the features file or clip table (``features["source"]``).
    """
    if seeds is None:
        seeds = [int(dict(train_config).get("seed", DEFAULT_TRAIN["seed"]))]
    seeds = [int(x) for x in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise THGCLError(f"run_variants: seeds={list(seeds)} must be a non-empty list of distinct seeds")
    if table is not None and run_group is None:
        run_group = results.new_run_group()
    rows, out = [], {}
    for seed in seeds:
        config = {**dict(train_config), "seed": seed}
        for name in names:
            res = train_variant(name, features, model_kwargs, config, loss_kwargs,
                                run_root=paths.cache_dir("thgcl", "runs"), data_key=data_key,
                                device=device, amp=amp)
            out.setdefault(name, {})[seed] = res
            row = _user_row((paper_rows or {}).get(name, name), features)
            metrics = {"mAP": res["test"]["mAP"], "AUC": res["test"]["AUC"], "params": res["params"]}
            rows.append({"variant": name, "paper row": row, "seed": seed, **metrics,
                         "epochs": res["fit"].epochs_run, "train s": round(res["fit"].duration_s, 1)})
            if table is not None:
                results.record(chapter, table, {k: metrics[k] for k in record_metrics},
                               {"paper_row": row, "variant": name, **dict(model_kwargs),
                                "train": config, **_data_param(features), **dict(extra_params or {}),
                                "seed": seed, "run_group": run_group},
                               dataset=dataset, scale=scale or "n/a", profile=profile,
                               model=_model_label(name, model_kwargs), duration_s=res["fit"].duration_s,
                               items=res["items"])
    return pd.DataFrame(rows), out


def _user_row(row: str, features: Mapping[str, Any]) -> str:
    """``row``, or ``"<row> | <task>"`` for a user's clip table (``features["task"]``)."""
    task = features.get("task")
    return f"{row} | {task}" if task else row


def _data_param(features: Mapping[str, Any]) -> dict[str, str]:
    """``{"data": <features file or clip table>}`` for a record (nothing for the synthetic world,
    which the record's dataset and scale name)."""
    return {"data": str(features["source"])} if features.get("source") else {}


def seed_summary(per_seed: pd.DataFrame, metrics: Sequence[str] = ("mAP", "AUC"),
                 by: str | Sequence[str] = "variant") -> pd.DataFrame:
    """Mean, standard deviation (ddof 1) and number of seeds of ``metrics`` per ``by`` of a
    per-seed table (:func:`run_variants`); a shown summary, never a recorded row."""
    return per_seed.groupby(by, sort=False)[list(metrics)].agg(["mean", "std", "count"])


def kernel_ablation(settings: Mapping[str, str], seeds: Sequence[int], features: Mapping[str, Any],
                    model_kwargs: Mapping[str, Any], train_config: Mapping[str, Any], data_key: str, *,
                    profile: str = "smoke", dataset: str = "synthetic", scale: str = "",
                    table: str | None = "table2", chapter: str = "thgcl", device: str = "auto",
                    amp: bool | str = False, run_group: str | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 2: train each variant of ``settings`` (variant -> paper row) once per training seed
    and (if ``table``) record each (variant, seed) with its per-item test outputs under its paper
    row (:func:`run_variants`).

    Returns ``(per_seed, summary)``: one row per (variant, seed), and mean / std / count of mAP
    and AUC per variant (:func:`seed_summary`).
    """
    per_seed, _ = run_variants(list(settings), features, model_kwargs, train_config, data_key,
                               table=table, chapter=chapter, paper_rows=settings, profile=profile,
                               dataset=dataset, scale=scale, record_metrics=("mAP", "AUC"),
                               device=device, amp=amp, seeds=seeds, run_group=run_group)
    return per_seed, seed_summary(per_seed)


#: row labels of the two conditions the robustness claims compare (``paper.yml``, claims
#: ``robust-misalignment`` / ``robust-noise``): the records' rows are ``"<variant> @ <label>"``
LARGEST_OFFSET, NOISIEST = "largest offset", "noisiest visual stream"


#: candidate visual streams of the synthetic world for the modality balance (label -> visual
#: parameters of :func:`~audiorepro.data.synthetic.visual_variant`): the world's default, then
#: partial (events not visible, noisier), misleading (visible events that make no sound), weak
#: evidence, and none at all (no event visible and no scene vector, which otherwise tells the
#: scene and through it the likely classes); delayed evidence is the robustness notebook's
#: offset sweep. The audio never changes.
BALANCE_SETTINGS: dict[str, dict[str, float]] = {
    "world default": {},
    "partial": {"p_missing": 0.4, "visual_noise": 1.0},
    "misleading": {"p_missing": 0.4, "p_distractor": 0.8, "visual_noise": 1.0},
    "weak": {"p_missing": 0.6, "p_distractor": 0.6, "visual_noise": 2.0, "visual_instance_std": 0.8},
    "absent": {"p_missing": 1.0, "p_distractor": 0.0, "scene_visual_scale": 0.0},
}
#: the single-modality and fusion models the balance is read from
BALANCE_MODELS = ("audio-only MLP", "video-only MLP", "late-fusion concat MLP")


def ignores_video(name: str) -> bool:
    """Whether variant ``name`` reads no video (the audio-only MLP): its runs are the same under
    every visual stream, so a sweep over visual settings trains it once."""
    return VARIANTS[name]["model"] == "audio_mlp"


def modality_balance(settings: Mapping[str, Mapping[str, Any]], n_clips: int, seed: int,
                     audio_encoder: str, model_kwargs: Mapping[str, Any], train_config: Mapping[str, Any],
                     *, audio_hop_s: float = 0.48, seeds: Sequence[int] = (0,),
                     names: Sequence[str] = BALANCE_MODELS, device: str = "auto",
                     max_per_split: Mapping[str, int | None] | None = None) -> pd.DataFrame:
    """How much each modality alone tells about the labels, per candidate visual stream.

    For each setting (label -> visual parameters, e.g. :data:`BALANCE_SETTINGS`) trains
    ``names`` on the synthetic world (runs cached; a variant that reads no video once,
    :func:`ignores_video`) and reads the **validation** mAP of the chosen epoch (the balance is a design
    choice of the book's world: it never looks at the test split). Returns one row per
    (setting, variant): ``setting``, ``variant``, ``valid mAP`` (mean over ``seeds``),
    ``chance``, ``mAP / chance`` (chance: the expected mAP of a random ranking of the validation
    clips, :func:`audiorepro.metrics.random_ranking_map`),
    ``seeds``, and the setting's parameters as text. ``max_per_split``: as
    :func:`~audiorepro.papers.thgcl.data.world_features`.
    """
    rows, once = [], {}
    for label, params in settings.items():
        feats, key = world_features(n_clips, seed, audio_hop_s, audio_encoder, device=device,
                                    max_per_split=max_per_split, **dict(params))
        split = np.asarray(feats["split"])
        chance = random_ranking_map(np.asarray(feats["target"])[split == "valid"])
        for name in names:
            if name in once:
                value = once[name]
            else:
                _, runs = run_variants([name], feats, model_kwargs, train_config, key, device=device,
                                       seeds=seeds)
                value = float(np.mean([r["fit"].best_metrics["mAP"] for r in runs[name].values()]))
                if ignores_video(name):
                    once[name] = value
            rows.append({"setting": label, "variant": name, "valid mAP": value, "chance": chance,
                         "mAP / chance": value / chance, "seeds": len(seeds),
                         "visual parameters": ", ".join(f"{k} {v:g}" for k, v in params.items()) or "world default"})
    return pd.DataFrame(rows)


def balanced_setting(balance: pd.DataFrame) -> str | None:
    """The setting of a :func:`modality_balance` table where neither modality dominates: the
    smallest gap between the video-only and the audio-only validation mAP among settings whose
    video-only model is clearly above chance (``mAP / chance`` > 1.5); settings without visual
    evidence are never chosen (a multimodal model needs some). None when no setting qualifies
    (e.g. a world too small for the models to learn)."""
    wide = balance.pivot(index="setting", columns="variant", values="valid mAP")
    ratio = balance.pivot(index="setting", columns="variant", values="mAP / chance")
    usable = ratio["video-only MLP"] > 1.5
    if not usable.any():
        return None
    gap = (wide["video-only MLP"] - wide["audio-only MLP"]).abs()[usable]
    return str(gap.idxmin())


def robustness_conditions(offsets: Sequence[float], noises: Sequence[float]
                          ) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """The sweep's visual conditions (``aligned``, ``offset <o> s``, ``noise <n>``) and the row
    labels of the claims' conditions: the largest offset is recorded as :data:`LARGEST_OFFSET`,
    the largest noise as :data:`NOISIEST` (the value itself is in the record's ``params``)."""
    if not offsets or not noises:
        raise THGCLError(f"robustness_conditions: need at least one offset and one noise level, "
                         f"got offsets={list(offsets)}, noises={list(noises)}")
    conditions: dict[str, dict[str, float]] = {"aligned": {}}
    conditions.update({f"offset {o:g} s": {"av_offset_s": float(o)} for o in offsets})
    conditions.update({f"noise {n:g}": {"visual_noise": float(n)} for n in noises})
    labels = {f"offset {max(offsets):g} s": LARGEST_OFFSET, f"noise {max(noises):g}": NOISIEST}
    return conditions, labels


def robustness_sweep(conditions: Mapping[str, Mapping[str, Any]], names: Sequence[str],
                     n_clips: int, seed: int, audio_encoder: str, model_kwargs: Mapping[str, Any],
                     train_config: Mapping[str, Any], *, audio_hop_s: float = 0.48, profile: str = "smoke",
                     table: str | None = "robustness", chapter: str = "thgcl", device: str = "auto",
                     amp: bool | str = False, seeds: Sequence[int] | None = None,
                     row_labels: Mapping[str, str] | None = None,
                     run_group: str | None = None, tmac_file: str = "", clip_table: str = "",
                     task: str = "", eval_segments: str = "", eval_file: str = "",
                     visual: Mapping[str, Any] | None = None,
                     max_per_split: Mapping[str, int | None] | None = None) -> pd.DataFrame:
    """Train ``names`` on the synthetic world with each visual condition (label -> keyword
    arguments of :func:`~audiorepro.data.synthetic.visual_variant`, e.g. ``{"av_offset_s": 1.0}``)
    once per training seed and score them on the test split (the same clips in every condition).
    Variants that read no video (:func:`ignores_video`) are trained once per seed, on the first
    condition, and repeated for the others. Each (variant, condition,
    seed) is recorded (if ``table``) with its per-item test outputs under the row
    ``"<variant> @ <row_labels.get(condition, condition)>"`` (see :func:`robustness_conditions`),
    ``params`` holding ``seed``, ``condition`` and ``run_group``.
    Returns a DataFrame ``condition, variant, seed, mAP, AUC, epochs`` plus one column per visual
    parameter.

    With ``tmac_file`` or ``clip_table`` (and ``task``) the sweep runs on that features file
    instead: the conditions perturb its video nodes (``av_offset_s``: a delay by whole video
    chunks, ``visual_noise``: Gaussian noise on the standardised video features; see
    :func:`~audiorepro.papers.thgcl.data.chapter_features`; ``eval_file`` and ``eval_segments`` as
    there).
    ``visual`` (the chapter's modality balance, synthetic world only) is the base every
    condition starts from; a condition's own parameters override it. ``max_per_split``: as
    :func:`~audiorepro.papers.thgcl.data.world_features`.
    """
    if table is not None and run_group is None:
        run_group = results.new_run_group()
    rows, once = [], {}
    keys = sorted({k for c in conditions.values() for k in c})
    for label, condition in conditions.items():
        visual_params = {**dict(visual or {}), **dict(condition)}
        feats, key, dataset, scale = chapter_features(n_clips, seed, tmac_file, audio_hop_s, audio_encoder,
                                                      clip_table=clip_table, task=task, device=device,
                                                      eval_file=eval_file, eval_segments=eval_segments,
                                                      max_per_split=max_per_split, **visual_params)
        for name in names:
            if name in once:
                per_seed, runs = once[name]
            else:
                per_seed, runs = run_variants([name], feats, model_kwargs, train_config, key,
                                              device=device, amp=amp, seeds=seeds)
                if ignores_video(name):
                    once[name] = (per_seed, runs)
            for r in per_seed.to_dict("records"):
                row = {"condition": label, "variant": name, "seed": int(r["seed"]),
                       "mAP": float(r["mAP"]), "AUC": float(r["AUC"]), "epochs": int(r["epochs"]),
                       **{k: visual_params.get(k, np.nan) for k in keys}}
                rows.append(row)
                if table is not None:
                    row_label = _user_row(f"{name} @ {(row_labels or {}).get(label, label)}", feats)
                    results.record(chapter, table, {"mAP": row["mAP"], "AUC": row["AUC"]},
                                   {"paper_row": row_label, "variant": name, "condition": label,
                                    **{k: float(v) for k, v in dict(visual_params).items()},
                                    **dict(feats.get("video_perturbation") or {}),
                                    **dict(model_kwargs), "train": dict(train_config),
                                    **_data_param(feats), "seed": row["seed"], "run_group": run_group},
                                   dataset=dataset, scale=scale, profile=profile,
                                   model=f"{name} (hidden {model_kwargs.get('hidden', 512)}, "
                                         f"{model_kwargs.get('num_layers', 4)} layers, {label})",
                                   items=runs[name][row["seed"]]["items"])
    return pd.DataFrame(rows)


def record_param_counts(profile: str = "smoke",
                        rows: Sequence[tuple[str, str]] = (("THGCL", "THGCL"), ("TMac", "TMac-style")),
                        names: Sequence[str] = COUNTED_LAYOUTS,
                        chapter: str = "thgcl", table: str = "param_count",
                        run_group: str | None = None, notebook_data: str = "") -> pd.DataFrame:
    """Count the trainable parameters of ``names`` at the paper's sizes
    (:func:`~audiorepro.papers.thgcl.model.parameter_table`) and record the total of each paper
    row's variant (``rows``: pairs paper row, variant; an exact count, no seed and no items).
    ``notebook_data`` (the data the notebook ran on; the counts do not depend on it) is kept in
    the records' ``params``. Returns the per-module table."""
    by_module = parameter_table(tuple(names))
    total = dict(zip(by_module["variant"], by_module["total"]))
    run_group = run_group or results.new_run_group()
    for row, name in rows:
        results.record(chapter, table, {"params": total[name]},
                       {"paper_row": row, "run_group": run_group,
                        **({"notebook_data": str(notebook_data)} if notebook_data else {})},
                       dataset="model size only", scale="paper sizes", profile=profile,
                       model=f"{name} as built here (hidden 512, 4 layers, 33 classes)")
    return by_module


# =============================================================================== verdicts
#: the claims of ``paper.yml`` each notebook decides (by :func:`decide_claims`)
CLAIMS_BY_NOTEBOOK: dict[str, tuple[str, ...]] = {
    "02_table1": ("headline-map", "headline-auc", "params", "tmac-params", "beats-tmac",
                  "beats-tmac-auc", "graph-beats-nongraph"),
    "03_table2": ("gauss-hawkes-best", "gauss-hawkes-best-auc"),
    "04_fig3_losses": ("contrastive-helps", "focal-beats-ce", "fl-cl-leads"),
    "05_robustness": ("robust-misalignment", "robust-noise"),
}
#: claims on the paper's absolute numbers: decided on records of the paper's data only (on any
#: other data they stay *not yet measured*: a synthetic-world mAP is no evidence about 57.4 %)
PAPER_DATA_CLAIMS: dict[str, str] = {"headline-map": TMAC_DATASET, "headline-auc": TMAC_DATASET}


def decide_claims(profile: str, notebook: str, claim_ids: Sequence[str] | None = None,
                  chapter: str = "thgcl", register: bool = True) -> pd.DataFrame:
    """Decide and register the claims of ``notebook`` (a name of :data:`CLAIMS_BY_NOTEBOOK`,
    e.g. ``"02_table1"`` or its path; ``claim_ids`` overrides the list) with
    :func:`audiorepro.results.decide_claims` on the records of ``profile`` (the paired bootstrap
    over the test clips of the latest run group, combined with seeds). The claims of
    :data:`PAPER_DATA_CLAIMS` use only records of the paper's data.

    ``register=False`` shows the verdicts without storing them (a variant page that departs
    from the paper's protocol, e.g. the THGCL repository's split, must not replace the verdicts
    of the paper profile's own run).

    Returns one row per claim: ``claim, verdict, effect, lo, hi, half-width, n_items, n_seeds,
    seed_spread, evidence``.
    """
    table = results.decide_claims(chapter, profile, notebook, CLAIMS_BY_NOTEBOOK, claim_ids,
                                  dataset=PAPER_DATA_CLAIMS, register=register)
    table = table.rename(columns={"items": "n_items", "seeds": "n_seeds", "seed spread": "seed_spread"})
    table.insert(table.columns.get_loc("hi") + 1, "half-width", table.pop("interval width") / 2)
    return table


def chance_table(per_seed: pd.DataFrame, features: Mapping[str, Any],
                 by: str | Sequence[str] = "variant") -> pd.DataFrame:
    """Each row's mean test mAP / AUC over seeds next to chance: the expected mAP of a random
    ranking of the test clips (:func:`audiorepro.metrics.random_ranking_map`), the AUC 0.5.
    Columns ``mAP, chance mAP, mAP / chance, AUC, seeds``."""
    split = np.asarray(features["split"])
    chance = random_ranking_map(np.asarray(features["target"])[split == "test"])
    out = per_seed.groupby(by, sort=False).agg(mAP=("mAP", "mean"), AUC=("AUC", "mean"),
                                                seeds=("seed", "nunique"))
    out.insert(1, "chance mAP", chance)
    out.insert(2, "mAP / chance", out["mAP"] / chance)
    return out


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
