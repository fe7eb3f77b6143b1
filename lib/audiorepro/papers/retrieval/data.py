"""Caption data of the retrieval chapter: caption sets in the roles of the paper's three data sets.

* :class:`CaptionSet` - audio-caption pairs of one source (clip id, path, split, captions,
  keywords); :func:`combine`, :func:`pretrain_set`.
* :func:`caption_sources` - the book's three caption sets: the synthetic world (5 captions per
  clip, keywords; the ClothoV2 role), real Tux Paint effects with their captions (AudioCaps role)
  and mixtures of real effects with captions composed from their parts (WavCaps role).
* :func:`paper_caption_sources` / :func:`load_sources` - Clotho v2 / AudioCaps / WavCaps under a
  ``data_root`` through :mod:`audiorepro.data.adapters`, or the book's sets.
* :func:`logmel_features` - cached log-mel features of every clip of a caption set.
"""
from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from audiorepro import caching, paths
from audiorepro.paths import project_path
from audiorepro.backbones.pretrain import PROFILES as _PRETRAIN_PROFILES
from audiorepro.data.adapters import adapt
from audiorepro.data.audio import load_audio
from audiorepro.data.cliptable import ClipTable, split_captions, split_labels
from audiorepro.data.debian.fetch import DebianSourceUnavailable
from audiorepro.data.debian.tasks import build_task
from audiorepro.data.synthetic import default_world, reworded_captions
from audiorepro.frontends import FeatureCache, make_frontend

from audiorepro.papers.retrieval.model import join_words, preprocess_caption

__all__ = [
    "FEATURE_CODE", "PRETRAIN_WORLD_SEED", "CaptionSet", "combine", "synthetic_captions",
    "unseen_wording",
    "caption_set_from_table", "compose_mixture_caption", "caption_sources", "PAPER_NAMES",
    "PAPER_ORDER", "paper_caption_sources", "user_caption_set", "load_sources", "sets_of_combo",
    "pretrain_set", "sources_table", "logmel_features", "first_per_split", "project_path",
]

#: world seed the pre-trained audio stand-ins learned from (read from
#: :mod:`audiorepro.backbones.pretrain`'s profiles): the caption data of this chapter must come
#: from another world
PRETRAIN_WORLD_SEED: int = int(_PRETRAIN_PROFILES["book"]["seed"])
#: the code behind the cached log-mel features (:func:`logmel_features`): a change of any of these
#: modules gives new cache keys (:func:`audiorepro.caching.run_key`)
FEATURE_CODE: tuple[str, ...] = ("audiorepro.papers.retrieval.data", "audiorepro.frontends",
                                 "audiorepro.data.audio")


@dataclass
class CaptionSet:
    """Audio-caption pairs of one source: ``frame`` with columns ``clip_id, path (absolute),
    split, captions (list[str]), keywords (list[str]), source``."""

    name: str
    frame: pd.DataFrame
    note: str = ""

    def __post_init__(self) -> None:
        need = ["clip_id", "path", "split", "captions", "keywords", "source"]
        miss = [c for c in need if c not in self.frame.columns]
        if miss:
            raise ValueError(f"CaptionSet {self.name!r} lacks column(s) {miss}")
        bad = [i for i, c in enumerate(self.frame["captions"]) if not c]
        if bad:
            raise ValueError(f"CaptionSet {self.name!r}: row {bad[0]} "
                             f"({self.frame['clip_id'].iloc[bad[0]]!r}) has no caption")
        self.frame = self.frame.reset_index(drop=True)

    def subset(self, split: str | Sequence[str] | None = None, n: int | None = None) -> "CaptionSet":
        f = self.frame
        if split is not None:
            f = f[f["split"].isin([split] if isinstance(split, str) else list(split))]
        if n is not None:
            f = f.iloc[:n]
        return CaptionSet(self.name, f, self.note)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def n_captions(self) -> int:
        return int(sum(len(c) for c in self.frame["captions"]))


def combine(sets: Sequence[CaptionSet], name: str | None = None) -> CaptionSet:
    """Concatenation of caption sets (clip ids must be unique across them)."""
    if not sets:
        raise ValueError("combine: no caption set given")
    f = pd.concat([s.frame for s in sets], ignore_index=True)
    dup = f["clip_id"][f["clip_id"].duplicated()]
    if len(dup):
        raise ValueError(f"combine: clip id {dup.iloc[0]!r} occurs in two caption sets")
    return CaptionSet(name or " + ".join(s.name for s in sets), f)


def synthetic_captions(n_clips: int, seed: int = 0, clip_seconds: float = 10.0,
                       held_out_phrasing: bool = False) -> CaptionSet:
    """The synthetic world ``default_world(n_clips, seed, clip_seconds)`` as a caption set
    (5 captions per clip; keywords = labels, scene, timbre of the main event).

    ``held_out_phrasing``: the valid and test clips are captioned again from their events in
    wording the world's captions never use (:func:`audiorepro.data.synthetic.reworded_captions`:
    other names and verbs per class, other scene phrases, connectives and templates), so a query
    can be answered only by a text encoder that maps unseen wording onto the sounds."""
    w = default_world(n_clips, seed, clip_seconds=clip_seconds, progress=False)
    f = w.table.frame
    kw = [split_labels(lab) + [str(s).replace("_", " ")] + ([str(t)] if isinstance(t, str) and t else [])
          for lab, s, t in zip(f["labels"], f["scene"], f["timbre"])]
    caps = [split_captions(c) for c in f["captions"]]
    if held_out_phrasing:
        caps = [reworded_captions(w, str(cid), len(c)) if split in ("valid", "test") else c
                for cid, split, c in zip(f["clip_id"], f["split"], caps)]
    frame = pd.DataFrame({"clip_id": f["clip_id"], "path": [str(w.table.audio_path(i)) for i in range(len(f))],
                          "split": f["split"], "captions": caps, "keywords": kw, "source": "synthetic"})
    return CaptionSet("synthetic", frame, f"synthetic world n{n_clips}_s{seed} ({clip_seconds:g} s "
                      "clips): 5 captions per clip" + ("; valid and test captions in held-out "
                                                       "wording" if held_out_phrasing else ""))


def training_captions(sources: Mapping[str, CaptionSet], target: str) -> list[str]:
    """Every caption a model may train on: the target's train split and every other set (any
    pre-training combination may include it)."""
    return [c for name, cs in sources.items()
            for c in (cs.subset("train") if name == target else cs).frame["captions"].explode()]


def unseen_wording(sources: Mapping[str, CaptionSet], target: str) -> pd.DataFrame:
    """How new the wording of the target's valid and test captions is to training: per split,
    ``captions``, ``words unseen`` (share of their content words, :func:`caption_key`'s, that no
    caption of the target's train split or of another set contains) and ``captions with an unseen
    word``."""
    seen = {w for c in training_captions(sources, target) for w in caption_key(c).split()}
    rows = []
    held = sources[target].subset(["valid", "test"]).frame
    for split, part in held.groupby("split", sort=False):
        words = [caption_key(c).split() for c in part["captions"].explode()]
        n_words = sum(len(ws) for ws in words)
        rows.append({"split": split, "captions": len(words),
                     "words unseen": sum(w not in seen for ws in words for w in ws) / max(n_words, 1),
                     "captions with an unseen word": float(np.mean([any(w not in seen for w in ws)
                                                                     for ws in words]))})
    return pd.DataFrame(rows, columns=["split", "captions", "words unseen",
                                       "captions with an unseen word"])


def search_collection(n_clips: int, world_seed: int, trained_on: int | None = None) -> CaptionSet:
    """A collection to search that no model has seen: every clip (all splits) of the synthetic
    world ``default_world(n_clips, world_seed)``, named ``collection`` (clip ids
    ``collection/<id>``). ``world_seed`` must differ from :data:`PRETRAIN_WORLD_SEED` and from
    ``trained_on``, the world the projections were trained on."""
    for seen, what in ((PRETRAIN_WORLD_SEED, "the pre-trained audio stand-ins were"),
                       (trained_on, "the projections were")):
        if world_seed == seen:
            raise ValueError(f"search_collection: world_seed={world_seed} is the world {what} "
                             "trained on; choose another seed")
    cs = synthetic_captions(n_clips, world_seed)
    frame = cs.frame.assign(source="collection",
                            clip_id="collection/" + cs.frame["clip_id"].astype(str))
    return CaptionSet("collection", frame, f"unseen synthetic world n{n_clips}_s{world_seed} "
                                           "(every split), the search demo's collection")


def caption_set_from_table(table: Any, name: str | None = None) -> CaptionSet:
    """A :class:`CaptionSet` from a clip table with a ``captions`` column, e.g. made by the
    adapters of :mod:`audiorepro.data.adapters.captions` (Clotho v2, AudioCaps, WavCaps).
    Keywords: the ``keywords`` column (Clotho metadata, ``;``-separated) if present, else the
    labels. Paths are resolved against the table's root."""
    f = table.frame
    if "captions" not in f.columns:
        raise ValueError(f"clip table {table.name!r} has no captions column")
    if "keywords" in f.columns:
        kws = [[k.strip() for k in str(c).split(";") if k.strip()] if isinstance(c, str) else []
               for c in f["keywords"]]
    else:
        kws = [split_labels(c) for c in f["labels"]]
    src = f["source"] if "source" in f.columns else table.name
    frame = pd.DataFrame({"clip_id": f["clip_id"], "path": [str(table.audio_path(i)) for i in range(len(f))],
                          "split": f["split"], "captions": [split_captions(c) for c in f["captions"]],
                          "keywords": kws, "source": src})
    return CaptionSet(name or table.name, frame, f"clip table {table.name!r}")


def _tux_caption_frame() -> pd.DataFrame:
    t = build_task("captions")
    f = t.frame
    kw = [[p for p in str(tp).split("/") if p] + [str(st)] for tp, st in zip(f["tag_path"], f["stamp"])]
    return pd.DataFrame({"clip_id": f["clip_id"], "path": [str(t.audio_path(i)) for i in range(len(f))],
                         "split": f["split"], "captions": [split_captions(c) for c in f["captions"]],
                         "keywords": kw, "source": "tuxpaint"})


def _phrase_of_event(row: pd.Series) -> str:
    """Noun phrase of one sound_events clip: its Tux Paint caption, else the Hedgewars effect name."""
    cap = str(row.get("captions") or "").split("|")[0].strip().rstrip(".")
    if cap and cap.lower() != "nan":
        return cap[0].lower() + cap[1:]
    name = str(row["clip_id"]).split("-effect-")[-1]
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").lower()
    name = re.sub(r"\d+$", "", name).strip() or "game"
    return f"a {name} sound effect"


_MIX_TEMPLATES = ("{a} together with {b}.", "{a} mixed with {b}.", "The sound of {a} and {b}.",
                  "{a} along with {b}.", "{a} over {b}.")


def compose_mixture_caption(phrases: Sequence[str], rng: np.random.Generator) -> str:
    """One caption for a mixture of sounds described by noun ``phrases`` (2+), e.g.
    ``["a frog", "a crow"] -> "A frog mixed with a crow."``."""
    phrases = [p for p in phrases if p]
    if not phrases:
        raise ValueError("compose_mixture_caption: no phrase")
    if len(phrases) == 1:
        out = f"The sound of {phrases[0]}."
    else:
        a = join_words(phrases[:-1]) if len(phrases) > 2 else phrases[0]
        tpl = _MIX_TEMPLATES[int(rng.integers(len(_MIX_TEMPLATES)))]
        out = tpl.format(a=a, b=phrases[-1])
    return out[0].upper() + out[1:]


def _mixture_set(seed: int = 0) -> CaptionSet:
    ev = build_task("sound_events").frame.set_index("clip_id")
    mix = build_task("effect_mixtures", seed=seed)
    rng = np.random.default_rng(seed + 17)
    caps, kws = [], []
    for comp, labels in zip(mix.frame["components"], mix.frame["labels"]):
        ids = str(comp).split("|")
        phrases = [_phrase_of_event(ev.loc[c].rename(None).to_dict() | {"clip_id": c}) for c in ids]
        caps.append([compose_mixture_caption(phrases, rng)])
        kws.append([lab.split("/")[-1] for lab in str(labels).split(";") if lab])
    f = mix.frame
    frame = pd.DataFrame({"clip_id": f["clip_id"], "path": [str(mix.audio_path(i)) for i in range(len(f))],
                          "split": f["split"], "captions": caps, "keywords": kws, "source": "mixtures"})
    return CaptionSet("mixtures", frame, "mixtures of 2-4 real effects, captions composed from parts")


def caption_sources(synthetic_clips: int = 200, seed: int = 0, real: bool = True,
                    world_seed: int = PRETRAIN_WORLD_SEED + 1,
                    real_clips: int = 0, held_out_phrasing: bool = True) -> dict[str, CaptionSet]:
    """The book's three caption data sets (the roles of the paper's three sets).

    ``synthetic`` (the target, like ClothoV2: 5 human-like captions per clip, keywords = labels,
    scene, timbre; test split used for evaluation), ``tuxpaint`` (real effects, one short human
    caption each, like AudioCaps' one caption per clip) and ``mixtures`` (real effects mixed, a
    caption composed from the parts' descriptions, like WavCaps' synthetic captions).
    Without the Debian sources (``DebianSourceUnavailable``) or with ``real=False`` the two real
    sets are replaced by synthetic worlds of other seeds (``note`` says so).

    ``world_seed``: seed of the synthetic world; it must differ from :data:`PRETRAIN_WORLD_SEED`
    (the world the pre-trained audio stand-ins learned from). ``seed``: mixture draws.
    ``real_clips``: keep the first that many clips of each other set (0: all).
    ``held_out_phrasing``: the target's valid and test captions in wording its training captions
    never use (:func:`synthetic_captions`; measured by :func:`unseen_wording`).
    """
    if world_seed == PRETRAIN_WORLD_SEED:
        raise ValueError(f"caption_sources: world_seed={world_seed} is the world the pre-trained "
                         "audio stand-ins were trained on; choose another seed")
    out = {"synthetic": synthetic_captions(synthetic_clips, world_seed,
                                           held_out_phrasing=held_out_phrasing)}

    def cut(d: dict[str, CaptionSet]) -> dict[str, CaptionSet]:
        out = {}
        for k, v in d.items():
            if k == "synthetic" or not real_clips or len(v) <= real_clips:
                out[k] = v
            else:   # the note says what was kept
                out[k] = CaptionSet(v.name, v.frame.iloc[:real_clips], f"{v.note} (first {real_clips} of {len(v)} clips)")
        return out
    if real:
        try:
            out["tuxpaint"] = CaptionSet("tuxpaint", _tux_caption_frame(),
                                         "Tux Paint effects with their English captions")
            out["mixtures"] = _mixture_set(seed)
            return cut(out)
        except DebianSourceUnavailable as exc:   # offline without the packages: stand-ins, named so
            warnings.warn(f"real caption sets unavailable ({exc}); using synthetic stand-ins "
                          "(their role_sources say STAND-IN)")
    n = max(50, synthetic_clips // 2)
    for k, (name, s) in enumerate((("tuxpaint", world_seed + 101), ("mixtures", world_seed + 202))):
        cs = synthetic_captions(n, s)
        cs.frame["source"] = name
        cs.frame["clip_id"] = name + "/" + cs.frame["clip_id"].astype(str)
        out[name] = CaptionSet(name, cs.frame, f"STAND-IN: synthetic world n{n}_s{s}")
    return cut(out)


#: caption set name -> the paper's data set it stands for (book sets and the real ones)
PAPER_NAMES: dict[str, str] = {"synthetic": "ClothoV2", "tuxpaint": "AudioCaps", "mixtures": "WavCaps",
                               "clotho": "ClothoV2", "audiocaps": "AudioCaps", "wavcaps": "WavCaps"}
#: the paper's order of the three sets (Table 4)
PAPER_ORDER: tuple[str, ...] = ("AudioCaps", "WavCaps", "ClothoV2")


#: the paper's three sets, as folders of a ``data_root``
PAPER_SETS: tuple[str, ...] = ("clotho", "audiocaps", "wavcaps")


def paper_caption_sources(data_root: str | Path, on_missing: str = "error",
                          options: Mapping[str, Mapping[str, Any]] | None = None,
                          sets: Sequence[str] = PAPER_SETS) -> dict[str, CaptionSet]:
    """The paper's data sets as caption sets, through :func:`audiorepro.data.adapters.adapt`:
    ``<data_root>/clotho`` (Clotho v2, the target), ``<data_root>/audiocaps``,
    ``<data_root>/wavcaps`` (native metadata as downloaded; see
    :mod:`audiorepro.data.adapters.captions`). ``options[name]`` go to that adapter (e.g.
    ``{"wavcaps": {"exclude_ids": [...], "sources": ["FreeSound"]}}``). ``sets``: which of
    them are read (Fig. 1 needs ``("clotho",)`` only; the others need not exist then). Returns
    them in the order of :data:`PAPER_SETS`; the target is ``clotho``.
    """
    unknown = sorted(set(sets) - set(PAPER_SETS))
    if unknown or "clotho" not in sets:
        raise ValueError(f"sets={list(sets)}: choose among {list(PAPER_SETS)}, clotho (the target) "
                         "included")
    sets = [n for n in PAPER_SETS if n in sets]
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data_root {root} is not a folder (expected "
                                f"{', '.join(n + '/' for n in sets)} inside)")
    missing = [n for n in sets if not (root / n).is_dir()]
    if missing:
        raise FileNotFoundError(f"data_root {root}: missing folder(s) {missing} (one per data set: "
                                f"{', '.join(n + '/' for n in sets)})")
    opts = dict(options or {})
    out = {}
    for n in sets:
        out[n] = caption_set_from_table(adapt(n, root / n, on_missing=on_missing, **dict(opts.get(n, {}))), n)
    return out


def first_per_split(cs: CaptionSet, n: int) -> CaptionSet:
    """The first ``n`` clips of every split of ``cs`` in table order (``n`` 0: all)."""
    if not n:
        return cs
    return CaptionSet(cs.name, cs.frame.groupby("split", sort=False).head(int(n)), cs.note)


def user_caption_set(clip_table: str | Path, task: str) -> CaptionSet:
    """A user's captioned audio: a clip table (:mod:`audiorepro.data.cliptable`; captions in the
    ``captions`` column, ``|``-separated; keywords from a ``keywords`` column or the labels) read
    as the caption set named ``task``. It needs ``train``, ``valid`` and ``test`` clips."""
    if not str(task).strip():
        raise ValueError(f"clip_table {clip_table}: parameter task is empty; name the user's task "
                         "(its records are stored under it, never beside a paper number)")
    if str(task) in PAPER_NAMES or str(task) in PAPER_NAMES.values():
        raise ValueError(f"task {task!r} is a name of the paper's data sets; name the user's own task")
    path = project_path(clip_table)
    cs = caption_set_from_table(ClipTable.read(path), str(task))
    missing = [s for s in ("train", "valid", "test") if not (cs.frame["split"] == s).any()]
    if missing:
        raise ValueError(f"clip_table {path}: no clip of split(s) {missing} (the retrieval runs "
                         "train on train, keep the epoch of the best valid mAP@10, score test)")
    cs.note = f"clip table {path.name} (task {task})"
    return cs


def load_sources(data_root: str | Path | None = None, synthetic_clips: int = 200, seed: int = 0,
                 real: bool = True, real_clips: int = 0, world_seed: int = PRETRAIN_WORLD_SEED + 1,
                 options: Mapping[str, Mapping[str, Any]] | None = None,
                 clip_table: str | Path | None = None, task: str = "",
                 target_clips: int = 0, on_missing: str = "drop",
                 held_out_phrasing: bool = True,
                 target_train_clips: int = 0,
                 sets: Sequence[str] = PAPER_SETS) -> tuple[dict[str, CaptionSet], str]:
    """``(sources, target)`` for the notebooks: with ``clip_table`` the user's captioned clip
    table alone (:func:`user_caption_set`, target ``task``); with ``data_root`` the paper's sets
    (:func:`paper_caption_sources` of ``sets``, target ``clotho``; ``real_clips``: keep the first that many
    clips of AudioCaps and WavCaps; ``on_missing``: what the adapters do with a listed clip whose
    audio is absent - ``drop`` (default: AudioCaps' YouTube clips are never all downloadable; the
    adapter logs how many it left out) or ``error``); otherwise the book's (:func:`caption_sources`, target
    ``synthetic``; ``held_out_phrasing``: its valid and test captions in unseen wording).
    ``target_clips``: keep the first that many clips of every split of the target
    (0: all; :func:`first_per_split`); ``target_train_clips``: then keep the first that many of
    its training split only (0: all) - the paper's extra sets are far larger than ClothoV2, and a
    capped target keeps the book's extra sets larger than it too, with valid and test untouched.
    :data:`PAPER_NAMES` maps the paper's sets to their names.
    ``data_root`` and ``clip_table`` that do not exist as given are taken relative to the project
    home (:func:`project_path`)."""
    if clip_table and data_root:
        raise ValueError("give data_root (the paper's three sets) or clip_table (your own "
                         "captioned audio), not both")
    if clip_table:
        out, target = {str(task): user_caption_set(clip_table, task)}, str(task)
    elif data_root:
        out = paper_caption_sources(project_path(data_root), on_missing=on_missing, options=options,
                                    sets=sets)
        out = {k: v if k == "clotho" or not real_clips else v.subset(n=real_clips)
               for k, v in out.items()}
        target = "clotho"
    else:
        out = caption_sources(synthetic_clips, seed, real=real, world_seed=world_seed,
                              real_clips=real_clips, held_out_phrasing=held_out_phrasing)
        target = "synthetic"
    out[target] = first_per_split(out[target], target_clips)
    if target_train_clips:
        out[target] = first_of_split(out[target], "train", target_train_clips)
    return out, target


def first_of_split(cs: CaptionSet, split: str, n: int) -> CaptionSet:
    """``cs`` with only the first ``n`` clips (table order) of ``split``; the other splits whole.
    The note says what was kept."""
    if n < 1:
        raise ValueError(f"first_of_split: n must be >= 1, got {n}")
    frame = cs.frame
    in_split = frame["split"] == split
    if int(in_split.sum()) <= n:
        return cs
    keep = ~in_split | (in_split.cumsum() <= n)
    note = f"{cs.note or cs.name} (first {n} of {int(in_split.sum())} {split} clips)"
    return CaptionSet(cs.name, frame[keep], note)


#: Words left out of :func:`caption_key` (articles, prepositions, conjunctions, auxiliaries).
_STOP_WORDS = frozenset("a an the of and or with in on at is are be while then as to by from over "
                        "its it this that there can you hear sound".split())


def caption_key(caption: str) -> str:
    """A caption's form for duplicate detection: :func:`preprocess_caption`, its content words
    (no :data:`_STOP_WORDS`) sorted, so that word order and function words do not hide a
    duplicate: ``"The sound of birds chirping."`` and ``"You can hear birds chirping"`` agree."""
    return " ".join(sorted(w for w in preprocess_caption(caption).split() if w not in _STOP_WORDS))


def leaked_captions(sources: Mapping[str, CaptionSet], target: str) -> pd.DataFrame:
    """The target's valid and test captions that a model may have trained on: captions whose
    :func:`caption_key` equals that of a caption of the target's train split or of any other set
    (any pre-training combination may include it). Columns ``split, clip_id, caption, kind``
    (``verbatim``: the same text after :func:`preprocess_caption`; ``near-duplicate``: the same
    content words)."""
    seen = training_captions(sources, target)
    texts = {preprocess_caption(c) for c in seen}
    keys = {caption_key(c) for c in seen}
    rows = []
    held = sources[target].subset(["valid", "test"]).frame
    for split, cid, caps in zip(held["split"], held["clip_id"], held["captions"]):
        for c in caps:
            if preprocess_caption(c) in texts:
                rows.append((split, cid, c, "verbatim"))
            elif caption_key(c) in keys:
                rows.append((split, cid, c, "near-duplicate"))
    return pd.DataFrame(rows, columns=["split", "clip_id", "caption", "kind"])


def screen_leaked_captions(sources: Mapping[str, CaptionSet], target: str, drop: bool = True
                           ) -> tuple[dict[str, CaptionSet], pd.DataFrame]:
    """``(sources, leaked)``: :func:`leaked_captions` and, with ``drop``, the sources with those
    captions removed from the target's valid / test splits (a clip left without a caption leaves
    its split), so that no query can be answered by recalling a training caption; the other sets
    and the train split are unchanged. ``drop=False`` (the paper's protocol keeps its data as
    published) only reports them."""
    leaked = leaked_captions(sources, target)
    if leaked.empty or not drop:
        return dict(sources), leaked
    gone = set(zip(leaked["clip_id"], leaked["caption"]))
    f = sources[target].frame.copy()
    f["captions"] = [[c for c in caps if (cid, c) not in gone]
                     for cid, caps in zip(f["clip_id"], f["captions"])]
    f = f[f["captions"].map(len) > 0]
    out = dict(sources)
    out[target] = CaptionSet(sources[target].name, f, sources[target].note)
    return out, leaked


def leakage_note(leaked: pd.DataFrame, dropped: bool) -> str:
    """One line on :func:`screen_leaked_captions`' findings, e.g. ``"12 valid/test captions equal
    a training caption (10 verbatim, 2 near-duplicate): dropped from the queries"``."""
    if leaked.empty:
        return "no valid/test caption equals a training caption (verbatim or near-duplicate)"
    kinds = ", ".join(f"{n} {k}" for k, n in leaked["kind"].value_counts().sort_index(ascending=False).items())
    fate = ("dropped from the queries" if dropped
            else "kept, as the paper's protocol does (drop_leaked=True removes them)")
    return f"{len(leaked)} valid/test captions equal a training caption ({kinds}): {fate}"


def sets_of_combo(combo: str, sources: Mapping[str, CaptionSet]) -> tuple[str, ...]:
    """Source names of a ``+``-joined combination of the paper's names, e.g.
    ``"AudioCaps+ClothoV2"`` -> ``("tuxpaint", "synthetic")`` for the book's sets. A source
    name (e.g. a user's task) stands for itself."""
    names = [p.strip() for p in combo.split("+") if p.strip()]
    by_paper = {PAPER_NAMES[k]: k for k in sources if k in PAPER_NAMES}
    by_paper.update({k: k for k in sources})
    bad = [n for n in names if n not in by_paper]
    if bad or not names:
        raise ValueError(f"combination {combo!r}: unknown set(s) {bad}; use "
                         f"{sorted(set(by_paper) - set(sources)) or list(sources)} joined by +")
    srcs = list(dict.fromkeys(by_paper[n] for n in names))
    return tuple(sorted(srcs, key=lambda k: PAPER_ORDER.index(PAPER_NAMES[k]) if k in PAPER_NAMES
                        else len(PAPER_ORDER)))


def pretrain_set(sources: Mapping[str, CaptionSet], names: Sequence[str], target: str = "synthetic"
                 ) -> CaptionSet:
    """Union of the named sets (source names or the paper's names, :data:`PAPER_NAMES`); of the
    ``target`` set only its train split (its valid/test clips are held out), of the others every
    split (as the paper pools AudioCaps/WavCaps)."""
    by_paper = {PAPER_NAMES[k]: k for k in sources if k in PAPER_NAMES}
    names = [n if n in sources else by_paper.get(n, n) for n in names]
    bad = [n for n in names if n not in sources]
    if bad:
        raise KeyError(f"pretrain_set: unknown caption set(s) {bad}; known: {sorted(sources)}")
    return combine([sources[n].subset("train") if n == target else sources[n] for n in names])


def sources_table(sources: Mapping[str, CaptionSet], example: bool = True,
                  target: str | None = None) -> pd.DataFrame:
    """One row per caption set: its paper role (:data:`PAPER_NAMES`), clips, captions, note and
    (``example``) its first caption. With ``target``: also the clips each set gives to
    pre-training (:func:`pretrain_set`: the target's train split, every clip of the others) and
    that count relative to the target's (the paper's AudioCaps and WavCaps are many times
    ClothoV2's training split)."""
    used = {k: len(pretrain_set(sources, [k], target)) for k in sources} if target else {}
    return pd.DataFrame([{"set": k, "paper role": PAPER_NAMES.get(k, "none (your data)"),
                          "clips": len(v),
                          **({"pre-training clips": used[k],
                              "x target's": used[k] / max(used[target], 1)} if target else {}),
                          "captions": v.n_captions, "note": v.note,
                          **({"example caption": v.frame["captions"].iloc[0][0]} if example else {})}
                         for k, v in sources.items()])


def logmel_features(cs: CaptionSet, max_seconds: float = 10.0, frontend: str = "passt",
                    **frontend_kw: Any) -> list[Tensor]:
    """Log-mel of every clip of ``cs`` with a :mod:`audiorepro.frontends` preset (default
    ``passt``: list of (128, T_i) float16, T_i <= 100 x max_seconds + 1; ``panns_32k`` /
    ``panns_16k``: (64, T_i)), cached on disk per clip (:class:`~audiorepro.frontends.FeatureCache`
    under a :func:`audiorepro.caching.run_key` of the front end and :data:`FEATURE_CODE`; an entry
    is found by clip id and path)."""
    fe = make_frontend(frontend, **frontend_kw)
    sr = int(fe.config.sample_rate)
    cache = FeatureCache()
    params = {"what": "retrieval-logmel", "frontend": fe.config.to_dict(),
              "max_seconds": float(max_seconds)}
    key = {**params, "run_key": caching.run_key(params, code=FEATURE_CODE)}
    out = []
    for cid, path in zip(cs.frame["clip_id"], cs.frame["path"]):
        arr = cache.load(key, cid, path)
        if arr is None:
            audio_log = logging.getLogger(load_audio.__module__)
            level = audio_log.level
            audio_log.setLevel(logging.ERROR)  # no "resampled to 32000 Hz" line per 16 kHz file
            try:
                wave, _ = load_audio(path, sr, duration_s=max_seconds)
            except Exception as exc:
                raise RuntimeError(f"caption set {cs.name!r}, clip {cid!r}: cannot read {path} "
                                   f"({type(exc).__name__}: {exc})") from exc
            finally:
                audio_log.setLevel(level)
            with torch.no_grad():
                arr = fe(wave[None])[0].to(torch.float16).numpy()
            cache.save(key, cid, arr, path)
        out.append(torch.from_numpy(arr))
    return out
